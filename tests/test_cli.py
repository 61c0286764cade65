"""``linkpact`` as a user runs it: a real subprocess against real local servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from tests.support.site import LocalSite

CLI_TIMEOUT_S = 60


def run_cli(*args: str, db: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "LINKPACT_DB": str(db),
        "LINKPACT_ALLOW_NETWORKS": "127.0.0.0/8",
        "LINKPACT_TIMEOUT_S": "5",
        **(env or {}),
    }
    full_env.pop("LINKPACT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=CLI_TIMEOUT_S,
        cwd=db.parent,  # no stray .env from the project directory
    )


def test_check_json_exit_0_on_a_healthy_page(site: LocalSite, tmp_path: Path) -> None:
    site.html("/a", "<p>a</p>")
    site.html("/", '<html><body><main><a href="/a" rel="nofollow, ugc">A page</a></main></body></html>')
    proc = run_cli("check", site.url("/"), "--json", db=tmp_path / "db.json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["page"] == {
        **data["page"],
        "url": site.url("/"),
        "final_url": site.url("/"),
        "status": 200,
        "indexable": True,
    }
    [link] = data["outbound"]
    assert link["url"] == site.url("/a")
    assert link["verdict"] == "ok"
    assert link["status"] == 200
    assert link["anchor"] == "A page"
    assert link["rel"] == ["nofollow", "ugc"]
    assert link["placement"] == "main"
    assert link["internal"] is True
    assert link["redirects"] == []
    assert data["inbound"] == []
    assert data["summary"]["outbound"]["ok"] == 1
    assert "Traceback" not in proc.stderr


def test_check_text_exit_1_when_a_link_is_broken(site: LocalSite, tmp_path: Path) -> None:
    site.html("/", '<a href="/missing">gone</a> <a href="/">home</a>')
    proc = run_cli("check", site.url("/"), "--quiet", db=tmp_path / "db.json")
    assert proc.returncode == 1, proc.stderr
    assert "BROKEN" in proc.stdout
    assert site.url("/missing") in proc.stdout
    assert "http_404" in proc.stdout
    assert proc.stderr == ""  # --quiet: no progress line


def test_progress_line_goes_to_stderr(site: LocalSite, tmp_path: Path) -> None:
    site.html("/", '<a href="/">home</a>')
    proc = run_cli("check", site.url("/"), "--json", db=tmp_path / "db.json")
    assert proc.returncode == 0
    assert "linkpact: fetching page" in proc.stderr
    json.loads(proc.stdout)  # stdout stays pure JSON


def test_refused_and_bad_urls_exit_2_without_traceback(tmp_path: Path) -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "ftp://example.com/", "nonsense"):
        proc = run_cli("check", url, db=tmp_path / "db.json", env={"LINKPACT_ALLOW_NETWORKS": ""})
        assert proc.returncode == 2, (url, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("linkpact: ")
        assert "Traceback" not in proc.stderr
        assert proc.stdout == ""


def test_bad_settings_and_corrupt_db_exit_2(tmp_path: Path) -> None:
    proc = run_cli("tracked", db=tmp_path / "db.json", env={"LINKPACT_CONCURRENCY": "lots"})
    assert proc.returncode == 2
    assert "LINKPACT_CONCURRENCY" in proc.stderr
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"backlinks": {"1": ')
    proc = run_cli("tracked", db=corrupt)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert corrupt.read_text() == '{"backlinks": {"1": '  # never overwritten with an empty database


def test_track_tracked_untrack_round_trip(site: LocalSite, tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    source, target = "https://partner.example/resources", "https://ours.example/guide"
    assert run_cli("track", source, target, db=db).returncode == 0
    again = run_cli("track", source, target + "/", db=db)
    assert again.returncode == 0 and "already tracked" in again.stdout
    listed = json.loads(run_cli("tracked", "--json", db=db).stdout)
    assert [(b["source_url"], b["target_url"]) for b in listed] == [(source, target)]
    assert run_cli("untrack", source, target, db=db).returncode == 0
    missing = run_cli("untrack", source, target, db=db)
    assert missing.returncode == 2 and "not tracked" in missing.stderr
    assert "no tracked backlinks" in run_cli("tracked", db=db).stdout


def test_inbound_lost_backlink_exits_1(site: LocalSite, tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    site.html("/ours", "<p>our page</p>")
    site.html("/partner", "<p>no link here</p>")
    assert run_cli("track", site.url("/partner"), site.url("/ours"), db=db).returncode == 0
    proc = run_cli("check", site.url("/ours"), "--json", db=db)
    assert proc.returncode == 1
    [inbound] = json.loads(proc.stdout)["inbound"]
    assert inbound["verdict"] == "lost" and inbound["reason"] == "link_removed"
    assert inbound["source_url"] == site.url("/partner")


def test_usage_errors_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    assert proc.returncode == 2
    assert "url" in proc.stderr


def test_check_does_not_load_the_other_commands_modules() -> None:
    """Start-up is part of every `linkpact check`: agreements, audit and import stay unimported."""
    code = (
        "import sys; from bot.cli import build_parser, named_command; argv = ['check', 'http://x.test/'];"
        "build_parser(named_command(argv)).parse_args(argv);"
        "print(sorted(m for m in sys.modules if m.startswith(('bot.audit', 'bot.imports', 'bot.cli_'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _cut_short(args: list[str], db: Path, *, read: int) -> tuple[int, str, bytes]:
    """Run ``linkpact ARGS | head -c READ``: read that many bytes of stdout, close the pipe as ``head``
    does, and return the exit code, stderr and what was read."""
    env = {**os.environ, "LINKPACT_DB": str(db), "LINKPACT_ALLOW_NETWORKS": "127.0.0.0/8"}
    env.pop("LINKPACT_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=db.parent,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(read)
    proc.stdout.close()  # the reader goes away while linkpact still has output to write
    stderr = proc.stderr.read().decode()
    return proc.wait(timeout=CLI_TIMEOUT_S), stderr, head


def test_a_closed_pipe_ends_the_command_quietly(site: LocalSite, tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    listing = tmp_path / "list.csv"
    # Far more than a pipe's buffer (64 kB on Linux) of output, so the writes really hit the closed pipe.
    listing.write_text(
        "linking page,target\n"
        + "".join(f"https://site{i}.example/page,https://ours.example/\n" for i in range(4000))
    )
    assert run_cli("import", str(listing), db=db).returncode == 0

    code, stderr, head = _cut_short(["tracked"], db, read=20)  # linkpact tracked | head -c 20
    assert head.startswith(b"https://site")
    assert (code, stderr) == (141, "")  # 128 + SIGPIPE, as a shell shows it; no "internal error"
    code, stderr, head = _cut_short(["tracked", "--json"], db, read=10)
    assert head.startswith(b"[")
    assert (code, stderr) == (141, "")

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok", content_type="text/html")

    site.fallback = ok
    anchor = "a long anchor text " * 10
    site.html("/", "".join(f'<a href="/p{i}">{anchor}{i}</a>' for i in range(300)))
    code, stderr, head = _cut_short(["check", site.url("/"), "--json", "--quiet"], db, read=10)
    assert head.startswith(b"{")
    assert (code, stderr) == (141, "")


def test_output_to_a_reader_that_reads_everything_is_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    proc = run_cli("tracked", db=db)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("no tracked backlinks yet")
