"""``linkpact audit SITE``: the link-profile audit (docs/audit.md) in the terminal, as JSON or as CSV.

Exit codes follow ``linkpact check``: 0 = no red flag, 1 = at least one red flag, 2 = bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.audit.settings import DEFAULT_MAX_PAGES, DEFAULT_MAX_PARTNER_PAGES, DEFAULT_TIME_LIMIT_S
from bot.errors import InputError

if TYPE_CHECKING:
    from bot.engine import Engine

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, EXIT_PROBLEMS, SubParsers, plural


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def add_audit_parser(sub: SubParsers) -> None:
    """Add ``audit`` to ``linkpact``'s sub-command parsers (argparse's private ``_SubParsersAction``)."""
    audit = sub.add_parser("audit", help=COMMAND_HELP["audit"])
    audit.add_argument("site_url", help="our home page, e.g. https://ours.example")
    audit.add_argument(
        "--pages", type=_positive_int, default=DEFAULT_MAX_PAGES, metavar="N",
        help=f"crawl at most N pages of our site (default {DEFAULT_MAX_PAGES})",
    )  # fmt: skip
    audit.add_argument(
        "--time-limit", type=_positive_float, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
        help=f"stop the crawl after this many seconds (default {DEFAULT_TIME_LIMIT_S:g})",
    )  # fmt: skip
    audit.add_argument(
        "--partner-pages", type=_positive_int, default=DEFAULT_MAX_PARTNER_PAGES, metavar="N",
        help=f"read at most N partner pages (default {DEFAULT_MAX_PARTNER_PAGES})",
    )  # fmt: skip
    audit.add_argument(
        "--brand", action="append", default=[], metavar="TERM",
        help="a brand name or phrase (repeatable); default: our domain's name",
    )  # fmt: skip
    audit.add_argument("--json", action="store_true", help="print the report as JSON (docs/audit.md)")
    audit.add_argument("--csv", metavar="FILE", help="also write every finding, pair and cycle as CSV")
    audit.add_argument(
        "--propose-prunes", action="store_true",
        help="open prune proposals for the agreements concerned (a person still approves each)",
    )  # fmt: skip
    audit.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")


async def run_audit_command(engine: Engine, args: argparse.Namespace) -> int:
    from bot.audit import (
        AuditSettings,
        audit_site,
        findings_csv,
        parse_site,
        propose_prunes,
        render_audit_text,
    )
    from bot.cli.output import ProgressLine

    settings = AuditSettings(max_partner_pages=args.partner_pages, brand_terms=tuple(args.brand))
    progress = None if args.quiet else ProgressLine(sys.stderr)
    report = await audit_site(
        engine,
        parse_site(args.site_url),
        max_pages=args.pages,
        time_limit_s=args.time_limit,
        settings=settings,
        on_progress=progress,
    )
    if progress is not None:
        progress.close()
    if args.csv:
        try:
            text = findings_csv(report)
            await asyncio.to_thread(Path(args.csv).write_text, text, encoding="utf-8", newline="")
        except OSError as exc:
            raise InputError(f"could not write the CSV to {args.csv}: {exc.strerror or exc}") from exc
    if args.json:
        sys.stdout.write(report.to_json_text())
    else:
        sys.stdout.write(render_audit_text(report))
    if args.propose_prunes:
        proposals = await propose_prunes(engine, report)
        stream = sys.stderr if args.json else sys.stdout
        opened = plural(len(proposals), "prune proposal")
        print(f"{opened} open for review (linkpact digest --dry-run)", file=stream)
    return EXIT_PROBLEMS if report.findings else EXIT_OK
