"""The embedded store's files: a small catalogue at ``LINKPACT_DB`` and one JSON file per table beside it.

Layout (``docs/storage.md``, "Layout"): ``linkpact.json`` is the catalogue, ``{"linkpact_store": 2,
"tables": {"<table>": {"file": "linkpact.<table>.json", "bytes": N, "crc32": C, "docs": n}}}``; each
table file is a JSON object of documents keyed by id, one document a line::

    {
    "<id>":{<fields but id>},
    "<id>":{<fields but id>}
    }

The catalogue is the commit point. A table file holds exactly the committed table in its first
``bytes`` bytes; anything after them is an append that was never committed (a writer died) and is cut
off by the next writer. A commit:

1. appends to each table that only gained documents, in place: the new lines overwrite the closing
   ``\\n}\\n`` and end with it again, then ``fsync``; the committed bytes before the closing brace never
   change, so a reader of the old version is not disturbed; other changed tables are written whole to a
   temp file, ``fsync``;
2. writes the new catalogue to a temp file, ``fsync``, ``os.replace`` over ``LINKPACT_DB``, fsyncs the
   directory: **the commit point**; a table written whole is listed with ``"pending": "<temp name>"``;
3. renames each pending temp file over its table file and fsyncs the directory. A writer killed before
   that is finished by the next one that opens the database (it renames what is still pending).

So a transaction over several tables is all-or-nothing: killed before step 2, every table reads as
before (appends are cut back, temp files deleted); after it, every table reads as after.

Reading a version: read the catalogue, open each table (its pending temp file if that still exists,
else its file), check that the catalogue did not change meanwhile (else start again), read the first
``bytes - 3`` bytes and check their CRC-32. The CRC also proves the lines are in this module's canonical
encoding (orjson, compact), which lets :meth:`Table.matching` search the bytes for ``"field":"value"``
without parsing the table. A table whose bytes do not match (edited by hand while Linkpact was stopped,
restored from a copy of another version) is parsed and checked in full instead, and rewritten in the
canonical form by the next write to it.

Bodies are kept encoded (``bytes``, one per document) and parsed on each read: a 100,000-document table
costs its file size in memory rather than five times that as Python objects, and every read returns a
fresh copy without a deep copy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bot.store.base import StorageError

__all__ = [
    "FORMAT",
    "Catalogue",
    "Snapshot",
    "Table",
    "TableChange",
    "TableFiles",
    "decode_body",
    "encode_body",
    "encode_value",
]

logger = logging.getLogger(__name__)

#: The catalogue's ``linkpact_store`` value. Version 1 was the single-file TinyDB layout.
FORMAT = 2
CATALOGUE_KEY = "linkpact_store"
# Every committed table file ends with this; an append overwrites it and writes it again after.
_TAIL = b"\n}\n"
_HEAD = b"{"
_EMPTY = _HEAD + _TAIL
_LINE_SEP = b",\n"
_NEW_FILE_MODE = 0o666
_TEMP_SUFFIX = ".tmp"
# Bytes handed to the OS per write call: few syscalls, and never the whole file as one more copy.
_WRITE_CHUNK_BYTES = 1 << 20
_REFUSE = "refusing to start with an empty database; restore it from a backup or move it away"
# A reader retries when a writer commits between its reading the catalogue and opening the tables.
_MAX_LOAD_ATTEMPTS = 50
_HOLD_FILE = os.name == "posix"
#: Searches of a table's bytes (a lookup by id, a filter on a string field) before it is split into
#: documents. A /linkcheck searches backlinks by target once or twice; a recheck reads every document.
RAW_SEARCHES = 4
# What the json module is told when orjson cannot encode a value (a lone surrogate from scraped text):
# the same compact form, with UTF-8 as is.
_FALLBACK = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _temp_pattern(name: str) -> re.Pattern[str]:
    """Our temp files are ``.<name>.<32 hex>.tmp``: exact, so cleanup never touches anything else."""
    return re.compile(re.escape(f".{name}.") + r"[0-9a-f]{32}" + re.escape(_TEMP_SUFFIX))


# -- encoding -------------------------------------------------------------------------------------------


def encode_value(value: Any) -> bytes:
    """The canonical encoding of a JSON value: orjson's compact form, UTF-8 as is.

    A string with a lone surrogate (from a ``"\\ud800"`` escape in scraped text) cannot be UTF-8:
    it is written as the JSON escape again, so the value round-trips. Raises :class:`ValueError` for an
    integer outside 64 bits (orjson reads such numbers back as floats, so it would not round-trip).
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "64-bit" in str(exc):
            raise ValueError(f"an integer outside 64 bits cannot be stored exactly ({exc})") from exc
        return _FALLBACK.encode(value).encode("utf-8", "backslashreplace")


