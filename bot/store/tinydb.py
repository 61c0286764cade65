"""The embedded backend: a catalogue at ``LINKPACT_DB`` and one JSON file per table beside it.

Layout and commit protocol: :mod:`bot.store.tablefiles` and ``docs/storage.md``. Each table file is a
JSON object of documents keyed by id, one document a line (TinyDB's layout for one table), so ``jq``,
``grep`` and ``diff`` work on it; documents only added are appended in place, and a transaction over
several tables commits when the catalogue is replaced, so it is all-or-nothing.

Why not TinyDB's stock pieces: ``JSONStorage`` rewrites the file in place (a crash mid-write leaves a
truncated file), ``CachingMiddleware`` holds writes back in memory (a crash loses them), and TinyDB's
``Table`` rebuilds the whole table on every operation, uses integer ids and keeps a query cache that a
rolled-back transaction would leave stale. :class:`AtomicJSONStorage` remains a TinyDB ``Storage`` for
the single-file layout (format 1: temp file, fsync, rename, directory fsync); :class:`TinyStore` opens
such a file by migrating it.

Concurrency: one worker thread per store does every write (so the event loop never blocks on disk), a
thread lock is held around every whole read-modify-write, and an advisory ``flock`` on ``<file>.lock``
serialises writers in different processes (``linkpact track`` in a shell while ``linkpact serve`` runs).
Reads run on their own small thread pool against the last committed snapshot, which is never changed, so
they need no lock and do not wait behind a long write.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import json
import logging
import os
import re
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tinydb.storages import Storage

from bot.store.base import (
    ConflictError,
    Document,
    ReadTx,
    StorageError,
    Store,
    Tx,
    json_equal,
    json_key,
    new_doc_id,
    split_document,
    to_json_value,
    validate_id,
    validate_table,
)
from bot.store.tablefiles import (
    Snapshot,
    TableChange,
    TableFiles,
    decode_body,
    encode_body,
    encode_value,
    parse_database,
)
from bot.store.tablefiles import (
    fsync_directory as _fsync_directory,
)
from bot.store.tablefiles import (
    unlink_quietly as _unlink_quietly,
)

try:  # POSIX only; elsewhere one process at a time may write the file (docs/storage.md).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["AtomicJSONStorage", "TinyStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Tables = dict[str, dict[str, dict[str, Any]]]

# POSIX lets us keep the file we read open, so its inode cannot be reused and "same inode as the path"
# proves "same content". Windows cannot rename over an open file, so there every operation re-reads.
_HOLD_FILE = os.name == "posix"
# Compact separators: the file is rewritten whole on every write, so every byte costs on each one.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# A new file gets the usual permissions (minus the umask); an existing file keeps its own.
_NEW_FILE_MODE = 0o666
_TEMP_SUFFIX = ".tmp"
# Text handed to the OS per write call: big enough for few syscalls, small next to the file itself.
_WRITE_CHUNK_CHARS = 1 << 20
_WORKER_NAME = "linkpact-db"
_READER_NAME = "linkpact-db-read"
# Two: a slow read (a big find) does not hold up a quick one; reads are pure Python, so more would not help.
_READER_THREADS = 2
_REFUSE = "refusing to start with an empty database; restore it from a backup or move it away"


def _temp_pattern(name: str) -> re.Pattern[str]:
    """Our temp files are ``.<name>.<32 hex>.tmp``: exact, so cleanup never touches anything else."""
    return re.compile(re.escape(f".{name}.") + r"[0-9a-f]{32}" + re.escape(_TEMP_SUFFIX))


class AtomicJSONStorage(Storage):
    """A TinyDB storage that never leaves a partial file: temp file + fsync + ``os.replace`` + directory
    fsync. ``read()`` parses and checks the whole file and raises :class:`StorageError` when it is not a
    database (never returning an empty one in its place); a missing file reads as ``None`` (empty).

    Not thread-safe: :class:`TinyStore` calls it from its one worker thread.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        # Resolve symlinks so the rename replaces the real file, not the link.
        self.path = Path(os.path.realpath(path))
        self._held_fd: int | None = None  # the file version we last read or wrote (POSIX)
        self._held_sig: tuple[int, int, int, int] | None = None
        self._stale = False  # the file on disk may differ from what we hold: re-read
        self._seen_file = False  # a file existed once: its disappearing is an error, not an empty DB

    # -- TinyDB Storage API ------------------------------------------------------------------------
    def read(self) -> Tables | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            if self._seen_file:
                raise StorageError(
                    f"{self.path} disappeared while Linkpact was running; refusing to carry on with an "
                    "empty database: restore it from a backup, or restart Linkpact to start a new one"
                ) from None
            self._stale = False
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StorageError(f"{self.path} is not a regular file")
            with open(fd, "rb", closefd=False) as handle:
                data = parse_database(handle.read(), self.path)
        except BaseException:
            os.close(fd)
            raise
        self._hold(fd, info)
        return data

    def write(self, data: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        directory = self.path.parent
        temp = directory / f".{self.path.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(temp, flags, _NEW_FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: cannot create {temp}: {exc.strerror}") from exc
        fd_open = True
        try:
            mode = _current_mode(self.path)
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # keep the permissions an operator gave the file
            _write_json(fd, data)
            os.fsync(fd)  # the new content is on disk before any name points to it
            if not _HOLD_FILE:  # pragma: no cover - Windows cannot rename an open file
                os.close(fd)
                fd_open = False
            os.replace(temp, self.path)  # atomic: readers see the old file or the new one, never a mix
        except BaseException as exc:
            if fd_open:
                os.close(fd)
            _unlink_quietly(temp)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            if isinstance(exc, TypeError | ValueError):
                raise StorageError(f"cannot write {self.path}: the data is not JSON ({exc})") from exc
            raise
        self._seen_file = True
        if _HOLD_FILE:
            self._hold(fd, os.fstat(fd))
        else:  # pragma: no cover - Windows
            self._stale = True
        try:
            _fsync_directory(directory)  # make the rename itself survive a power cut
        except OSError as exc:
            self._stale = True
            raise StorageError(
                f"{self.path} was written but its directory could not be synced ({exc.strerror}); "
                "the write may not survive a power cut"
            ) from exc

    def close(self) -> None:
        if self._held_fd is not None:
            os.close(self._held_fd)
            self._held_fd = None
            self._held_sig = None

    # -- extras for TinyStore --------------------------------------------------------------------------
    def changed_since_read(self) -> bool:
        """True unless the file at :attr:`path` is provably the version last read or written."""
        if self._stale or not _HOLD_FILE:
            return True
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return self._held_fd is not None  # it vanished: read() will say so
        except OSError:
            return True  # let read() report the problem
        if self._held_sig is None:
            return True  # a file appeared where there was none
        # The held descriptor pins the inode, so an equal (device, inode) is the same file; size and mtime
        # also catch a hand edit made in place.
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != self._held_sig

    def remove_stale_temp_files(self) -> list[str]:
        """Delete temp files left by a writer that died mid-write; returns their names.

        Call only while holding the inter-process write lock: then no live writer owns one.
        """
        pattern = _temp_pattern(self.path.name)
        removed = []
        try:
            entries = list(os.scandir(self.path.parent))
        except OSError as exc:
            raise StorageError(f"cannot list {self.path.parent}: {exc.strerror}") from exc
        for entry in entries:
            if pattern.fullmatch(entry.name):
                _unlink_quietly(Path(entry.path))
                removed.append(entry.name)
        return removed

    def _hold(self, fd: int, info: os.stat_result) -> None:
        self.close()
        self._seen_file = True
        self._stale = False
        if _HOLD_FILE:
            self._held_fd = fd
            self._held_sig = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        else:  # pragma: no cover - Windows
            os.close(fd)


