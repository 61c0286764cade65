"""``linkpact recheck``: recheck tracked backlinks and promised links now (what the schedule runs)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, SubParsers, plural, print_json

if TYPE_CHECKING:
    from bot.engine import Engine


def add_recheck_parser(sub: SubParsers) -> None:
    recheck = sub.add_parser("recheck", help=COMMAND_HELP["recheck"])
    scope = recheck.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="everything (the default)")
    scope.add_argument("--agreement", metavar="ID", help="only this agreement's promised links")
    scope.add_argument(
        "--due",
        action="store_true",
        help="only what the schedule says is due now: each agreement by its priority, other tracked "
        "backlinks every LINKPACT_RECHECK_INTERVAL_H hours (for cron, without `linkpact serve`)",
    )
    recheck.add_argument("--json", action="store_true", help="print the summary as JSON")


async def run_recheck_command(engine: Engine, args: argparse.Namespace) -> int:
    if args.due:
        work = await engine.cadence.due(
            engine.now(), backlink_interval_h=engine.settings.monitor.recheck_interval_h
        )
        summary, proposals = await engine.recheck(
            agreement_ids=work.agreement_ids, backlink_ids=work.backlink_ids, by="cli"
        )
    else:
        summary, proposals = await engine.recheck(agreement_ref=args.agreement, by="cli")
    if args.json:
        data = summary.to_json()
        data["prune_proposals"] = [
            {"id": p.id, "agreement_id": p.agreement_id, "reasons": [r.code for r in p.reasons]}
            for p in proposals
        ]
        print_json(data)
        return EXIT_OK
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(summary.verdicts.items())) or "nothing to check"
    backlinks = plural(summary.backlinks, "tracked backlink")
    counted = f"{backlinks} and {plural(summary.promised_links, 'promised link')}"
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
        print(f"{plural(len(proposals), 'agreement')} proposed for pruning (see: linkpact digest --dry-run)")
    return EXIT_OK
