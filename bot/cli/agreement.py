"""``linkpact agreement ...``: log, list, show, verify, prioritise, export and import partnership agreements.

``add`` takes one ``--link SOURCE TARGET`` per promised link; ``--direction``, ``--anchor``, ``--rel`` and
``--placement`` that follow a ``--link`` apply to that link. ``set-priority`` sets how often an agreement is
rechecked (docs/monitoring.md, "Cadence").
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.agreements.model import (
    QUALIFICATION_FIELDS,
    AgreementInput,
    AgreementKind,
    AgreementState,
    Direction,
    ExpectedRel,
    LinkInput,
    Priority,
)
from bot.agreements.report import agreement_to_json, plural, render_agreement, render_agreement_list
from bot.cli.files import read_input_file
from bot.errors import InputError
from bot.models import Placement

if TYPE_CHECKING:
    from bot.engine import Engine

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, EXIT_PROBLEMS, SubParsers

# The largest CSV file `agreement import` reads (bytes, enforced while reading); far above any real
# agreements sheet: the 10,000-row cap (bot.agreements.csvfile.MAX_IMPORT_ROWS) binds long before.
MAX_IMPORT_BYTES = 50_000_000
LINK_OPTIONS = ("direction", "anchor", "rel", "placement")
PRIORITIES = [p.value for p in Priority]
PRIORITY_HELP = "how often it is rechecked: high daily, normal every 3 days, low weekly"


class _NewLink(argparse.Action):
    """``--link SOURCE TARGET`` starts a promised link."""

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any, _: Any = None
    ) -> None:
        links = list(getattr(ns, "links", None) or [])
        links.append({"source_url": values[0], "target_url": values[1]})
        ns.links = links


class _LinkOption(argparse.Action):
    """``--direction/--anchor/--rel/--placement`` set a field of the latest ``--link``."""

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any, _: Any = None
    ) -> None:
        links = getattr(ns, "links", None)
        if not links:
            parser.error(f"{self.option_strings[0]} must follow a --link SOURCE TARGET")
        links[-1][self.dest] = values


ADD_DESCRIPTION = """\
Log a partnership agreement: who the partner is and which links each side promised.

Give one --link SOURCE TARGET per promised link. --direction, --anchor, --rel and --placement describe
a link: each applies to the --link written just before it, so put them after that --link."""
ADD_EPILOG = """\
example:
  linkpact agreement add --partner "Partner Bakery" --site https://partner.example \\
    --link https://ours.example/partners https://partner.example/guide --direction ours \\
    --link https://partner.example/resources https://ours.example/kit --anchor "sourdough kit"
