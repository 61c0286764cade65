"""Recheck benchmark: N tracked backlinks over a set of source pages on loopback servers, rechecked.

    python bench/recheck_bench.py                        # 10,000 backlinks over 200 pages, both parts
    python bench/recheck_bench.py --backlinks 100000     # 100,000 (500 per page)
    python bench/recheck_bench.py --part cli             # only `linkpact recheck` as a child process
    python bench/recheck_bench.py --part loop            # only the in-process run with a loop-lag probe
    python bench/recheck_bench.py --part cli --cli-runs 1   # only the first recheck (a slow "before")

The pages are served by a child process of this script (``--serve``: aiohttp servers on 127.0.0.2 ...
127.0.0.5, and our site on 127.0.0.1, ephemeral ports), so the servers' CPU never counts as the
recheck's. Page ``i`` lives on host ``i % hosts``; every page carries ``--backlinks / --pages`` tracked
targets (``/t/<j>`` on our site) of which 1 in 10 is missing (``link_removed``, after the verifier
probes up to 10 other links to our site for a redirect to the target), 1 in 17 of those present is
``nofollow``, plus 10 external links and 10 links to other pages of its own host. 1 page in 50 answers
404 (``page_gone``). Every host serves an allow-all ``robots.txt`` and counts the requests it answered
(``GET /__stats``).

Part ``cli`` builds the database (the documents ``linkpact track`` would store, written in one
transaction), then runs ``python -m bot.cli recheck --json`` twice as a child process with
``LINKPACT_ALLOW_NETWORKS=127.0.0.0/8`` and ``LINKPACT_DB`` in a temporary folder: the first recheck
finds every link ``new`` (a change log entry for each), the second is the steady state a daily recheck
costs. For each: wall time, CPU time (user + system, ``os.wait4``), CPU per backlink, peak RSS, and the
requests the servers answered. Part ``loop`` runs ``Engine.recheck`` in this process on the same kind of
database with :class:`bot.loopwatch.LoopLagProbe` on the loop, and reports the worst and 99th
percentile loop lag (how long Slack acknowledgements would wait), the most CPU the loop's thread spent
between two of the probe's wake-ups (``max_busy_s``: the loop lag without other processes' share of the
machine), the longest garbage collection on that thread, and the CPU of the verification alone.

Figures go to docs/benchmarks.md, "Rechecking 10,000 and 100,000 backlinks". Not a test: it takes
from seconds to minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from measure import run_measured  # noqa: E402  (a sibling, found through the path set just above)

DEFAULT_BACKLINKS = 10_000
DEFAULT_PAGES = 200
DEFAULT_HOSTS = 4
OUR_HOST = "127.0.0.1"
# 1 tracked link in MISSING_EVERY is not on its page; 1 page in GONE_EVERY answers 404.
MISSING_EVERY = 10
NOFOLLOW_EVERY = 17
GONE_EVERY = 50
EXTERNAL_LINKS = 10
INTERNAL_LINKS = 10
ALLOW_ALL_ROBOTS = "User-agent: *\nAllow: /\n"
RUN_TIMEOUT_S = 1800.0


# -- the servers (child process) ----------------------------------------------------------------------


def page_html(index: int, *, per_page: int, pages: int, ours: str) -> str:
    """Page ``index``: its tracked targets on our site (some missing, some nofollow), external links and
    links to other pages of its host, shuffled with a seed so every run serves the same page."""
    links = []
    for j in range(per_page):
        if (index + j) % MISSING_EVERY == 0:
            continue
        rel = ' rel="nofollow"' if (index + j) % NOFOLLOW_EVERY == 0 else ""
        links.append(f'<a href="{ours}/t/{j}"{rel}>guide number {j}</a>')
    links += [
        f'<a href="https://www.example-{k}.com/read/{index}">elsewhere {k}</a>' for k in range(EXTERNAL_LINKS)
    ]
    links += [f'<a href="/p/{(index + k + 1) % pages}">more {k}</a>' for k in range(INTERNAL_LINKS)]
    random.Random(index).shuffle(links)
    half = len(links) // 2
    return (
        f"<!doctype html><html><head><title>Page {index}</title></head><body>"
        f"<nav>{' '.join(links[:10])}</nav>"
        f"<main><h1>Page {index}</h1><p>{' '.join(links[10:half])}</p></main>"
        f"<footer>{' '.join(links[half:])}</footer></body></html>"
    )


async def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    hits: dict[str, Counter[str]] = {}
    cache: dict[int, str] = {}
    ours_origin: list[str] = []

    def make_app(name: str) -> web.Application:
        counter = hits.setdefault(name, Counter())

        async def handle(request: web.Request) -> web.StreamResponse:
            path = request.path
            if path == "/__stats":
                return web.json_response({host: dict(c) for host, c in hits.items()})
            kind = path.split("/")[1] or "root"
            counter[f"{request.method} {kind}"] += 1
            if path == "/robots.txt":
                return web.Response(text=ALLOW_ALL_ROBOTS)
            if name == "ours":
                return web.Response(text="<p>our guide</p>", content_type="text/html")
            if path.startswith("/p/") and path[3:].isdigit():
                index = int(path[3:])
                if index % GONE_EVERY == GONE_EVERY - 1:
                    return web.Response(status=404, text="gone")
                if index not in cache:
                    cache[index] = page_html(
                        index, per_page=args.per_page, pages=args.pages, ours=ours_origin[0]
                    )
                return web.Response(text=cache[index], content_type="text/html")
            return web.Response(status=404, text="not found")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    runners = []
    origins = []
    for name, host in [("ours", OUR_HOST)] + [(f"partner{i}", f"127.0.0.{i + 2}") for i in range(args.hosts)]:
        runner = web.AppRunner(make_app(name), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, 0).start()
        runners.append(runner)
        origins.append(f"http://{host}:{runner.addresses[0][1]}")
    ours_origin.append(origins[0])
    print(json.dumps({"ours": origins[0], "partners": origins[1:]}), flush=True)
    # Serve until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for runner in runners:
        await runner.cleanup()


class Farm:
    """The servers' child process: ``ours`` and ``partners`` origins, and request counts."""

    def __init__(self, *, per_page: int, pages: int, hosts: int) -> None:
        argv = [sys.executable, __file__, "--serve", "--per-page", str(per_page), "--pages", str(pages)]
        argv += ["--hosts", str(hosts)]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        started = json.loads(self._proc.stdout.readline())
        self.ours: str = started["ours"]
        self.partners: list[str] = started["partners"]

    def stats(self) -> dict[str, dict[str, int]]:
        with urllib.request.urlopen(f"{self.ours}/__stats", timeout=10) as answer:
            stats: dict[str, dict[str, int]] = json.load(answer)
        return stats

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(10)


