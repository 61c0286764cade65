"""The PostgreSQL backend: the same :class:`~bot.store.base.Store` over real tables, for several processes
sharing one database (``LINKPACT_DATABASE_URL=postgresql://...``). See ``docs/storage.md``.

Layout: one table per logical table (``runs``, ``backlinks``...), each ``(seq, id, doc jsonb)``, with hash
expression indexes on the fields the product looks documents up by (:mod:`bot.store.migrations`). A table
name the schema does not have yet goes to the shared ``other_documents`` table.

Threads: the store owns one I/O thread running an asyncio event loop with psycopg's
:class:`~psycopg_pool.AsyncConnectionPool`; every query runs there, never on the caller's loop, so the
store works from any event loop and thread (like the embedded backend) and a busy application loop never
delays a transaction that holds locks. :meth:`PgStore.transact` runs the caller's synchronous ``fn`` on a
worker thread; each ``tx`` method it calls hands its query to the I/O loop and waits for the answer.

Isolation: every write transaction runs at ``SERIALIZABLE``. It first runs optimistically, holding the
writers' advisory lock in *shared* mode (other writers run alongside). When PostgreSQL reports a
serialization failure or a deadlock, ``fn`` is run again holding that lock in *exclusive* mode, which
waits for the running writers and keeps new ones out, so the second run cannot conflict: ``fn`` runs at
most twice in practice (it must be a pure function of ``tx``, as every caller's is). The lock is taken
before ``BEGIN``, so the transaction's snapshot is taken after the wait. Reads (:meth:`PgStore.view` and
single ``get``/``find``/``count``) take no lock: ``REPEATABLE READ READ ONLY`` or one statement.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.store.base import (
    ConflictError,
    Document,
    ReadTx,
    StorageError,
    Store,
    StoreUnavailable,
    Tx,
    new_doc_id,
    split_document,
    to_json_value,
    validate_id,
    validate_table,
)
from bot.store.schema import SchemaMismatch, describe_url, schema_problem

__all__ = ["OTHER_TABLE", "PgStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A replica's connections: one is kept open (a quiet bot needs no more); up to ten serve bursts (a
# recheck, an import and several /linkcheck at once). PostgreSQL's default max_connections is 100.
DEFAULT_POOL_MIN_SIZE = 1
DEFAULT_POOL_MAX_SIZE = 10
# How long an operation waits for a connection (and a new connection for its server) before it fails with
# StoreUnavailable. Well inside the time a person waits for an answer; the pool keeps reconnecting behind.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
# TCP keepalives: a server that vanished without closing the connection (a host crash, a cut network) is
# noticed within about idle + interval * count = 30 s instead of the kernel's two hours.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 15, "keepalives_interval": 5, "keepalives_count": 3}
# One optimistic run, then exclusive runs. An exclusive run conflicts only with writers that bypass the
# lock (a migration, a hand-written UPDATE), so a few are plenty.
MAX_WRITE_ATTEMPTS = 4
# The writers' advisory lock (an arbitrary bigint; advisory locks are per database).
WRITERS_LOCK_KEY = 0x6C6B7063_77726974
#: Where documents of a table without its own PostgreSQL table go (keyed by table name and id).
OTHER_TABLE = "other_documents"
# Batches at least this large are sent with COPY (one stream) rather than one INSERT of many rows.
COPY_MIN_ROWS = 50
_IO_THREAD_NAME = "linkpact-pg"
_TX_THREAD_PREFIX = "linkpact-pg-tx"
# A JSON text PostgreSQL's jsonb refuses: a NUL character (jsonb has no \u0000) or a lone surrogate.
_NUL_ESCAPE = "\\u0000"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

_DEDICATED_TABLES_SQL = """
SELECT c.relname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('seq', 'id', 'doc') AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname <> %s
GROUP BY c.relname HAVING count(*) = 3
"""


class PgStore(Store):
    """:class:`bot.store.base.Store` on PostgreSQL (see the module docstring and ``docs/storage.md``).

    The constructor connects, synchronously (for start-up): it raises :class:`StoreUnavailable` when the
    server cannot be reached within ``connect_timeout_s`` and :class:`~bot.store.schema.SchemaMismatch`
    when the schema is not the version this Linkpact needs (unless ``check_schema`` is false, as for
    ``linkpact db``). Later, an unreachable server makes each operation raise :class:`StoreUnavailable`;
    the pool reconnects by itself when the server is back. Open one store per database per process.
    """

    def __init__(
        self,
        url: str,
        *,
        check_schema: bool = True,
        min_size: int = DEFAULT_POOL_MIN_SIZE,
        max_size: int = DEFAULT_POOL_MAX_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        self.where = describe_url(url)
        self._url = url
        self._closed = False
        self._timeout_s = connect_timeout_s
        self.schema_version: str | None = None
        self._dedicated: frozenset[str] = frozenset()
        self._io = _LoopThread(_IO_THREAD_NAME)
        self._tx_threads = ThreadPoolExecutor(max_workers=max_size, thread_name_prefix=_TX_THREAD_PREFIX)
        self._pool = self._io.run(self._make_pool(min_size, max_size))
        try:
            self._io.run(self._open(check_schema))
        except BaseException:
            self._io.run(self._pool.close())
            self._io.stop()
            self._tx_threads.shutdown(wait=False)
            raise

    # -- Store API -----------------------------------------------------------------------------------
    async def transact(self, fn: Callable[[Tx], T]) -> T:
        return await self._submit(
            self._write(lambda ops: self._in_thread(fn, ops, writable=True)), write=True
        )

    async def view(self, fn: Callable[[ReadTx], T]) -> T:
        return await self._submit(self._read(lambda ops: self._in_thread(fn, ops, writable=False)))

    async def get(self, table: str, doc_id: str, /) -> Document | None:
        validate_table(table)
        return await self._submit(self._single(lambda ops: ops.get(table, doc_id)))

    async def find(self, table: str, /, **equals: Any) -> list[Document]:
        query = _Filter.make(table, equals)
        return await self._submit(self._single(lambda ops: ops.find(query)))

    async def count(self, table: str, /, **equals: Any) -> int:
        query = _Filter.make(table, equals)
        return await self._submit(self._single(lambda ops: ops.count(query)))

    async def insert(self, table: str, doc: Mapping[str, Any], /) -> str:
        validate_table(table)
        row = _encode_doc(table, doc)
        ids = await self._submit(self._write(lambda ops: ops.insert_rows(table, [row])), write=True)
        return ids[0]

    async def insert_many(self, table: str, docs: Iterable[Mapping[str, Any]], /) -> list[str]:
        validate_table(table)
        rows = [_encode_doc(table, doc) for doc in docs]
        return await self._submit(self._write(lambda ops: ops.insert_rows(table, rows)), write=True)

    async def upsert(
        self, table: str, doc: Mapping[str, Any], /, *, key: tuple[str, ...]
    ) -> tuple[str, bool]:
        request = _Upsert.make(table, doc, key)
        return await self._submit(self._write(lambda ops: ops.upsert(request)), write=True)

    async def update(self, table: str, doc_id: str, fields: Mapping[str, Any], /) -> bool:
        request = _Update.make(table, doc_id, fields)
        return await self._submit(self._write(lambda ops: ops.update(request)), write=True)

    async def remove(self, table: str, /, **equals: Any) -> int:
        query = _Filter.make(table, equals, removing=True)
        return await self._submit(self._write(lambda ops: ops.remove(query)), write=True)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Operations already submitted finish first: the pool waits for its connections to come back.
        await asyncio.wrap_future(self._io.submit(self._pool.close()))
        await asyncio.to_thread(self._io.stop)
        self._tx_threads.shutdown(wait=False)

    # -- caller side ----------------------------------------------------------------------------------
    async def _submit(self, coro: Coroutine[Any, Any, T], *, write: bool = False) -> T:
        if self._closed:
            coro.close()
            raise StorageError(f"the store for {self.where} is closed")
        future = asyncio.wrap_future(self._io.submit(coro))
        if not write:
            return await future
        # A write that has started is not undone when the caller is cancelled (the Store contract).
        future.add_done_callback(_retrieve)
        return await asyncio.shield(future)

    # -- I/O loop side -----------------------------------------------------------------------------------
    async def _make_pool(self, min_size: int, max_size: int) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(
            self._url,
            min_size=min_size,
            max_size=max_size,
            timeout=self._timeout_s,
            # A connection left broken by a server restart is found and replaced when taken, so the
            # first operation after an outage succeeds instead of failing once per pooled connection.
            check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self._timeout_s)), **_KEEPALIVES},
            open=False,
            name="linkpact",
        )
        await pool.open(wait=False)
        return pool

    async def _open(self, check_schema: bool) -> None:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            row = await cur.fetchone()
            if row and row[0]:
                cur = await conn.execute("SELECT version_num FROM alembic_version")
                version = await cur.fetchone()
                self.schema_version = version[0] if version else None
            cur = await conn.execute(_DEDICATED_TABLES_SQL, (OTHER_TABLE,))
            self._dedicated = frozenset(name for (name,) in await cur.fetchall())
        if check_schema:
            problem = schema_problem(self.schema_version, self.where)
            if problem:
                raise SchemaMismatch(problem)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise self._unavailable(exc) from exc
        except psycopg.OperationalError as exc:
            if _is_disconnect(exc):
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"the database {self.where} cannot be reached ({_first_line(exc)}); Linkpact reconnects by "
            "itself when it is back: try again in a moment"
        )

    def _ops(self, conn: psycopg.AsyncConnection[Any]) -> _Ops:
        return _Ops(conn, self._dedicated)

    async def _single(self, body: Callable[[_Ops], Awaitable[T]]) -> T:
        """One read statement in autocommit: atomic and consistent by itself."""
        async with self._connection() as conn:
            try:
                return await body(self._ops(conn))
            except psycopg.Error as exc:
                raise _mapped(exc, self.where) from exc

    async def _read(self, body: Callable[[_Ops], Awaitable[T]]) -> T:
        async with self._connection() as conn:
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                result = await body(self._ops(conn))
            except BaseException as exc:
                await _end(conn, "ROLLBACK")
                if isinstance(exc, psycopg.Error):
                    raise _mapped(exc, self.where) from exc
                raise
            await conn.execute("COMMIT")
            return result

    async def _write(self, body: Callable[[_Ops], Awaitable[T]]) -> T:
        exclusive = False
        for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
            try:
                async with self._connection() as conn:
                    return await self._write_once(conn, body, exclusive=exclusive)
            except _RETRYABLE as exc:
                logger.info(
                    "a write to %s conflicted with another (attempt %d, %s): running it again alone",
                    self.where,
                    attempt,
                    type(exc).__name__,
                )
                exclusive = True
            except psycopg.Error as exc:
                raise _mapped(exc, self.where) from exc
        raise StorageError(
            f"a write to {self.where} conflicted with concurrent writes {MAX_WRITE_ATTEMPTS} times in a row; "
            "nothing was written: try again"
        )

    async def _write_once(
        self, conn: psycopg.AsyncConnection[Any], body: Callable[[_Ops], Awaitable[T]], *, exclusive: bool
    ) -> T:
        lock = "pg_advisory_lock" if exclusive else "pg_advisory_lock_shared"
        unlock = "pg_advisory_unlock" if exclusive else "pg_advisory_unlock_shared"
        # The lock is a session lock taken before BEGIN, so the snapshot is taken after any wait for it.
        await conn.execute(f"SELECT {lock}({WRITERS_LOCK_KEY})")
        try:
            await conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        except BaseException:
            await _end(conn, f"SELECT {unlock}({WRITERS_LOCK_KEY})")
            raise
        try:
            result = await body(self._ops(conn))
            if conn.info.transaction_status == TransactionStatus.INERROR:
                raise StorageError(
                    "a database error inside the transaction was caught by the function given to "
                    "transact(); nothing was written"
                )
        except BaseException:
            await _end(conn, f"ROLLBACK; SELECT {unlock}({WRITERS_LOCK_KEY})")
            raise
        try:
            await conn.execute(f"COMMIT; SELECT {unlock}({WRITERS_LOCK_KEY})")
        except BaseException:
            await _end(conn, f"ROLLBACK; SELECT {unlock}({WRITERS_LOCK_KEY})")
            raise
        return result

    async def _in_thread(self, fn: Callable[[Any], T], ops: _Ops, *, writable: bool) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._tx_threads, _run_fn, fn, _SyncTx(ops, loop, writable))


def _run_fn(fn: Callable[[Any], T], tx: _SyncTx) -> T:
    try:
        result = fn(tx)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never started; closing it avoids a "never awaited" warning
            raise TypeError("transact()/view() take a plain function, not an async one: nothing was written")
        return result
    finally:
        tx.finish()


async def _end(conn: psycopg.AsyncConnection[Any], statements: str) -> None:
    """Roll back and release the lock; a connection that cannot do so is closed (the server then releases
    everything it held), never handed back to the pool half-way through."""
    try:
        await conn.execute(statements)
    except BaseException:
        logger.warning("closing a database connection that could not roll back cleanly", exc_info=True)
        await conn.close()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A shielded write whose caller went away: its outcome is logged, not left "never retrieved"."""
    if not future.cancelled() and future.exception() is not None:
        logger.debug("a write finished after its caller was cancelled", exc_info=future.exception())


