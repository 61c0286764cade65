"""Storage: the Store interface over real files in tmp dirs and a real PostgreSQL, crash safety with real
SIGKILLed writers, and concurrency with real tasks, threads and processes. Nothing is mocked.

The contract tests (those taking ``store`` or ``backend``) run once per backend; those that also take
``db_path`` are about the embedded backend's file and run on it alone."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from bot.store import ConflictError, StorageError, Store, Tx, open_store
from bot.store.tinydb import AtomicJSONStorage, TinyStore
from tests.support.postgres import dump

ROOT = Path(__file__).resolve().parents[1]
# A subprocess that hangs (it never should) is killed after this, so the suite cannot hang with it.
SUBPROCESS_WATCHDOG_S = 60.0
KILL_ROUNDS = 20
MAX_ACKED_PER_ROUND = 12
# About two write cycles of the test writer on a laptop SSD: spreads kills over every step of a write.
KILL_JITTER_S = 0.01


def _temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# Small sync file helpers: async tests call these (blocking is fine for a few bytes in a tmp dir).
def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def _write(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")


def _exists(path: Path) -> bool:
    return path.exists()


def _stat(path: Path) -> os.stat_result:
    return path.stat()


def _read_database(db_path: Path) -> dict[str, dict[str, Any]]:
    """Every table as plain ``json`` reads it (not our code), by the rule in docs/storage.md: the
    catalogue names each table's file (its ``pending`` temp file while that still exists) and how many
    of its bytes are committed; those bytes without the closing ``\\n}\\n``, plus it, are the table."""
    catalogue = json.loads(db_path.read_bytes())
    assert catalogue["linkpact_store"] == 2
    out = {}
    for table, entry in catalogue["tables"].items():
        path = db_path.parent / entry["file"]
        if entry.get("pending") and (db_path.parent / entry["pending"]).exists():
            path = db_path.parent / entry["pending"]
        committed = path.read_bytes()[: entry["bytes"] - 3] + b"\n}\n"
        out[table] = json.loads(committed)
        assert len(out[table]) == entry["docs"]
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "linkpact.json"


class Backend:
    """One database under test: the embedded file at ``path``, or PostgreSQL at ``url``."""

    def __init__(self, name: str, path: Path, url: str | None = None) -> None:
        self.name = name
        self.path = path
        self.url = url

    def open(self) -> Store:
        """Another store on the same database (what another process would open)."""
        return open_store(self.path, database_url=self.url)

    @property
    def target(self) -> str:
        """What the subprocess scripts below take: the file's path or the URL."""
        return self.url or str(self.path)

    def snapshot(self) -> object:
        """Everything stored, read without the store: the file's bytes, or every row."""
        if self.url:
            return dump(self.url)
        return _bytes(self.path) if _exists(self.path) else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        # A test of the file itself (it takes db_path) runs on the embedded backend only.
        names = ["tinydb"] if "db_path" in metafunc.fixturenames else ["tinydb", "postgres"]
        metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    path = tmp_path / "linkpact.json"
    if request.param == "postgres":
        return Backend("postgres", path, request.getfixturevalue("pg_url"))
    return Backend("tinydb", path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Any]:
    s = backend.open()
    yield s
    await s.aclose()


def _writes(store: Store) -> int | None:
    """How many times the embedded store wrote its file (None for other backends)."""
    return store.write_count if isinstance(store, TinyStore) else None


class Colour(StrEnum):
    RED = "red"


# -- round trips ----------------------------------------------------------------------------------------


async def test_insert_get_find_count_round_trip(store: Store) -> None:
    a = await store.insert(
        "backlinks", {"source_url": "https://a.example/", "target_url": "https://us.example/"}
    )
    b = await store.insert(
        "backlinks", {"source_url": "https://b.example/", "target_url": "https://us.example/"}
    )
    c = await store.insert(
        "backlinks", {"source_url": "https://c.example/", "target_url": "https://us.example/x"}
    )
    assert isinstance(a, str) and len(a) == 32 and len({a, b, c}) == 3

    assert await store.get("backlinks", a) == {
        "id": a,
        "source_url": "https://a.example/",
        "target_url": "https://us.example/",
    }
    assert await store.get("backlinks", "nope") is None
    assert await store.get("other_table", a) is None
    assert [d["id"] for d in await store.find("backlinks")] == [a, b, c]  # insertion order
    assert [d["id"] for d in await store.find("backlinks", target_url="https://us.example/")] == [a, b]
    both = await store.find("backlinks", target_url="https://us.example/", source_url="https://b.example/")
    assert both == [{"id": b, "source_url": "https://b.example/", "target_url": "https://us.example/"}]
    assert await store.find("backlinks", id=c) == [await store.get("backlinks", c)]
    assert await store.find("backlinks", id=c, target_url="https://us.example/") == []
    assert await store.count("backlinks") == 3
    assert await store.count("backlinks", target_url="https://us.example/x") == 1
    assert await store.find("empty") == []


async def test_given_ids_are_kept_and_a_taken_id_is_a_conflict(store: Store, backend: Backend) -> None:
    assert await store.insert("runs", {"id": "run-1", "n": 1}) == "run-1"
    with pytest.raises(ConflictError, match="run-1"):
        await store.insert("runs", {"id": "run-1", "n": 2})
    with pytest.raises(ValueError, match="id"):
        await store.insert("runs", {"id": 7})
    assert await store.find("runs") == [{"id": "run-1", "n": 1}]
    reopened = backend.open()
    assert await reopened.get("runs", "run-1") == {"id": "run-1", "n": 1}  # ids are stable on disk
    await reopened.aclose()


