"""CPU-heavy stages off the event loop: worker processes give the same answers and keep the loop free."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
from pathlib import Path

import pytest
from aiohttp import web

from bot.engine import Engine
from bot.linkcheck.report import report_to_json
from bot.loopwatch import LoopLagProbe
from bot.offload import Offloader
from tests.conftest import loopback_settings
from tests.support.clock import Clock
from tests.support.site import LocalSite

# Links on the big page: about 0.4 s of parsing, resolving and filtering in one piece on this machine.
BIG_PAGE_LINKS = 5_000
# Links on the page whose report is compared (each is fetched): over OFFLOAD_MIN_BYTES, quick to check.
CHECKED_PAGE_LINKS = 1_000


def _boom(message: str) -> None:
    raise ValueError(message)


def _suicide() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


async def test_calls_run_in_other_processes_and_their_errors_come_back() -> None:
    offload = Offloader(2)
    try:
        await offload.warm_up("bot.linkcheck.extract")
        pids = set(await asyncio.gather(*(offload.run(os.getpid) for _ in range(8))))
        assert os.getpid() not in pids
        with pytest.raises(ValueError, match="bad page"):
            await offload.run(_boom, "bad page")
    finally:
        await offload.aclose()


async def test_a_dead_worker_is_replaced_and_the_call_still_answers() -> None:
    offload = Offloader(1)
    try:
        # The first worker dies in the call; the pool is replaced and, dying again, the call runs in a
        # thread of this process, where the kill would kill the test: so kill only outside this process.
        first = await offload.run(os.getpid)
        assert first != os.getpid()
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.2)
        again = await offload.run(os.getpid)
        assert again not in (first, os.getpid())
    finally:
        await offload.aclose()


async def test_no_workers_means_a_thread_of_this_process() -> None:
    assert await Offloader(0).run(os.getpid) == os.getpid()
    with pytest.raises(ValueError):
        Offloader(-1)


def big_page(site: LocalSite, links: int) -> str:
    rows = "\n".join(
        f'<li><a href="/l/{i}">Link number {i}</a> <a href="mailto:x{i}@example.org">mail</a></li>'
        for i in range(links)
    )
    return f"<html><head><title>Big</title></head><body><main><ul>{rows}</ul></main></body></html>"


@pytest.fixture
def big_site(site: LocalSite) -> LocalSite:
    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok", content_type="text/plain")

    site.fallback = ok
    site.html("/big", big_page(site, CHECKED_PAGE_LINKS))
    return site


async def _check_json(tmp_path: Path, clock: Clock, url: str, workers: int) -> dict[str, object]:
    settings = dataclasses.replace(loopback_settings(tmp_path / f"w{workers}"), cpu_workers=workers)
    (tmp_path / f"w{workers}").mkdir()
    engine = Engine.create(settings, now=clock)
    try:
        report = await engine.check(url)
    finally:
        await engine.aclose()
    data = report_to_json(report)
    data.pop("started_at", None)
    data.pop("duration_s", None)
    return data


async def test_a_page_parsed_in_a_worker_gives_the_same_report(
    tmp_path: Path, clock: Clock, big_site: LocalSite
) -> None:
    inline = await _check_json(tmp_path, clock, big_site.url("/big"), workers=0)
    offloaded = await _check_json(tmp_path, clock, big_site.url("/big"), workers=2)
    assert offloaded == inline
    assert len(inline["outbound"]) == 2 * CHECKED_PAGE_LINKS  # type: ignore[arg-type]


async def _longest_stall(tmp_path: Path, clock: Clock, url: str, workers: int, checks: int) -> float:
    settings = dataclasses.replace(loopback_settings(tmp_path), cpu_workers=workers)
    engine = Engine.create(settings, now=clock)
    try:
        await engine.offload.warm_up("bot.linkcheck.pipeline")
        # Links are not fetched here (a page of mailto: links): the stall measured is the page's own.
        # The collector is off while measuring: a full collection of the test process's garbage (large
        # after the rest of the suite) would show up here whichever way the page is parsed.
        gc.collect()
        gc.disable()
        try:
            async with LoopLagProbe(interval_s=0.005) as probe:
                await asyncio.gather(*(engine.check(url) for _ in range(checks)))
        finally:
            gc.enable()
        return probe.summary().max_busy_s
    finally:
        await engine.aclose()


async def test_big_pages_do_not_stall_the_loop_with_workers(
    tmp_path: Path, clock: Clock, site: LocalSite
) -> None:
    rows = "".join(
        f'<li><a href="mailto:p{i}@example.org">Partner {i}</a></li>' for i in range(BIG_PAGE_LINKS)
    )
    site.html("/mail", f"<html><body><main><ul>{rows}</ul></main></body></html>")
    url = site.url("/mail")
    inline = await _longest_stall(tmp_path, clock, url, workers=0, checks=4)
    offloaded = await _longest_stall(tmp_path, clock, url, workers=2, checks=4)
    # CPU time of the loop's own thread between two wake-ups (what our code kept it busy with, whatever
    # else the machine runs). Parsed on the loop, such a page keeps it busy for a long stretch; parsed in
    # workers, the loop only unpickles the results.
    assert offloaded < inline
    # Measured 16-27 ms with workers, 160-230 ms without.
    assert offloaded < 0.1, f"longest busy stretch with workers: {offloaded:.3f} s (inline: {inline:.3f} s)"