def requests_served(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, int]:
    """Requests answered between two stats: source pages fetched, robots.txt, probes of our site."""
    out: Counter[str] = Counter()
    for host, counts in after.items():
        for what, count in counts.items():
            delta = count - before.get(host, {}).get(what, 0)
            if not delta:
                continue
            if host == "ours":
                out["our_site"] += delta
            elif what.endswith("robots.txt"):
                out["robots_txt"] += delta
            else:
                out["source_pages"] += delta
    return dict(out)


# -- the database -------------------------------------------------------------------------------------


def source_url(farm: Farm, index: int) -> str:
    return f"{farm.partners[index % len(farm.partners)]}/p/{index}"


async def build_db(path: Path, farm: Farm, *, pages: int, per_page: int) -> int:
    """Track ``pages * per_page`` backlinks (the documents ``linkpact track`` stores), in one write."""
    from bot.backlinks.registry import BACKLINKS_TABLE, BacklinkRegistry
    from bot.config import parse_networks
    from bot.net.policy import AddressPolicy
    from bot.store import open_store

    store = open_store(path)
    registry = BacklinkRegistry(store, AddressPolicy(parse_networks("127.0.0.0/8")))
    docs = [
        registry.new_doc(source_url(farm, i), f"{farm.ours}/t/{j}", added_by="bench")
        for i in range(pages)
        for j in range(per_page)
    ]
    await store.insert_many(BACKLINKS_TABLE, docs)
    await store.aclose()
    return len(docs)


def linkpact_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKPACT_")}
    env.update(
        LINKPACT_ALLOW_NETWORKS="127.0.0.0/8",
        LINKPACT_DB=str(db),
        PYTHONPATH=str(ROOT),
    )
    return env


# -- part 1: `linkpact recheck` -----------------------------------------------------------------------


