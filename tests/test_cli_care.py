"""The CLI's help, usage lines and counts, and the priority and partner commands, as a user runs them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bot.cli import build_parser
from bot.cli.names import COMMAND_HELP
from tests.support.site import LocalSite
from tests.test_cli import CLI_TIMEOUT_S, run_cli


def _parsers(
    parser: argparse.ArgumentParser, path: str = "linkpact"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, f"{path} {name}")
    return found


def test_every_argument_and_option_of_every_command_has_help() -> None:
    missing = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._VersionAction)
        and not (action.help or "").strip()
    ]
    assert missing == []


def test_the_usage_line_of_a_parse_error_names_every_command() -> None:
    every = "{" + ",".join(COMMAND_HELP) + "}"
    for argv in (["tracked", "a", "b"], ["nope"], ["agreement", "list", "extra"]):
        proc = subprocess.run(
            [sys.executable, "-m", "bot.cli", *argv], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
        )
        assert proc.returncode == 2
        top_usage = proc.stderr if argv[0] != "agreement" else ""
        if top_usage:
            assert every in "".join(top_usage.split()), proc.stderr
    # A light command line still builds its parser without the heavy modules (start-up stays fast).
    code = (
        "import sys; from bot.cli import build_parser; p = build_parser('tracked');"
        "heavy = ('bot.agreements', 'bot.audit', 'bot.imports');"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_agreement_add_help_says_link_options_apply_to_the_preceding_link() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "agreement", "add", "--help"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "--direction, --anchor, --rel and --placement apply to the --link just before them" in proc.stdout
    assert "--priority {high,normal,low}" in proc.stdout and "high daily, normal every 3 days" in proc.stdout


def test_priority_set_priority_partner_show_and_plurals(
    site: LocalSite, partner: LocalSite, tmp_path: Path
) -> None:
    db = tmp_path / "db.json"
    partner.html("/resources", f'<main><a href="{site.url("/product")}">Our kit</a></main>')
    added = run_cli(
        "agreement", "add", "--partner", "Partner Bakery", "--site", partner.url("/"), "--priority", "high",
        "--link", partner.url("/resources"), site.url("/product"), "--json",
        db=db,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert (data["priority"], data["recheck_interval_h"], data["last_checked_at"]) == ("high", 24.0, None)

    listed = run_cli("agreement", "list", db=db)
    assert ", 1 link, owner " in listed.stdout  # not "1 links"
    rechecked = run_cli("recheck", db=db)
    assert "rechecked 1 tracked backlink and 1 promised link: 2 live" in rechecked.stdout, rechecked.stdout
    # Just checked: nothing is due.
    due = run_cli("recheck", "--due", "--json", db=db)
    assert (json.loads(due.stdout)["promised_links"], json.loads(due.stdout)["backlinks"]) == (0, 0)

    changed = run_cli("agreement", "set-priority", "1", "low", "--by", "U0BOB", db=db)
    assert changed.stdout == "agreement #1 is now low priority (rechecked every 168 h; was high)\n"
    again = run_cli("agreement", "set-priority", "1", "LOW", db=db)
    assert (again.returncode, again.stdout) == (
        0,
        "agreement #1 is already low priority (rechecked every 168 h)\n",
    )
    bad = run_cli("agreement", "set-priority", "1", "urgent", db=db)
    assert bad.returncode == 2 and "invalid choice: 'urgent'" in bad.stderr
    shown = run_cli("agreement", "show", "1", db=db)
    assert "  priority: low (rechecked every 168 h), last checked 20" in shown.stdout
    assert "priority_changed priority=low, was=high" in shown.stdout

    record = run_cli("partner", "show", "127.0.0.2", db=db)
    assert record.returncode == 0, record.stderr
    assert record.stdout.splitlines()[:4] == [
        "127.0.0.2 (Partner Bakery): 1 agreement",
        "  days to deliver: delivered on 1 of 1 agreement, median 0 days after the start",
        "  their links: live in 1 of 1 check (100%)",
        "  0 losses, 0 reclaims (a lost link of theirs live again)",
    ]
    as_json = json.loads(run_cli("partner", "show", partner.url("/"), "--json", db=db).stdout)
    assert (as_json["domain"], as_json["delivered"], as_json["live_share"]) == ("127.0.0.2", 1, 1.0)
    unknown = run_cli("partner", "show", "elsewhere.example", db=db)
    assert unknown.returncode == 2 and "no agreement with id or partner domain" in unknown.stderr