class _InterProcessLock:
    """An exclusive advisory ``flock`` on ``<db>.lock`` (kept, never deleted: deleting lock files races)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        if fcntl is None:  # pragma: no cover - Windows
            return
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, _NEW_FILE_MODE)
        except OSError as exc:
            raise StorageError(
                f"cannot create the lock file {path}: {exc.strerror} (the database's directory must be "
                "writable)"
            ) from exc

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class TinyStore(Store):
    """:class:`bot.store.base.Store` over a catalogue and one JSON file per table (see the module docstring,
    :mod:`bot.store.tablefiles` and ``docs/storage.md``).

    The constructor opens the database synchronously: it migrates a single-file database, finishes or
    cuts back a commit that a killed writer left, removes its temp files and reads the catalogue (tables
    are read when first touched), raising :class:`StorageError` when the database is corrupt or
    unreadable or its directory is missing. Open one store per file per process and share it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._files = TableFiles(path)
        self.path = self._files.path
        if not self.path.parent.is_dir():
            raise StorageError(f"cannot open {path}: the directory {self.path.parent} does not exist")
        if self.path.is_dir():
            raise StorageError(f"cannot open {path}: it is a directory (LINKPACT_DB names a file)")
        # One worker thread: writes are serialised and run off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_WORKER_NAME)
        # Reads of the committed snapshot run here, so a long write (a 100,000-row import) never makes a
        # /linkcheck wait for its reads.
        self._readers = ThreadPoolExecutor(max_workers=_READER_THREADS, thread_name_prefix=_READER_NAME)
        self._lock = threading.Lock()
        self._file_lock: _InterProcessLock | None = None
        self._data: Snapshot | None = None
        self._closed = False
        self._writes = 0
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.submit(self._close)
            self._executor.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            raise

    @property
    def write_count(self) -> int:
        """How many commits this store has made since it was opened (one per changing call)."""
        return self._writes

    def table_path(self, table: str) -> Path:
        """The file that holds ``table`` (``linkpact.json`` -> ``linkpact.<table>.json``)."""
        return self._files.table_path(validate_table(table))

    # -- Store API ---------------------------------------------------------------------------------------
    async def transact(self, fn: Callable[[Tx], T]) -> T:
        return await self._submit(self._transact, fn)

    async def view(self, fn: Callable[[ReadTx], T]) -> T:
        if self._closed:
            raise StorageError(f"the store for {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._view, fn)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Queued operations run first: the executor is first in, first out.
        self._readers.shutdown(wait=True)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    # -- worker-thread side ------------------------------------------------------------------------------
    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StorageError(f"the store for {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        with self._lock:
            self._file_lock = _InterProcessLock(self.path.with_name(self.path.name + ".lock"))
            with self._file_lock:
                for what in self._files.recover():
                    logger.warning("%s: %s", self.path, what)
                self._data = self._files.load()

    def _close(self) -> None:
        with self._lock:
            self._files.close()
            if self._file_lock is not None:
                self._file_lock.close()
            self._data = None

    def _current(self) -> Snapshot:
        """The committed version on disk now: the one in memory unless the catalogue changed since."""
        if self._data is None or self._files.changed_since_read():
            self._data = None  # never keep a version that may no longer match the files
            self._data = self._files.load()
        return self._data

    def _view(self, fn: Callable[[ReadTx], T]) -> T:
        snapshot = self._data
        if snapshot is not None and not self._files.changed_since_read():
            # Committed snapshots are never changed (a commit builds a new one and swaps it in after the
            # files are written), so reading one needs no lock and never waits behind a write. Mid-swap
            # the catalogue looks changed, and the read takes the locked path below.
            tx = _TinyTx(snapshot, writable=False)
            try:
                return _run(fn, tx)
            finally:
                tx.finish()
        with self._lock:
            tx = _TinyTx(self._current(), writable=False)
            try:
                return _run(fn, tx)
            finally:
                tx.finish()

    def _transact(self, fn: Callable[[Tx], T]) -> T:
        assert self._file_lock is not None
        with self._lock, self._file_lock:
            result, rewrote = self._commit(fn)
            if rewrote >= _TRIM_AFTER_DOCS:
                _release_freed_memory()  # the old version of the table is garbage now
            return result

    def _commit(self, fn: Callable[[Tx], T]) -> tuple[T, int]:
        """Run ``fn`` and commit what it changed; returns its result and the size of the largest table
        written whole."""
        base = self._current()
        tx = _TinyTx(base, writable=True)
        try:
            result = _run(fn, tx)
            changes = tx.changes()
            if changes:
                self._data = self._files.commit(base, changes)
                self._writes += 1
            return result, max((len(c.docs) for c in changes.values() if c.docs is not None), default=0)
        finally:
            tx.finish()


# A commit that rewrote a table this big frees as much (the old version's documents): hand it back.
_TRIM_AFTER_DOCS = 10_000


def _release_freed_memory() -> None:
    """Return memory freed inside the C heap to the OS (glibc's ``malloc_trim``; nothing elsewhere).

    The encoded documents of a big table are C-heap blocks; once a rewrite frees the old version, glibc
    keeps those pages for later blocks of the same sizes, while Python's own objects come from other
    pages, so a recheck of 100,000 backlinks would otherwise hold both at once (about 60 MB more)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # pragma: no cover - no C library to load
        return None


_LIBC = _load_libc()


def _run(fn: Callable[[Any], T], tx: _TinyTx) -> T:
    result = fn(tx)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never started; closing it avoids a "never awaited" warning
        raise TypeError("transact()/view() take a plain function, not an async one: nothing was written")
    return result


_MISSING = object()
# Upserts into one table by one key that find their match by scanning before an index is built: one
# or two upserts (a counter, a weekly snapshot) should not parse a whole table.
_UPSERTS_BEFORE_INDEX = 8


class _TinyTx:
    """Transaction over an immutable snapshot: changes live in an overlay until :meth:`changes`.

    Documents stay encoded (``bytes``) in the snapshot and the overlay, and are parsed on every read, so
    each returned document is a fresh copy. A filter on a string field first searches the encoded bytes
    for ``"field":"value"`` (:meth:`bot.store.tablefiles.Table.matching`), so a lookup by target in a
    100,000-document table parses only the candidates. Upsert keys get a hash index after a few upserts,
    kept up to date by every write in the transaction, so 100,000 upserts in one transaction stay linear.
    """

    def __init__(self, base: Snapshot, *, writable: bool) -> None:
        self._base = base
        self._writable = writable
        self._over: dict[str, dict[str, bytes | None]] = {}  # None marks a removed document
        self._rewrites: set[str] = set()  # tables where a document of the snapshot changed or went
        self._indexes: dict[str, dict[tuple[str, ...], dict[Any, set[str]]]] = {}
        self._upserts: dict[tuple[str, tuple[str, ...]], int] = {}
        self._open = True

    def finish(self) -> None:
        self._open = False

    def changes(self) -> dict[str, TableChange]:
        """What to commit, per table: the new documents to append, or the whole new table."""
        out: dict[str, TableChange] = {}
        for table, over in self._over.items():
            if table not in self._rewrites:
                added = [(doc_id, body) for doc_id, body in over.items() if body is not None]
                if added:
                    out[table] = TableChange(appended=added)
                continue
            base = self._base.table(table)
            docs = dict(base.docs()) if base is not None else {}
            for doc_id, body in over.items():
                if body is None:
                    docs.pop(doc_id, None)
                else:
                    docs[doc_id] = body
            out[table] = TableChange(docs=docs)
        return out

    # -- reads --------------------------------------------------------------------------------------------
    def get(self, table: str, doc_id: str, /) -> Document | None:
        self._check(table)
        body = self._lookup(table, doc_id) if isinstance(doc_id, str) else None
        return None if body is None else _export(doc_id, body)

    def find(self, table: str, /, **equals: Any) -> list[Document]:
        # Equal strings across the returned documents (a verdict, a date, a target URL) share one object:
        # strings cannot be changed, so each document is still a fresh copy, and 100,000 of them take
        # about a third less memory.
        shared: dict[str, str] = {}
        out = []
        for _, doc in self._matching(table, equals):
            for name, value in doc.items():
                if type(value) is str:
                    doc[name] = shared.setdefault(value, value)
            out.append(doc)
        return out

    def count(self, table: str, /, **equals: Any) -> int:
        if not equals:
            self._check(table)
            base = self._base.table(table)
            if table not in self._over and base is not None:
                return base.count  # from the catalogue: the table is not read
        return sum(1 for _ in self._matching(table, equals))

    # -- writes -------------------------------------------------------------------------------------------
    def insert(self, table: str, doc: Mapping[str, Any], /) -> str:
        self._check(table, write=True)
        doc_id, body = split_document(table, doc)
        return self._insert(table, doc_id, _encode(table, body))

    def insert_many(self, table: str, docs: Iterable[Mapping[str, Any]], /) -> list[str]:
        self._check(table, write=True)
        out = []
        for doc in docs:
            doc_id, body = split_document(table, doc)
            out.append(self._insert(table, doc_id, _encode(table, body)))
        return out

    def upsert(self, table: str, doc: Mapping[str, Any], /, *, key: tuple[str, ...]) -> tuple[str, bool]:
        self._check(table, write=True)
        if not key or not all(isinstance(field, str) for field in key):
            raise ValueError(f"upsert needs a non-empty tuple of field names as key, got {key!r}")
        doc_id, body = split_document(table, doc)
        wanted = _index_key(doc_id, body, key)
        if wanted is None:
            raise ValueError(f"upsert into {table}: the document lacks key field(s) of {key!r}")
        matches = self._key_matches(table, key, doc_id, body, wanted)
        if len(matches) > 1:
            raise ConflictError(
                f"upsert into {table}: {len(matches)} documents match key {key!r}; it must be unique"
            )
        if not matches:
            return self._insert(table, doc_id, _encode(table, body)), True
        (found,) = matches
        if doc_id is not None and doc_id != found:
            raise ConflictError(f"upsert into {table}: key {key!r} matches {found!r}, not id {doc_id!r}")
        old = self._lookup(table, found)
        assert old is not None
        self._put(table, found, _encode(table, {**decode_body(old), **body}), replaces=True)
        return found, False

    def update(self, table: str, doc_id: str, fields: Mapping[str, Any], /) -> bool:
        self._check(table, write=True)
        validate_id(doc_id)
        new_id, changes = split_document(table, fields)
        if new_id is not None and new_id != doc_id:
            raise ValueError(f"update of {table}/{doc_id}: a document's id cannot change (got {new_id!r})")
        old = self._lookup(table, doc_id)
        if old is None:
            return False
        self._put(table, doc_id, _encode(table, {**decode_body(old), **changes}), replaces=True)
        return True

    def remove(self, table: str, /, **equals: Any) -> int:
        self._check(table, write=True)
        if not equals:
            raise ValueError(f"remove from {table} needs at least one field to match (refusing to empty it)")
        doomed = [doc_id for doc_id, _ in self._matching(table, equals)]
        for doc_id in doomed:
            self._put(table, doc_id, None, replaces=True)
        return len(doomed)

    # -- internals ----------------------------------------------------------------------------------------
    def _check(self, table: str, *, write: bool = False) -> None:
        if not self._open:
            raise StorageError("this transaction is over: use the tx only inside the function given to it")
        if write and not self._writable:
            raise StorageError("view() is read-only: write inside transact()")
        validate_table(table)

    def _lookup(self, table: str, doc_id: str) -> bytes | None:
        changes = self._over.get(table)
        if changes is not None and doc_id in changes:
            return changes[doc_id]
        base = self._base.table(table)
        return None if base is None else base.get(doc_id)

    def _in_base(self, table: str, doc_id: str) -> bool:
        base = self._base.table(table)
        return base is not None and base.get(doc_id) is not None

    def _items(self, table: str, needles: list[bytes]) -> Iterator[tuple[str, bytes]]:
        """(id, body) of every document the transaction sees whose encoding contains every needle (all
        when none), in insertion order; updated documents keep their place."""
        base = self._base.table(table)
        changes = self._over.get(table)
        if not changes:
            if base is not None:
                yield from base.matching(needles)
            return
        if table in self._rewrites and base is not None:
            # A changed document may match now where its old version did not: walk the whole table.
            base_docs = base.docs()
            for doc_id, body in base_docs.items():
                if doc_id in changes:
                    changed = changes[doc_id]
                    if changed is None:
                        continue
                    body = changed
                if all(n in body for n in needles):
                    yield doc_id, body
            new = ((i, b) for i, b in changes.items() if b is not None and i not in base_docs)
        else:  # only new documents in the overlay (an insert of a taken id is refused)
            if base is not None:
                yield from base.matching(needles)
            new = ((i, b) for i, b in changes.items() if b is not None)
        for doc_id, changed in new:
            if all(n in changed for n in needles):
                yield doc_id, changed

    def _matching(self, table: str, equals: dict[str, Any]) -> Iterator[tuple[str, Document]]:
        """(id, exported document) of the documents matching ``equals``."""
        self._check(table)
        wanted = {name: to_json_value(value, f"{table} filter {name}") for name, value in equals.items()}
        wanted_id = wanted.pop("id", _MISSING)
        if wanted_id is not _MISSING:  # by id: one lookup, not a scan
            if not isinstance(wanted_id, str):
                return
            body = self._lookup(table, wanted_id)
            if body is not None:
                doc = _export(wanted_id, body)
                if _matches(doc, wanted):
                    yield wanted_id, doc
            return
        # A document whose field equals a string holds its canonical encoding: search for it first.
        needles = [encode_value(n) + b":" + encode_value(v) for n, v in wanted.items() if type(v) is str]
        for doc_id, body in self._items(table, needles):
            doc = _export(doc_id, body)
            if _matches(doc, wanted):
                yield doc_id, doc

    def _insert(self, table: str, doc_id: str | None, body: bytes) -> str:
        if doc_id is None:
            doc_id = new_doc_id()  # 128 random bits: no need to look for it
        elif self._lookup(table, doc_id) is not None:
            raise ConflictError(f"{table} already has a document with id {doc_id!r}")
        elif table in self._over and doc_id in self._over[table] and self._in_base(table, doc_id):
            self._rewrites.add(table)  # removed in this transaction, now back: the snapshot's is replaced
        self._put(table, doc_id, body, replaces=False)
        return doc_id

    def _put(self, table: str, doc_id: str, body: bytes | None, *, replaces: bool) -> None:
        """Set (or with ``None`` remove) a document in the overlay and keep the indexes in step."""
        indexes = self._indexes.get(table)
        if indexes:
            old = self._lookup(table, doc_id)
            old_doc = decode_body(old) if old is not None else None
            new_doc = decode_body(body) if body is not None else None
            for key, index in indexes.items():
                if old_doc is not None and (old_key := _index_key(doc_id, old_doc, key)) is not None:
                    index.get(old_key, set()).discard(doc_id)
                if new_doc is not None and (new_key := _index_key(doc_id, new_doc, key)) is not None:
                    index.setdefault(new_key, set()).add(doc_id)
        if replaces and self._in_base(table, doc_id):
            self._rewrites.add(table)
        over = self._over.setdefault(table, {})
        if body is None and not self._in_base(table, doc_id):
            over.pop(doc_id, None)  # added and removed in this transaction: nothing to write
        else:
            over[doc_id] = body

    def _key_matches(
        self, table: str, key: tuple[str, ...], doc_id: str | None, body: dict[str, Any], wanted: Any
    ) -> set[str]:
        if key == ("id",):
            assert doc_id is not None
            return {doc_id} if self._lookup(table, doc_id) is not None else set()
        count = self._upserts.get((table, key), 0) + 1
        self._upserts[(table, key)] = count
        if count <= _UPSERTS_BEFORE_INDEX and key not in self._indexes.get(table, {}):
            equals = {name: (doc_id if name == "id" else body[name]) for name in key}
            return {found for found, _ in self._matching(table, equals)}
        return self._index(table, key).get(wanted, set())

    def _index(self, table: str, key: tuple[str, ...]) -> dict[Any, set[str]]:
        indexes = self._indexes.setdefault(table, {})
        index = indexes.get(key)
        if index is None:
            index = {}
            for doc_id, body in self._items(table, []):
                entry = _index_key(doc_id, decode_body(body), key)
                if entry is not None:
                    index.setdefault(entry, set()).add(doc_id)
            indexes[key] = index
        return index


def _encode(table: str, body: dict[str, Any]) -> bytes:
    try:
        return encode_body(body)
    except ValueError as exc:
        raise ValueError(f"{table}: {exc}") from exc


def _matches(doc: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for name, value in wanted.items():
        have = doc.get(name, _MISSING)
        if have is _MISSING or not json_equal(have, value):
            return False
    return True


def _index_key(doc_id: str | None, body: dict[str, Any], key: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The hashable key of a document, or None when it lacks a key field (then it matches nothing)."""
    parts = []
    for name in key:
        value = doc_id if name == "id" else body.get(name, _MISSING)
        if value is _MISSING or (value is None and name == "id"):
            return None
        parts.append(json_key(value))
    return tuple(parts)


def _export(doc_id: str, body: bytes) -> Document:
    """A caller's copy, parsed from the stored bytes with ``id`` first: fresh, so the stored data stays
    private without a deep copy."""
    if body == b"{}":
        return {"id": doc_id}
    return decode_body(b'{"id":' + encode_value(doc_id) + b"," + body[1:])


# -- the file format ------------------------------------------------------------------------------------


def _write_json(fd: int, data: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    """Write ``data`` as JSON in chunks, never holding the whole text in memory (the file can be tens of
    MB; one big string, its join and its encoding would each cost that much again)."""
    batch: list[str] = []
    size = 0
    for piece in _json_pieces(data):
        batch.append(piece)
        size += len(piece)
        if size >= _WRITE_CHUNK_CHARS:
            _write_all(fd, _utf8("".join(batch)))
            batch.clear()
            size = 0
    _write_all(fd, _utf8("".join(batch)))


def _utf8(text: str) -> bytes:
    # A lone surrogate (from a "\ud800" escape in scraped text) cannot be UTF-8; outside JSON's ASCII
    # structure it can only sit inside a string, where "backslashreplace" writes it as the JSON escape
    # \udXXX again. So the file stays valid UTF-8 and the value round-trips, instead of a failed write.
    return text.encode("utf-8", "backslashreplace")


def _json_pieces(data: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Iterator[str]:
    """Valid JSON with one document per line, so the file is readable, greppable and diffable."""
    encode = _ENCODER.encode
    yield "{"
    for t, (table, docs) in enumerate(data.items()):
        yield ("\n" if t == 0 else ",\n") + encode(table) + ":{"
        separator = "\n"
        for doc_id, body in docs.items():
            yield separator + encode(str(doc_id)) + ":" + encode(body)
            separator = ",\n"
        yield "}" if separator == "\n" else "\n}"
    yield "\n}\n"


def _current_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