def run_cli(args: argparse.Namespace, farm: Farm) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "linkpact.json"
        backlinks = asyncio.run(build_db(db, farm, pages=args.pages, per_page=args.per_page))
        for run in ("first (every link new)", "second (steady state)")[: args.cli_runs]:
            before = farm.stats()
            measured = run_measured(
                [sys.executable, "-m", "bot.cli", "recheck", "--json"],
                env=linkpact_env(db),
                stdout=folder / "out.json",
                stderr=folder / "err.txt",
                cwd=folder,
                timeout_s=RUN_TIMEOUT_S,
            )
            if measured.exit_code != 0:
                raise SystemExit(
                    f"linkpact recheck failed ({measured.exit_code}): {(folder / 'err.txt').read_text()}"
                )
            summary = json.loads((folder / "out.json").read_text())
            rows.append(
                {
                    "run": run,
                    "backlinks": backlinks,
                    "wall_s": round(measured.wall_s, 2),
                    "cpu_s": round(measured.cpu_s, 2),
                    "cpu_ms_per_backlink": round(measured.cpu_s * 1000 / backlinks, 3),
                    "peak_rss_mb": round(measured.peak_rss_bytes / 2**20),
                    "verdicts": summary["verdicts"],
                    "changes": len(summary["changes"]),
                    "requests": requests_served(before, farm.stats()),
                    "db_mb": round(db.stat().st_size / 1e6, 1),
                }
            )
    return rows


# -- part 2: in-process, with the loop watched --------------------------------------------------------


class GcWatch:
    """The garbage collections run on the loop's thread while it is entered (seconds each): a full
    collection walks every container object of the process (the database's documents included) in one
    go, which the loop waits for like any other synchronous work."""

    def __init__(self) -> None:
        self.gc_s: list[float] = []
        self._started = 0.0

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.gc_s.append(time.perf_counter() - self._started)

    def max_ms(self) -> float:
        return round(max(self.gc_s, default=0.0) * 1000, 1)


async def run_loop(args: argparse.Namespace, farm: Farm) -> dict[str, Any]:
    from bot.config import Settings
    from bot.engine import Engine
    from bot.loopwatch import LoopLagProbe

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "linkpact.json"
        backlinks = await build_db(db, farm, pages=args.pages, per_page=args.per_page)
        engine = Engine.create(Settings.from_env(linkpact_env(db)))
        try:
            tracked = await engine.backlinks.tracked()
            # The verification alone (fetch, extract, match), as one recheck runs it.
            cpu, wall = time.process_time(), time.perf_counter()
            with GcWatch() as verify_gc:
                async with LoopLagProbe() as verify_probe:
                    await engine._verifier.verify(tracked)
            verify_cpu, verify_wall = time.process_time() - cpu, time.perf_counter() - wall
            # The whole recheck (verify, record, snapshot, prune rules).
            cpu, wall = time.process_time(), time.perf_counter()
            with GcWatch() as recheck_gc:
                async with LoopLagProbe() as probe:
                    summary, _ = await engine.recheck(by="bench")
            recheck_cpu, recheck_wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            await engine.aclose()
    lag, verify_lag = probe.summary(), verify_probe.summary()
    return {
        "backlinks": backlinks,
        "verify_cpu_ms_per_backlink": round(verify_cpu * 1000 / backlinks, 3),
        "verify_wall_s": round(verify_wall, 2),
        "verify_max_loop_lag_ms": round(verify_lag.max_s * 1000, 1),
        "verify_max_busy_ms": round(verify_lag.max_busy_s * 1000, 1),
        "verify_max_gc_ms": verify_gc.max_ms(),
        "recheck_cpu_s": round(recheck_cpu, 2),
        "recheck_cpu_ms_per_backlink": round(recheck_cpu * 1000 / backlinks, 3),
        "recheck_wall_s": round(recheck_wall, 2),
        "recheck_max_loop_lag_ms": round(lag.max_s * 1000, 1),
        "recheck_p99_loop_lag_ms": round(lag.p99_s * 1000, 1),
        "recheck_max_busy_ms": round(lag.max_busy_s * 1000, 1),
        "recheck_max_gc_ms": recheck_gc.max_ms(),
        "verdicts": summary.verdicts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backlinks", type=int, default=DEFAULT_BACKLINKS, help="tracked backlinks in all")
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES, help="source pages they are spread over")
    parser.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help="loopback hosts serving the pages")
    parser.add_argument("--part", choices=["cli", "loop", "all"], default="all")
    parser.add_argument("--cli-runs", type=int, choices=[1, 2], default=2, help="1: only the first recheck")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--per-page", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args))
        return 0
    if args.backlinks < args.pages or args.backlinks % args.pages:
        parser.error("--backlinks must be a multiple of --pages")
    args.per_page = args.backlinks // args.pages
    farm = Farm(per_page=args.per_page, pages=args.pages, hosts=args.hosts)
    try:
        if args.part in ("cli", "all"):
            for row in run_cli(args, farm):
                print(json.dumps({"cli": row}), flush=True)
        if args.part in ("loop", "all"):
            print(json.dumps({"loop": asyncio.run(run_loop(args, farm))}), flush=True)
    finally:
        farm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
