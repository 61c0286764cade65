"""Store benchmark: what 100,000 tracked backlinks cost the embedded store (``LINKPACT_DB``).

    python bench/store_bench.py                     # 100,000 backlinks (about two minutes)
    python bench/store_bench.py --backlinks 20000   # smaller
    python bench/store_bench.py --skip-recheck      # without the full recheck (the slow part)

It starts a loopback farm in a child process: our site on 127.0.0.1 (a small page with
``SMALL_PAGE_LINKS`` healthy links, and ``TARGETS`` target pages) and ``SOURCE_HOSTS`` partner hosts on
127.0.0.2, 127.0.0.3, ... whose pages each link to every target. It then builds a database through the
Store API: ``--backlinks`` tracked backlinks (each source page -> each target, so ``backlinks / TARGETS``
source pages over the partner hosts), in the shape a recheck leaves them (``state``, ``seen``,
``last_*``), plus ``RUNS`` earlier run summaries.

Each command runs as ``python -m bot.cli ...`` in a fresh process (``LINKPACT_DB`` set,
``LINKPACT_ALLOW_NETWORKS=127.0.0.0/8``), measured by ``bench/measure.py``: wall time, CPU time (user +
system from ``os.wait4``) and peak RSS, plus the MB the command wrote to disk (``ru_oublock``; every
store write is fsynced, so this is what reached the disk):

- ``check`` of the small page on an empty database, then on the 100,000-backlink one (``REPEATS`` runs
  each, the median; the small page has no tracked backlinks, so the difference is what the store's size
  costs a check);
- ``tracked`` (every tracked backlink, printed);
- ``recheck`` (every tracked backlink verified against the farm and recorded).

Targets (the store issue): a small-page check costs under 0.3 s more on the 100,000-backlink database
than on an empty one; a check does not rewrite the backlinks to record its run; the recheck stays under
400 MB. Figures go to docs/benchmarks.md, "The embedded store at 100,000 backlinks". Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import Measurement, run_measured  # noqa: E402

DEFAULT_BACKLINKS = 100_000
TARGETS = 5
SOURCE_HOSTS = 100
SMALL_PAGE_LINKS = 20
RUNS = 2_000
REPEATS = 3
TARGET_EXTRA_CHECK_S = 0.3
TARGET_RECHECK_RSS_MB = 400.0
BUILT_AT = "2026-11-20T14:03:11+00:00"
CHECKED_AT = "2026-11-22T09:00:02+00:00"


# -- the farm (child process) -------------------------------------------------------------------------


def _page(links: list[str], title: str) -> str:
    anchors = "".join(f'<li><a href="{href}">link {i}</a></li>' for i, href in enumerate(links))
    head = f"<!doctype html><html><head><title>{title}</title></head>"
    return f"{head}<body><main><ul>{anchors}</ul></main></body></html>"


async def _serve(hosts: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        if path == "/small":
            links = [f"/ok/{i}" for i in range(SMALL_PAGE_LINKS)]
            return web.Response(text=_page(links, "small"), content_type="text/html")
        if path.startswith("/p/"):  # a partner page: links to every target on our site
            return web.Response(text=_page(targets, "partner"), content_type="text/html")
        return web.Response(text="<p>ok</p>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    addresses = []
    for i in range(hosts + 1):
        site = web.TCPSite(runner, f"127.0.0.{i + 1}", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        addresses.append(f"http://127.0.0.{i + 1}:{port}")
    targets = [f"{addresses[0]}/t/{i}" for i in range(TARGETS)]
    print(json.dumps({"ours": addresses[0], "sources": addresses[1:], "targets": targets}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await runner.cleanup()


# -- the database -------------------------------------------------------------------------------------


def backlink_docs(farm: dict[str, Any], count: int) -> list[dict[str, Any]]:
    from bot.urls import link_key

    targets: list[str] = farm["targets"]
    sources: list[str] = farm["sources"]
    docs = []
    for i in range(count):
        page, target = divmod(i, len(targets))
        source = f"{sources[page % len(sources)]}/p/{page}-a-partner-article-about-link-building"
        docs.append(
            {
                "source_url": source,
                "target_url": targets[target],
                "source_key": link_key(source),
                "target_key": link_key(targets[target]),
                "added_by": "U024BE7LH",
                "added_at": BUILT_AT,
                "last_verdict": "live",
                "last_reason": "link_present",
                "last_checked_at": CHECKED_AT,
                "state": "live",
                "suspicion": None,
                "seen": {"anchor": f"link {target}", "rel": [], "placement": "main"},
                "first_live_at": CHECKED_AT,
            }
        )
    return docs


PROBLEM = {
    "url": "https://gone.example/x",
    "verdict": "broken",
    "reason": "http_404",
    "status": 404,
    "anchor": "our guide",
    "placement": "main",
}


def run_docs(farm: dict[str, Any], count: int) -> list[dict[str, Any]]:
    return [
        {
            "url": f"{farm['ours']}/page/{i}",
            "final_url": f"{farm['ours']}/page/{i}",
            "status": 200,
            "indexable": True,
            "started_at": CHECKED_AT,
            "duration_s": 0.42,
            "outbound": {"ok": 41, "broken": 1, "unknown": 0, "skipped": 2},
            "inbound": {"live": 0, "lost": 0, "unknown": 0},
            "problems": [PROBLEM],
            "problems_total": 1,
        }
        for i in range(count)
    ]


async def build_database(db: Path, farm: dict[str, Any], backlinks: int) -> None:
    from bot.store import open_store

    store = open_store(db)
    try:
        await store.insert_many("backlinks", backlink_docs(farm, backlinks))
        await store.insert_many("runs", run_docs(farm, RUNS))
    finally:
        await store.aclose()


def db_files(db: Path) -> dict[str, tuple[int, int, int]]:
    """Every file of the database (the named file and any beside it sharing its stem): (size, inode,
    mtime_ns)."""
    out = {}
    for path in sorted(db.parent.iterdir()):
        if path.name.startswith(db.stem + ".") and not path.name.endswith(".lock"):
            info = path.stat()
            out[path.name] = (info.st_size, info.st_ino, info.st_mtime_ns)
    return out


# -- measuring ----------------------------------------------------------------------------------------


def measure(args: list[str], db: Path, work: Path, name: str) -> Measurement:
    env = {
        **os.environ,
        "LINKPACT_DB": str(db),
        "LINKPACT_ALLOW_NETWORKS": "127.0.0.0/8",
        "PYTHONPATH": str(ROOT),
    }
    result = run_measured(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        stdout=work / f"{name}.out",
        stderr=work / f"{name}.err",
        cwd=work,
    )
    if result.exit_code not in (0, 1):  # 1: the report found problems (it should not here)
        err = (work / f"{name}.err").read_text()
        raise SystemExit(f"linkpact {' '.join(args)} failed ({result.exit_code}): {err[-2000:]}")
    return result


def _written_mb(m: Measurement) -> float:
    return m.oublock_bytes / 1e6


def row(name: str, runs: list[Measurement]) -> dict[str, Any]:
    return {
        "command": name,
        "runs": len(runs),
        "wall_s": round(median(m.wall_s for m in runs), 3),
        "cpu_s": round(median(m.cpu_s for m in runs), 3),
        "peak_rss_mb": round(max(m.peak_rss_bytes for m in runs) / 2**20),
        "written_mb": round(median(_written_mb(m) for m in runs), 2),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'command':<44} {'runs':>4} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'written MB':>10}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['command']:<44} {r['runs']:>4} {r['wall_s']:>7.3f} {r['cpu_s']:>7.3f} "
            f"{r['peak_rss_mb']:>8} {r['written_mb']:>10.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backlinks", type=int, default=DEFAULT_BACKLINKS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--skip-recheck", action="store_true")
    parser.add_argument("--serve", type=int, metavar="HOSTS", help=argparse.SUPPRESS)  # the farm child
    parser.add_argument("--build", nargs=2, metavar=("DB", "FARM"), help=argparse.SUPPRESS)  # builder child
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    if args.build:
        asyncio.run(build_database(Path(args.build[0]), json.loads(args.build[1]), args.backlinks))
        return 0

    farm_proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(SOURCE_HOSTS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert farm_proc.stdout is not None and farm_proc.stdin is not None
    try:
        farm = json.loads(farm_proc.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "empty").mkdir()
            (work / "big").mkdir()
            empty_db, big_db = work / "empty" / "linkpact.json", work / "big" / "linkpact.json"
            started = time.perf_counter()
            # In a child: a child's peak RSS (ru_maxrss) starts at its parent's, so this process stays small.
            subprocess.run(
                [sys.executable, __file__, "--backlinks", str(args.backlinks), "--build", str(big_db),
                 json.dumps(farm)],
                check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            built_s = time.perf_counter() - started
            files = db_files(big_db)
            total_mb = sum(size for size, _, _ in files.values()) / 1e6
            print(
                f"database: {args.backlinks:,} backlinks over {args.backlinks // TARGETS:,} source pages on "
                f"{SOURCE_HOSTS} hosts, {TARGETS} targets, {RUNS:,} runs; {total_mb:.1f} MB in "
                f"{len(files)} file(s), built in {built_s:.1f} s",
                flush=True,
            )
            small = f"{farm['ours']}/small"
            rows = []
            empty_runs = [measure(["check", small, "--json"], empty_db, work, "check-empty")
                          for _ in range(args.repeats)]  # fmt: skip
            rows.append(row("check small page, empty database", empty_runs))
            before = db_files(big_db)
            big_runs = [measure(["check", small, "--json"], big_db, work, "check-big")
                        for _ in range(args.repeats)]  # fmt: skip
            after = db_files(big_db)
            rows.append(row(f"check small page, {args.backlinks:,} backlinks", big_runs))
            rewritten = sorted(name for name, sig in before.items() if after.get(name) != sig)
            tracked = measure(["tracked"], big_db, work, "tracked")
            listed = sum(1 for _ in (work / "tracked.out").open())
            rows.append(row(f"tracked ({listed:,} lines)", [tracked]))
            recheck = None
            if not args.skip_recheck:
                recheck = measure(["recheck", "--json"], big_db, work, "recheck")
                summary = json.loads((work / "recheck.out").read_text())
                rows.append(row(f"recheck ({summary['verdicts']})", [recheck]))
            print_table(rows)
            extra = rows[1]["wall_s"] - rows[0]["wall_s"]
            extra_cpu = rows[1]["cpu_s"] - rows[0]["cpu_s"]
            print(f"a small-page check on {args.backlinks:,} backlinks costs {extra:+.3f} s wall, "
                  f"{extra_cpu:+.3f} s CPU more than on an empty database")  # fmt: skip
            print(f"files changed by the {args.repeats} checks: {', '.join(rewritten) or 'none'} "
                  f"(of {', '.join(before)})")  # fmt: skip
            ok = extra_cpu < TARGET_EXTRA_CHECK_S and extra < TARGET_EXTRA_CHECK_S
            if recheck is not None:
                ok &= recheck.peak_rss_bytes / 2**20 < TARGET_RECHECK_RSS_MB
            print(json.dumps({"rows": rows, "rewritten_by_checks": rewritten, "db_mb": round(total_mb, 1)}))
            print("targets met" if ok else "TARGET MISSED")
            return 0 if ok else 1
    finally:
        farm_proc.stdin.close()
        farm_proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
