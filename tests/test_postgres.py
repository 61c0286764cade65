"""The PostgreSQL backend beyond the shared store contract (tests/test_storage.py runs that on both):
schema versions and `linkpact db`, copying an embedded database, the indexes the product's lookups use,
an outage and the recovery after it, and races between two stores (two processes, to the database).

Everything runs against a real server (tests/support/postgres.py); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from bot.engine import Engine
from bot.monitoring.digest import DIGESTS_TABLE, DigestLedger, build_digest
from bot.monitoring.prune import Outcome
from bot.store import StoreUnavailable, open_store
from bot.store.postgres import OTHER_TABLE, PgStore
from bot.store.schema import SCHEMA_HEAD, SCHEMA_REVISIONS, SchemaMismatch, alembic_revisions
from tests.conftest import loopback_settings
from tests.support.clock import Clock
from tests.support.postgres import database_url, drop_database, dump, require_postgres
from tests.support.proxy import TcpProxy
from tests.support.site import LocalSite
from tests.test_prune import one_sided_agreement

ROOT = Path(__file__).resolve().parents[1]
CLI_TIMEOUT_S = 60
# The outage test's bounds: an operation fails within the pool's wait plus slack, and the store is
# back within this long after the server is (the pool's reconnect back-off starts at about a second).
OUTAGE_CONNECT_TIMEOUT_S = 1.0
RECOVERY_DEADLINE_S = 30.0
# Every table name the product's modules declare (`FOO_TABLE = "..."`).
_TABLE_CONSTANT = re.compile(r'^[A-Z_]+_TABLE = "([a-z][a-z0-9_]*)"$', re.MULTILINE)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database with no schema at all (what a DBA hands over), dropped afterwards."""
    require_postgres()
    name = f"linkpact_test_{os.urandom(6).hex()}_fresh"
    with psycopg.connect(database_url("test"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        drop_database(name)


def run_cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINKPACT_DATABASE_URL": url, "LINKPACT_DB": str(cwd / "unused.json")}
    env.pop("LINKPACT_DEBUG", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT_S,
        cwd=cwd,
    )


# -- schema versions -----------------------------------------------------------------------------------


def test_the_code_knows_every_migration_in_order() -> None:
    assert alembic_revisions() == list(SCHEMA_REVISIONS)


def test_every_product_table_has_a_table_of_its_own(pg_url: str) -> None:
    declared = set()
    for folder in ("bot", "handlers"):
        for path in (ROOT / folder).rglob("*.py"):
            declared.update(_TABLE_CONSTANT.findall(path.read_text(encoding="utf-8")))
    assert {"backlinks", "agreements", "runs", "digests"} <= declared  # the pattern still finds them
    with psycopg.connect(pg_url) as conn:
        tables = {
            name for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    missing = sorted(declared - tables)
    assert missing == [], f"add a migration that creates {missing} (docs/storage.md, 'Adding a table')"


def test_start_up_refuses_a_database_without_the_schema_until_db_upgrade(
    fresh_database: str, tmp_path: Path
) -> None:
    with pytest.raises(SchemaMismatch, match=r"needs version 0001: run `linkpact db upgrade`"):
        open_store(tmp_path / "x.json", database_url=fresh_database)

    refused = run_cli("tracked", url=fresh_database, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("run `linkpact db upgrade`")
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr

    status = run_cli("db", "status", url=fresh_database, cwd=tmp_path)
    assert (status.returncode, "no Linkpact schema yet" in status.stdout) == (1, True)

    upgraded = run_cli("db", "upgrade", url=fresh_database, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"from schema version (none) to {SCHEMA_HEAD}" in upgraded.stdout
    again = run_cli("db", "upgrade", url=fresh_database, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert run_cli("db", "status", url=fresh_database, cwd=tmp_path).returncode == 0

    works = run_cli("tracked", url=fresh_database, cwd=tmp_path)
    assert works.returncode == 0, works.stderr
    assert "no tracked backlinks yet" in works.stdout


def test_a_schema_from_a_newer_linkpact_is_refused(fresh_database: str, tmp_path: Path) -> None:
    run_cli("db", "upgrade", url=fresh_database, cwd=tmp_path)
    with psycopg.connect(fresh_database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaMismatch, match=r"at version 9999, which this Linkpact does not know"):
        open_store(tmp_path / "x.json", database_url=fresh_database)


def test_two_upgrades_at_once_apply_the_migrations_once(fresh_database: str, tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "db", "upgrade"],
            env={**os.environ, "LINKPACT_DATABASE_URL": fresh_database, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=CLI_TIMEOUT_S) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sorted("nothing to do" in out for out, _ in outputs) == [False, True]


def test_db_commands_without_a_database_url_say_what_to_set(tmp_path: Path) -> None:
    proc = run_cli("db", "upgrade", url="", cwd=tmp_path)
    assert proc.returncode == 2
    assert "LINKPACT_DATABASE_URL is not set" in proc.stderr
    bad = run_cli("db", "status", url="mysql://root@localhost/x", cwd=tmp_path)
    assert bad.returncode == 2
    assert "a postgresql:// URL is expected" in bad.stderr and "root@localhost" not in bad.stderr


# -- copying an embedded database --------------------------------------------------------------------


async def _embedded(path: Path, docs: dict[str, list[dict[str, object]]]) -> None:
    store = open_store(path)
    for table, rows in docs.items():
        await store.insert_many(table, rows)
    await store.aclose()


def test_db_migrate_copies_everything_in_order_and_refuses_a_second_time(pg_url: str, tmp_path: Path) -> None:
    source = tmp_path / "linkpact.json"
    backlinks = [
        {
            "source_key": f"https://blog{i}.example/post",
            "target_key": "https://us.example/",
            "n": i,
            "f": i / 7,
        }
        for i in range(3000)
    ]
    docs = {
        "backlinks": backlinks,
        "agreements": [{"id": "1", "partner_name": "Blog", "tags": ["a", "b"], "contact": {"name": "Ann"}}],
        "counters": [{"id": "agreements", "value": 1}],
        "a_new_table": [{"k": True}],  # a table this schema does not know: kept in other_documents
    }
    asyncio.run(_embedded(source, docs))
    before = source.read_bytes()

    proc = run_cli("db", "migrate", "--from", str(source), url=pg_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[2:]}
    assert lines["backlinks"] == ["3,000", "3,000"]
    assert lines["a_new_table"] == ["1", "1"]
    assert lines["total"] == ["3,003", "3,003"]
    assert source.read_bytes() == before  # the file is only read

    async def read_back() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        async with PgStore(pg_url) as store:
            return await store.find("backlinks"), await store.find("a_new_table")

    stored, extra = asyncio.run(read_back())
    assert [d["n"] for d in stored] == list(range(3000))  # insertion order kept
    assert stored[5] == {**backlinks[5], "id": stored[5]["id"]}
    assert [d["k"] for d in extra] == [True]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {OTHER_TABLE} WHERE tbl = 'a_new_table'").fetchone() == (
            1,
        )

    again = run_cli("db", "migrate", "--from", str(source), url=pg_url, cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds documents: a_new_table (1), agreements (1), backlinks (3000)" in again.stderr
    replaced = run_cli("db", "migrate", "--from", str(source), "--replace", url=pg_url, cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert len([row for row in dump(pg_url) if row[0] == "backlinks"]) == 3000


def test_db_migrate_is_all_or_nothing(pg_url: str, tmp_path: Path) -> None:
    source = tmp_path / "linkpact.json"
    twice = {"source_key": "https://a.example/", "target_key": "https://us.example/"}
    # Two documents for one (source, target): the database's unique index refuses the second, after the
    # other tables were already written in the same transaction.
    asyncio.run(_embedded(source, {"agreements": [{"id": "1"}], "backlinks": [twice, dict(twice)]}))
    proc = run_cli("db", "migrate", "--from", str(source), url=pg_url, cwd=tmp_path)
    assert proc.returncode == 2
    assert "backlinks_source_target" in proc.stderr and "Traceback" not in proc.stderr
    assert dump(pg_url) == []  # not even the agreement


# -- the indexes the product's lookups use -------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("backlinks", "target_key"),
        ("backlinks", "source_key"),
        ("backlinks", "import_id"),
        ("prune_proposals", "agreement_id"),
        ("changes", "agreement_id"),
        ("digests", "period"),
    ],
)
def test_lookups_by_a_hot_field_use_its_index(pg_url: str, table: str, field: str) -> None:
    async def fill_and_explain() -> str:
        async with PgStore(pg_url) as store:
            await store.insert_many(
                table,
                [
                    {"source_key": f"s{i}", "target_key": f"t{i}", field: f"value-{i % 2000}"}
                    for i in range(20_000)
                ],
            )
            found = await store.find(table, **{field: "value-7"})
            assert len(found) == 10
        # The statement the store sends, with its literal field name, as the planner sees it.
        with psycopg.connect(pg_url) as conn:
            conn.execute(f"ANALYZE {table}")
            rows = conn.execute(
                f"EXPLAIN SELECT id, doc::text FROM {table} WHERE doc -> '{field}' = %s::jsonb ORDER BY seq",
                [json.dumps("value-7")],
            ).fetchall()
        return "\n".join(row[0] for row in rows)

    plan = asyncio.run(fill_and_explain())
    assert f"{table}_{field}" in plan, plan
    assert "Seq Scan" not in plan, plan


# -- an outage and the recovery --------------------------------------------------------------------------


def test_an_outage_is_store_unavailable_and_the_store_recovers_by_itself(pg_url: str) -> None:
    with TcpProxy(database_url_port(pg_url)) as proxy:

        async def scenario() -> None:
            store = PgStore(proxy.url(pg_url), connect_timeout_s=OUTAGE_CONNECT_TIMEOUT_S)
            try:
                await store.insert("rows", {"id": "before"})
                proxy.cut()  # every connection dropped, new ones refused
                for attempt in (store.get("rows", "before"), store.insert("rows", {"id": "during"})):
                    started = time.monotonic()
                    with pytest.raises(StoreUnavailable, match=r"cannot be reached|went away"):
                        await attempt
                    assert time.monotonic() - started < OUTAGE_CONNECT_TIMEOUT_S * 5
                proxy.restore()
                deadline = time.monotonic() + RECOVERY_DEADLINE_S
                while True:  # waiting on the pool's own reconnect, which runs on real time
                    try:
                        await store.insert("rows", {"id": "after"})
                        break
                    except StoreUnavailable:
                        assert time.monotonic() < deadline, "the store did not recover"
                        await asyncio.sleep(0.2)
                assert [d["id"] for d in await store.find("rows")] == ["before", "after"]
            finally:
                await store.aclose()

        asyncio.run(scenario())


def test_start_up_with_the_server_down_is_a_clear_error(pg_url: str) -> None:
    with TcpProxy(database_url_port(pg_url)) as proxy:
        proxy.cut()
        with pytest.raises(StoreUnavailable, match=r"cannot be reached .*try again"):
            PgStore(proxy.url(pg_url), connect_timeout_s=OUTAGE_CONNECT_TIMEOUT_S)


def database_url_port(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or 5432


# -- races between two stores (two processes, as far as the database can tell) ---------------------------


@pytest.mark.backends("postgres")
async def test_two_replicas_deciding_one_proposal_make_one_transition(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock, tmp_path: Path
) -> None:
    assert isinstance(engine.store, PgStore)
    other = Engine.create(loopback_settings(tmp_path, engine.settings.database_url), now=clock)
    try:
        agreement_id = await one_sided_agreement(engine, ours, partner, clock)
        [proposal] = await engine.prune.open_proposals()
        approve, keep = await asyncio.gather(
            engine.prune.decide(proposal.id, approve=True, user="U0OWNER", is_admin=False),
            other.prune.decide(proposal.id, approve=False, user="U0OWNER", is_admin=False),
        )
        outcomes = sorted(d.outcome.value for d in (approve, keep))
        assert outcomes in (
            sorted([Outcome.APPROVED.value, Outcome.ALREADY_DECIDED.value]),
            sorted([Outcome.KEPT.value, Outcome.ALREADY_DECIDED.value]),
        )
        history = [e["action"] for e in await other.agreements.history(agreement_id)]
        assert history.count("pruned") + history.count("prune_kept") == 1
    finally:
        await other.aclose()


@pytest.mark.backends("postgres")
async def test_two_replicas_posting_one_digest_leave_one_ledger_entry(
    engine: Engine, clock: Clock, tmp_path: Path
) -> None:
    other = Engine.create(loopback_settings(tmp_path, engine.settings.database_url), now=clock)
    try:
        digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
        ledgers = [DigestLedger(engine.store, clock=clock), DigestLedger(other.store, clock=clock)]
        periods = [f"2026-W{week:02d}" for week in range(1, 21)]
        await asyncio.gather(
            *(
                ledger.mark_posted(replace(digest, period=period), channel, ts=f"{n}.0")
                for period in periods
                for channel in ("C0AAA", "C0BBB")
                for n, ledger in enumerate(ledgers)
            )
        )
        entries = await other.store.find(DIGESTS_TABLE)
        assert len(entries) == len(periods) * 2
        assert {(e["period"], e["channel"]) for e in entries} == {
            (p, c) for p in periods for c in ("C0AAA", "C0BBB")
        }
    finally:
        await other.aclose()
