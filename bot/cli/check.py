"""``linkpact check URL``: every link on a page and the tracked backlinks to it (the twin of /linkcheck)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, EXIT_PROBLEMS, ProgressLine, SubParsers, print_json

if TYPE_CHECKING:
    from bot.engine import Engine


def add_check_parser(sub: SubParsers) -> None:
    check = sub.add_parser("check", help=COMMAND_HELP["check"])
    check.add_argument("url", help="the page to check: an http(s) URL")
    check.add_argument("--json", action="store_true", help="print the report as JSON (docs/report-json.md)")
    check.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")


async def run_check_command(engine: Engine, args: argparse.Namespace) -> int:
    from bot.linkcheck.report import parse_user_url, render_text, report_to_json

    url = parse_user_url(args.url)
    progress = None if args.quiet else ProgressLine(sys.stderr)
    report = await engine.check(url, on_progress=progress)
    if progress is not None:
        progress.close()
    if args.json:
        print_json(report_to_json(report))
    else:
        sys.stdout.write(render_text(report))
    return EXIT_PROBLEMS if report.has_problems else EXIT_OK
