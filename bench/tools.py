"""The link checkers the benchmark runs: how to invoke each at a given concurrency and how to read its output.

Every tool is asked the same question (check every link on one page, do not crawl further) and its own
output is parsed for how many links it checked and how many it called broken, so a tool that skipped
work cannot look fast.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
LINKINATOR_CLI = BENCH_DIR / "node_modules" / "linkinator" / "build" / "src" / "cli.js"
PEERS_VENV = BENCH_DIR / ".peers-venv"
LINKCHECKER = PEERS_VENV / "bin" / "linkchecker"
# LinkChecker waits 1/maxrequestspersecond between two requests to one host (values above 10 only count
# for hosts that send a "LinkChecker" header, which the farm does). 10,000/s makes that wait negligible,
# so LinkChecker, like the others, is bounded by its thread count alone.
LINKCHECKER_MAX_REQUESTS_PER_SECOND = 10_000
# Per-request timeout given to every tool that takes one; the farm answers in ~20 ms, so it never fires.
REQUEST_TIMEOUT_S = 30
# linkpact's bytecode cache, next to the runs' folders (see linkpact() below).
PYCACHE_DIR_NAME = "linkpact-pycache"


@dataclass(frozen=True, slots=True)
class Counts:
    """What a tool's output says it did: links checked (the page itself excluded) and by outcome."""

    checked: int
    ok: int
    broken: int
    other: int
    detail: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    """One row of the benchmark: a name, how to run it against ``page_url`` in ``workdir``, how to parse."""

    name: str
    family: str  # linkpact, linkinator, linkchecker: rows of one family share a version
    concurrency: str  # what the row's concurrency setting is, in words, for the table
    invocation: Callable[[str, Path], Invocation]
    parse: Callable[[Path], Counts]


def base_env() -> dict[str, str]:
    """The environment every tool runs with: ours, minus anything that would change a tool's behaviour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINKPACT_", "NODE_OPTIONS"))}
    # No proxy for loopback, whatever the machine sets.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.0/8,localhost"
    return env


# -- linkinator --------------------------------------------------------------------------------------------


def linkinator(concurrency: int, *, retry_429: bool = False) -> Tool:
    """``retry_429`` adds ``--retry``: honour a 429's Retry-After (linkinator holds that host, then asks
    again, with no limit on tries); without it linkinator reports a 429 as broken."""

    def invocation(page_url: str, workdir: Path) -> Invocation:
        argv = [
            "node", str(LINKINATOR_CLI), page_url,
            "--concurrency", str(concurrency),
            "--timeout", str(REQUEST_TIMEOUT_S * 1000),
            "--format", "json",
        ]  # fmt: skip
        if retry_429:
            argv.append("--retry")
        return Invocation(argv, base_env())

    return Tool("linkinator", "linkinator", str(concurrency), invocation, parse_linkinator)


def parse_linkinator(stdout: Path) -> Counts:
    """linkinator --format json: ``{"passed": bool, "links": [{url, status, state, parent?}]}``."""
    data = json.loads(stdout.read_text())
    links = [link for link in data["links"] if link.get("parent")]  # the page itself has no parent
    states = Counter(link["state"] for link in links)
    detail = Counter(f"{link['state']} {link.get('status')}" for link in links)
    return Counts(
        checked=len(links),
        ok=states["OK"],
        broken=states["BROKEN"],
        other=len(links) - states["OK"] - states["BROKEN"],
        detail=dict(detail),
    )


# -- LinkChecker -------------------------------------------------------------------------------------------


def linkchecker(threads: int) -> Tool:
    def invocation(page_url: str, workdir: Path) -> Invocation:
        # LinkChecker drops root privileges to "nobody" at start, so its config must be world-readable;
        # a private config dir also keeps any ~/.config/linkchecker/linkcheckerrc out of the run.
        config_dir = workdir / "linkchecker-config"
        config_dir.mkdir(exist_ok=True)
        config_dir.chmod(0o755)
        workdir.chmod(0o755)
        rc = config_dir / "linkcheckerrc"
        rc.write_text(
            "[checking]\n"
            f"maxrequestspersecond={LINKCHECKER_MAX_REQUESTS_PER_SECOND}\n"
            f"timeout={REQUEST_TIMEOUT_S}\n"
        )
        rc.chmod(0o644)
        env = base_env() | {"XDG_CONFIG_HOME": str(config_dir), "XDG_DATA_HOME": str(config_dir)}
        argv = [
            str(LINKCHECKER), "--config", str(rc),
            "--threads", str(threads),
            "--recursion-level", "1",  # the page (level 0) and its links (level 1), no further
            "--check-extern",  # links to the other farm hosts are "external": check them too
            "--verbose",  # log every URL, valid ones too, so we can count them
            "--output", "csv/utf-8", "--no-status",
            page_url,
        ]  # fmt: skip
        return Invocation(argv, env)

    return Tool("LinkChecker", "linkchecker", str(threads), invocation, parse_linkchecker)


def parse_linkchecker(stdout: Path) -> Counts:
    """LinkChecker ``-o csv``: ``#`` comment lines, a header, one ``;``-separated row per URL."""
    lines = [line for line in stdout.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter=";"))
    links = [row for row in rows if row.get("parentname")]  # the start page has no parent
    valid = Counter(row["valid"] for row in links)
    detail = Counter(f"{row['valid']} {row['result']}" for row in links)
    return Counts(
        checked=len(links),
        ok=valid["True"],
        broken=valid["False"],
        other=len(links) - valid["True"] - valid["False"],
        detail=dict(detail),
    )