"""


def add_agreement_parser(sub: SubParsers) -> None:
    parser = sub.add_parser("agreement", help=COMMAND_HELP["agreement"])
    commands = parser.add_subparsers(
        dest="agreement_command", required=True, parser_class=type(parser), help="what to do"
    )

    add = commands.add_parser(
        "add",
        help="log an agreement",
        description=ADD_DESCRIPTION,
        epilog=ADD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("--partner", required=True, help="the partner's name")
    add.add_argument("--site", required=True, help="the partner's site, e.g. https://partner.example")
    add.add_argument(
        "--kind", default="exchange", choices=[k.value for k in AgreementKind], help="default: exchange"
    )
    add.add_argument("--deadline", default="", help="YYYY-MM-DD (default: in 7 days)")
    add.add_argument(
        "--priority",
        default="",
        type=str.lower,
        choices=PRIORITIES,
        help=PRIORITY_HELP + " (default: normal)",
    )
    add.add_argument("--owner", default="", help="who logged it (default: your user name)")
    add.add_argument("--contact-name", default="", help="the partner's contact person")
    add.add_argument("--contact-email", default="", help="the contact's email address")
    add.add_argument("--contact-slack", default="", help="the contact's Slack user id, e.g. U123ABC")
    add.add_argument("--notes", default="", help="what was agreed, where the thread is")
    add.add_argument("--tag", action="append", default=[], dest="tags", help="a tag (repeat for several)")
    add.add_argument("--cost", default="", help="what the link costs, as text (e.g. '150 EUR')")
    for name in QUALIFICATION_FIELDS:
        flag, words = name.replace("_", "-"), name.replace("_", " ")
        add.add_argument(f"--{flag}", default="", help=f"qualification, {words}: a note")
        add.add_argument(f"--{flag}-score", default="", help=f"qualification, {words}: a score 1-5")
    links = add.add_argument_group(
        "promised links",
        "--direction, --anchor, --rel and --placement apply to the --link just before them.",
    )
    links.add_argument(
        "--link", nargs=2, metavar=("SOURCE", "TARGET"), action=_NewLink, dest="links",
        help="a promised link: SOURCE page links to TARGET (repeat for each link)",
    )  # fmt: skip
    links.add_argument(
        "--direction", action=_LinkOption, choices=[d.value for d in Direction],
        help="where the preceding --link sits: ours (our site) or theirs (default: theirs)",
    )  # fmt: skip
    links.add_argument("--anchor", action=_LinkOption, help="the preceding --link's expected anchor text")
    links.add_argument(
        "--rel", action=_LinkOption, choices=[r.value for r in ExpectedRel],
        help="the preceding --link's expected rel (default: follow; sponsored for a paid agreement)",
    )  # fmt: skip
    links.add_argument(
        "--placement", action=_LinkOption, choices=[p.value for p in Placement],
        help="where on the page the preceding --link is expected (default: anywhere)",
    )  # fmt: skip
    add.add_argument("--json", action="store_true", help="print the stored agreement as JSON")

    listing = commands.add_parser("list", help="agreements newest first, grouped by state")
    listing.add_argument("--state", choices=[s.value for s in AgreementState], help="only this state")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")

    show = commands.add_parser("show", help="one agreement with its links and history")
    show.add_argument("ref", help="the agreement's id or the partner's domain")
    show.add_argument("--json", action="store_true", help="print the agreement as JSON")

    check = commands.add_parser("check", help="verify promised links now (all, or one agreement)")
    check.add_argument("ref", nargs="?", help="the agreement's id or the partner's domain (default: all)")
    check.add_argument("--json", action="store_true", help="print the agreements as JSON")

    priority = commands.add_parser(
        "set-priority", help="set how often an agreement is rechecked (high, normal, low)"
    )
    priority.add_argument("ref", help="the agreement's id or the partner's domain")
    priority.add_argument(
        "level",
        type=str.lower,
        choices=PRIORITIES,
        metavar="LEVEL",
        help=f"high, normal or low: {PRIORITY_HELP}",
    )
    priority.add_argument("--by", default="", help="who changes it (default: your user name)")

    export = commands.add_parser("export", help="write every agreement to a CSV file")
    export.add_argument("file", help="the CSV file to write ('-' for stdout)")

    importing = commands.add_parser("import", help="read agreements from a CSV file (all or nothing)")
    importing.add_argument("file", help="the CSV file to read ('-' for standard input)")
    importing.add_argument("--owner", default="", help="who owns the imported agreements (default: you)")
    importing.add_argument("--json", action="store_true", help="print the stored agreements as JSON")


def _owner(raw: str) -> str:
    if raw.strip():
        return raw.strip()
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def input_from_args(args: argparse.Namespace) -> AgreementInput:
    links = tuple(
        LinkInput(
            source_url=item["source_url"],
            target_url=item["target_url"],
            direction=item.get("direction") or Direction.THEIRS.value,
            anchor=item.get("anchor") or "",
            rel=item.get("rel") or "",
            placement=item.get("placement") or "",
        )
        for item in (args.links or [])
    )
    return AgreementInput(
        partner_name=args.partner,
        partner_site=args.site,
        owner=_owner(args.owner),
        links=links,
        kind=args.kind,
        deadline=args.deadline,
        contact_name=args.contact_name,
        contact_email=args.contact_email,
        contact_slack=args.contact_slack,
        notes=args.notes,
        qualification={
            name: (getattr(args, name), getattr(args, f"{name}_score")) for name in QUALIFICATION_FIELDS
        },
        tags=tuple(args.tags),
        cost=args.cost,
        priority=args.priority,
    )


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


async def run_agreement_command(engine: Engine, args: argparse.Namespace) -> int:
    service = engine.agreements
    today = service.today()
    command = args.agreement_command
    if command == "add":
        agreement = await service.add(input_from_args(args))
        if args.json:
            _print_json(agreement_to_json(agreement, today))
        else:
            print(f"logged agreement #{agreement.id} with {agreement.partner_name}; verify it with "
                  f"`linkpact agreement check {agreement.id}`")  # fmt: skip
        return EXIT_OK
    if command == "list":
        state = AgreementState(args.state) if args.state else None
        agreements = await service.all(state)
        if args.json:
            _print_json([agreement_to_json(a, today) for a in agreements])
        else:
            sys.stdout.write(render_agreement_list(agreements, today))
        return EXIT_OK
    if command == "show":
        agreement = await service.get(args.ref)
        history = await service.history(agreement.id)
        if args.json:
            _print_json(agreement_to_json(agreement, today, history))
        else:
            sys.stdout.write(render_agreement(agreement, today, history))
        return EXIT_OK
    if command == "check":
        checked = await service.check([args.ref] if args.ref else None, by=_owner(""))
        if args.json:
            _print_json([agreement_to_json(a, today) for a in checked])
        else:
            for agreement in checked:
                sys.stdout.write(render_agreement(agreement, today))
        bad = (AgreementState.BROKEN, AgreementState.ONE_SIDED)
        return EXIT_PROBLEMS if any(a.state(today) in bad for a in checked) else EXIT_OK
    if command == "set-priority":
        agreement, was = await service.set_priority(args.ref, args.level, by=_owner(args.by))
        every = f"rechecked every {agreement.recheck_interval_h:g} h"
        if was is agreement.priority:
            print(f"agreement #{agreement.id} is already {agreement.priority.value} priority ({every})")
        else:
            now = agreement.priority.value
            print(f"agreement #{agreement.id} is now {now} priority ({every}; was {was.value})")
        return EXIT_OK
    if command == "export":
        from bot.agreements.csvfile import export_csv_bytes

        data = export_csv_bytes(await service.all(), today=today)
        if args.file == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            _write_atomically(Path(args.file), data)
            print(f"wrote {args.file}")
        return EXIT_OK
    if command == "import":
        from bot.agreements.csvfile import import_csv

        stored = await import_csv(service, _read_import(args.file), owner=_owner(args.owner))
        if args.json:
            _print_json([agreement_to_json(a, today) for a in stored])
        else:
            print(f"imported {plural(len(stored), 'agreement')} from {args.file}")
        return EXIT_OK
    raise InputError(f"unknown agreement command {command!r}")


def _read_import(name: str) -> bytes:
    """The file to import (``-``: standard input): a regular file, read up to :data:`MAX_IMPORT_BYTES`
    (:func:`bot.cli.files.read_input_file`). Raises :class:`InputError`."""
    return read_input_file(name, max_bytes=MAX_IMPORT_BYTES)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder so a crash never leaves half a CSV."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
