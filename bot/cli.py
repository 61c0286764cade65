"""``linkpact``: the command-line twin of every Slack feature, over the same core.

Exit codes: 0 = the page answered and nothing is broken or lost; 1 = something is broken or lost (or the
page failed); 2 = bad input, a refused URL, or a configuration/storage problem (message on stderr);
3 = an internal error (a one-line message; the traceback only with ``LINKPACT_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from dotenv import find_dotenv, load_dotenv

from bot import __version__
from bot.config import DEFAULT_PORT, ConfigError, Settings
from bot.errors import InputError
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.engine import Engine, Progress

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
# A progress line more often than this is noise in a log; on a terminal it is redrawn in place.
PROGRESS_INTERVAL_S = 0.5
PROGRESS_INTERVAL_LOG_S = 5.0
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


# Commands whose parsers live in their own modules, which import agreements and audits (about 0.1 s of
# start-up). A command line naming one of the commands below skips them (`linkpact check` never loads
# them); `linkpact --help`, a mistyped command and the commands themselves get every parser.
LIGHT_COMMANDS = frozenset({"check", "track", "untrack", "tracked", "recheck", "digest", "serve"})


def named_command(argv: Sequence[str] | None) -> str | None:
    """The command word of a command line (``sys.argv[1:]`` when ``argv`` is None), or None."""
    words = sys.argv[1:] if argv is None else argv
    return next((word for word in words if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``command`` one of :data:`LIGHT_COMMANDS`, one without the parsers of the
    commands registered by other modules (see above)."""
    every = command not in LIGHT_COMMANDS
    parser = _Parser(
        prog="linkpact",
        description="Check a page's outbound links and the backlinks that should point to it.",
    )
    parser.add_argument("--version", action="version", version=f"linkpact {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="check every link on a page and the tracked backlinks to it")
    check.add_argument("url")
    check.add_argument("--json", action="store_true", help="print the report as JSON (docs/report-json.md)")
    check.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")

    track = sub.add_parser("track", help="track a backlink: SOURCE page should link to our TARGET")
    track.add_argument("source_url")
    track.add_argument("target_url")

    untrack = sub.add_parser("untrack", help="stop tracking a backlink")
    untrack.add_argument("source_url")
    untrack.add_argument("target_url")

    tracked = sub.add_parser("tracked", help="list tracked backlinks (optionally only those to TARGET)")
    tracked.add_argument("target_url", nargs="?")
    tracked.add_argument("--json", action="store_true")

    if every:
        from bot.cli_agreements import add_agreement_parser
        from bot.cli_audit import add_audit_parser
        from bot.cli_imports import add_import_parser

        add_agreement_parser(sub)
        add_audit_parser(sub)
        add_import_parser(sub)

    recheck = sub.add_parser("recheck", help="recheck tracked backlinks and promised links now")
    scope = recheck.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="everything (the default)")
    scope.add_argument("--agreement", metavar="ID", help="only this agreement's promised links")
    recheck.add_argument("--json", action="store_true")

    digest = sub.add_parser("digest", help="build the weekly digest now; post it unless --dry-run")
    digest.add_argument("--dry-run", action="store_true", help="print it, post nothing")
    digest.add_argument("--json", action="store_true")

    serve = sub.add_parser("serve", help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP)")
    serve.add_argument("--port", type=int, default=None, help=f"HTTP port (default: $PORT or {DEFAULT_PORT})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
            from handlers.app import run_server  # Slack stays out of the core and of other commands

            return run_server(port=args.port if args.port is not None else _env_port())
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


def _env_port() -> int:
    raw = os.environ.get("PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"PORT: {raw!r} is not a TCP port number")
    return int(raw)


async def _dispatch(args: argparse.Namespace) -> int:
    from bot.engine import Engine  # imported here so `linkpact --help` stays instant

    settings = Settings.from_env()
    engine = Engine.create(settings)
    try:
        return await COMMANDS[args.command](engine, args)
    finally:
        await engine.aclose()


async def _check(engine: Engine, args: argparse.Namespace) -> int:
    from bot.report import parse_user_url, render_text, report_to_json

    url = parse_user_url(args.url)
    progress = None if args.quiet else ProgressLine(sys.stderr)
    report = await engine.check(url, on_progress=progress)
    if progress is not None:
        progress.close()
    if args.json:
        json.dump(report_to_json(report), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return EXIT_PROBLEMS if report.has_problems else EXIT_OK


async def _track(engine: Engine, args: argparse.Namespace) -> int:
    created = await engine.track(args.source_url, args.target_url, added_by="cli")
    verb = "now tracking" if created else "already tracked"
    print(f"{verb}: {args.source_url} -> {args.target_url}")
    return EXIT_OK


async def _untrack(engine: Engine, args: argparse.Namespace) -> int:
    if await engine.untrack(args.source_url, args.target_url):
        print(f"no longer tracking: {args.source_url} -> {args.target_url}")
        return EXIT_OK
    print(f"linkpact: not tracked: {args.source_url} -> {args.target_url}", file=sys.stderr)
    return EXIT_USAGE


async def _tracked(engine: Engine, args: argparse.Namespace) -> int:
    backlinks = await engine.tracked(args.target_url)
    if args.json:
        rows = [
            {
                "source_url": b.source_url,
                "target_url": b.target_url,
                "added_by": b.added_by,
                "added_at": b.added_at,
                "last_verdict": b.last_verdict,
                "last_reason": b.last_reason,
                "last_checked_at": b.last_checked_at,
            }
            for b in backlinks
        ]
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not backlinks:
        print("no tracked backlinks yet (add one: linkpact track SOURCE_URL TARGET_URL)")
    for b in backlinks:
        state = f"  [{b.last_verdict}: {b.last_reason}]" if b.last_verdict else ""
        print(f"{b.source_url} -> {b.target_url}{state}")
    return EXIT_OK


async def _recheck(engine: Engine, args: argparse.Namespace) -> int:
    summary, proposals = await engine.recheck(agreement_ref=args.agreement, by="cli")
    if args.json:
        data = summary.to_json()
        data["prune_proposals"] = [
            {"id": p.id, "agreement_id": p.agreement_id, "reasons": [r.code for r in p.reasons]}
            for p in proposals
        ]
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(summary.verdicts.items())) or "nothing to check"
    counted = f"{summary.backlinks} tracked backlinks and {summary.promised_links} promised links"
    print(f"rechecked {counted}: {verdicts}")
    for change in summary.changes:
        where = f" ({change.partner})" if change.partner else ""
        what = (
            f"{change.source_url} -> {change.target_url}"
            if change.source_url
            else f"agreement #{change.agreement_id}"
        )
        print(f"  {change.kind.value}: {what} {change.reason}{where}".rstrip())
    if proposals:
        print(f"{len(proposals)} agreements proposed for pruning (see: linkpact digest --dry-run)")
    return EXIT_OK


async def _digest(engine: Engine, args: argparse.Namespace) -> int:
    from bot.digest import build_digest, digest_to_json, render_digest_text

    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=engine.now())
    if args.json:
        json.dump(digest_to_json(digest), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_digest_text(digest))
    if args.dry_run:
        return EXIT_OK
    from handlers.digest import post_digest_from_cli  # Slack stays out of the core

    return await post_digest_from_cli(engine, digest)


async def _agreement(engine: Engine, args: argparse.Namespace) -> int:
    from bot.cli_agreements import run_agreement_command

    return await run_agreement_command(engine, args)


async def _import(engine: Engine, args: argparse.Namespace) -> int:
    from bot.cli_imports import run_import_command

    return await run_import_command(engine, args)


async def _audit(engine: Engine, args: argparse.Namespace) -> int:
    from bot.cli_audit import run_audit_command

    return await run_audit_command(engine, args)


COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], Awaitable[int]]] = {
    "check": _check,
    "track": _track,
    "untrack": _untrack,
    "tracked": _tracked,
    "agreement": _agreement,
    "audit": _audit,
    "import": _import,
    "recheck": _recheck,
    "digest": _digest,
}


class ProgressLine:
    """A progress line on stderr: redrawn in place on a terminal, an occasional line in a log."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._tty = stream.isatty()
        self._interval = PROGRESS_INTERVAL_S if self._tty else PROGRESS_INTERVAL_LOG_S
        self._last = -self._interval
        self._drawn = False

    def __call__(self, progress: Progress) -> None:
        now = self._clock()
        if progress.phase != "done" and now - self._last < self._interval:
            return
        self._last = now
        text = f"linkpact: {progress.phase} {progress.done}/{progress.total}"
        if self._tty:
            self._stream.write("\r\033[K" + text)
            self._drawn = True
        elif progress.phase != "done":
            self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()


if __name__ == "__main__":
    sys.exit(main())