def _is_disconnect(exc: BaseException) -> bool:
    """The server is gone or refuses connections (no SQLSTATE from a dead socket; class 08 "connection
    exception"; 57P01-57P03 shutdown and start-up), as opposed to an error of the statement itself
    (psycopg files serialization failures and deadlocks under OperationalError too)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in {"57P01", "57P02", "57P03"}


def _mapped(exc: psycopg.Error, where: str) -> StorageError:
    if isinstance(exc, pg_errors.UniqueViolation):
        diag = exc.diag
        return ConflictError(f"{diag.table_name or 'a table'}: {_first_line(exc)} ({diag.constraint_name})")
    if _is_disconnect(exc):
        return StoreUnavailable(
            f"the database {where} went away during an operation ({_first_line(exc)}); it was not "
            "written: Linkpact reconnects by itself when it is back, try again in a moment"
        )
    return StorageError(f"database error on {where}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# -- requests: validated and encoded on the caller's thread, before any I/O ---------------------------------


def _dumps(body: Any) -> bytes:
    """JSON text of a validated value as jsonb takes it (UTF-8 bytes).

    jsonb cannot hold a NUL character or a lone surrogate (scraped text can carry either); they are
    stored as U+FFFD, the replacement character a UTF-8 decoder would put there (``docs/storage.md``).
    """
    text = _ENCODER.encode(body)
    if _NUL_ESCAPE in text or _UNSTORABLE.search(text):
        text = _ENCODER.encode(storable(body))
    return text.encode("utf-8")


def storable(value: Any) -> Any:
    """``value`` with every NUL and lone surrogate in its strings (and keys) replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _jsonb(data: bytes) -> Jsonb:
    return Jsonb(data, dumps=_same)