async def test_insert_many_is_one_write(store: Store) -> None:
    docs = [{"n": i} for i in range(1000)] + [{"id": "given", "n": -1}]
    before = _writes(store)
    ids = await store.insert_many("rows", docs)
    if before is not None:
        assert _writes(store) == before + 1
    assert len(ids) == 1001 and len(set(ids)) == 1001 and ids[-1] == "given"
    assert [d["n"] for d in await store.find("rows")] == [*range(1000), -1]
    # A duplicate anywhere in a batch fails the whole batch: nothing of it is written.
    with pytest.raises(ConflictError):
        await store.insert_many("rows", [{"id": "fresh"}, {"id": "given"}])
    assert await store.get("rows", "fresh") is None
    assert await store.count("rows") == 1001
    if before is not None:
        assert _writes(store) == before + 1


async def test_upsert_creates_then_merges(store: Store) -> None:
    key = ("source_key", "target_key")
    doc = {"source_key": "a", "target_key": "t", "added_by": "U1"}
    doc_id, created = await store.upsert("backlinks", doc, key=key)
    assert created
    same_id, created = await store.upsert(
        "backlinks", {"source_key": "a", "target_key": "t", "last_verdict": "live"}, key=key
    )
    assert (same_id, created) == (doc_id, False)
    assert await store.get("backlinks", doc_id) == {
        "id": doc_id,
        "source_key": "a",
        "target_key": "t",
        "added_by": "U1",
        "last_verdict": "live",
    }
    other_id, created = await store.upsert("backlinks", {"source_key": "a", "target_key": "u"}, key=key)
    assert created and other_id != doc_id
    assert await store.count("backlinks") == 2
    # Upsert by id: the id is a key field like any other.
    assert await store.upsert("backlinks", {"id": doc_id, "note": "x"}, key=("id",)) == (doc_id, False)
    assert (await store.get("backlinks", doc_id) or {})["note"] == "x"
    with pytest.raises(ValueError, match="key"):
        await store.upsert("backlinks", {"source_key": "a"}, key=key)
    with pytest.raises(ValueError, match="key"):
        await store.upsert("backlinks", {"source_key": "a"}, key=())


async def test_upsert_matching_several_documents_is_a_conflict(store: Store) -> None:
    await store.insert_many("backlinks", [{"k": 1, "n": 1}, {"k": 1, "n": 2}])
    with pytest.raises(ConflictError, match="2 documents"):
        await store.upsert("backlinks", {"k": 1, "n": 3}, key=("k",))
    assert sorted(d["n"] for d in await store.find("backlinks")) == [1, 2]


async def test_update_and_remove(store: Store) -> None:
    ids = await store.insert_many("rows", [{"k": "a", "n": 1}, {"k": "b", "n": 2}, {"k": "a", "n": 3}])
    assert await store.update("rows", ids[0], {"n": 10, "extra": [1, 2]})
    assert await store.get("rows", ids[0]) == {"id": ids[0], "k": "a", "n": 10, "extra": [1, 2]}
    assert not await store.update("rows", "missing", {"n": 1})
    assert await store.update("rows", ids[0], {"id": ids[0], "n": 11})  # the same id is fine
    with pytest.raises(ValueError, match="cannot change"):
        await store.update("rows", ids[0], {"id": "other"})
    assert await store.remove("rows", k="a") == 2
    assert await store.remove("rows", k="a") == 0
    assert await store.find("rows") == [{"id": ids[1], "k": "b", "n": 2}]
    assert await store.remove("rows", id=ids[1]) == 1
    assert await store.count("rows") == 0


async def test_remove_without_a_filter_is_refused(store: Store) -> None:
    await store.insert("rows", {"n": 1})
    with pytest.raises(ValueError, match="at least one field"):
        await store.remove("rows")
    assert await store.count("rows") == 1


async def test_values_round_trip_through_the_file(store: Store, backend: Backend) -> None:
    doc = {
        "text": 'ünïcode ✓ "quoted"\nnew line',
        "int": -3,
        "big": 2**62,
        "float": 0.1,
        "yes": True,
        "nothing": None,
        "rel": ("nofollow", "ugc"),  # tuples come back as lists, as JSON has only arrays
        "nested": {"a": [1, {"b": None}], "c": {}},
        "colour": Colour.RED,  # a StrEnum is stored as its plain value
        "surrogate": "x\ud800y",  # what a "\ud800" escape in scraped JSON decodes to
    }
    doc_id = await store.insert("things", doc)
    reopened = backend.open()
    got = await reopened.get("things", doc_id)
    await reopened.aclose()
    expected = {**doc, "id": doc_id, "rel": ["nofollow", "ugc"], "colour": "red"}
    if backend.name == "postgres":  # jsonb has no lone surrogates: U+FFFD, as docs/storage.md says
        expected["surrogate"] = "x\ufffdy"
    assert got == expected
    assert got is not None and type(got["colour"]) is str


