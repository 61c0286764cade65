"""``linkpact recheck``: recheck tracked backlinks and promised links now (what the schedule runs)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli.output import EXIT_OK, SubParsers, print_json

if TYPE_CHECKING:
    from bot.engine import Engine


def add_recheck_parser(sub: SubParsers) -> None:
    recheck = sub.add_parser("recheck", help="recheck tracked backlinks and promised links now")
    scope = recheck.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="everything (the default)")
    scope.add_argument("--agreement", metavar="ID", help="only this agreement's promised links")
    recheck.add_argument("--json", action="store_true")


async def run_recheck_command(engine: Engine, args: argparse.Namespace) -> int:
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
