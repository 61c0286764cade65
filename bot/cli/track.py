"""``linkpact track | untrack | tracked``: the backlinks that should point to our pages."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, EXIT_USAGE, SubParsers, print_json

if TYPE_CHECKING:
    from bot.engine import Engine


def add_track_parsers(sub: SubParsers) -> None:
    track = sub.add_parser("track", help=COMMAND_HELP["track"])
    track.add_argument("source_url", help="the partner's page that should link to us")
    track.add_argument("target_url", help="our page it should link to")

    untrack = sub.add_parser("untrack", help=COMMAND_HELP["untrack"])
    untrack.add_argument("source_url", help="the source page, as tracked")
    untrack.add_argument("target_url", help="the target URL, as tracked")

    tracked = sub.add_parser("tracked", help=COMMAND_HELP["tracked"])
    tracked.add_argument("target_url", nargs="?", help="only the backlinks to this page of ours")
    tracked.add_argument("--json", action="store_true", help="print the list as JSON")


async def run_track_command(engine: Engine, args: argparse.Namespace) -> int:
    created = await engine.track(args.source_url, args.target_url, added_by="cli")
    verb = "now tracking" if created else "already tracked"
    print(f"{verb}: {args.source_url} -> {args.target_url}")
    return EXIT_OK


async def run_untrack_command(engine: Engine, args: argparse.Namespace) -> int:
    if await engine.untrack(args.source_url, args.target_url):
        print(f"no longer tracking: {args.source_url} -> {args.target_url}")
        return EXIT_OK
    print(f"linkpact: not tracked: {args.source_url} -> {args.target_url}", file=sys.stderr)
    return EXIT_USAGE


async def run_tracked_command(engine: Engine, args: argparse.Namespace) -> int:
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
        print_json(rows, ensure_ascii=True)
        return EXIT_OK
    if not backlinks:
        print("no tracked backlinks yet (add one: linkpact track SOURCE_URL TARGET_URL)")
    for b in backlinks:
        state = f"  [{b.last_verdict}: {b.last_reason}]" if b.last_verdict else ""
        print(f"{b.source_url} -> {b.target_url}{state}")
    return EXIT_OK
