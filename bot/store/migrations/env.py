"""Alembic's environment for Linkpact: the URL comes from the caller (``linkpact db upgrade``), never
from an ini file, and every run holds an advisory lock so that replicas starting together apply each
migration once."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from bot.store.schema import MIGRATION_LOCK_KEY, sqlalchemy_url

config = context.config
url = sqlalchemy_url(config.attributes["database_url"])


def run_offline() -> None:
    """``--sql``: print the SQL for a DBA instead of running it."""
    context.configure(url=url, literal_binds=True, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                # PostgreSQL's DDL is transactional: every pending migration commits together or not at
                # all. The lock makes a second `db upgrade` wait here, then find nothing left to do.
                connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
                # What this run found, read under the lock (bot.store.schema.upgrade reports it).
                config.attributes["revision_before"] = context.get_context().get_current_revision()
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
