"""``linkpact partner show DOMAIN``: a partner's track record over every agreement with them (days to
deliver, share of checks with their links live, losses and reclaims; :mod:`bot.agreements.record`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.agreements.report import render_partner_record
from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, SubParsers, print_json
from bot.errors import InputError

if TYPE_CHECKING:
    from bot.engine import Engine


def add_partner_parser(sub: SubParsers) -> None:
    parser = sub.add_parser("partner", help=COMMAND_HELP["partner"])
    commands = parser.add_subparsers(
        dest="partner_command", required=True, parser_class=type(parser), help="what to do"
    )
    show = commands.add_parser(
        "show",
        help="the partner's track record over every agreement with them",
        description="A partner's track record from the agreements' history and the change log: days "
        "from each agreement's start to their first live link, the share of checks in which their "
        "promised links were live, losses, and reclaims (a lost link of theirs live again).",
    )
    show.add_argument(
        "partner", help="the partner's domain or site (e.g. partner.example), or one of its agreement ids"
    )
    show.add_argument("--json", action="store_true", help="print the track record as JSON")


async def run_partner_command(engine: Engine, args: argparse.Namespace) -> int:
    if args.partner_command != "show":
        raise InputError(f"unknown partner command {args.partner_command!r}")
    record = await engine.agreements.partner_record(args.partner)
    if args.json:
        print_json(record.to_json())
    else:
        sys.stdout.write(render_partner_record(record))
    return EXIT_OK
