"""``linkpact agreement ...`` as a user runs it (real subprocesses, real local sites)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.site import LocalSite
from tests.test_cli import run_cli


@pytest.fixture
def partner() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.2") as s:
        yield s


def test_add_list_show_check(site: LocalSite, partner: LocalSite, tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    site.html("/partners", f'<main><a href="{partner.url("/guide")}">Partner guide</a></main>')
    partner.html("/resources", f'<main><a href="{site.url("/product")}" rel="nofollow">Our kit</a></main>')
    added = run_cli(
        "agreement", "add", "--partner", "Partner Bakery", "--site", partner.url("/"),
        "--contact-email", "pat@partner.example", "--relevance", "both bake bread", "--relevance-score", "4",
        "--link", site.url("/partners"), partner.url("/guide"), "--direction", "ours",
        "--link", partner.url("/resources"), site.url("/product"), "--anchor", "Our kit",
        "--owner", "U0OWNER", "--json",
        db=db,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert data["id"] == "1" and data["state"] == "pending"
    assert [link["direction"] for link in data["links"]] == ["ours", "theirs"]
    assert data["qualification"]["relevance"] == {"note": "both bake bread", "score": 4}

    checked = run_cli("agreement", "check", "1", "--json", db=db)
    assert checked.returncode == 0, checked.stderr  # pending (before the deadline) is not a problem yet
    [result] = json.loads(checked.stdout)
    assert result["links"][0]["health"] == "healthy"
    assert (result["links"][1]["health"], result["links"][1]["reason"]) == ("failing", "now_nofollow")

    listed = run_cli("agreement", "list", db=db)
    assert "pending (1):" in listed.stdout and "#1 Partner Bakery" in listed.stdout
    shown = run_cli("agreement", "show", "1", db=db)
    assert "now_nofollow" in shown.stdout
    assert "history:" in shown.stdout and "created" in shown.stdout
    assert json.loads(run_cli("agreement", "list", "--state", "live", "--json", db=db).stdout) == []


def test_bad_agreement_input_exits_2_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    past = run_cli(
        "agreement", "add", "--partner", "P", "--site", "https://partner.example/",
        "--deadline", "2020-01-01", "--link", "https://partner.example/a", "https://ours.example/",
        db=db,
    )  # fmt: skip
    assert past.returncode == 2
    assert "deadline" in past.stderr and "past" in past.stderr
    orphan = run_cli(
        "agreement", "add", "--partner", "P", "--site", "https://p.example/", "--anchor", "x", db=db
    )
    assert orphan.returncode == 2 and "must follow a --link" in orphan.stderr
    unknown = run_cli("agreement", "show", "99", db=db)
    assert unknown.returncode == 2 and "no agreement" in unknown.stderr
    assert json.loads(run_cli("agreement", "list", "--json", db=db).stdout) == []


def test_export_then_import_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    added = run_cli(
        "agreement", "add", "--partner", "Partner", "--site", "https://partner.example/",
        "--notes", "=cmd|' /C calc'!A0", "--kind", "paid",
        "--link", "https://partner.example/review", "https://ours.example/kit", "--anchor", "@kit",
        db=db,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    export = tmp_path / "agreements.csv"
    assert run_cli("agreement", "export", str(export), db=db).returncode == 0
    text = export.read_text(encoding="utf-8-sig")
    assert text.startswith("URL FROM,TAGS,NOTES,EXPECTED LANDING PAGE URL,EXPECTED FOLLOW,EXPECTED ANCHOR")
    assert "'=cmd" in text and "'@kit" in text  # formula-looking cells neutralised

    other = tmp_path / "other.json"
    imported = run_cli("agreement", "import", str(export), "--json", db=other)
    assert imported.returncode == 0, imported.stderr
    [agreement] = json.loads(imported.stdout)
    assert agreement["notes"] == "=cmd|' /C calc'!A0"
    assert agreement["links"][0]["expected_anchor"] == "@kit"
    assert agreement["links"][0]["expected_rel"] == "sponsored"

    broken = tmp_path / "broken.csv"
    broken.write_text("URL FROM,EXPECTED LANDING PAGE URL\nnot a url,https://ours.example/\n")
    refused = run_cli("agreement", "import", str(broken), db=other)
    assert refused.returncode == 2 and "row 2" in refused.stderr
    assert len(json.loads(run_cli("agreement", "list", "--json", db=other).stdout)) == 1


def _add_two(db: Path) -> None:
    for partner, path in (("Bakery", "bakery"), ("Mill", "mill")):
        added = run_cli(
            "agreement", "add", "--partner", partner, "--site", f"https://{path}.example/",
            "--link", f"https://{path}.example/friends", "https://ours.example/",
            "--link", "https://ours.example/partners", f"https://{path}.example/", "--direction", "ours",
            db=db,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr


def test_reimporting_an_export_into_its_database_is_refused_not_duplicated(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    _add_two(db)
    export = tmp_path / "agreements.csv"
    assert run_cli("agreement", "export", str(export), db=db).returncode == 0
    before = db.read_bytes()

    again = run_cli("agreement", "import", str(export), db=db)
    assert again.returncode == 2, again.stdout
    # The export lists the newest agreement first.
    assert "rows 2, 3: this agreement is already stored as #2 (Mill" in again.stderr
    assert "rows 4, 5: this agreement is already stored as #1 (Bakery" in again.stderr
    assert "Traceback" not in again.stderr and again.stdout == ""
    assert db.read_bytes() == before  # nothing written
    listed = json.loads(run_cli("agreement", "list", "--json", db=db).stdout)
    assert sorted(a["id"] for a in listed) == ["1", "2"]

    # The key is the agreement, not its id: a Linkody sheet (no ids; one agreement per row) read twice.
    linkody = tmp_path / "linkody.csv"
    linkody.write_text(
        "URL FROM,EXPECTED LANDING PAGE URL\r\nhttps://rye.example/x,https://ours.example/\r\n"
    )
    assert run_cli("agreement", "import", str(linkody), db=db).returncode == 0
    after_first = db.read_bytes()
    second = run_cli("agreement", "import", str(linkody), db=db)
    assert second.returncode == 2
    assert "row 2: this agreement is already stored as #3 (rye.example" in second.stderr
    assert db.read_bytes() == after_first

    # Into another database the same file imports (the round trip is what export is for) ...
    other = tmp_path / "other.json"
    assert run_cli("agreement", "import", str(export), db=other).returncode == 0
    # ... once.
    twice = run_cli("agreement", "import", str(export), db=other)
    assert twice.returncode == 2 and "already stored as #1 (Mill" in twice.stderr
    assert len(json.loads(run_cli("agreement", "list", "--json", db=other).stdout)) == 2


def _run_limited(args: list[str], db: Path, **options: object) -> subprocess.CompletedProcess[str]:
    """``run_cli`` with the address space capped at 1.5 GB, so reading without a cap fails fast
    (MemoryError) instead of taking the machine's memory."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    env = {**os.environ, "LINKPACT_DB": str(db)}
    env.pop("LINKPACT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env, cwd=db.parent,
        timeout=30, preexec_fn=cap_memory, check=False, **options,  # type: ignore[arg-type]
    )  # fmt: skip


def test_agreement_import_refuses_devices_and_pipes_and_reads_stdin(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    zero = _run_limited(["agreement", "import", "/dev/zero"], db)
    assert zero.returncode == 2, zero.stderr
    assert "/dev/zero is a character device, not a file" in zero.stderr
    fifo = tmp_path / "agreements.fifo"
    os.mkfifo(fifo)
    piped = _run_limited(["agreement", "import", str(fifo)], db)  # no writer: reading it would block
    assert piped.returncode == 2 and "is a pipe (FIFO), not a file" in piped.stderr
    endless = subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE)  # a pipe without an end
    try:
        capped = _run_limited(["agreement", "import", "-"], db, stdin=endless.stdout)
    finally:
        endless.kill()
        endless.wait()
    assert capped.returncode == 2 and "standard input is over the limit of 50,000,000 bytes" in capped.stderr
    text = "URL FROM,EXPECTED LANDING PAGE URL\r\nhttps://p.example/x,https://ours.example/\r\n"
    stdin = _run_limited(["agreement", "import", "-"], db, input=text)
    assert stdin.returncode == 0, stdin.stderr
    assert "imported 1 agreement from -" in stdin.stdout
