"""A real PostgreSQL for the tests: one database per test run, migrated once, emptied before each test,
dropped at the end. Skips with a reason when no server is reachable; fails when ``CI=true``.

The server is ``LINKPACT_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``, the
server every machine of this project runs, with trust authentication); that database is only used to
create and drop ``linkpact_test_<random>``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from bot.store.postgres import OTHER_TABLE
from bot.store.schema import describe_url, upgrade

ADMIN_URL = os.environ.get("LINKPACT_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 3

_unreachable: list[str] = []  # the reason, once found (a run asks the server once)


def unreachable_reason() -> str | None:
    """None when the test server answers; else why not (asked once per run)."""
    if not _unreachable:
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                conn.execute("SELECT 1")
            _unreachable.append("")
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _unreachable.append(f"{describe_url(ADMIN_URL)}: {first}")
    return _unreachable[0] or None


def require_postgres() -> None:
    """Skip the test when no PostgreSQL is reachable; fail instead when ``CI=true``."""
    reason = unreachable_reason()
    if reason is None:
        return
    message = (
        f"PostgreSQL is not reachable ({reason}): the PostgreSQL tests need a server (set "
        "LINKPACT_TEST_POSTGRES_URL to use another one)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def database_url(name: str) -> str:
    """``ADMIN_URL`` naming database ``name`` instead. Commits do not wait for the disk (each would cost
    a flush, about 10 ms here): a test never survives a server crash, and everything else is the same."""
    parts = urlsplit(ADMIN_URL)
    query = "&".join(p for p in (parts.query, "options=-csynchronous_commit%3Doff") if p)
    return urlunsplit(parts._replace(path="/" + name, query=query))


def create_database(name: str) -> str:
    """Create database ``name``, apply every migration, return its URL."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(name)
    upgrade(url)
    return url


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        # FORCE (PostgreSQL 13+): a store a failed test left open does not keep the database alive.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def empty_database(url: str) -> None:
    """Delete every document of every table (the schema and its version stay). DELETE, not TRUNCATE:
    on a nearly empty database TRUNCATE costs about 0.7 s (new files for every table and index), DELETE
    about 15 ms."""
    with psycopg.connect(url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version'"
            ).fetchall()
        ]
        assert OTHER_TABLE in tables
        for table in tables:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))


def dump(url: str) -> list[tuple[str, str, object]]:
    """Every stored document as ``(table, id, doc)``, in a stable order: what "nothing changed" compares."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version' ORDER BY tablename"
            ).fetchall()
        ]
        out: list[tuple[str, str, object]] = []
        for table in tables:
            query = sql.SQL("SELECT {}, id, doc FROM {} ORDER BY seq").format(
                sql.SQL("tbl") if table == OTHER_TABLE else sql.Literal(table), sql.Identifier(table)
            )
            out.extend(conn.execute(query).fetchall())
        return out
