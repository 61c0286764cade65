"""Checks of the benchmark's own parts (the farm, the parsers, the measurement), run with
``pytest bench/test_bench.py``. Not part of the project's suite: the benchmark is not a timed test.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import webfarm
from measure import run_measured
from tools import Counts, base_env, parse_linkchecker, parse_linkinator, parse_linkpact


def test_plan_has_the_status_mix_and_spreads_links_evenly() -> None:
    plan = webfarm.make_plan(1000, 10)
    assert plan.expected == {
        "links": 1000, "ok": 850, "redirect": 100, "not_found": 40, "server_error": 10,
        "broken": 50, "fine": 950,
    }  # fmt: skip
    assert Counter(link.host for link in plan.links) == {host: 100 for host in range(10)}
    assert len({link.path for link in plan.links}) == 1000  # every link is a distinct URL
    assert webfarm.make_plan(1000, 10) == plan  # same seed, same page for every tool and run


async def test_farm_answers_each_kind_on_distinct_loopback_hosts() -> None:
    plan = webfarm.make_plan(100, 3)
    farm, runners = await webfarm.start_farm(plan, hosts=3, latency_ms=1, body_bytes=500)
    try:
        assert [origin.split(":")[1] for origin in farm.origins] == [
            "//127.0.0.1",
            "//127.0.0.2",
            "//127.0.0.3",
        ]
        statuses = {}
        async with aiohttp.ClientSession() as session:
            async with session.get(farm.origins[0] + "/page") as page:
                html = await page.text()
            assert html.count("<a href=") == 100
            for link in plan.links:
                url = farm.origins[link.host] + link.path
                async with session.head(url, allow_redirects=True) as answer:
                    statuses[link.kind] = answer.status
                    assert "LinkChecker" in answer.headers  # LinkChecker's opt-in to run unthrottled
            async with session.get(farm.origins[1] + "/__stats") as stats:
                counted = await stats.json()
        assert statuses == {"ok": 200, "redirect": 200, "not_found": 404, "server_error": 500}
        assert counted["requests"]["GET page"] == 1
        assert counted["requests"]["HEAD landing"] == plan.expected["redirect"]
    finally:
        for runner in runners:
            await runner.cleanup()


def _counts(counts: Counts) -> tuple[int, int, int, int]:
    return counts.checked, counts.ok, counts.broken, counts.other


def test_parsers_count_links_without_the_page_itself(tmp_path: Path) -> None:
    linkinator = tmp_path / "linkinator.json"
    linkinator.write_text(
        json.dumps(
            {
                "passed": False,
                "links": [
                    {"url": "http://127.0.0.1:1/page", "status": 200, "state": "OK"},
                    {"url": "http://127.0.0.1:1/ok/0", "status": 200, "state": "OK", "parent": "p"},
                    {"url": "http://127.0.0.2:1/missing/1", "status": 404, "state": "BROKEN", "parent": "p"},
                    {"url": "mailto:x@example.com", "status": 0, "state": "SKIPPED", "parent": "p"},
                ],
            }
        )
    )
    assert _counts(parse_linkinator(linkinator)) == (3, 1, 1, 1)

    linkchecker = tmp_path / "linkchecker.csv"
    linkchecker.write_text(
        textwrap.dedent(
            """\
            # created by LinkChecker
            urlname;parentname;base;result;warningstring;infostring;valid;url;line;column;name
            http://127.0.0.1:1/page;;;200 OK;;;True;http://127.0.0.1:1/page;;;
            http://127.0.0.1:1/ok/0;http://127.0.0.1:1/page;;200 OK;;;True;http://127.0.0.1:1/ok/0;7;5;R0
            http://127.0.0.2:1/error/1;http://127.0.0.1:1/page;;500 Internal Server Error;;;False;x;8;5;R1
            # Stopped checking at 2026-01-01
            """
        )
    )
    assert _counts(parse_linkchecker(linkchecker)) == (2, 1, 1, 0)

    linkpact = tmp_path / "linkpact.json"
    linkpact.write_text(
        json.dumps(
            {
                "outbound": [
                    {"verdict": "ok", "reason": "http_200"},
                    {"verdict": "broken", "reason": "http_404"},
                    {"verdict": "unknown", "reason": "timeout"},
                ]
            }
        )
    )
    assert _counts(parse_linkpact(linkpact)) == (3, 1, 1, 1)


def test_measurement_sees_cpu_and_peak_memory_of_the_child(tmp_path: Path) -> None:
    # Holds ~80 MB for a moment and burns a little CPU: both must show, and the exit code must pass through.
    script = (
        "import time\n"
        "block = bytearray(80_000_000)\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\n"
        "raise SystemExit(3)"
    )
    measured = run_measured(
        [sys.executable, "-c", script],
        env=base_env(),
        stdout=tmp_path / "out",
        stderr=tmp_path / "err",
        timeout_s=60,
    )
    assert measured.exit_code == 3
    assert measured.cpu_s >= 0.25
    assert measured.wall_s >= measured.user_s * 0.5
    assert measured.maxrss_bytes >= 80_000_000
    assert measured.tree_peak_rss_bytes >= 80_000_000
    assert not measured.timed_out


def test_measurement_kills_a_run_past_its_timeout(tmp_path: Path) -> None:
    measured = run_measured(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env=base_env(),
        stdout=tmp_path / "out",
        stderr=tmp_path / "err",
        timeout_s=0.5,
    )
    assert measured.timed_out
    assert measured.wall_s < 10


async def test_rate_limited_hosts_answer_429_during_their_window_only() -> None:
    plan = webfarm.make_plan(20, 2)
    farm, runners = await webfarm.start_farm(
        plan, hosts=2, latency_ms=1, body_bytes=500, rate_limited_hosts=1, rate_limit_window_s=60
    )
    limited = next(link for link in plan.links if link.host == 1 and link.kind == webfarm.OK)
    free = next(link for link in plan.links if link.host == 0 and link.kind == webfarm.OK)
    try:
        async with aiohttp.ClientSession() as session:

            async def head(link: webfarm.Link) -> tuple[int, str | None]:
                async with session.head(farm.origins[link.host] + link.path) as answer:
                    return answer.status, answer.headers.get("Retry-After")

            assert await head(limited) == (429, "1")
            assert await head(free) == (200, None)  # the page's host is never limited
            farm.window_started[1] -= 61  # the window is over (moved back rather than waited for)
            assert await head(limited) == (200, None)
            async with session.get(farm.origins[0] + "/__stats") as stats:
                counted = await stats.json()
            assert await head(limited) == (429, "1")  # /__stats re-armed it for the next run
        assert counted["requests"]["HEAD rate_limited"] == 1
        assert counted["requests"]["HEAD ok"] == 2
    finally:
        for runner in runners:
            await runner.cleanup()
