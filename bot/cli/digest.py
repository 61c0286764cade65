"""``linkpact digest``: build the weekly digest now; post it to Slack unless ``--dry-run``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, SubParsers, print_json
from bot.cli.serve import post_digest_to_slack

if TYPE_CHECKING:
    from bot.engine import Engine


def add_digest_parser(sub: SubParsers) -> None:
    digest = sub.add_parser("digest", help=COMMAND_HELP["digest"])
    digest.add_argument("--dry-run", action="store_true", help="print it, post nothing")
    digest.add_argument("--json", action="store_true", help="print the digest as JSON")


async def run_digest_command(engine: Engine, args: argparse.Namespace) -> int:
    from bot.monitoring.digest import build_digest, digest_to_json, render_digest_text

    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=engine.now())
    if args.json:
        print_json(digest_to_json(digest))
    else:
        sys.stdout.write(render_digest_text(digest))
    if args.dry_run:
        return EXIT_OK
    return await post_digest_to_slack(engine, digest)