def _same(data: Any) -> Any:
    return data


def _encode_doc(table: str, doc: Mapping[str, Any]) -> tuple[str | None, bytes]:
    doc_id, body = split_document(table, doc)
    return doc_id, _dumps(body)


class _Filter:
    """An equality filter, checked and encoded: ``fields`` are (name, jsonb bytes); ``doc_id`` a wanted id.
    ``never`` is true when it can match nothing (an id that is not a string)."""

    __slots__ = ("doc_id", "fields", "never", "table")

    def __init__(self, table: str, fields: list[tuple[str, bytes]], doc_id: str | None, never: bool) -> None:
        self.table = table
        self.fields = fields
        self.doc_id = doc_id
        self.never = never

    @classmethod
    def make(cls, table: str, equals: Mapping[str, Any], *, removing: bool = False) -> _Filter:
        validate_table(table)
        if removing and not equals:
            raise ValueError(f"remove from {table} needs at least one field to match (refusing to empty it)")
        fields = []
        doc_id: str | None = None
        never = False
        for name, value in equals.items():
            plain = to_json_value(value, f"{table} filter {name}")
            if name == "id":
                if isinstance(plain, str):
                    doc_id = plain
                else:
                    never = True  # ids are strings: JSON equality with anything else is false
            else:
                fields.append((name, _dumps(plain)))
        return cls(table, fields, doc_id, never)


