"""Benchmark ``linkpact check`` against linkinator and LinkChecker on one loopback web farm, in one run.

    bash bench/setup-peers.sh          # once: linkinator into bench/node_modules, LinkChecker into a venv
    python bench/run.py                # with the project's venv active (linkpact installed)

Starts ``bench/webfarm.py`` in its own process (a page of 1,000 links over 10 loopback hosts, ~20 ms added
latency each), then runs every tool ``--repeats`` times (after ``--warmup`` discarded rounds), rotating the
order each round, all at the same concurrency (``--concurrency``, default 100), plus linkpact at its default
politeness (per-host 4, global 64). Each run's wall time, CPU time and peak memory of its process tree are
measured (see ``bench/measure.py``); each tool's own output is parsed for how many links it checked and
how many it called broken. Writes ``bench/results/<stamp>.json`` and prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: import our siblings

import hotspots
from measure import (
    Measurement,
    cpu_seconds_of,
    run_measured,
    self_cpu_s,
    system_busy_s,
    wait_for_quiet,
)
from tools import (
    BENCH_DIR,
    PEERS_VENV,
    PROJECT_DIR,
    Counts,
    Tool,
    linkchecker,
    linkinator,
    linkpact,
    missing_peers,
    versions,
)

# Equal concurrency for every tool: linkinator's own default (100), and with 10 hosts 10 requests in
# flight per host, which any real site serves. Far above what one core needs to saturate: the question is
# how much each tool spends per link, not who opens the most sockets.
DEFAULT_CONCURRENCY = 100
DEFAULT_REPEATS = 3
# One discarded round first, so no tool pays for a cold disk cache (imports, node_modules) in the figures.
DEFAULT_WARMUP = 1
# A run that takes longer than this is killed and reported as timed out (the slowest tool needs ~20 s).
DEFAULT_RUN_TIMEOUT_S = 600.0
FARM_START_TIMEOUT_S = 30.0
# Before each run, wait (up to DEFAULT_SETTLE_MAX_S) until the machine is this quiet: on 2 cores, 15%
# is about a third of a core busy elsewhere. A run that starts on a busy machine is marked as such.
DEFAULT_SETTLE_BUSY_SHARE = 0.15
DEFAULT_SETTLE_MAX_S = 120.0
# A run during which other processes took more than a fifth of the machine is redone (at most
# DEFAULT_REDO_DISTURBED times; then it is kept and the table marks the row).
DEFAULT_MAX_BACKGROUND_SHARE = 0.20
DEFAULT_REDO_DISTURBED = 3
# The aim for linkpact (issue 2, section 6).
AIM_PEAK_RSS_MB = 150
MB = 1_000_000
RESULTS_DIR = BENCH_DIR / "results"


def make_tools(concurrency: int, *, rate_limited: bool = False) -> list[Tool]:
    """The rows. ``rate_limited`` (some farm hosts answer 429 for a while): linkinator honours
    Retry-After (``--retry``), as linkpact always does; without it linkinator calls every 429 broken."""
    return [
        linkpact("linkpact", concurrency=concurrency, per_host=concurrency),
        linkinator(concurrency, retry_429=rate_limited),
        linkchecker(concurrency),
        linkpact("linkpact, default politeness", concurrency=None, per_host=None, label="64 (per host 4)"),
        # The same as the first row without linkpact's retries of 5xx answers, which linkinator and
        # LinkChecker do not make by default: isolates what those retries cost in wall time.
        linkpact(
            "linkpact, no retries",
            concurrency=concurrency,
            per_host=concurrency,
            retries=0,
            label=f"{concurrency} (per host {concurrency})",
        ),
    ]


def baseline_tools(tools: list[Tool], concurrency: int, source: Path) -> list[Tool]:
    """``--baseline``: the linkpact rows among ``tools`` again, run from the checkout ``source`` (named
    "<row> (baseline)"), so a change and what it replaces share the farm, the machine and the rounds."""
    names = {t.name for t in tools}
    rows = []
    if "linkpact" in names:
        rows.append(
            linkpact("linkpact (baseline)", concurrency=concurrency, per_host=concurrency, source=source)
        )
    if "linkpact, default politeness" in names:
        rows.append(
            linkpact(
                "linkpact, default politeness (baseline)",
                concurrency=None,
                per_host=None,
                label="64 (per host 4)",
                source=source,
            )
        )
    if "linkpact, no retries" in names:
        rows.append(
            linkpact(
                "linkpact, no retries (baseline)",
                concurrency=concurrency,
                per_host=concurrency,
                retries=0,
                label=f"{concurrency} (per host {concurrency})",
                source=source,
            )
        )
    return rows


# -- the farm ----------------------------------------------------------------------------------------------


class FarmProcess:
    """``bench/webfarm.py`` in a child process; stops when we close its stdin."""

    def __init__(
        self,
        *,
        links: int,
        hosts: int,
        latency_ms: float,
        body_bytes: int,
        rate_limited_hosts: int = 0,
        rate_limit_window_s: float = 0.5,
    ) -> None:
        argv = [
            sys.executable, str(BENCH_DIR / "webfarm.py"), "--exit-with-parent",
            "--links", str(links), "--hosts", str(hosts),
            "--latency-ms", str(latency_ms), "--body-bytes", str(body_bytes),
            "--rate-limited-hosts", str(rate_limited_hosts),
            "--rate-limit-window-s", str(rate_limit_window_s),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = _readline_with_timeout(self.proc.stdout, FARM_START_TIMEOUT_S)
        if not line:
            self.stop()
            raise RuntimeError("the web farm did not start (see its stderr above)")
        self.info: dict[str, Any] = json.loads(line)

    def stats(self) -> tuple[dict[str, int], list[tuple[float, str]]]:
        """Request counters so far, and the arrivals (Unix time, "METHOD kind") since the last call."""
        with urllib.request.urlopen(self.info["stats_url"], timeout=10) as answer:
            data = json.load(answer)
        return dict(data["requests"]), [(float(t), str(what)) for t, what in data["arrivals"]]

    def cpu_s(self) -> float:
        return cpu_seconds_of(self.proc.pid)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _readline_with_timeout(stream: IO[str], timeout_s: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return ""
    return stream.readline()


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0)}


# -- one run -----------------------------------------------------------------------------------------------


def run_tool(
    tool: Tool, farm: FarmProcess, workroot: Path, index: int, args: argparse.Namespace
) -> dict[str, Any]:
    waited_s, busy_share = wait_for_quiet(max_busy_share=args.settle_busy_share, max_wait_s=args.settle_max_s)
    workdir = workroot / f"{index:02d}-{tool.name.replace(' ', '_').replace(',', '')}"
    workdir.mkdir()
    call = tool.invocation(farm.info["page_url"], workdir)
    (requests_before, _), farm_cpu_before = farm.stats(), farm.cpu_s()
    busy_before, self_before = system_busy_s(), self_cpu_s()
    spawned_at = time.time()
    measured: Measurement = run_measured(
        call.argv,
        env=call.env,
        cwd=call.cwd,
        stdout=workdir / "stdout",
        stderr=workdir / "stderr",
        timeout_s=args.run_timeout_s,
    )
    farm_cpu = farm.cpu_s() - farm_cpu_before
    # Other processes' CPU during the run (seconds, all cores): a busy machine shows here.
    others = (system_busy_s() - busy_before) - measured.cpu_s - farm_cpu - (self_cpu_s() - self_before)
    requests_after, arrivals = farm.stats()
    served = _delta(requests_after, requests_before)
    counts: Counts | None = None
    error = None
    try:
        counts = tool.parse(workdir / "stdout")
    except (ValueError, KeyError, OSError) as exc:
        tail = (workdir / "stderr").read_text(errors="replace")[-2000:]
        error = f"could not read its output ({type(exc).__name__}: {exc}); stderr ends: {tail}"
    return {
        "tool": tool.name,
        "measurement": {
            **asdict(measured),
            "cpu_s": measured.cpu_s,
            "peak_rss_bytes": measured.peak_rss_bytes,
        },
        "counts": asdict(counts) if counts else None,
        "requests_served": sum(served.values()),
        "requests_by_kind": served,
        "phases": phases(arrivals, spawned_at, measured.wall_s),
        "farm_cpu_s": round(farm_cpu, 3),
        "background_cpu_s": round(max(0.0, others), 3),
        "background_share": round(max(0.0, others) / (measured.wall_s * (os.cpu_count() or 1)), 3),
        "settle": {"waited_s": round(waited_s, 2), "busy_share_before": round(busy_share, 3)},
        "error": error,
        "argv": call.argv,
        "env": {k: v for k, v in call.env.items() if k.startswith(("LINKPACT_", "XDG_", "PYTHONPYCACHE"))},
    }


LINK_KINDS = ("ok", "redirect", "not_found", "server_error", "landing")


def phases(arrivals: list[tuple[float, str]], spawned_at: float, wall_s: float) -> dict[str, float] | None:
    """Split a run's wall time by what the farm saw (seconds): ``startup`` (spawn to the first request),
    ``page`` (first request to the first link request: fetching and reading the page), ``links`` (first to
    last link request; retries included), ``exit`` (last request to the process's end)."""
    if not arrivals:
        return None
    times = sorted(t for t, _ in arrivals)
    link_times = sorted(t for t, what in arrivals if what.split(" ", 1)[1] in LINK_KINDS)
    if not link_times:
        return None
    ended_at = spawned_at + wall_s
    return {
        "startup": round(times[0] - spawned_at, 3),
        "page": round(link_times[0] - times[0], 3),
        "links": round(link_times[-1] - link_times[0], 3),
        "exit": round(ended_at - times[-1], 3),
    }


def progress_line(result: dict[str, Any]) -> str:
    m, c = result["measurement"], result["counts"] or {}
    line = (
        f"{result['tool']:30} wall {m['wall_s']:6.2f} s  cpu {m['cpu_s']:6.2f} s  "
        f"rss {m['peak_rss_bytes'] / MB:5.0f} MB  checked {c.get('checked', '?')} "
        f"broken {c.get('broken', '?')} exit {m['exit_code']}  background {result['background_share']:.0%}"
    )
    return line + (f"  ERROR {result['error'][:300]}" if result["error"] else "")


def verified(counts: dict[str, Any] | None, expected: dict[str, int]) -> bool:
    """Did the tool check every link and call exactly the planted 404s and 500s broken?"""
    if not counts:
        return False
    return counts["checked"] >= expected["links"] and counts["broken"] == expected["broken"]


# -- summary -----------------------------------------------------------------------------------------------


def summarise(
    tools: list[Tool], runs: list[dict[str, Any]], expected: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    for tool in tools:
        mine = [r for r in runs if r["tool"] == tool.name and not r["warmup"]]
        good = [r for r in mine if r["counts"] and not r["measurement"]["timed_out"]]
        # A round's last attempt counts even if disturbed (it then says so); earlier disturbed ones not.
        good = [r for r in good if not r["disturbed"] or r is _last_of_round(mine, r["round"])]
        if not good:
            rows.append(
                {"tool": tool.name, "family": tool.family, "concurrency": tool.concurrency, "runs": 0}
            )
            continue

        def median(key: str, runs_: list[dict[str, Any]] = good) -> float:
            return statistics.median(r["measurement"][key] for r in runs_)

        last = good[-1]["counts"]
        rows.append(
            {
                "tool": tool.name,
                "family": tool.family,
                "concurrency": tool.concurrency,
                "runs": len(good),
                "wall_s": median("wall_s"),
                "wall_s_range": [min(r["measurement"]["wall_s"] for r in good),
                                 max(r["measurement"]["wall_s"] for r in good)],
                "cpu_s": median("cpu_s"),
                "peak_rss_mb": median("peak_rss_bytes") / MB,
                "tree_peak_rss_mb": median("tree_peak_rss_bytes") / MB,
                "maxrss_mb": median("maxrss_bytes") / MB,
                "checked": last["checked"],
                "broken": last["broken"],
                "ok": last["ok"],
                "other": last["other"],
                "requests_served": statistics.median(r["requests_served"] for r in good),
                "requests_429": statistics.median(
                    sum(n for kind, n in r["requests_by_kind"].items() if kind.endswith(" rate_limited"))
                    for r in good
                ),
                "farm_cpu_s": statistics.median(r["farm_cpu_s"] for r in good),
                "verified": all(verified(r["counts"], expected) for r in good),
                "disturbed_runs_counted": sum(1 for r in good if r["disturbed"]),
                "disturbed_runs_redone": sum(1 for r in mine if r["disturbed"]) - sum(
                    1 for r in good if r["disturbed"]
                ),
                "background_share_max": max(r["background_share"] for r in good),
                "phases": _median_phases(good),
            }
        )  # fmt: skip
    return rows


def _median_phases(runs: list[dict[str, Any]]) -> dict[str, float] | None:
    known = [r["phases"] for r in runs if r.get("phases")]
    if not known:
        return None
    return {key: statistics.median(p[key] for p in known) for key in known[0]}


def phases_table(rows: list[dict[str, Any]]) -> str:
    """Median wall time by phase, as the farm saw the requests arrive."""
    lines = [
        "| tool | start-up (spawn to first request) | page (to first link request) "
        "| links (first to last link request) | exit (last request to end) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        p = row.get("phases")
        if p:
            cells = " | ".join(f"{p[key]:.2f}" for key in ("startup", "page", "links", "exit"))
            lines.append(f"| {row['tool']} | {cells} |")
    return "\n".join(lines) + "\n"


def _last_of_round(runs: list[dict[str, Any]], round_no: int) -> dict[str, Any]:
    return [r for r in runs if r["round"] == round_no][-1]


def markdown_table(
    rows: list[dict[str, Any]], tool_versions: dict[str, str], *, rate_limited: bool = False
) -> str:
    """The figures table; ``rate_limited`` adds the links a tool left neither ok nor broken (linkpact's
    ``unknown``, e.g. ``rate_limited``) and how many requests the farm answered with 429."""
    extra_head, extra_rule = (" other | 429s served |", "---:|---:|") if rate_limited else ("", "")
    head = (
        "| tool | version | concurrency | wall s (median) | CPU s | peak RSS MB | links checked | broken "
        f"|{extra_head} requests served | output verified |\n"
        f"|---|---|---|---:|---:|---:|---:|---:|{extra_rule}---:|---|\n"
    )
    lines = []
    for row in rows:
        version = _short_version(tool_versions.get(row["family"], ""))
        if not row["runs"]:
            empty = " | |" if rate_limited else ""
            lines.append(
                f"| {row['tool']} | {version} | {row['concurrency']} | failed | | | | |{empty} | no |"
            )
            continue
        lo, hi = row["wall_s_range"]
        wall = f"{row['wall_s']:.2f} ({lo:.2f}–{hi:.2f})" + (" †" if row["disturbed_runs_counted"] else "")
        extra = f" {row['other']} | {row['requests_429']:.0f} |" if rate_limited else ""
        lines.append(
            f"| {row['tool']} | {version} | {row['concurrency']} | {wall} "
            f"| {row['cpu_s']:.2f} | {row['peak_rss_mb']:.0f} | {row['checked']} | {row['broken']} "
            f"|{extra} {row['requests_served']:.0f} | {'yes' if row['verified'] else 'NO'} |"
        )
    table = head + "\n".join(lines) + "\n"
    if any(row.get("disturbed_runs_counted") for row in rows):
        table += "\n† some of this row's runs ran while other processes kept the machine busy.\n"
    return table


def _short_version(text: str) -> str:
    for word in text.replace("linkpact", "").split():
        if word[:1].isdigit():
            return word
    return text


def verdict_on_aim(rows: list[dict[str, Any]]) -> list[str]:
    by_name = {row["tool"]: row for row in rows if row["runs"]}
    ours, theirs = by_name.get("linkpact"), by_name.get("linkinator")
    notes = []
    if ours and theirs:
        faster = ours["wall_s"] < theirs["wall_s"]
        notes.append(
            f"aim 'faster than linkinator at equal concurrency': {'met' if faster else 'NOT met'} "
            f"({ours['wall_s']:.2f} s vs {theirs['wall_s']:.2f} s wall; "
            f"{ours['cpu_s']:.2f} s vs {theirs['cpu_s']:.2f} s CPU)"
        )
    for row in rows:
        if row["family"] == "linkpact" and row["runs"]:
            under = row["peak_rss_mb"] < AIM_PEAK_RSS_MB
            notes.append(
                f"aim 'under {AIM_PEAK_RSS_MB} MB' ({row['tool']}): {'met' if under else 'NOT met'} "
                f"({row['peak_rss_mb']:.0f} MB peak RSS)"
            )
    return notes


def git_commit() -> str:
    """The project's commit, with "+dirty" when the work tree has changes (linkpact is what was measured)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(PROJECT_DIR),
                "status",
                "--porcelain",
                "--",
                "bot",
                "handlers",
                "pyproject.toml",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
    }


# -- profile -----------------------------------------------------------------------------------------------


def profile_linkpact(farm: FarmProcess, concurrency: int, workroot: Path) -> str:
    """Run ``linkpact check`` once under py-spy at equal concurrency; return its CPU hot spots."""
    py_spy = PEERS_VENV / "bin" / "py-spy"
    if not py_spy.exists():
        return f"(no profile: {py_spy.relative_to(PROJECT_DIR)} is missing; run bench/setup-peers.sh)\n"
    tool = linkpact("linkpact", concurrency=concurrency, per_host=concurrency)
    workdir = workroot / "profile"
    workdir.mkdir()
    call = tool.invocation(farm.info["page_url"], workdir)
    raw = RESULTS_DIR / "linkpact-profile.txt"
    code = hotspots.record(
        py_spy, call.argv, env=call.env, cwd=workdir, raw_out=raw, stdout=workdir / "stdout"
    )
    if not raw.exists():
        return f"(no profile: py-spy exited {code})\n"
    return hotspots.summarise(raw)


# -- main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark linkpact check against linkinator and LinkChecker on a loopback web farm."
    )
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--body-bytes", type=int, default=2048)
    parser.add_argument(
        "--rate-limited-hosts", type=int, default=0,
        help="the last N farm hosts answer 429 (Retry-After: 1) for --rate-limit-window-s after their first "
        "link request in each run; linkinator then runs with --retry",
    )  # fmt: skip
    parser.add_argument("--rate-limit-window-s", type=float, default=0.5)
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR",
        help="also run each chosen linkpact row from this checkout of linkpact (e.g. a `git worktree` of "
        "the commit before a change), named '<row> (baseline)'",
    )  # fmt: skip
    parser.add_argument("--only", action="append", help="run only the rows whose name starts with this")
    parser.add_argument("--row", action="append", help="run only the row with exactly this name (may repeat)")
    parser.add_argument("--run-timeout-s", type=float, default=DEFAULT_RUN_TIMEOUT_S)
    parser.add_argument(
        "--settle-busy-share", type=float, default=DEFAULT_SETTLE_BUSY_SHARE,
        help="before each run wait until the machine's CPU use is below this share of all cores",
    )  # fmt: skip
    parser.add_argument("--settle-max-s", type=float, default=DEFAULT_SETTLE_MAX_S)
    parser.add_argument(
        "--max-background-share", type=float, default=DEFAULT_MAX_BACKGROUND_SHARE,
        help="a run during which other processes used more than this share of all cores is disturbed",
    )  # fmt: skip
    parser.add_argument(
        "--redo-disturbed", type=int, default=DEFAULT_REDO_DISTURBED,
        help="how many times a disturbed run is repeated before its figures are kept (marked)",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="also profile one linkpact run with py-spy")
    parser.add_argument("--keep", action="store_true", help="keep every run's stdout/stderr (path printed)")
    args = parser.parse_args(argv)

    missing = missing_peers()
    if missing:
        print("missing: " + ", ".join(missing) + "; run `bash bench/setup-peers.sh` first", file=sys.stderr)
        return 2
    tools = make_tools(args.concurrency, rate_limited=args.rate_limited_hosts > 0)
    if args.only:
        tools = [t for t in tools if any(t.name.startswith(prefix) for prefix in args.only)]
    if args.row:
        tools = [t for t in tools if t.name in args.row]
    if args.baseline:
        tools += baseline_tools(tools, args.concurrency, args.baseline)

    tool_versions = versions()
    workroot = Path(tempfile.mkdtemp(prefix="linkpact-bench-"))
    workroot.chmod(0o755)  # LinkChecker runs as "nobody" and must reach its config below this
    farm = FarmProcess(
        links=args.links,
        hosts=args.hosts,
        latency_ms=args.latency_ms,
        body_bytes=args.body_bytes,
        rate_limited_hosts=args.rate_limited_hosts,
        rate_limit_window_s=args.rate_limit_window_s,
    )
    expected = farm.info["expected"]
    print(
        f"farm: {farm.info['page_url']} ({expected['links']} links over {args.hosts} hosts, "
        f"{args.latency_ms:g} ms latency; expected broken {expected['broken']})"
        + (
            f"; {args.rate_limited_hosts} hosts answer 429 (Retry-After: 1) "
            f"for {args.rate_limit_window_s:g} s"
            if args.rate_limited_hosts
            else ""
        ),
        file=sys.stderr,
    )
    runs: list[dict[str, Any]] = []
    profile_text = None
    try:
        index = 0
        for round_no in range(args.warmup + args.repeats):
            warmup = round_no < args.warmup
            shift = round_no % len(tools)
            for tool in tools[shift:] + tools[:shift]:  # rotate the order so no tool always goes first
                label = "warm-up" if warmup else f"round {round_no - args.warmup + 1}"
                for _attempt in range(1 + args.redo_disturbed):
                    index += 1
                    result = run_tool(tool, farm, workroot, index, args)
                    disturbed = result["background_share"] > args.max_background_share
                    result |= {"round": round_no, "warmup": warmup, "disturbed": disturbed}
                    runs.append(result)
                    note = "  (disturbed: other processes were busy; run again)" if disturbed else ""
                    print(f"{label}: {progress_line(result)}{note}", file=sys.stderr)
                    if not disturbed:
                        break
        if args.profile:
            RESULTS_DIR.mkdir(exist_ok=True)
            profile_text = profile_linkpact(farm, args.concurrency, workroot)
    finally:
        farm.stop()
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)

    rows = summarise(tools, runs, expected)
    table = markdown_table(rows, tool_versions, rate_limited=args.rate_limited_hosts > 0)
    notes = verdict_on_aim(rows)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(exist_ok=True)
    result_file = RESULTS_DIR / f"{stamp}.json"
    result_file.write_text(
        json.dumps(
            {
                "started": stamp,
                "command": shlex.join(
                    ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
                ),
                "linkpact_commit": git_commit(),
                "machine": machine(),
                "versions": tool_versions,
                "farm": {k: v for k, v in farm.info.items() if k not in ("origins",)},
                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "summary": rows,
                "aim": notes,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(table)
    print("Where the wall time goes (median seconds, from request arrival times at the farm):\n")
    print(phases_table(rows))
    for note in notes:
        print(f"- {note}")
    if profile_text:
        print("\nlinkpact CPU hot spots (py-spy --gil, one run at equal concurrency):\n")
        print(profile_text)
    kept = f"; run files kept in {workroot}" if args.keep else ""
    print(f"\nresults: {result_file.relative_to(PROJECT_DIR)}{kept}")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