async def test_equality_filters_follow_json(store: Store) -> None:
    await store.insert_many(
        "rows",
        [
            {"id": "bool", "v": True},
            {"id": "one", "v": 1},
            {"id": "float", "v": 1.0},
            {"id": "null", "v": None},
            {"id": "missing"},
            {"id": "list", "v": ["a", "b"]},
            {"id": "obj", "v": {"x": 1, "y": 2}},
        ],
    )

    async def ids(**equals: Any) -> list[str]:
        return [d["id"] for d in await store.find("rows", **equals)]

    assert await ids(v=True) == ["bool"]
    assert await ids(v=1) == ["one", "float"]  # 1 and 1.0 are the same JSON number; true is not
    assert await ids(v=None) == ["null"]  # a missing field matches nothing, not even null
    assert await ids(v=["a", "b"]) == ["list"]
    assert await ids(v=["b", "a"]) == []
    assert await ids(v={"y": 2, "x": 1}) == ["obj"]  # object key order does not matter
    assert await ids(v=Colour.RED) == []


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), TypeError, "ISO 8601"),
        (frozenset({"nofollow"}), TypeError, "sorted list"),
        (float("nan"), ValueError, "JSON cannot hold"),
        (b"bytes", TypeError, "bytes"),
        ({"nested": {1: "x"}}, TypeError, "keys are strings"),
        ([1, object()], TypeError, r"rows\.v\[1\] is a object"),
    ],
)
async def test_non_json_values_are_refused_and_nothing_is_written(
    store: Store, backend: Backend, value: object, error: type[Exception], message: str
) -> None:
    await store.insert("rows", {"n": 1})
    before = backend.snapshot()
    with pytest.raises(error, match=message):
        await store.insert("rows", {"v": value})
    with pytest.raises(error, match=message):
        await store.update("rows", (await store.find("rows"))[0]["id"], {"v": value})
    assert backend.snapshot() == before


@pytest.mark.parametrize("table", ["", "Rows", "1rows", "rows-x", "a" * 64, "../x"])
async def test_bad_table_names_are_refused(store: Store, table: str) -> None:
    with pytest.raises(ValueError, match="table name"):
        await store.insert(table, {"n": 1})
    with pytest.raises(ValueError, match="table name"):
        await store.find(table)


async def test_returned_and_given_documents_are_copies(store: Store) -> None:
    given: dict[str, Any] = {"tags": ["a"], "meta": {"k": "v"}}
    doc_id = await store.insert("rows", given)
    given["tags"].append("changed-after-insert")
    got = await store.get("rows", doc_id)
    assert got is not None
    got["tags"].append("changed-after-get")
    got["meta"]["k"] = "changed"
    (found,) = await store.find("rows")
    found["tags"].clear()
    assert await store.get("rows", doc_id) == {"id": doc_id, "tags": ["a"], "meta": {"k": "v"}}


# -- transactions ---------------------------------------------------------------------------------------


async def test_transact_sees_its_own_writes_and_writes_once(store: Store) -> None:
    first = await store.insert("rows", {"n": 0})

    def work(tx: Tx) -> list[int]:
        tx.insert("rows", {"id": "x", "n": 1})
        tx.update("rows", "x", {"n": 2})
        tx.update("rows", first, {"n": 5})
        tx.insert_many("rows", [{"n": 3}, {"n": 4}])
        tx.upsert("rows", {"k": "u", "n": 6}, key=("k",))
        tx.upsert("rows", {"k": "u", "n": 7}, key=("k",))  # the index sees the insert just made
        assert tx.remove("rows", n=4) == 1
        assert tx.get("rows", "x") == {"id": "x", "n": 2}
        return [d["n"] for d in tx.find("rows")]

    before = _writes(store)
    assert await store.transact(work) == [5, 2, 3, 7]
    if before is not None:
        assert _writes(store) == before + 1
    assert [d["n"] for d in await store.find("rows")] == [5, 2, 3, 7]
    assert await store.count("rows", k="u") == 1
    # A transaction that changes nothing does not rewrite the file.
    assert await store.transact(lambda tx: tx.count("rows")) == 4
    if before is not None:
        assert _writes(store) == before + 1


