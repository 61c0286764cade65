"""PostgreSQL store benchmark: lookups by an indexed field as the table grows (100,000 then 1,000,000
tracked backlinks), and what bulk writes cost.

    python bench/pg_store_bench.py                       # 100,000 and 1,000,000 rows
    python bench/pg_store_bench.py --sizes 10000 100000  # other sizes
    python bench/pg_store_bench.py --url postgresql://postgres@127.0.0.1:5432/test   # the server

Creates its own database (``linkpact_bench_<random>``) on the server named by ``--url``, applies the
migrations, grows ``backlinks`` to each size with ``insert_many`` (documents shaped like imported
backlinks: 700 referring domains, 50 target pages...), and at each size times, through the store's public
API: ``find(target_key=...)`` of a target with 20 backlinks, ``find(source_key=...)`` of one backlink,
``get`` by id, ``count(target_key=...)``, one ``update`` and one ``upsert`` (read, then merge). Each is
run 200 times; the median and the 95th percentile are printed. The database is dropped at the end. Not a
test: the 1,000,000-row insert alone takes a minute or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bot.store import Store
from bot.store.postgres import PgStore
from bot.store.schema import upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_SIZES = (100_000, 1_000_000)
ROUNDS = 200
BATCH = 50_000
# 20 backlinks per target page at every size: a lookup returns the same amount of data, so a change in
# its time is the index, not the answer's size.
PER_TARGET = 20


def doc(i: int) -> dict[str, Any]:
    return {
        "source_url": f"https://blog{i % 700}.example/post-{i}",
        "source_key": f"https://blog{i % 700}.example/post-{i}",
        "target_url": f"https://us.example/p{i // PER_TARGET}",
        "target_key": f"https://us.example/p{i // PER_TARGET}",
        "referring_domain": f"blog{i % 700}.example",
        "anchor": "a guide to link partnerships",
        "rel": ["nofollow"] if i % 3 == 0 else [],
        "import_id": "bench",
        "added_at": "2026-05-01T12:00:00+00:00",
    }


async def timed(fn: Callable[[int], Awaitable[Any]], rounds: int = ROUNDS) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    times = []
    for n in range(rounds):
        started = time.perf_counter()
        await fn(n)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


async def lookups(store: Store, size: int, rng: random.Random) -> dict[str, Any]:
    """Each lookup and write :data:`ROUNDS` times on a table of ``size`` rows."""
    targets = [f"https://us.example/p{rng.randrange(size // PER_TARGET)}" for _ in range(ROUNDS)]
    sources = [doc(rng.randrange(size))["source_key"] for _ in range(ROUNDS)]
    ids = [d["id"] for d in await store.find("backlinks", target_key=targets[0])]
    row: dict[str, Any] = {}

    async def by_target(n: int) -> None:
        assert len(await store.find("backlinks", target_key=targets[n])) == PER_TARGET

    async def by_source(n: int) -> None:
        assert len(await store.find("backlinks", source_key=sources[n])) == 1

    async def get(n: int) -> None:
        assert await store.get("backlinks", ids[n % len(ids)]) is not None

    async def count(n: int) -> None:
        assert await store.count("backlinks", target_key=targets[n]) == PER_TARGET

    async def update(n: int) -> None:
        assert await store.update("backlinks", ids[n % len(ids)], {"last_verdict": "live"})

    async def upsert(n: int) -> None:
        key = sources[n]
        target = next(d["target_key"] for d in [doc(int(key.rsplit("-", 1)[1]))])
        _, created = await store.upsert(
            "backlinks",
            {"source_key": key, "target_key": target, "last_checked_at": "2026-06-01T00:00:00+00:00"},
            key=("source_key", "target_key"),
        )
        assert not created

    for name, fn in [
        ("find_by_target_key", by_target),
        ("find_by_source_key", by_source),
        ("get_by_id", get),
        ("count_by_target_key", count),
        ("update", update),
        ("upsert", upsert),
    ]:
        median, p95 = await timed(fn)
        row[f"{name}_ms"] = f"{median:.2f} (p95 {p95:.2f})"
    return row


async def measure(url: str, sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    rng = random.Random(7)
    async with PgStore(url) as store:
        have = 0
        for size in sizes:
            started = time.perf_counter()
            while have < size:
                n = min(BATCH, size - have)
                await store.insert_many("backlinks", [doc(i) for i in range(have, have + n)])
                have += n
            grow_s = time.perf_counter() - started
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE backlinks")
            row = {"rows": size, "insert_many_s": round(grow_s, 1), **await lookups(store, size, rng)}
            out.append(row)
            print(json.dumps(row), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="a database on the server to use (to create ours)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    args = parser.parse_args()
    name = f"linkpact_bench_{os.urandom(4).hex()}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(args.url)._replace(path="/" + name))
    try:
        upgrade(url)
        asyncio.run(measure(url, sorted(args.sizes)))
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