class _Upsert:
    __slots__ = ("body", "doc_id", "key_filter", "table")

    def __init__(self, table: str, doc_id: str | None, body: bytes, key_filter: _Filter) -> None:
        self.table = table
        self.doc_id = doc_id
        self.body = body
        self.key_filter = key_filter

    @classmethod
    def make(cls, table: str, doc: Mapping[str, Any], key: tuple[str, ...]) -> _Upsert:
        validate_table(table)
        if not key or not isinstance(key, tuple) or not all(isinstance(field, str) for field in key):
            raise ValueError(f"upsert needs a non-empty tuple of field names as key, got {key!r}")
        doc_id, body = split_document(table, doc)
        wanted: dict[str, Any] = {}
        for name in key:
            value = doc_id if name == "id" else body.get(name, _MISSING)
            if value is _MISSING or (value is None and name == "id"):
                raise ValueError(f"upsert into {table}: the document lacks key field(s) of {key!r}")
            wanted[name] = value
        return cls(table, doc_id, _dumps(body), _Filter.make(table, wanted))


class _Update:
    __slots__ = ("doc_id", "fields", "table")

    def __init__(self, table: str, doc_id: str, fields: bytes) -> None:
        self.table = table
        self.doc_id = doc_id
        self.fields = fields

    @classmethod
    def make(cls, table: str, doc_id: str, fields: Mapping[str, Any]) -> _Update:
        validate_table(table)
        validate_id(doc_id)
        new_id, changes = split_document(table, fields)
        if new_id is not None and new_id != doc_id:
            raise ValueError(f"update of {table}/{doc_id}: a document's id cannot change (got {new_id!r})")
        return cls(table, doc_id, _dumps(changes))