async def test_transact_rolls_back_when_fn_raises(store: Store, backend: Backend) -> None:
    keep = await store.insert("rows", {"n": 1})
    before = backend.snapshot()
    before_stat = _stat(backend.path) if backend.name == "tinydb" else None

    def fail(tx: Tx) -> None:
        tx.insert("rows", {"n": 2})
        tx.update("rows", keep, {"n": 99})
        tx.remove("rows", n=1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await store.transact(fail)
    assert backend.snapshot() == before
    if before_stat is not None:
        after = _stat(backend.path)
        assert (after.st_ino, after.st_mtime_ns) == (before_stat.st_ino, before_stat.st_mtime_ns)
        assert _temp_files(backend.path.parent) == []
    assert await store.find("rows") == [{"id": keep, "n": 1}]  # the copy in memory is untouched too


async def test_an_async_function_is_refused_and_nothing_is_written(store: Store, backend: Backend) -> None:
    async def wrong(tx: Tx) -> None:
        tx.insert("rows", {"n": 1})

    with pytest.raises(TypeError, match="plain function"):
        _ = await store.transact(wrong)  # the type allows it; the store refuses it at run time
    assert await store.count("rows") == 0
    assert not _exists(backend.path)


async def test_a_tx_is_only_valid_inside_its_function_and_views_are_read_only(store: Store) -> None:
    leaked: list[Any] = []
    await store.transact(leaked.append)
    with pytest.raises(StorageError, match="transaction is over"):
        leaked[0].insert("rows", {"n": 1})
    with pytest.raises(StorageError, match="read-only"):
        await store.view(lambda tx: tx.insert("rows", {"n": 1}))  # type: ignore[attr-defined]
    assert await store.count("rows") == 0


async def test_a_closed_store_refuses_calls(backend: Backend) -> None:
    async with backend.open() as s:
        await s.insert("rows", {"n": 1})
    with pytest.raises(StorageError, match="closed"):
        await s.find("rows")
    await s.aclose()  # closing twice is harmless


# -- the file -------------------------------------------------------------------------------------------


async def test_a_missing_file_is_an_empty_database_created_on_first_write(db_path: Path) -> None:
    s = open_store(db_path)
    assert await s.find("rows") == []
    assert not _exists(db_path)
    await s.insert("rows", {"n": 1})
    assert _read_database(db_path)["rows"]
    await s.aclose()


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_store(tmp_path / "no-such-dir" / "linkpact.json")
    with pytest.raises(StorageError, match="directory"):
        open_store(tmp_path)


VALID = '{\n"runs":{\n"a":{"url":"https://x.example/"},\n"b":{"url":"https://y.example/"}\n}\n}\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (VALID[: len(VALID) // 2].encode(), r"linkpact\.json is not valid JSON \(.* at line 3, column \d+"),
        (b"hello, I am not JSON", r"is not valid JSON \(Expecting value at line 1, column 1"),
        (b"", r"is empty"),
        (b"  \n", r"is empty"),
        (b"\xff\xfe{}", r"is not UTF-8"),
        (b"[]", r"not hold a Linkpact database .* JSON array"),
        (b'"text"', r"JSON string"),
        (b'{"runs": []}', r"table 'runs' is a JSON array"),
        (b'{"runs": {"a": 1}}', r"document 'a' in table 'runs' is a JSON number"),
        # Valid JSON that is not ours and that Python refuses to turn into values: a number longer than
        # the int-from-string digit limit, and arrays nested past the parser's recursion limit.
        (b"1" * 5000, r"is JSON but not a Linkpact database \(.*digits"),
        (b'{"runs": {"a": {"n": ' + b"9" * 5000 + b"}}}", r"is JSON but not a Linkpact database"),
        (b"[" * 100_000 + b"]" * 100_000, r"is JSON but not a Linkpact database \(values nested too deeply"),
        (b'{"runs": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", r"nested too deeply"),
        (b'{"runs": "x"}', r"table 'runs' is a JSON string"),
        (b"12", r"not hold a Linkpact database .* JSON number"),
    ],
)
def test_a_corrupt_file_is_a_clear_error_at_start_up(db_path: Path, content: bytes, message: str) -> None:
    db_path.write_bytes(content)
    with pytest.raises(StorageError, match=message) as raised:
        open_store(db_path)
    assert "refusing to start with an empty database" in str(raised.value)
    assert "backup" in str(raised.value)
    assert "\n" not in str(raised.value)  # one line, as the CLI prints it
    assert db_path.read_bytes() == content  # the evidence is left alone


async def test_a_file_corrupted_while_running_is_never_overwritten(store: TinyStore, db_path: Path) -> None:
    await store.insert("rows", {"n": 1})
    garbage = b'{"rows": {"x": {"n"'
    spare = db_path.with_name("spare")
    spare.write_bytes(garbage)
    os.replace(spare, db_path)  # what a crashing foreign writer or a bad restore could leave
    with pytest.raises(StorageError, match="not valid JSON"):
        await store.find("rows")
    with pytest.raises(StorageError, match="not valid JSON"):
        await store.insert("rows", {"n": 2})
    assert _bytes(db_path) == garbage


async def test_a_file_deleted_while_running_is_an_error(store: TinyStore, db_path: Path) -> None:
    await store.insert("rows", {"n": 1})
    os.unlink(db_path)
    with pytest.raises(StorageError, match="disappeared"):
        await store.insert("rows", {"n": 2})
    assert not _exists(db_path)


async def test_the_file_holds_one_document_a_line(store: TinyStore, db_path: Path) -> None:
    ids = await store.insert_many("runs", [{"n": 1}, {"n": 2}])
    await store.insert("backlinks", {"id": "b1", "anchor": "ünï\nline"})
    await store.insert_many("empty", [])
    # One file per table beside the catalogue, each valid JSON as it stands (jq reads it).
    runs = (db_path.parent / "linkpact.runs.json").read_text("utf-8")
    backlinks = (db_path.parent / "linkpact.backlinks.json").read_text("utf-8")
    assert json.loads(runs) == {ids[0]: {"n": 1}, ids[1]: {"n": 2}}
    assert json.loads(backlinks) == {"b1": {"anchor": "ünï\nline"}}
    assert runs.splitlines() == ["{", f'"{ids[0]}":{{"n":1}},', f'"{ids[1]}":{{"n":2}}', "}"]
    assert backlinks.splitlines()[1] == '"b1":{"anchor":"ünï\\nline"}'  # UTF-8 as is, one line a document
    assert _read_database(db_path) == {"runs": json.loads(runs), "backlinks": json.loads(backlinks)}


async def test_file_permissions_survive_writes(store: TinyStore, db_path: Path) -> None:
    await store.insert("rows", {"n": 1})
    os.chmod(db_path, 0o640)
    await store.insert("rows", {"n": 2})  # the file was chmodded behind our back: re-read, then write
    await store.insert("rows", {"n": 3})
    assert _stat(db_path).st_mode & 0o777 == 0o640
    assert await store.count("rows") == 3


