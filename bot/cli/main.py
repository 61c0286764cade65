"""``linkpact``: the parser, the dispatcher and the error policy shared by every command.

Each command group has its own module in this package (``add_*_parser`` and ``run_*_command``); exit
codes are in :mod:`bot.cli.output`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import select
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from dotenv import find_dotenv, load_dotenv

from bot import __version__
from bot.cli.check import add_check_parser, run_check_command
from bot.cli.db import add_db_parser, run_db_command
from bot.cli.digest import add_digest_parser, run_digest_command
from bot.cli.names import COMMAND_HELP, HEAVY_COMMANDS
from bot.cli.output import EXIT_CLOSED_PIPE, EXIT_INTERNAL, EXIT_USAGE
from bot.cli.recheck import add_recheck_parser, run_recheck_command
from bot.cli.serve import add_serve_parser, run_serve_command
from bot.cli.track import add_track_parsers, run_track_command, run_tracked_command, run_untrack_command
from bot.config import ConfigError, Settings
from bot.errors import InputError
from bot.store import StorageError

if TYPE_CHECKING:
    from bot.engine import Engine

# A one-shot command (not `serve`) makes a burst of short-lived objects: a 1,000-link check ~1,200
# requests' worth. Collecting the young generation every 10,000 allocations instead of Python's 700 cut
# the collector's share of such a check from ~0.12 s to ~0.03 s of CPU (docs/benchmarks.md); the
# cyclic garbage that waits a little longer is a few MB at most.
ONE_SHOT_GC_THRESHOLD = 10_000

logger = logging.getLogger("linkpact")


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and a one-line hint (its default), and never prints a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"linkpact: {message}\n")


# Commands whose parsers live in modules that import agreements and audits (about 0.1 s of start-up)
# are HEAVY_COMMANDS (bot.cli.names). A command line naming one of the commands below gets a stand-in
# for each heavy one instead (`linkpact check` never loads them, yet its usage line names every command);
# `linkpact --help`, a mistyped command and the heavy commands themselves get every parser.
LIGHT_COMMANDS = frozenset({"check", "track", "untrack", "tracked", "recheck", "digest", "serve", "db"})


def named_command(argv: Sequence[str] | None) -> str | None:
    """The command word of a command line (``sys.argv[1:]`` when ``argv`` is None), or None."""
    words = sys.argv[1:] if argv is None else argv
    return next((word for word in words if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``command`` one of :data:`LIGHT_COMMANDS`, one without the parsers of the
    heavier command groups (see above)."""
    every = command not in LIGHT_COMMANDS
    parser = _Parser(
        prog="linkpact",
        description="Check a page's outbound links and the backlinks that should point to it.",
    )
    parser.add_argument("--version", action="version", version=f"linkpact {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=_Parser,
        help="the command (`linkpact COMMAND --help` for more)",
    )
    add_check_parser(sub)
    add_track_parsers(sub)
    if every:
        from bot.cli.agreement import add_agreement_parser
        from bot.cli.audit import add_audit_parser
        from bot.cli.imports import add_import_parser
        from bot.cli.partner import add_partner_parser

        add_agreement_parser(sub)
        add_partner_parser(sub)
        add_audit_parser(sub)
        add_import_parser(sub)
    else:
        for name in HEAVY_COMMANDS:  # named in the usage line; never parsed (the command line is light)
            sub.add_parser(name, help=COMMAND_HELP[name], add_help=False)
    add_recheck_parser(sub)
    add_digest_parser(sub)
    add_serve_parser(sub)
    add_db_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``linkpact`` with ``argv`` (``sys.argv[1:]`` when None); returns the exit code
    (:mod:`bot.cli.output`). A reader that closes stdout early (``linkpact tracked | head -1``) ends the
    command quietly with :data:`EXIT_CLOSED_PIPE`, as a program stopped by ``SIGPIPE`` would."""
    try:
        try:
            return _run(argv)
        finally:
            # Flushed here, not by the interpreter at exit, where a closed pipe could only be reported
            # as "Exception ignored ... BrokenPipeError".
            sys.stdout.flush()
    except BrokenPipeError as exc:
        if not _stdout_closed():
            # Not our stdout (a socket somewhere): the internal error it is.
            if os.environ.get("LINKPACT_DEBUG"):
                raise
            logger.debug("internal error", exc_info=True)
            print(f"linkpact: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_INTERNAL
        _discard_stdout()
        return EXIT_CLOSED_PIPE


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (``poll`` reports an error on the write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout without a descriptor
        return True


def _discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's own flush at exit (of text still
    buffered) does not hit the closed pipe again (the Python docs' advice for SIGPIPE, ``signal``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        logger.debug("could not point stdout at %s", os.devnull, exc_info=True)


def _run(argv: Sequence[str] | None) -> int:
    # .env from the working directory (not from where the package is installed); the real environment wins.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    level = os.environ.get("LINKPACT_LOG_LEVEL", "").strip().upper() or "WARNING"
    if level not in logging.getLevelNamesMapping():
        print(f"linkpact: LINKPACT_LOG_LEVEL: {level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser(named_command(argv)).parse_args(argv)
    try:
        if args.command == "serve":
            return run_serve_command(args)
        if args.command == "db":  # no engine: `db upgrade` must work on a schema start-up would refuse
            return run_db_command(args)
        one_shot = argv is None  # we are the program (console script, python -m), not a caller's function
        if one_shot:
            gc.set_threshold(ONE_SHOT_GC_THRESHOLD)
        code = asyncio.run(_dispatch(args))
        if one_shot:
            _skip_final_collection()
        return code
    except (InputError, ConfigError, StorageError) as exc:
        print(f"linkpact: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("linkpact: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # main() decides whether it was stdout, closed by the reader (`linkpact ... | head`)
    except Exception as exc:
        if os.environ.get("LINKPACT_DEBUG"):
            raise
        logger.debug("internal error", exc_info=True)
        print(f"linkpact: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def _skip_final_collection() -> None:
    """Let a one-shot command's process end without a last garbage-collection pass over everything it
    built: after a 1,000-link check that pass took about 0.1 s of the exit (docs/benchmarks.md). By
    now the store and the HTTP client are closed; Python still flushes stdout and stderr and runs the
    atexit handlers (logging's among them)."""
    gc.freeze()


async def _dispatch(args: argparse.Namespace) -> int:
    from bot.engine import Engine  # imported here so `linkpact --help` stays instant

    settings = Settings.from_env()
    engine = Engine.create(settings)
    try:
        return await _command(args.command)(engine, args)
    finally:
        await engine.aclose()


Command = Callable[["Engine", argparse.Namespace], Awaitable[int]]


def _command(name: str) -> Command:
    """The coroutine that runs command ``name``; the heavier groups are imported only when named."""
    if name == "agreement":
        from bot.cli.agreement import run_agreement_command

        return run_agreement_command
    if name == "import":
        from bot.cli.imports import run_import_command

        return run_import_command
    if name == "partner":
        from bot.cli.partner import run_partner_command

        return run_partner_command
    if name == "audit":
        from bot.cli.audit import run_audit_command

        return run_audit_command
    return COMMANDS[name]


COMMANDS: dict[str, Command] = {
    "check": run_check_command,
    "track": run_track_command,
    "untrack": run_untrack_command,
    "tracked": run_tracked_command,
    "recheck": run_recheck_command,
    "digest": run_digest_command,
}