_MISSING = object()


def _export(doc_id: str, text: str) -> Document:
    out: Document = {"id": doc_id}
    out.update(json.loads(text))
    return out


# -- the queries, on one connection ----------------------------------------------------------------------


class _Ops:
    """Every query of the interface, on ``conn`` (inside the caller's transaction when there is one).

    Documents come back as ``(id, JSON text)`` rows from :meth:`rows`; :meth:`find` parses them here (on
    the I/O loop), while :class:`_SyncTx` parses them on the transaction's own thread.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any], dedicated: frozenset[str]) -> None:
        self.conn = conn
        self._dedicated = dedicated

    def _target(self, table: str) -> tuple[str, list[Any]]:
        """The FROM target and the leading condition for ``table``: its own table, or its rows of the
        shared one."""
        if table in self._dedicated:
            return f'"{table}"', []
        return OTHER_TABLE, [table]

    def _where(self, query: _Filter) -> tuple[str, str, list[Any]]:
        target, params = self._target(query.table)
        conditions = [] if not params else ["tbl = %s"]
        if query.doc_id is not None:
            conditions.append("id = %s")
            params.append(query.doc_id)
        for name, value in query.fields:
            # The field name is a literal in the SQL (not a parameter), so the planner matches it to the
            # expression index on (doc -> 'name') even in a prepared, generic plan.
            conditions.append(f"doc -> {_literal(name)} = %s")
            params.append(_jsonb(value))
        return target, " AND ".join(conditions) or "true", params

    async def rows(self, query: _Filter) -> list[tuple[str, str]]:
        if query.never:
            return []
        target, where, params = self._where(query)
        cur = await self.conn.execute(
            f"SELECT id, doc::text FROM {target} WHERE {where} ORDER BY seq", params
        )
        return await cur.fetchall()

    async def find(self, query: _Filter) -> list[Document]:
        return [_export(doc_id, text) for doc_id, text in await self.rows(query)]

    async def get_row(self, table: str, doc_id: Any) -> tuple[str, str] | None:
        if not isinstance(doc_id, str):
            return None
        rows = await self.rows(_Filter(table, [], doc_id, False))
        return rows[0] if rows else None

    async def get(self, table: str, doc_id: Any) -> Document | None:
        row = await self.get_row(table, doc_id)
        return None if row is None else _export(*row)

    async def count(self, query: _Filter) -> int:
        if query.never:
            return 0
        target, where, params = self._where(query)
        cur = await self.conn.execute(f"SELECT count(*) FROM {target} WHERE {where}", params)
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def insert_rows(self, table: str, rows: list[tuple[str | None, bytes]]) -> list[str]:
        """Insert ``(id or None, body)`` rows, all or none; a given id that is taken (or given twice) is a
        :class:`ConflictError`, found before anything is written."""
        ids = [doc_id or new_doc_id() for doc_id, _ in rows]
        given = [doc_id for doc_id, _ in rows if doc_id is not None]
        if given:
            if len(set(given)) < len(given):
                twice = next(i for i in given if given.count(i) > 1)
                raise ConflictError(f"{table}: the batch gives the id {twice!r} twice")
            target, params = self._target(table)
            extra = " AND tbl = %s" if params else ""
            cur = await self.conn.execute(
                f"SELECT id FROM {target} WHERE id = ANY(%s){extra}", [given, *params]
            )
            taken = await cur.fetchone()
            if taken:
                raise ConflictError(f"{table} already has a document with id {taken[0]!r}")
        target, prefix = self._target(table)
        columns = "tbl, id, doc" if prefix else "id, doc"
        if len(rows) >= COPY_MIN_ROWS:
            async with self.conn.cursor().copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                for doc_id, (_, body) in zip(ids, rows, strict=True):
                    await copy.write_row((*prefix, doc_id, _jsonb(body)))
        elif rows:
            width = len(prefix) + 2
            values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(rows))
            params = [
                value
                for doc_id, (_, body) in zip(ids, rows, strict=True)
                for value in (*prefix, doc_id, _jsonb(body))
            ]
            await self.conn.execute(f"INSERT INTO {target} ({columns}) VALUES {values}", params)
        return ids

    async def upsert(self, request: _Upsert) -> tuple[str, bool]:
        matches = [doc_id for doc_id, _ in await self.rows(request.key_filter)]
        if len(matches) > 1:
            raise ConflictError(
                f"upsert into {request.table}: {len(matches)} documents match the key; it must be unique"
            )
        if not matches:
            ids = await self.insert_rows(request.table, [(request.doc_id, request.body)])
            return ids[0], True
        (found,) = matches
        if request.doc_id is not None and request.doc_id != found:
            raise ConflictError(
                f"upsert into {request.table}: the key matches {found!r}, not id {request.doc_id!r}"
            )
        await self._merge(request.table, found, request.body)
        return found, False

    async def update(self, request: _Update) -> bool:
        return await self._merge(request.table, request.doc_id, request.fields)

    async def _merge(self, table: str, doc_id: str, fields: bytes) -> bool:
        target, params = self._target(table)
        extra = " AND tbl = %s" if params else ""
        # jsonb || is a shallow merge: the same as {**old, **fields}.
        cur = await self.conn.execute(
            f"UPDATE {target} SET doc = doc || %s WHERE id = %s{extra}", [_jsonb(fields), doc_id, *params]
        )
        return cur.rowcount > 0

    async def table_names(self) -> list[str]:
        """Every table that has a PostgreSQL table of its own, and every other one holding documents."""
        cur = await self.conn.execute(f"SELECT DISTINCT tbl FROM {OTHER_TABLE}")
        return sorted({*self._dedicated, *(name for (name,) in await cur.fetchall())})

    async def delete_all(self, table: str) -> int:
        target, params = self._target(table)
        where = " WHERE tbl = %s" if params else ""
        cur = await self.conn.execute(f"DELETE FROM {target}{where}", params)
        return cur.rowcount

    async def remove(self, query: _Filter) -> int:
        if query.never:
            return 0
        target, where, params = self._where(query)
        cur = await self.conn.execute(f"DELETE FROM {target} WHERE {where}", params)
        return cur.rowcount


def _literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1: only ' is special)."""
    if "\x00" in text:
        raise ValueError(f"a field name cannot contain a NUL character: {text!r}")
    return "'" + text.replace("'", "''") + "'"