async def test_stale_temp_files_are_removed_on_open(db_path: Path) -> None:
    async with TinyStore(db_path) as s:
        await s.insert("rows", {"n": 1})
    stale = db_path.parent / f".linkpact.json.{'ab' * 16}.tmp"
    stale.write_bytes(b'{"half a wri')
    unrelated = [db_path.parent / ".linkpact.json.notes.tmp", db_path.parent / f".other.json.{'cd' * 16}.tmp"]
    for path in unrelated:
        path.write_text("keep me")
    async with TinyStore(db_path) as s:
        assert await s.count("rows") == 1
    assert not stale.exists()
    assert all(path.exists() for path in unrelated)


async def test_a_failed_write_is_a_storage_error_and_changes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    async with TinyStore(directory / "linkpact.json") as s:
        shutil.rmtree(directory)  # the volume went away: the temp file cannot even be created
        with pytest.raises(StorageError, match="cannot write"):
            await s.insert("rows", {"n": 1})
        assert await s.count("rows") == 0
        os.mkdir(directory)  # back again: the store carries on
        await s.insert("rows", {"n": 2})
        assert [d["n"] for d in await s.find("rows")] == [2]


def test_the_storage_is_a_tinydb_storage(db_path: Path) -> None:
    # TinyDB itself can use the atomic storage, and the store reads what TinyDB wrote.
    db = TinyDB(db_path, storage=AtomicJSONStorage)
    db.table("rows").insert({"n": 1})
    db.close()

    async def read() -> list[dict[str, Any]]:
        async with TinyStore(db_path) as s:
            return await s.find("rows")

    assert asyncio.run(read()) == [{"id": "1", "n": 1}]
    assert _temp_files(db_path.parent) == []


async def test_writes_by_another_store_on_the_same_file_are_seen(backend: Backend) -> None:
    # Two stores stand for two processes (say `linkpact track` in a shell while `linkpact serve` runs).
    async with backend.open() as one, backend.open() as two:
        await one.insert("rows", {"id": "a"})
        assert await two.get("rows", "a") == {"id": "a"}
        await two.insert("rows", {"id": "b"})
        await one.update("rows", "a", {"seen": True})
        assert [d["id"] for d in await two.find("rows")] == ["a", "b"]
        assert (await two.get("rows", "a") or {}).get("seen") is True


# -- crashes and concurrency ----------------------------------------------------------------------------

# Writes forever, one transaction per step: insert row n and set the counter to n + 1 (so a torn
# transaction would show as counter != rows). Prints n once the write returned, i.e. is durable.
WRITER = """
import asyncio, sys
from bot.store import open_store

async def main():
    store = open_store(sys.argv[1])
    n = await store.count("w")
    pad = "x" * 2000  # makes each rewrite take long enough to be killed in the middle of it
    print("ready", n, flush=True)
    while True:
        def step(tx, n=n):
            tx.insert("w", {"id": f"{n:08d}", "n": n, "pad": pad})
            tx.upsert("meta", {"id": "counter", "value": n + 1}, key=("id",))
        await store.transact(step)
        print(n, flush=True)
        n += 1

asyncio.run(main())
"""


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


@pytest.fixture
def watchdog() -> Iterator[list[subprocess.Popen[str]]]:
    """Kills whatever the test registered if it runs past the watchdog, and at the end."""
    procs: list[subprocess.Popen[str]] = []

    def kill_all() -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    timer = threading.Timer(SUBPROCESS_WATCHDOG_S, kill_all)
    timer.start()
    try:
        yield procs
    finally:
        timer.cancel()
        kill_all()
        for proc in procs:
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()


def _stderr(proc: subprocess.Popen[str]) -> str:
    return proc.stderr.read() if proc.stderr else ""


def _rows_on_disk(db_path: Path) -> tuple[list[int], int]:
    """Parse the files with plain json (not our code): the row numbers and the counter."""
    data = _read_database(db_path)
    rows = [doc["n"] for doc in data.get("w", {}).values()]
    counter = data.get("meta", {}).get("counter", {}).get("value", 0)
    return rows, counter