# -- linkpact ----------------------------------------------------------------------------------------------


def linkpact_command() -> list[str]:
    """The installed ``linkpact`` console script next to this interpreter, else ``python -m bot.cli``."""
    script = Path(sys.executable).parent / "linkpact"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "bot.cli"]


def linkpact(
    name: str,
    *,
    concurrency: int | None,
    per_host: int | None,
    retries: int | None = None,
    label: str | None = None,
    source: Path | None = None,
) -> Tool:
    """A linkpact row. ``None`` leaves a setting at linkpact's default (what a user gets). ``source``: a
    checkout of linkpact to run instead of the installed one (its folder goes first on ``PYTHONPATH``),
    so a change can be measured against its baseline in the same run."""

    def invocation(page_url: str, workdir: Path) -> Invocation:
        env = base_env() | {
            "LINKPACT_ALLOW_NETWORKS": "127.0.0.0/8",  # the farm is on loopback, refused by default
            "LINKPACT_DB": str(workdir / "linkpact.json"),  # a fresh DB: no tracked backlinks
        }
        if concurrency is not None:
            env["LINKPACT_CONCURRENCY"] = str(concurrency)
        if per_host is not None:
            env["LINKPACT_PER_HOST_CONCURRENCY"] = str(per_host)
        if retries is not None:
            env["LINKPACT_RETRIES"] = str(retries)
        # Bytecode as an installed linkpact has it (`pip install .` compiles every module): this tree is an
        # editable install, and with PYTHONDONTWRITEBYTECODE=1 in the environment (some sandboxes and CI
        # images set it) each run would compile linkpact's modules again, ~0.15 s of CPU no user pays.
        # The cache lives in the run's temporary folder and the warm-up round fills it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir.parent / PYCACHE_DIR_NAME)
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH", "")]))
        return Invocation([*linkpact_command(), "check", page_url, "--json"], env, cwd=workdir)

    shown = label or (f"{concurrency} (per host {per_host})" if concurrency else "default")
    return Tool(name, "linkpact", shown, invocation, parse_linkpact)


def parse_linkpact(stdout: Path) -> Counts:
    """``linkpact check --json`` (docs/report-json.md): one ``outbound`` entry per link occurrence."""
    data = json.loads(stdout.read_text())
    links = data["outbound"]
    verdicts = Counter(link["verdict"] for link in links)
    detail = Counter(f"{link['verdict']} {link['reason']}" for link in links)
    return Counts(
        checked=len(links),
        ok=verdicts["ok"],
        broken=verdicts["broken"],
        other=len(links) - verdicts["ok"] - verdicts["broken"],
        detail=dict(detail),
    )


# -- versions ----------------------------------------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"unknown (exit {done.returncode})"


def versions() -> dict[str, str]:
    """Versions of every tool and runtime in the run, for the results file."""
    return {
        "linkpact": _first_line([*linkpact_command(), "--version"]),
        "linkinator": _first_line(["node", str(LINKINATOR_CLI), "--version"]),
        "linkchecker": _first_line([str(LINKCHECKER), "--version"]),
        "python (linkpact)": sys.version.split()[0],
        "python (LinkChecker)": _first_line([str(PEERS_VENV / "bin" / "python"), "--version"]),
        "node": _first_line(["node", "--version"]),
    }


def missing_peers() -> list[str]:
    """What the setup step has not installed yet (empty when every peer is ready)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Node.js 20)")
    if not LINKINATOR_CLI.exists():
        missing.append(f"linkinator ({LINKINATOR_CLI.relative_to(PROJECT_DIR)})")
    if not LINKCHECKER.exists():
        missing.append(f"LinkChecker ({LINKCHECKER.relative_to(PROJECT_DIR)})")
    return missing