def encode_body(body: Mapping[str, Any]) -> bytes:
    """A document body (fields but ``id``) as stored: :func:`encode_value` of the object.

    Copied to a ``bytes`` of its own size: orjson's result keeps the 4 KB buffer it was written into,
    which for 100,000 kept documents is 400 MB instead of 60 MB."""
    return bytes(memoryview(encode_value(body)))


def decode_body(body: bytes) -> dict[str, Any]:
    """A fresh ``dict`` from stored bytes. Raises :class:`ValueError` when they are not a JSON object."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = json.loads(body.decode("utf-8"))  # lone-surrogate escapes: json accepts them
    if type(value) is not dict:
        raise ValueError("a stored document is not a JSON object")
    return value


def _line(doc_id: str, body: bytes) -> bytes:
    return encode_value(doc_id) + b":" + body


# -- the catalogue --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One table in the catalogue: its file, committed size, CRC-32 of ``bytes - 3`` first bytes, count,
    and the temp file that replaces the file when the commit that wrote it has not renamed it yet."""

    file: str
    size: int
    crc: int
    docs: int
    pending: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "bytes": self.size, "crc32": self.crc, "docs": self.docs}
        if self.pending:
            out["pending"] = self.pending
        return out


Catalogue = dict[str, TableEntry]


