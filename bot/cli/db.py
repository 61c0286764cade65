"""``linkpact db``: the PostgreSQL database (``LINKPACT_DATABASE_URL``): apply the schema's migrations,
show its version, copy an embedded database (the TinyDB file) into it.

These commands run without an engine: ``upgrade`` and ``status`` must work on a database whose schema
start-up would refuse.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, SubParsers
from bot.config import Settings
from bot.store.schema import SCHEMA_HEAD, current_revision, describe_url

__all__ = ["add_db_parser", "run_db_command"]


def add_db_parser(sub: SubParsers) -> None:
    db = sub.add_parser("db", help=COMMAND_HELP["db"])
    actions = db.add_subparsers(
        dest="db_command", required=True, metavar="ACTION", help="upgrade, status or migrate"
    )
    upgrade = actions.add_parser("upgrade", help="apply the schema migrations this Linkpact needs")
    upgrade.add_argument("--sql", action="store_true", help="print the SQL instead of running it (for a DBA)")
    actions.add_parser(
        "status", help="the schema's version against the one this Linkpact needs (exit 1: behind)"
    )
    migrate = actions.add_parser(
        "migrate", help="copy an embedded database (the TinyDB file) into PostgreSQL, all or nothing"
    )
    migrate.add_argument(
        "--from", dest="source", required=True, metavar="PATH", help="the file, e.g. linkpact.json"
    )
    migrate.add_argument(
        "--replace",
        action="store_true",
        help="delete what the PostgreSQL database holds first (same transaction)",
    )


def run_db_command(args: argparse.Namespace) -> int:
    """Exit codes: 0 done (or up to date); 1 ``status`` found the schema behind; 2 no or bad
    ``LINKPACT_DATABASE_URL``, an unreachable server, a schema to upgrade first, a database that already
    holds data, or a file that cannot be read (message on stderr)."""
    url = Settings.from_env().database_url
    if not url:
        print(
            "linkpact db: LINKPACT_DATABASE_URL is not set (postgresql://user:password@host:5432/dbname); "
            "without it Linkpact keeps its data in the LINKPACT_DB file, which needs no migrations",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.db_command == "upgrade":
        return _upgrade(url, sql_only=args.sql)
    if args.db_command == "status":
        return _status(url)
    return asyncio.run(_migrate(url, args.source, replace=args.replace))


def _upgrade(url: str, *, sql_only: bool) -> int:
    from bot.store.schema import upgrade

    if sql_only:
        upgrade(url, sql_only=True)
        return EXIT_OK
    try:
        before = upgrade(url)
    except Exception as exc:  # Alembic and SQLAlchemy errors: one line, not a traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(
            f"linkpact db: the upgrade of {describe_url(url)} failed, nothing was changed: {first}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    after = current_revision(url)
    where = describe_url(url)
    if before == after:
        print(f"linkpact db: {where} is at schema version {after} already; nothing to do")
    else:
        print(f"linkpact db: upgraded {where} from schema version {before or '(none)'} to {after}")
    return EXIT_OK


def _status(url: str) -> int:
    from bot.store.schema import schema_problem

    current = current_revision(url)
    where = describe_url(url)
    problem = schema_problem(current, where)
    if problem is None:
        print(f"linkpact db: {where} is at schema version {current}, the one this Linkpact needs")
        return EXIT_OK
    print(f"linkpact db: {problem}")
    return EXIT_PROBLEMS


async def _migrate(url: str, source: str, *, replace: bool) -> int:
    from bot.store.copy import copy_into_postgres, read_embedded
    from bot.store.postgres import PgStore

    documents = await read_embedded(source)
    target = PgStore(url)
    try:
        copied = await copy_into_postgres(documents, target, replace=replace)
    finally:
        await target.aclose()
    print(f"linkpact db: copied {source} into {describe_url(url)} in one transaction (schema {SCHEMA_HEAD})")
    width = max([len("table"), *(len(t.table) for t in copied)])
    print(f"{'table':<{width}}  {'copied':>9}  {'verified':>9}")
    for table in copied:
        print(f"{table.table:<{width}}  {table.copied:>9,}  {table.verified:>9,}")
    total = sum(t.copied for t in copied)
    print(f"{'total':<{width}}  {total:>9,}  {sum(t.verified for t in copied):>9,}")
    replaced = sum(t.replaced_text for t in copied)
    if replaced:
        print(
            f"linkpact db: {replaced} document(s) held text PostgreSQL cannot store (a NUL character or "
            "a lone surrogate); it was stored as U+FFFD",
            file=sys.stderr,
        )
    return EXIT_OK
