"""Import benchmark: a 100,000-row Ahrefs-style export through ``linkpact import``, and the event loop
while an import runs.

    python bench/import_bench.py                 # both parts, 100,000 rows
    python bench/import_bench.py --rows 20000    # smaller
    python bench/import_bench.py --part cli      # only the CLI run (wall time, peak memory)
    python bench/import_bench.py --part loop     # only the loop-responsiveness run
    python bench/import_bench.py --part cli --wide   # with the link's text around it: about 58 MB

Part 1 (``cli``) writes the export (UTF-16 LE with a byte-order mark, tab-separated, Ahrefs' usual
columns, about 1 in 20 rows a duplicate, a self-link or a private address) into a temporary folder and
runs ``python -m bot.cli import FILE --json`` against a fresh database as a child process: wall time
from start to exit, and peak memory as the child's maximum resident set size (``getrusage``,
``RUSAGE_CHILDREN``; the whole process: interpreter, file, parsed rows and database).

Part 2 (``loop``) runs ``import_backlinks`` in-process and, on the same event loop, a ticker that
sleeps 10 ms and records how late it wakes (the loop's lag), plus ``Engine.check`` of a page on a local
HTTP server started every 250 ms (what ``/linkcheck`` does), and reports the worst lag and check times.

``--wide`` adds Ahrefs' ``Left context`` and ``Right context`` columns (the text before and after the
link), which makes 100,000 rows about 58 MB in UTF-16: more bytes than the 50 MB that used to be the
import's cap, but 29 million characters of text, within the text cap (docs/imports.md).

Targets (issue 5): under 10 s and 500 MB for 100,000 rows; ``/linkcheck`` answering within 1 s while an
import runs. Figures go to docs/benchmarks.md, "Importing 100,000 backlinks". Not a test: it takes tens
of seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_ROWS = 100_000
TARGET_WALL_S = 10.0
TARGET_RSS_MB = 500.0
TARGET_CHECK_S = 1.0
TICK_S = 0.010
CHECK_EVERY_S = 0.25
OUR_SITE = "https://ours.example"
# The columns the issue names plus the page title: Ahrefs exports the columns the user picked. With all
# 29 of Ahrefs' default columns, 100,000 rows are about 64 MB in UTF-16, over the 50 MB import limit
# (docs/benchmarks.md, "Importing 100,000 backlinks").
AHREFS_COLUMNS = (
    "Referring page title", "Referring page URL", "Domain rating", "UR", "Target URL", "Anchor", "Type",
    "Nofollow", "UGC", "Sponsored", "First seen", "Last seen", "Lost",
)  # fmt: skip

# The text around the link in the referring page (Ahrefs' "Left context" / "Right context"), for --wide.
CONTEXT_COLUMNS = ("Left context", "Right context")

IN_IMPORT: contextvars.ContextVar[bool] = contextvars.ContextVar("in_import", default=False)


def ahrefs_rows(rows: int, seed: int = 5, *, wide: bool = False) -> list[list[str]]:
    """Rows like an Ahrefs "Backlinks" export: about 12 pages per referring domain, 40 target pages,
    and 5% noise (repeated rows, self-links, private addresses)."""
    rng = random.Random(seed)
    domains = [f"site{i}.example{'.co.uk' if i % 7 == 0 else '.com'}" for i in range(max(1, rows // 12))]
    targets = [f"{OUR_SITE}/"] + [f"{OUR_SITE}/guide/{i}" for i in range(39)]
    out: list[list[str]] = []
    for i in range(rows):
        noise = rng.random()
        domain = rng.choice(domains)
        source = f"https://{'blog.' if i % 3 else 'www.'}{domain}/posts/{i}-{rng.randrange(10**6)}"
        if noise < 0.02 and out:
            out.append(list(out[-1]))  # exported twice
            continue
        if noise < 0.035:
            source = f"{OUR_SITE}/internal/{i}"  # a self-link
        elif noise < 0.05:
            source = f"http://10.{i % 250}.0.1/page"  # a private address
        nofollow = "true" if noise > 0.8 else "false"
        out.append(
            [
                f'Post {i} about things, with "quotes" and, commas', source, str(rng.randrange(0, 95)),
                str(rng.randrange(0, 60)), rng.choice(targets), f"anchor text {i % 500}", "text", nofollow,
                "false", "false", "2025-03-14 08:10:00", "2026-10-30 22:01:00", "",
            ]
        )  # fmt: skip
        if wide:
            out[-1] += [f"…a few words before the link {i % 97}", f"and a few after it {i % 89}, then more…"]
    return out


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if '"' in cell else cell


def write_ahrefs_export(path: Path, rows: int, *, wide: bool = False) -> int:
    """Write the export as Ahrefs does (UTF-16 LE with BOM, tabs, CRLF); returns its size in bytes.
    ``wide``: with the :data:`CONTEXT_COLUMNS` too."""
    lines = ["\t".join(AHREFS_COLUMNS + (CONTEXT_COLUMNS if wide else ()))]
    for row in ahrefs_rows(rows, wide=wide):
        lines.append(
            "\t".join(f'"{cell.replace(chr(34), chr(34) * 2)}"' if '"' in cell else cell for cell in row)
        )
    data = "\ufeff".encode("utf-16-le") + ("\r\n".join(lines) + "\r\n").encode("utf-16-le")
    path.write_bytes(data)
    return len(data)


def run_cli(rows: int, *, wide: bool = False) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export = folder / "backlinks.csv"
        size = write_ahrefs_export(export, rows, wide=wide)
        env = {**os.environ, "LINKPACT_DB": str(folder / "linkpact.json"), "PYTHONPATH": str(ROOT)}
        cpu_before = _children_cpu_s()
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bot.cli", "import", str(export), "--target-site", OUR_SITE, "--json"],
            capture_output=True, text=True, env=env, cwd=folder, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        # CPU time (user + system) of the child: unlike the wall time, it does not grow when other
        # processes share the CPUs.
        cpu = _children_cpu_s() - cpu_before
        if proc.returncode != 0:
            raise SystemExit(f"linkpact import failed ({proc.returncode}): {proc.stderr}")
        # ru_maxrss is in KiB on Linux: the peak of the largest child waited for (this one).
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads(proc.stdout)
        # The catalogue and every table file beside it (docs/storage.md, "Layout").
        db_mb = sum(p.stat().st_size for p in folder.glob("linkpact*.json")) / 1e6
        # The same file again: every row is already tracked, so nothing is written.
        started = time.perf_counter()
        again = subprocess.run(
            [sys.executable, "-m", "bot.cli", "import", str(export), "--target-site", OUR_SITE, "--json"],
            capture_output=True, text=True, env=env, cwd=folder, check=True,
        )  # fmt: skip
        wall_again = time.perf_counter() - started
        peak_again_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        already = json.loads(again.stdout)["duplicates"]["already_tracked"]
    return {
        "rows": rows,
        "file_mb": round(size / 1e6, 1),
        "text_mchars": round((size - 2) / 2 / 1e6, 1),  # UTF-16: two bytes a character, after the BOM
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak_mb),
        "db_mb": round(db_mb, 1),
        "new_backlinks": summary["new_backlinks"],
        "skipped": summary["skipped_total"],
        "duplicates_in_file": summary["duplicates"]["in_file"],
        "reimport_wall_s": round(wall_again, 2),
        "reimport_already_tracked": already,
        "peak_rss_mb_both_runs": round(peak_again_mb),
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def loop_during_import(rows: int) -> dict[str, float | int | None]:
    from bot.config import FetchSettings, Limits, Settings, Timeout
    from bot.engine import Engine
    from bot.imports import import_backlinks
    from tests.conftest import LOOPBACK
    from tests.support.site import LocalSite

    with tempfile.TemporaryDirectory() as tmp, LocalSite() as site:
        folder = Path(tmp)
        export = folder / "backlinks.csv"
        write_ahrefs_export(export, rows)
        data = export.read_bytes()
        site.html("/", '<html><body><main><a href="/a">A</a> <a href="/b">B</a></main></body></html>')
        site.html("/a", "<p>a</p>")
        site.html("/b", "<p>b</p>")
        settings = Settings(
            fetch=FetchSettings(timeout=Timeout(connect_s=2, read_s=2, total_s=5), limits=Limits(retries=0),
                                allow_networks=LOOPBACK),
            db_path=folder / "linkpact.json",
        )  # fmt: skip
        engine = Engine.create(settings)
        lags: list[float] = []
        checks: list[tuple[float, float]] = []  # (start, end), perf_counter
        writes: list[tuple[float, float]] = []  # the store's transactions while the import runs
        done = asyncio.Event()
        transact = engine.store.transact

        async def timed_transact(fn: Callable[[Any], Any]) -> Any:
            started = time.perf_counter()
            try:
                return await transact(fn)
            finally:
                if IN_IMPORT.get():  # only the import's own transactions, not the checks' run summaries
                    writes.append((started, time.perf_counter()))

        engine.store.transact = timed_transact  # type: ignore[method-assign]

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            while not done.is_set():
                before = loop.time()
                await asyncio.sleep(TICK_S)
                lags.append(loop.time() - before - TICK_S)

        async def checker() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await engine.check(site.url("/"))
                checks.append((started, time.perf_counter()))
                await asyncio.sleep(CHECK_EVERY_S)

        try:
            await engine.check(site.url("/"))  # warm the connection pool and robots cache
            tasks = [asyncio.create_task(ticker()), asyncio.create_task(checker())]
            started = time.perf_counter()
            IN_IMPORT.set(True)  # the checker task was created before: its context does not see this
            summary = await import_backlinks(engine, data, filename=export.name, target_site=OUR_SITE,
                                             added_by="bench")  # fmt: skip
            took = time.perf_counter() - started
            done.set()
            await asyncio.gather(*tasks)
        finally:
            await engine.aclose()
    # The import's own write is its longest transaction.
    write = max(writes, key=lambda w: w[1] - w[0])
    overlapping = [end - start for start, end in checks if start < write[1] and end > write[0]]
    apart = [end - start for start, end in checks if not (start < write[1] and end > write[0])]
    durations = [end - start for start, end in checks]
    return {
        "rows": rows,
        "import_s": round(took, 2),
        "new_backlinks": summary.new_backlinks,
        "ticks": len(lags),
        "max_loop_lag_ms": round(max(lags) * 1000, 1),
        "median_loop_lag_ms": round(median(lags) * 1000, 2),
        "import_write_s": round(write[1] - write[0], 2),
        "checks": len(checks),
        "max_check_s": round(max(durations), 3),
        "median_check_s": round(median(durations), 3),
        "max_check_overlapping_write_s": round(max(overlapping), 3) if overlapping else None,
        "max_check_not_overlapping_write_s": round(max(apart), 3) if apart else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--part", choices=["cli", "loop", "all"], default="all")
    parser.add_argument("--wide", action="store_true", help="add Left/Right context (about 58 MB)")
    args = parser.parse_args()
    ok = True
    if args.part in ("cli", "all"):
        cli = run_cli(args.rows, wide=args.wide)
        print(json.dumps({"cli": cli}))
        ok &= cli["wall_s"] < TARGET_WALL_S and cli["peak_rss_mb"] < TARGET_RSS_MB
    if args.part in ("loop", "all"):
        loop = asyncio.run(loop_during_import(args.rows))
        print(json.dumps({"loop": loop}))
        ok &= float(loop["max_check_s"] or 0) < TARGET_CHECK_S
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
