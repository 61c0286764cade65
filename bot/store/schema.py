"""The PostgreSQL schema's versions: which one this Linkpact needs, and applying them with Alembic.

The migrations live in :mod:`bot.store.migrations` (plain SQL in Alembic revisions). Start-up compares
the database's revision (Alembic's ``alembic_version`` table) with :data:`SCHEMA_HEAD` without importing
Alembic or SQLAlchemy, so a ``/linkcheck`` replica starts as fast as before; only ``linkpact db``
imports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.store.base import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATION_LOCK_KEY",
    "SCHEMA_HEAD",
    "SCHEMA_REVISIONS",
    "SchemaMismatch",
    "current_revision",
    "describe_url",
    "is_postgres_url",
    "schema_problem",
    "sqlalchemy_url",
    "upgrade",
]

#: Every revision under ``bot/store/migrations/versions``, oldest first (a test checks this against
#: Alembic's own history). The last one is the schema this Linkpact needs.
SCHEMA_REVISIONS: tuple[str, ...] = ("0001",)
SCHEMA_HEAD = SCHEMA_REVISIONS[-1]
# An arbitrary constant (pg_advisory_xact_lock takes a bigint): "linkpact migrations" in ASCII, folded.
MIGRATION_LOCK_KEY = 0x6C6B7063_6D696772
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_SCHEMES = ("postgresql://", "postgres://")


class SchemaMismatch(StorageError):
    """The database's schema is not the version this Linkpact needs (the message says what to run)."""


def is_postgres_url(url: str | None) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, the form libpq documents."""
    return bool(url) and str(url).lower().startswith(_SCHEMES)


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a database URL, for messages: never the user's password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    name = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{name}"


def sqlalchemy_url(url: str) -> str:
    """The URL as SQLAlchemy names the psycopg 3 driver (``postgresql+psycopg://``)."""
    for scheme in _SCHEMES:
        if url.lower().startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    raise ValueError(f"not a postgresql:// URL: {describe_url(url)}")


def schema_problem(current: str | None, where: str) -> str | None:
    """None when ``current`` is :data:`SCHEMA_HEAD`; else the one-line message start-up refuses with."""
    if current == SCHEMA_HEAD:
        return None
    if current is None:
        return (
            f"the database {where} has no Linkpact schema yet, this Linkpact needs version {SCHEMA_HEAD}: "
            "run `linkpact db upgrade`"
        )
    if current in SCHEMA_REVISIONS:
        return (
            f"the database schema is at version {current}, this Linkpact needs {SCHEMA_HEAD}: "
            "run `linkpact db upgrade`"
        )
    return (
        f"the database schema is at version {current}, which this Linkpact does not know (it needs "
        f"{SCHEMA_HEAD}): the database was upgraded by a newer Linkpact; run that version"
    )


def upgrade(database_url: str, *, sql_only: bool = False) -> str | None:
    """Apply every pending migration to ``database_url`` in one transaction (Alembic ``upgrade head``);
    returns the revision the database was at before (None: no schema).

    Safe to run from several processes at once (an advisory lock serialises them; the second finds
    nothing to do). With ``sql_only``, print the SQL instead of running it. Raises whatever Alembic and
    psycopg raise; the CLI turns those into one line.
    """
    from alembic import command

    config = _alembic_config(database_url)
    command.upgrade(config, "head", sql=sql_only)
    before = config.attributes.get("revision_before")
    return str(before) if before else None


def alembic_revisions() -> list[str]:
    """The revisions Alembic finds in the migrations folder, oldest first (for the consistency test)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("postgresql://unused/"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # Not set_main_option: that would run the URL through ConfigParser interpolation ("%" in passwords).
    config.attributes["database_url"] = database_url
    return config


def current_revision(database_url: str, *, connect_timeout_s: float = 5.0) -> str | None:
    """The database's schema revision (None for a database without Linkpact's schema). Raises
    :class:`bot.store.base.StoreUnavailable` when the server cannot be reached."""
    import psycopg

    from bot.store.base import StoreUnavailable

    try:
        with psycopg.connect(database_url, connect_timeout=max(1, round(connect_timeout_s))) as conn:
            present = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
            if not present or not present[0]:
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return str(row[0]) if row else None
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreUnavailable(
            f"the database {describe_url(database_url)} cannot be reached ({first})"
        ) from exc