def test_a_writer_killed_at_random_never_leaves_an_unreadable_file(
    db_path: Path, watchdog: list[subprocess.Popen[str]]
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    acked_total = 0
    temp_left = 0
    for round_no in range(KILL_ROUNDS):
        proc = _spawn("-c", WRITER, str(db_path))
        watchdog.append(proc)
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready and ready[0] == "ready", f"seed {seed}: writer did not start: {_stderr(proc)}"
        assert int(ready[1]) >= acked_total
        # Kill after a random number of acknowledged writes (0 = during the first one), then a random
        # fraction of a write cycle later: reading an ack wakes us just as the writer starts its next
        # write, so without the jitter every kill would land at that same point. The pause is the random
        # moment under test, not a wait for something to happen.
        target = rng.randrange(MAX_ACKED_PER_ROUND + 1)
        acked = int(ready[1])
        for _ in range(target):
            line = proc.stdout.readline()
            assert line, f"seed {seed}: writer died: {_stderr(proc)}"
            acked = int(line) + 1
        time.sleep(rng.uniform(0, KILL_JITTER_S))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

        if db_path.exists():
            rows, counter = _rows_on_disk(db_path)  # always parses: never a torn file
            assert rows == list(range(len(rows))), f"seed {seed} round {round_no}: not a prefix"
            assert counter == len(rows), f"seed {seed} round {round_no}: a transaction was torn"
            assert len(rows) >= acked, f"seed {seed}: an acknowledged write was lost"
            acked_total = len(rows)
        else:
            assert acked == 0
        leftovers = _temp_files(db_path.parent)
        # At most the writes in flight (the rewritten table and the catalogue); the next open removes
        # or renames them.
        assert len(leftovers) <= 2
        temp_left += len(leftovers)

    store = open_store(db_path)  # opens (and cleans up) like a restart would
    assert _temp_files(db_path.parent) == []
    assert asyncio.run(_count_then_close(store)) == acked_total
    print(
        f"\nkilled the writer {KILL_ROUNDS} times (seed {seed}): {acked_total} rows kept, "
        f"{temp_left} kill(s) landed mid-write and left a temp file"
    )


async def _count_then_close(store: Any) -> int:
    try:
        return int(await store.count("w"))
    finally:
        await store.aclose()


def _increment(tx: Tx, tag: str) -> None:
    counter = tx.get("meta", "counter") or {"id": "counter", "value": 0}
    tx.upsert("meta", {"id": "counter", "value": counter["value"] + 1}, key=("id",))
    tx.insert("log", {"tag": tag})


async def test_concurrent_tasks_lose_nothing(store: Store, backend: Backend) -> None:
    tasks = 100

    async def worker(i: int) -> None:
        await store.transact(lambda tx: _increment(tx, f"t{i}"))
        await store.upsert("seen", {"worker": i, "ok": True}, key=("worker",))
        await store.insert("plain", {"i": i})

    await asyncio.gather(*(worker(i) for i in range(tasks)))
    assert (await store.get("meta", "counter") or {})["value"] == tasks
    assert sorted(d["tag"] for d in await store.find("log")) == sorted(f"t{i}" for i in range(tasks))
    assert await store.count("seen") == tasks
    assert sorted(d["i"] for d in await store.find("plain")) == list(range(tasks))
    reopened = backend.open()  # and it is all stored
    assert await reopened.count("log") == tasks
    await reopened.aclose()


def test_threads_with_their_own_event_loops_lose_nothing(backend: Backend) -> None:
    store = backend.open()
    threads, per_thread = 8, 25
    errors: list[BaseException] = []

    def run(t: int) -> None:
        async def work() -> None:
            for i in range(per_thread):
                tag = f"{t}-{i}"
                await store.transact(lambda tx: _increment(tx, tag))  # noqa: B023 - awaited at once

        try:
            asyncio.run(work())
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(SUBPROCESS_WATCHDOG_S)
    assert errors == []

    async def check() -> None:
        assert (await store.get("meta", "counter") or {})["value"] == threads * per_thread
        assert await store.count("log") == threads * per_thread
        await store.aclose()

    asyncio.run(check())


PROCESS_WRITER = """
import asyncio, sys
from bot.store import open_store

async def main():
    target = sys.argv[1]
    store = open_store(target, database_url=target if target.startswith("postgresql:") else None)
    for i in range(int(sys.argv[3])):
        def step(tx, i=i):
            counter = tx.get("meta", "counter") or {"value": 0}
            tx.upsert("meta", {"id": "counter", "value": counter["value"] + 1}, key=("id",))
            tx.insert("log", {"id": f"{sys.argv[2]}-{i}"})
        await store.transact(step)
    await store.aclose()

asyncio.run(main())
"""


def test_processes_writing_the_same_file_lose_nothing(
    backend: Backend, watchdog: list[subprocess.Popen[str]]
) -> None:
    processes, per_process = 4, 40
    for p in range(processes):
        watchdog.append(_spawn("-c", PROCESS_WRITER, backend.target, f"p{p}", str(per_process)))
    for proc in watchdog:
        _, err = proc.communicate()
        assert proc.returncode == 0, err
    if backend.url is None:
        data = _read_database(backend.path)  # read with plain json, not our code
        counter, logged = data["meta"]["counter"]["value"], len(data["log"])
    else:
        rows = dump(backend.url)  # read with plain SQL, not our code
        counter = next(doc["value"] for table, doc_id, doc in rows if (table, doc_id) == ("meta", "counter"))  # type: ignore[index]
        logged = sum(table == "log" for table, _, _ in rows)
    assert counter == processes * per_process
    assert logged == processes * per_process


# -- measurement (printed, not asserted: timings vary by machine) ---------------------------------------

MEASURE = """
import asyncio, json, resource, sys, time
from bot.store import open_store

N = 100_000

async def main():
    docs = [
        {"source_url": f"https://blog{i % 700}.example/post-{i}",
         "target_url": f"https://us.example/p{i % 50}", "anchor": "a guide to link partnerships",
         "rel": ["nofollow"] if i % 3 == 0 else [], "placement": "main",
         "added_at": "2026-05-01T12:00:00+00:00"}
        for i in range(N)
    ]
    out = {"rss_before_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    store = open_store(sys.argv[1])
    t = time.perf_counter(); ids = await store.insert_many("backlinks", docs)
    out["insert_many_s"] = time.perf_counter() - t
    out["rss_after_insert_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter(); found = await store.find("backlinks", target_url="https://us.example/p7")
    out["find_s"] = time.perf_counter() - t
    t = time.perf_counter(); await store.update("backlinks", ids[0], {"last_verdict": "live"})
    out["one_update_s"] = time.perf_counter() - t
    def again(tx):
        return sum(tx.upsert("backlinks", d, key=("source_url", "target_url"))[1] for d in docs)
    t = time.perf_counter(); created = await store.transact(again)
    out["upsert_100k_in_one_transact_s"] = time.perf_counter() - t
    await store.aclose()
    t = time.perf_counter(); store = open_store(sys.argv[1]); out["open_s"] = time.perf_counter() - t
    out["count"] = await store.count("backlinks")
    await store.aclose()
    out["found"] = len(found)
    out["created_again"] = created
    folder = __import__("pathlib").Path(sys.argv[1]).parent
    out["file_mb"] = sum(p.stat().st_size for p in folder.glob("*.json")) / 1e6
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.slow
def test_measure_insert_many_of_100k_documents(db_path: Path, watchdog: list[subprocess.Popen[str]]) -> None:
    proc = _spawn("-c", MEASURE, str(db_path))
    watchdog.append(proc)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["count"] == 100_000
    assert result["found"] == 2000
    assert result["created_again"] == 0  # every upsert found its document by key
    print(
        "\n100,000 small documents: insert_many {insert_many_s:.2f} s (one write, {file_mb:.1f} MB files); "
        "find by field {find_s:.3f} s; one update {one_update_s:.2f} s (rewrites the table); "
        "100,000 upserts in one transact {upsert_100k_in_one_transact_s:.2f} s; open {open_s:.2f} s; "
        "peak RSS {peak_rss_mb:.0f} MB ({rss_before_mb:.0f} MB with the input built, "
        "{rss_after_insert_mb:.0f} MB after insert_many)".format(**result)
    )


async def test_reads_do_not_wait_behind_a_long_write(backend: Backend) -> None:
    """A /linkcheck during a 100,000-row import must not wait for the import's write to finish."""
    store = backend.open()
    try:
        await store.insert("t", {"id": "a"})
        inside, release = threading.Event(), threading.Event()

        def slow_write(tx: Tx) -> None:
            tx.insert("t", {"id": "b"})
            inside.set()
            release.wait(10)  # the write holds the store's lock until the test lets it go

        writer = asyncio.create_task(store.transact(slow_write))
        assert await asyncio.to_thread(inside.wait, 10)
        # Answered while the write is still in progress, from the last committed version.
        docs = await asyncio.wait_for(store.find("t"), timeout=5)
        assert [d["id"] for d in docs] == ["a"]
        release.set()
        await writer
        assert sorted(d["id"] for d in await store.find("t")) == ["a", "b"]
    finally:
        release.set()
        await store.aclose()


# -- the embedded store's files (TinyStore only: one file per table, appends, commits, migration) ------


def _sig(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


async def test_a_run_is_appended_without_rewriting_the_backlinks(store: TinyStore, db_path: Path) -> None:
    await store.insert_many("backlinks", [{"target_key": f"https://us.example/{i}"} for i in range(100)])
    await store.insert("runs", {"url": "https://us.example/0"})
    backlinks, runs = store.table_path("backlinks"), store.table_path("runs")
    before_backlinks, before_runs = _sig(backlinks), _sig(runs)
    await store.insert("runs", {"url": "https://us.example/1", "problems": []})
    assert _sig(backlinks) == before_backlinks  # not touched at all
    after_runs = _sig(runs)
    assert after_runs[0] == before_runs[0] and after_runs[1] > before_runs[1]  # the same file, longer
    assert [d["url"] for d in json.loads(runs.read_bytes()).values()] == [
        "https://us.example/0",
        "https://us.example/1",
    ]
    # An update is not an append: the table is written whole, to a new file renamed over the old one.
    (doc,) = await store.find("runs", url="https://us.example/0")
    await store.update("runs", doc["id"], {"status": 200})
    assert _sig(runs)[0] != after_runs[0]
    assert _read_database(db_path)["runs"][doc["id"]] == {"url": "https://us.example/0", "status": 200}


async def test_a_find_by_a_string_field_reads_only_the_matching_documents(db_path: Path) -> None:
    async with TinyStore(db_path) as s:
        await s.insert_many(
            "backlinks",
            [{"target_key": f"https://us.example/{i % 10}", "anchor": f"a {i}"} for i in range(1000)]
            + [
                {"target_key": 'https://us.example/"quoted"\n\u00e9\u2713', "anchor": "odd"},
                {"target_key": "https://other.example/", "anchor": "https://us.example/3"},  # not a match
            ],
        )
    async with TinyStore(db_path) as s:
        found = await s.find("backlinks", target_key="https://us.example/3")
        assert [d["anchor"] for d in found] == [f"a {i}" for i in range(3, 1000, 10)]
        odd = await s.find("backlinks", target_key='https://us.example/"quoted"\n\u00e9\u2713')
        assert [d["anchor"] for d in odd] == ["odd"]
        assert await s.count("backlinks") == 1002  # from the catalogue
        assert await s.find("backlinks", target_key="https://us.example/3", anchor="a 13") == [found[1]]
        table = s._data.table("backlinks") if s._data else None  # what the store holds in memory
        assert table is not None and not table.loaded  # searched as bytes, never split into documents
        assert len(await s.find("backlinks")) == 1002
        assert table.loaded


async def test_a_single_file_database_is_migrated_on_first_open(db_path: Path) -> None:
    # The layout before one file per table: one JSON object of tables, one document a line.
    old = (
        '{\n"runs":{\n"r1":{"url":"https://x.example/"}\n},\n"backlinks":{\n'
        '"b1":{"source_url":"https://p.example/","target_key":"https://us.example/"},\n'
        '"b2":{"source_url":"https://q.example/","target_key":"https://us.example/x"}\n},\n"empty":{}\n}\n'
    )
    _write(db_path, old)
    async with TinyStore(db_path) as s:
        assert await s.get("runs", "r1") == {"id": "r1", "url": "https://x.example/"}
        assert [d["id"] for d in await s.find("backlinks", target_key="https://us.example/")] == ["b1"]
        await s.insert("runs", {"id": "r2"})
    assert db_path.with_name("linkpact.json.v1").read_text("utf-8") == old  # kept, untouched
    data = _read_database(db_path)
    assert data["runs"] == {"r1": {"url": "https://x.example/"}, "r2": {}}
    assert list(data["backlinks"]) == ["b1", "b2"]
    assert sorted(p.name for p in db_path.parent.iterdir()) == [
        "linkpact.backlinks.json",
        "linkpact.json",
        "linkpact.json.lock",
        "linkpact.json.v1",
        "linkpact.runs.json",
    ]


async def test_a_table_changed_by_hand_is_read_in_full(store: TinyStore, db_path: Path) -> None:
    await store.insert_many("rows", [{"id": "a", "n": 1}, {"id": "b", "n": 2}])
    path = store.table_path("rows")
    path.write_text('{ "a": { "n": 10 },\n  "b": {"n": 2}, "c": {"n": 3} }\n', "utf-8")  # valid, not ours
    async with TinyStore(db_path) as s:
        assert [d["n"] for d in await s.find("rows")] == [10, 2, 3]
        assert [d["id"] for d in await s.find("rows", id="c")] == ["c"]
        await s.insert("rows", {"id": "d", "n": 4})  # rewrites the table in our form
    assert path.read_text("utf-8").splitlines()[1] == '"a":{"n":10},'
    assert list(_read_database(db_path)["rows"]) == ["a", "b", "c", "d"]


async def test_a_missing_or_broken_table_file_is_a_clear_error(store: TinyStore, db_path: Path) -> None:
    await store.insert("rows", {"id": "a"})
    path = store.table_path("rows")
    path.write_bytes(b'{\n"a":{"n"')
    async with TinyStore(db_path) as s:
        with pytest.raises(StorageError, match=r"linkpact\.rows\.json.*not valid JSON"):
            await s.get("rows", "a")
    path.unlink()
    with pytest.raises(StorageError, match=r"linkpact\.rows\.json.*missing"):
        TinyStore(db_path)


async def test_an_uncommitted_append_is_cut_off_on_open(store: TinyStore, db_path: Path) -> None:
    await store.insert("runs", {"id": "r1"})
    path = store.table_path("runs")
    committed = path.read_bytes()
    with path.open("r+b") as handle:  # what a writer killed in the middle of an append leaves
        handle.seek(len(committed) - 3)
        handle.write(b',\n"r2":{"url":"https://x.exa')
    async with TinyStore(db_path) as s:
        assert [d["id"] for d in await s.find("runs")] == ["r1"]
    assert path.read_bytes() == committed  # valid JSON again
    await store.insert("runs", {"id": "r3"})
    assert list(_read_database(db_path)["runs"]) == ["r1", "r3"]


# A transaction over two tables: appends a run and rewrites a backlink, killed at CRASH_POINT.
CRASHER = """
import asyncio, os, signal, sys
from bot.store import open_store
from bot.store import tablefiles

async def main():
    store = open_store(sys.argv[1])
    await store.insert_many("backlinks", [{"id": "b1", "state": "live"}, {"id": "b2", "state": "live"}])
    await store.insert("runs", {"id": "r1"})

    def crash(where):
        if where == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)

    tablefiles.CRASH_POINT = crash
    def step(tx):
        tx.insert("runs", {"id": "r2", "pad": "x" * 5000})
        tx.update("backlinks", "b1", {"state": "lost"})
    await store.transact(step)

asyncio.run(main())
"""


@pytest.mark.parametrize(("where", "committed"), [("tables-written", False), ("committed", True)])
def test_a_writer_killed_between_two_table_writes_commits_both_or_neither(
    db_path: Path, watchdog: list[subprocess.Popen[str]], where: str, committed: bool
) -> None:
    proc = _spawn("-c", CRASHER, str(db_path), where)
    watchdog.append(proc)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, _stderr(proc)
    assert _temp_files(db_path.parent)  # the killed commit left its temp file(s) behind

    async def reopen() -> tuple[list[str], str]:
        async with TinyStore(db_path) as s:
            runs = [d["id"] for d in await s.find("runs")]
            return runs, (await s.get("backlinks", "b1") or {})["state"]

    runs, state = asyncio.run(reopen())
    assert (runs, state) == ((["r1", "r2"], "lost") if committed else (["r1"], "live"))
    assert _temp_files(db_path.parent) == []  # renamed (committed) or removed (not)
    # Every table file is whole, valid JSON again, and agrees with the catalogue.
    data = _read_database(db_path)
    for table in ("runs", "backlinks"):
        assert json.loads((db_path.parent / f"linkpact.{table}.json").read_bytes()) == data[table]
    assert list(data["runs"]) == runs