class _SyncTx:
    """The synchronous ``tx`` handed to ``fn``: each call validates and encodes here, on the transaction's
    thread, then runs its query on the I/O loop and waits for it."""

    def __init__(self, ops: _Ops, loop: asyncio.AbstractEventLoop, writable: bool) -> None:
        self._ops = ops
        self._loop = loop
        self._writable = writable
        self._open = True

    def finish(self) -> None:
        self._open = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _check(self, table: str, *, write: bool = False) -> None:
        if not self._open:
            raise StorageError("this transaction is over: use the tx only inside the function given to it")
        if write and not self._writable:
            raise StorageError("view() is read-only: write inside transact()")
        validate_table(table)

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, table: str, doc_id: str, /) -> Document | None:
        self._check(table)
        row = self._call(self._ops.get_row(table, doc_id))
        return None if row is None else _export(*row)

    def find(self, table: str, /, **equals: Any) -> list[Document]:
        self._check(table)
        rows = self._call(self._ops.rows(_Filter.make(table, equals)))
        return [_export(doc_id, text) for doc_id, text in rows]

    def count(self, table: str, /, **equals: Any) -> int:
        self._check(table)
        return self._call(self._ops.count(_Filter.make(table, equals)))

    # -- writes ------------------------------------------------------------------------------------------
    def insert(self, table: str, doc: Mapping[str, Any], /) -> str:
        self._check(table, write=True)
        return self._call(self._ops.insert_rows(table, [_encode_doc(table, doc)]))[0]

    def insert_many(self, table: str, docs: Iterable[Mapping[str, Any]], /) -> list[str]:
        self._check(table, write=True)
        return self._call(self._ops.insert_rows(table, [_encode_doc(table, doc) for doc in docs]))

    def upsert(self, table: str, doc: Mapping[str, Any], /, *, key: tuple[str, ...]) -> tuple[str, bool]:
        self._check(table, write=True)
        return self._call(self._ops.upsert(_Upsert.make(table, doc, key)))

    def update(self, table: str, doc_id: str, fields: Mapping[str, Any], /) -> bool:
        self._check(table, write=True)
        return self._call(self._ops.update(_Update.make(table, doc_id, fields)))

    def remove(self, table: str, /, **equals: Any) -> int:
        self._check(table, write=True)
        return self._call(self._ops.remove(_Filter.make(table, equals, removing=True)))

    # -- PostgreSQL only (for `linkpact db migrate`), not part of the Tx interface ------------------------
    def table_names(self) -> list[str]:
        """Every table with a PostgreSQL table of its own, and every other table that holds documents."""
        self._check(OTHER_TABLE)
        return self._call(self._ops.table_names())

    def delete_all(self, table: str) -> int:
        """Delete every document of ``table``; returns how many."""
        self._check(table, write=True)
        return self._call(self._ops.delete_all(table))


class _LoopThread:
    """A daemon thread running an asyncio event loop: the store's I/O happens here."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (from any other thread)."""
        return self.submit(coro).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