class _FileRef:
    """An open, read-only descriptor of one table file version, closed when the last user drops it.

    Holding it pins the version: a later rewrite renames a new file over the name, and this still reads
    the old one."""

    __slots__ = ("__weakref__", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Table:
    """One committed version of one table. Immutable as far as callers can tell: the file is read the
    first time it is needed (under a small lock, as several reader threads may touch it at once)."""

    __slots__ = ("_docs", "_lock", "_raw", "_searches", "dirty", "entry", "name", "path", "ref")

    def __init__(
        self,
        name: str,
        entry: TableEntry | None,
        ref: _FileRef | None,
        path: Path,
        *,
        docs: dict[str, bytes] | None = None,
        dirty: bool = False,
    ) -> None:
        self.name = name
        self.entry = entry
        self.ref = ref
        self.path = path
        self.dirty = dirty  # not in canonical form on disk: the next write rewrites it whole
        self._docs = docs if docs is not None or entry is not None else {}
        self._raw: bytes | None = None
        self._searches = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        if self._docs is not None:
            return len(self._docs)
        assert self.entry is not None
        return self.entry.docs

    @property
    def loaded(self) -> bool:
        return self._docs is not None

    def docs(self) -> dict[str, bytes]:
        """Every document: id -> encoded body, in insertion order (parses the file the first time)."""
        docs = self._docs
        if docs is None:
            with self._lock:
                if self._docs is None:
                    self._docs = self._split(self._read_raw())
                    self._raw = None  # the bodies now hold the bytes
                docs = self._docs
        return docs

    def get(self, doc_id: str) -> bytes | None:
        if self._docs is not None:
            return self._docs.get(doc_id)
        raw = self._raw_or_none()
        if raw is None:
            return self.docs().get(doc_id)
        start = raw.find(b"\n" + encode_value(doc_id) + b":{")
        if start < 0:
            return None
        start += 1
        end = raw.find(_LINE_SEP, start)
        return self._split_line(raw[start : end if end >= 0 else len(raw)])[1]

    def matching(self, needles: list[bytes]) -> Iterator[tuple[str, bytes]]:
        """(id, body) of the documents whose line contains every needle, in order (a superset of the
        matches: callers check each). Without needles, every document."""
        if not needles:
            yield from self.docs().items()
            return
        first, rest = needles[0], needles[1:]
        if self._docs is not None:
            for doc_id, body in self._docs.items():
                if first in body and all(n in body for n in rest):
                    yield doc_id, body
            return
        raw = self._raw_or_none()
        if raw is None:
            yield from ((i, b) for i, b in self.docs().items() if all(n in b for n in needles))
            return
        pos = raw.find(first)
        while pos >= 0:
            start = raw.rfind(b"\n", 0, pos) + 1
            end = raw.find(_LINE_SEP, pos)
            end = len(raw) if end < 0 else end
            line = raw[start:end]
            if all(n in line for n in rest):
                yield self._split_line(line)
            pos = raw.find(first, end)

    # -- internals -------------------------------------------------------------------------------------
    def _raw_or_none(self) -> bytes | None:
        """The table's lines as one bytes object (cheap to search), or None once parsed into docs.

        A few searches of the bytes cost less than splitting them into documents; after
        ``RAW_SEARCHES`` the table is split, so a transaction that reads many documents by id does not
        search the whole table for each."""
        self._searches += 1
        if self._searches > RAW_SEARCHES and self._docs is None:
            self.docs()
        if self._raw is None and self._docs is None:
            with self._lock:
                if self._raw is None and self._docs is None:
                    raw = self._read_raw()
                    if self.dirty:  # not canonical: only the parsed form may be searched
                        self._docs = self._split(raw)
                    else:
                        self._raw = raw
        return self._raw

    def _read_raw(self) -> bytes:
        """The committed lines: ``{`` and the documents, without the closing ``\\n}\\n``."""
        if self.entry is None or self.ref is None:
            return _HEAD
        want = self.entry.size - len(_TAIL)
        raw = _pread_all(self.ref.fd, want)
        if len(raw) == want and zlib.crc32(raw) == self.entry.crc and raw.startswith(_HEAD):
            return raw
        # Changed behind our back (a hand edit or a restored copy): read and check all of it.
        whole = _pread_all(self.ref.fd, None)
        docs = parse_table(whole, self.path, self.name)
        logger.warning(
            "%s does not match its catalogue entry (changed outside Linkpact?); read it in full", self.path
        )
        self.dirty = True
        self._docs = docs
        return _HEAD  # unused: _docs is set

    def _split(self, raw: bytes) -> dict[str, bytes]:
        if self._docs is not None:
            return self._docs
        if raw == _HEAD:
            return {}
        if not raw.startswith(b"{\n"):
            raise StorageError(f"{self.path} is not a Linkpact table file: {_REFUSE}")
        docs: dict[str, bytes] = {}
        for line in raw[2:].split(_LINE_SEP):
            q = line.find(b'":', 1)
            if q > 0 and line[:1] == b'"' and b"\\" not in line[1:q]:
                docs[line[1:q].decode("utf-8")] = line[q + 2 :]
            else:
                doc_id, body = self._split_line(line)
                docs[doc_id] = body
        return docs

    def _split_line(self, line: bytes) -> tuple[str, bytes]:
        """(id, body) of one line ``"<id>":{...}``."""
        q = line.find(b'":', 1)
        if q > 0 and line[:1] == b'"' and b"\\" not in line[1:q]:
            return line[1:q].decode("utf-8"), line[q + 2 :]
        # An id with escapes in it: parse the line as JSON to find where the id ends.
        try:
            parsed = decode_body(b"{" + line + b"}")
            (doc_id,) = parsed
        except (ValueError, TypeError) as exc:
            raise StorageError(f"{self.path}: a line is not a document ({exc}): {_REFUSE}") from exc
        return doc_id, line[len(encode_value(doc_id)) + 1 :]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One committed version of the whole database. Never changed: a commit makes a new one."""

    tables: dict[str, Table]

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)


EMPTY = Snapshot({})


@dataclass(slots=True)
class TableChange:
    """What a transaction did to one table: ``appended`` when it only added new documents (written in
    place at the end), else ``docs``, the whole new table."""

    appended: list[tuple[str, bytes]] | None = None
    docs: dict[str, bytes] | None = None


# -- the files ------------------------------------------------------------------------------------------


class TableFiles:
    """Reads and commits versions of the database at ``path`` (see the module docstring).

    :meth:`load` needs no lock. :meth:`recover` and :meth:`commit` must be called holding the
    inter-process write lock (only one writer at a time), from one thread.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.realpath(path))
        self.directory = self.path.parent
        self._held_fd: int | None = None
        self._held_sig: tuple[int, int, int, int] | None = None
        self._stale = False
        self._seen_file = False  # a catalogue existed once: its disappearing is an error

    def table_path(self, table: str) -> Path:
        """``linkpact.json`` -> ``linkpact.<table>.json`` beside it."""
        stem, dot, ext = self.path.name.rpartition(".")
        name = f"{stem}.{table}.{ext}" if dot and stem else f"{self.path.name}.{table}.json"
        return self.directory / name

    # -- reading -----------------------------------------------------------------------------------------
    def changed_since_read(self) -> bool:
        """True unless the catalogue at :attr:`path` is provably the version last read or written."""
        if self._stale or not _HOLD_FILE:
            return True
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return self._held_fd is not None
        except OSError:
            return True
        if self._held_sig is None:
            return True
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != self._held_sig

    def load(self) -> Snapshot:
        """The committed version on disk now. Raises :class:`StorageError` when it is not a database.
        Tables are opened (which pins their version) but not read."""
        for _ in range(_MAX_LOAD_ATTEMPTS):
            fd, info, catalogue = self._read_catalogue()
            if catalogue is None:
                self._hold(None, None)
                return EMPTY
            tables = {}
            try:
                for name, entry in catalogue.items():
                    tables[name] = Table(name, entry, self._open_table(name, entry), self.table_path(name))
            except _Raced as missing:
                os.close(fd)
                if self._same(info):  # not a writer renaming it: the file is gone
                    raise StorageError(str(missing)) from None
                continue
            if self._same(info):
                self._hold(fd, info)
                return Snapshot(tables)
            os.close(fd)  # a writer committed meanwhile: the tables may be from the newer version
        raise StorageError(f"cannot read {self.path}: it keeps changing while being read")

    def _read_catalogue(self) -> tuple[int, os.stat_result, Catalogue | None]:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            if self._seen_file:
                raise StorageError(
                    f"{self.path} disappeared while Linkpact was running; refusing to carry on with an "
                    "empty database: restore it from a backup, or restart Linkpact to start a new one"
                ) from None
            return -1, os.stat_result((0,) * 10), None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StorageError(f"{self.path} is not a regular file")
            data = parse_database(_pread_all(fd, None), self.path)
            catalogue = catalogue_of(data, self.path)
            if catalogue is None:
                raise StorageError(
                    f"{self.path} is a single-file database (Linkpact before the one-file-per-table "
                    "layout); open it with open_store() to migrate it"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd, info, catalogue

    def _open_table(self, name: str, entry: TableEntry) -> _FileRef:
        candidates = [self.directory / entry.pending] if entry.pending else []
        candidates.append(self.directory / entry.file)
        for path in candidates:
            try:
                return _FileRef(os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0)))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        message = (
            f"{self.directory / entry.file} (table {name!r} of {self.path.name}) is missing: restore the "
            f"database's files from a backup ({_REFUSE})"
        )
        raise _Raced(message) if entry.pending else StorageError(message)

    def _same(self, info: os.stat_result) -> bool:
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        return (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) == (
            info.st_dev,
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
        )

    def _hold(self, fd: int | None, info: os.stat_result | None) -> None:
        self.close()
        self._stale = False
        if fd is None or info is None:
            return
        self._seen_file = True
        if _HOLD_FILE:
            self._held_fd = fd
            self._held_sig = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        else:  # pragma: no cover - Windows
            os.close(fd)

    def close(self) -> None:
        if self._held_fd is not None:
            os.close(self._held_fd)
            self._held_fd = None
            self._held_sig = None

    # -- writing (hold the inter-process lock) -------------------------------------------------------------
    def recover(self) -> list[str]:
        """Bring the files to a clean committed state; returns what was done, for the log.

        Migrates a single-file database (format 1), finishes the renames of a commit whose writer died,
        cuts off appends that were never committed (restoring the closing brace, so ``jq`` reads the file
        again), and deletes temp files no commit refers to.
        """
        done: list[str] = []
        data = self._read_for_recovery()
        if data is not None and catalogue_of(data, self.path) is None:
            done.append(self._migrate(data))
            data = self._read_for_recovery()
        catalogue = catalogue_of(data, self.path) if data is not None else {}
        keep: set[str] = set()
        for entry in (catalogue or {}).values():
            if entry.pending:
                keep.add(entry.pending)
        done += self._finish_renames(catalogue or {})
        done += self._cut_uncommitted_appends(catalogue or {})
        done += self._remove_stale_temps(keep)
        self._stale = True  # re-read before use
        return done

    def commit(self, base: Snapshot, changes: Mapping[str, TableChange]) -> Snapshot:
        """Write ``changes`` over ``base`` (the version on disk now) atomically; returns the new version.

        Raises :class:`StorageError` when a file cannot be written; then nothing is committed."""
        self._finish_renames({n: t.entry for n, t in base.tables.items() if t.entry is not None})
        tables = dict(base.tables)
        entries = {name: t.entry for name, t in base.tables.items() if t.entry is not None}
        entries = {name: replace(e, pending=None) for name, e in entries.items()}
        temps: list[Path] = []
        appended: list[tuple[Path, TableEntry]] = []  # to cut back if the commit fails
        renames: list[tuple[Path, Path]] = []
        try:
            for name, change in changes.items():
                old = base.tables.get(name)
                target = self.table_path(name)
                if change.appended is not None and old is not None and old.entry and not old.dirty:
                    entry = self._append(target, old.entry, change.appended)
                    appended.append((target, old.entry))
                    docs = None
                    if old.loaded:
                        docs = dict(old.docs())
                        docs.update(change.appended)
                    tables[name] = Table(name, entry, old.ref, target, docs=docs)
                else:
                    docs = change.docs if change.docs is not None else {}
                    if change.appended is not None:  # a new table: only inserts
                        docs = {**(old.docs() if old else {}), **dict(change.appended)}
                    temp, ref, entry = self._write_whole(target, docs)
                    temps.append(temp)
                    renames.append((temp, target))
                    tables[name] = Table(name, entry, ref, target, docs=docs)
                entries[name] = entry
            _crash_point("tables-written")
            self._write_catalogue(entries)  # the commit point
        except BaseException as exc:
            for temp in temps:
                unlink_quietly(temp)
            for target, entry in appended:
                try:
                    _cut_back(target, entry.size)
                except OSError:
                    logger.exception("could not cut back %s after a failed commit", target)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            raise
        _crash_point("committed")
        try:
            for temp, target in renames:
                os.replace(temp, target)
            if renames:
                fsync_directory(self.directory)
        except OSError as exc:
            self._stale = True
            raise StorageError(
                f"{self.path} was committed but a table file could not be renamed ({exc.strerror}); "
                "the next start finishes it"
            ) from exc
        return Snapshot(tables)

    def _append(self, target: Path, entry: TableEntry, lines: list[tuple[str, bytes]]) -> TableEntry:
        payload = (b"\n" if entry.docs == 0 else _LINE_SEP) + _LINE_SEP.join(_line(i, b) for i, b in lines)
        fd = os.open(target, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            offset = entry.size - len(_TAIL)
            _pwrite_all(fd, payload + _TAIL, offset)
            size = offset + len(payload) + len(_TAIL)
            os.ftruncate(fd, size)  # anything a dead writer appended after us is not ours
            os.fsync(fd)
        finally:
            os.close(fd)
        return TableEntry(entry.file, size, zlib.crc32(payload, entry.crc), entry.docs + len(lines))

    def _write_whole(self, target: Path, docs: Mapping[str, bytes]) -> tuple[Path, _FileRef, TableEntry]:
        temp = self._temp_for(target)
        fd = self._create(temp, target)
        try:
            crc = 0
            size = 0
            batch: list[bytes] = [b"{\n" if docs else _HEAD]
            batch_size = 0
            first = True
            for doc_id, body in docs.items():
                piece = (b"" if first else _LINE_SEP) + _line(doc_id, body)
                first = False
                batch.append(piece)
                batch_size += len(piece)
                if batch_size >= _WRITE_CHUNK_BYTES:
                    chunk = b"".join(batch)
                    crc = zlib.crc32(chunk, crc)
                    size += _write_all(fd, chunk)
                    batch.clear()
                    batch_size = 0
            chunk = b"".join(batch)
            crc = zlib.crc32(chunk, crc)
            size += _write_all(fd, chunk + _TAIL) if chunk else _write_all(fd, _TAIL)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(temp)
            raise
        entry = TableEntry(target.name, size, crc, len(docs), pending=temp.name)
        read_fd = os.open(temp, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        os.close(fd)
        return temp, _FileRef(read_fd), entry

    def _write_catalogue(self, entries: Mapping[str, TableEntry]) -> None:
        lines = [_line(name, encode_value(entry.to_json())) for name, entry in sorted(entries.items())]
        body = b",\n".join(lines)
        head = b'{"' + CATALOGUE_KEY.encode() + b'":' + str(FORMAT).encode() + b',"tables":{\n'
        text = head + body + b"\n}}\n"
        temp = self._temp_for(self.path)
        fd = self._create(temp, self.path)
        fd_open = True
        try:
            _write_all(fd, text)
            os.fsync(fd)
            if not _HOLD_FILE:  # pragma: no cover - Windows cannot rename an open file
                os.close(fd)
                fd_open = False
            os.replace(temp, self.path)
        except BaseException:
            if fd_open:
                os.close(fd)
            unlink_quietly(temp)
            raise
        self._seen_file = True
        if _HOLD_FILE:
            self._hold(fd, os.fstat(fd))
        else:  # pragma: no cover - Windows
            self._stale = True
        try:
            fsync_directory(self.directory)
        except OSError as exc:
            self._stale = True
            raise StorageError(
                f"{self.path} was written but its directory could not be synced ({exc.strerror}); "
                "the write may not survive a power cut"
            ) from exc

    def _temp_for(self, target: Path) -> Path:
        return target.parent / f".{target.name}.{os.urandom(16).hex()}{_TEMP_SUFFIX}"

    def _create(self, temp: Path, like: Path) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(temp, flags, _NEW_FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: cannot create {temp}: {exc.strerror}") from exc
        mode = _current_mode(like) or _current_mode(self.path)
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # keep the permissions an operator gave the files
        return fd

    # -- recovery ------------------------------------------------------------------------------------------
    def _read_for_recovery(self) -> Any:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if self.path.is_dir():  # pragma: no cover - refused before
            raise StorageError(f"{self.path} is a directory")
        return parse_database(raw, self.path)

    def _migrate(self, data: dict[str, Any]) -> str:
        """Single file (format 1) -> catalogue and table files, in one commit; the old file is kept as
        ``<name>.v1`` (a hard link, so no copy)."""
        changes = {
            table: TableChange(docs={str(i): encode_body(body) for i, body in docs.items()})
            for table, docs in data.items()
            if docs
        }
        backup = self.path.with_name(self.path.name + ".v1")
        if not backup.exists():
            try:
                os.link(self.path, backup)
            except OSError:
                logger.exception("could not keep a copy of %s before migrating it", self.path)
        self.commit(EMPTY, changes)
        count = sum(len(d) for d in data.values())
        return (
            f"migrated {self.path.name} ({count} documents) to one file per table; the old file is "
            f"{backup.name}"
        )

    def _finish_renames(self, catalogue: Catalogue) -> list[str]:
        done = []
        for entry in catalogue.values():
            if not entry.pending:
                continue
            temp = self.directory / entry.pending
            if temp.exists():
                os.replace(temp, self.directory / entry.file)
                done.append(f"finished an interrupted commit: {entry.pending} -> {entry.file}")
        if done:
            fsync_directory(self.directory)
        return done

    def _cut_uncommitted_appends(self, catalogue: Catalogue) -> list[str]:
        done = []
        for entry in catalogue.values():
            path = self.directory / entry.file
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue  # load() reports it
            if size > entry.size and _committed_part_intact(path, entry):
                _cut_back(path, entry.size)
                done.append(f"cut {size - entry.size} uncommitted bytes off {entry.file}")
        return done

    def _remove_stale_temps(self, keep: set[str]) -> list[str]:
        names = {self.path.name}
        try:
            entries = list(os.scandir(self.directory))
        except OSError as exc:
            raise StorageError(f"cannot list {self.directory}: {exc.strerror}") from exc
        stem, dot, ext = self.path.name.rpartition(".")
        table_file = re.compile(
            re.escape(f"{stem}.") + r"[a-z][a-z0-9_]{0,62}" + re.escape(f".{ext}")
            if dot and stem
            else re.escape(f"{self.path.name}.") + r"[a-z][a-z0-9_]{0,62}\.json"
        )
        names |= {e.name for e in entries if table_file.fullmatch(e.name)}
        patterns = [_temp_pattern(name) for name in names]
        removed = []
        for entry in entries:
            if entry.name not in keep and any(p.fullmatch(entry.name) for p in patterns):
                unlink_quietly(Path(entry.path))
                removed.append(entry.name)
        if not removed:
            return []
        return [f"removed temp file(s) left by an interrupted write: {', '.join(sorted(removed))}"]


#: A fault-injection point for the crash tests (``tests/test_storage.py``): when set, called with
#: ``"tables-written"`` (table files written, catalogue not yet) and ``"committed"`` (catalogue written,
#: renames not yet) during each commit. None in normal use.
CRASH_POINT: Callable[[str], None] | None = None


def _crash_point(where: str) -> None:
    if CRASH_POINT is not None:
        CRASH_POINT(where)


class _Raced(Exception):
    """Internal: a pending table file was renamed while we opened it; read the catalogue again."""


# -- parsing and checking -------------------------------------------------------------------------------


def parse_database(raw: bytes, path: Path) -> Any:
    """Parse a whole database file (a catalogue, or a single-file database of format 1) and check its
    shape. Raises :class:`StorageError` saying what is wrong and where; never returns an empty database
    in place of a broken one."""
    name = path.name
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StorageError(f"{path} is not UTF-8 text (byte {exc.start}): {_REFUSE}") from exc
    if not text.strip():
        raise StorageError(f"{path} is empty (no data at all): {_REFUSE}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}; the file may "
            f"have been truncated or edited by hand): {_REFUSE}"
        ) from exc
    except RecursionError as exc:
        raise StorageError(
            f"{path} is JSON but not a Linkpact database (values nested too deeply to read): {_REFUSE}"
        ) from exc
    except ValueError as exc:
        # Valid JSON that Python will not turn into values: an integer of more digits than
        # sys.get_int_max_str_digits() allows (4,300 by default; a guard against quadratic conversion).
        raise StorageError(f"{path} is JSON but not a Linkpact database ({exc}): {_REFUSE}") from exc
    if not isinstance(data, dict):
        raise StorageError(
            f"{path} does not hold a Linkpact database (a JSON object of tables), but a JSON "
            f"{_json_type(data)}: {_REFUSE}"
        )
    if isinstance(data.get(CATALOGUE_KEY), int) and not isinstance(data.get(CATALOGUE_KEY), bool):
        return data
    for table, docs in data.items():
        if not isinstance(docs, dict):
            raise StorageError(
                f"{name}: table {table!r} is a JSON {_json_type(docs)}, not an object of documents: {_REFUSE}"
            )
        for doc_id, body in docs.items():
            if not isinstance(body, dict):
                raise StorageError(
                    f"{name}: document {doc_id!r} in table {table!r} is a JSON {_json_type(body)}, not an "
                    f"object: {_REFUSE}"
                )
    return data


def catalogue_of(data: dict[str, Any], path: Path) -> Catalogue | None:
    """The tables of a catalogue, or None when ``data`` is a single-file database (format 1)."""
    version = data.get(CATALOGUE_KEY)
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    if version != FORMAT:
        raise StorageError(
            f"{path} is a Linkpact database of format {version}, which this version does not read "
            f"(it reads format {FORMAT}): upgrade Linkpact"
        )
    tables = data.get("tables")
    if not isinstance(tables, dict):
        raise StorageError(f"{path}: the catalogue has no object of tables: {_REFUSE}")
    out: Catalogue = {}
    for name, raw in tables.items():
        try:
            entry = TableEntry(
                file=_plain_name(raw["file"]),
                size=int(raw["bytes"]),
                crc=int(raw["crc32"]),
                docs=int(raw["docs"]),
                pending=_plain_name(raw["pending"]) if raw.get("pending") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{path}: table {name!r} has a damaged catalogue entry: {_REFUSE}") from exc
        if entry.size < len(_EMPTY):
            raise StorageError(f"{path}: the catalogue entry of table {name!r} is damaged: {_REFUSE}")
        out[name] = entry
    return out


def parse_table(raw: bytes, path: Path, table: str) -> dict[str, bytes]:
    """Parse and check a whole table file (an object of documents); bodies come back re-encoded in the
    canonical form. Raises :class:`StorageError`."""
    data = parse_database(b'{"t":' + raw + b"}", path) if raw.strip() else None
    if data is None:
        raise StorageError(f"{path} is empty (no data at all): {_REFUSE}")
    return {str(doc_id): encode_body(body) for doc_id, body in data["t"].items()}


def _plain_name(value: Any) -> str:
    if not isinstance(value, str) or not value or "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError(f"not a file name: {value!r}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "object"


# -- small file helpers ---------------------------------------------------------------------------------


def _pread_all(fd: int, size: int | None) -> bytes:
    if size is None:
        size = os.fstat(fd).st_size
    parts = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def _pwrite_all(fd: int, payload: bytes, offset: int) -> None:
    view = memoryview(payload)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _write_all(fd: int, payload: bytes) -> int:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    return len(payload)


def _committed_part_intact(path: Path, entry: TableEntry) -> bool:
    """Whether the file still starts with the committed table (else it was changed by other means, and
    is left for :meth:`Table.docs` to read in full)."""
    with path.open("rb") as handle:
        head = handle.read(entry.size - len(_TAIL))
    return len(head) == entry.size - len(_TAIL) and zlib.crc32(head) == entry.crc


def _cut_back(path: Path, size: int) -> None:
    """Restore a table file to its committed ``size``: drop what follows and rewrite the closing brace."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        _pwrite_all(fd, _TAIL, size - len(_TAIL))
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _current_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` survive a power cut (POSIX; a no-op elsewhere)."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open a directory to sync it
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    """Remove a temp file; a missing one is fine, another failure is logged, never raised."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        logger.exception("could not remove the temp file %s", path)
