"""A loopback web farm for the link-checker benchmark: one page of links spread over several hosts.

Each host is its own aiohttp server bound to a distinct loopback address (127.0.0.1, 127.0.0.2, ...)
on an ephemeral port, so every tool reaches it by IP literal without DNS. Every answer waits
``latency_ms`` first (an ``asyncio.sleep`` in the handler), which stands in for a real network round
trip and is what makes concurrency matter.

The page (served by the first host at ``/page``) links to ``links`` unique URLs, dealt round-robin over
the hosts, with a status mix like a real page: mostly 200, some 301 -> 200, some 404, a few 500. The
mix is shuffled with a fixed seed so every run and every tool sees the same page.

Run as a script it prints one JSON line (page URL, host URLs, expected counts) on stdout once every
host listens, then serves until stdin closes, SIGTERM/SIGINT arrives or ``--max-seconds`` passes. The
farm only ever binds loopback addresses. ``GET /__stats`` on any host returns the request counters and
the arrival times (Unix time) of the requests since the previous ``/__stats``, which the benchmark uses
to split a tool's wall time into start-up, page, links and exit.

Rate limits (``--rate-limited-hosts N``, default none): the last N hosts answer every link request with
``429 Too Many Requests`` and ``Retry-After: 1`` (``--retry-after-s``) for ``--rate-limit-window-s``
seconds, counted from the first link request such a host receives; after that they answer normally.
``/__stats`` re-arms the window, so each benchmark run (which reads the stats before it starts) meets
the same limit. A checker that honours Retry-After and tries again once gets every link right.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import ipaddress
import json
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

# Defaults, from the benchmark's spec (issue 2, section 6): 1,000 links over 10 hosts, ~20 ms latency.
DEFAULT_LINKS = 1000
DEFAULT_HOSTS = 10
DEFAULT_LATENCY_MS = 20.0
# A small page body for each 200: enough that a GET-only checker pays for reading it, small enough that
# the benchmark measures checking rather than bandwidth.
DEFAULT_BODY_BYTES = 2048
# Shares of each kind of link, per mille; the rest is 200. Roughly what a real resources page shows.
REDIRECT_PER_MILLE = 100
NOT_FOUND_PER_MILLE = 40
SERVER_ERROR_PER_MILLE = 10
SEED = 20240601
# A safety net: the farm stops by itself after this long even if its parent forgets it.
DEFAULT_MAX_SECONDS = 3600.0
# Arrival times kept between two /__stats calls, at most (a run makes ~1,200 requests).
MAX_ARRIVALS = 100_000
FIRST_ADDRESS = ipaddress.IPv4Address("127.0.0.1")
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")

OK, REDIRECT, NOT_FOUND, SERVER_ERROR = "ok", "redirect", "not_found", "server_error"
# The path prefix each kind of link is served under.
PREFIX = {OK: "ok", REDIRECT: "moved", NOT_FOUND: "missing", SERVER_ERROR: "error"}
KIND_OF_PREFIX = {prefix: kind for kind, prefix in PREFIX.items()}
# The kinds of request that are link checks (the page, robots.txt and /__stats are not).
LINK_KINDS = frozenset({OK, REDIRECT, NOT_FOUND, SERVER_ERROR, "landing"})
# Rate-limited hosts (none by default): how long a limited host answers 429 after its first link request,
# and the Retry-After it sends (delta-seconds, RFC 9110 section 10.2.3). The window is shorter than the
# Retry-After, so one retry after the asked pause lands after it.
DEFAULT_RATE_LIMIT_WINDOW_S = 0.5
DEFAULT_RETRY_AFTER_S = 1
RATE_LIMITED = "rate_limited"
HOST_INDEX = web.AppKey("host_index", int)
# LinkChecker throttles each host to <= 10 requests/s unless the server sends this header (its documented
# opt-in, see linkcheckerrc(5) "maxrequestspersecond"); the farm opts in so every tool runs unthrottled.
OPT_IN_HEADERS = {"LinkChecker": "benchmark-farm"}


@dataclass(frozen=True, slots=True)
class Link:
    """One link on the page: which host (index) it points to, its path and what that path answers."""

    host: int
    path: str
    kind: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The page's links, in page order. ``expected`` counts them by kind and by final outcome."""

    links: tuple[Link, ...]

    @property
    def expected(self) -> dict[str, int]:
        kinds = Counter(link.kind for link in self.links)
        return {
            "links": len(self.links),
            OK: kinds[OK],
            REDIRECT: kinds[REDIRECT],
            NOT_FOUND: kinds[NOT_FOUND],
            SERVER_ERROR: kinds[SERVER_ERROR],
            # What a correct checker reports: 404 and 500 are broken, 200 and 301 -> 200 are fine.
            "broken": kinds[NOT_FOUND] + kinds[SERVER_ERROR],
            "fine": kinds[OK] + kinds[REDIRECT],
        }


def make_plan(links: int = DEFAULT_LINKS, hosts: int = DEFAULT_HOSTS, seed: int = SEED) -> Plan:
    """Deal ``links`` unique links over ``hosts`` hosts with the fixed status mix. Raises ValueError."""
    if links < 1 or hosts < 1:
        raise ValueError("links and hosts must be at least 1")
    redirects = links * REDIRECT_PER_MILLE // 1000
    not_found = links * NOT_FOUND_PER_MILLE // 1000
    errors = links * SERVER_ERROR_PER_MILLE // 1000
    kinds = [REDIRECT] * redirects + [NOT_FOUND] * not_found + [SERVER_ERROR] * errors
    kinds += [OK] * (links - len(kinds))
    random.Random(seed).shuffle(kinds)
    return Plan(
        tuple(Link(host=i % hosts, path=f"/{PREFIX[kind]}/{i}", kind=kind) for i, kind in enumerate(kinds))
    )


def render_page(plan: Plan, origins: list[str]) -> str:
    """The HTML of the page: a header nav, then every planned link in a list in ``<main>``."""
    items = "\n".join(
        f'<li><a href="{html.escape(origins[link.host] + link.path)}">Resource {i}: partner guide</a></li>'
        for i, link in enumerate(plan.links)
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>Partner resources</title></head>\n"
        "<body><header><nav>Benchmark farm</nav></header>\n"
        f"<main><h1>Partner resources</h1>\n<ul>\n{items}\n</ul></main>\n"
        "<footer>Served by bench/webfarm.py</footer></body></html>\n"
    )


def filler_page(size: int) -> bytes:
    """A valid HTML page of about ``size`` bytes without links (so no checker crawls further)."""
    head = b"<!doctype html><html><head><title>Target</title></head><body><p>"
    tail = b"</p></body></html>"
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


@dataclass
class Farm:
    """The running farm: its plan, one origin per host and request counters keyed by "METHOD kind"."""

    plan: Plan
    latency_s: float
    body: bytes
    origins: list[str] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    # (arrival Unix time, "METHOD kind") since the last /__stats; bounded by the number of requests a
    # benchmark run makes (a few thousand), and emptied by every /__stats.
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    page: bytes = b""
    # Host indexes that answer 429 during their window, the window (seconds), the Retry-After sent, and
    # when (monotonic seconds) each limited host's window began in the current run.
    rate_limited: frozenset[int] = frozenset()
    rate_limit_window_s: float = DEFAULT_RATE_LIMIT_WINDOW_S
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    window_started: dict[int, float] = field(default_factory=dict)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        """Route every request by its first path segment, after the simulated latency."""
        segments = request.path.strip("/").split("/")
        if segments[0] == "__stats":
            arrivals, self.arrivals = self.arrivals, []
            self.window_started.clear()  # the next run meets the rate limit afresh
            return web.json_response(
                {"requests": dict(self.counters), "total": sum(self.counters.values()), "arrivals": arrivals}
            )
        kind = KIND_OF_PREFIX.get(segments[0], segments[0] or "root")
        if len(self.arrivals) < MAX_ARRIVALS:
            self.arrivals.append((time.time(), f"{request.method} {kind}"))
        await asyncio.sleep(self.latency_s)
        if kind in LINK_KINDS and self._limited(request.app[HOST_INDEX]):
            self.counters[f"{request.method} {RATE_LIMITED}"] += 1
            return web.Response(
                status=429,
                text="too many requests\n",
                headers={**OPT_IN_HEADERS, "Retry-After": str(self.retry_after_s)},
            )
        self.counters[f"{request.method} {kind}"] += 1
        if segments[0] == "page":
            return web.Response(
                body=self.page, content_type="text/html", charset="utf-8", headers=OPT_IN_HEADERS
            )
        if segments[0] == "robots.txt":
            return web.Response(
                text="User-agent: *\nAllow: /\n", content_type="text/plain", headers=OPT_IN_HEADERS
            )
        if kind in (OK, "landing"):
            return web.Response(
                body=self.body, content_type="text/html", charset="utf-8", headers=OPT_IN_HEADERS
            )
        if kind == REDIRECT and len(segments) == 2:
            return web.Response(status=301, headers={**OPT_IN_HEADERS, "Location": f"/landing/{segments[1]}"})
        if kind == SERVER_ERROR:
            return web.Response(status=500, text="server error\n", headers=OPT_IN_HEADERS)
        return web.Response(status=404, text="not found\n", headers=OPT_IN_HEADERS)

    def _limited(self, host: int) -> bool:
        """Is ``host`` in its 429 window? The window starts with its first link request of the run."""
        if host not in self.rate_limited:
            return False
        now = time.monotonic()
        started = self.window_started.setdefault(host, now)
        return now - started < self.rate_limit_window_s


async def start_farm(
    plan: Plan,
    *,
    hosts: int,
    latency_ms: float,
    body_bytes: int,
    rate_limited_hosts: int = 0,
    rate_limit_window_s: float = DEFAULT_RATE_LIMIT_WINDOW_S,
    retry_after_s: int = DEFAULT_RETRY_AFTER_S,
) -> tuple[Farm, list[web.AppRunner]]:
    """Bind one server per loopback address (127.0.0.1 + i), ephemeral ports; the last
    ``rate_limited_hosts`` of them answer 429 during their window. Raises OSError, ValueError."""
    if not 0 <= rate_limited_hosts < hosts:
        raise ValueError(
            "rate_limited_hosts must be at least 0 and less than hosts (the page's host is never limited)"
        )
    farm = Farm(
        plan=plan,
        latency_s=latency_ms / 1000.0,
        body=filler_page(body_bytes),
        rate_limited=frozenset(range(hosts - rate_limited_hosts, hosts)),
        rate_limit_window_s=rate_limit_window_s,
        retry_after_s=retry_after_s,
    )
    runners: list[web.AppRunner] = []
    for index in range(hosts):
        address = FIRST_ADDRESS + index
        if address not in LOOPBACK:
            raise ValueError(f"{address} is not a loopback address; the farm binds loopback only")
        app = web.Application()
        app[HOST_INDEX] = index
        app.router.add_route("*", "/{tail:.*}", farm._answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # A deep backlog: at concurrency 100 every tool opens its connections in one burst.
        await web.TCPSite(runner, str(address), 0, backlog=1024).start()
        port = runner.addresses[0][1]
        farm.origins.append(f"http://{address}:{port}")
        runners.append(runner)
    farm.page = render_page(plan, farm.origins).encode()
    return farm, runners


async def serve(args: argparse.Namespace) -> None:
    plan = make_plan(args.links, args.hosts)
    farm, runners = await start_farm(
        plan,
        hosts=args.hosts,
        latency_ms=args.latency_ms,
        body_bytes=args.body_bytes,
        rate_limited_hosts=args.rate_limited_hosts,
        rate_limit_window_s=args.rate_limit_window_s,
        retry_after_s=args.retry_after_s,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_with_parent:
        # Stop when the parent closes our stdin (or dies), so the farm never outlives the benchmark.
        # A thread, because stdin may be a file or pipe the event loop cannot watch.
        def wait_for_eof() -> None:
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, name="stdin-eof", daemon=True).start()
    ready = {
        "page_url": farm.origins[0] + "/page",
        "stats_url": farm.origins[0] + "/__stats",
        "origins": farm.origins,
        "latency_ms": args.latency_ms,
        "body_bytes": args.body_bytes,
        "expected": plan.expected,
        "rate_limited_origins": [farm.origins[i] for i in sorted(farm.rate_limited)],
        "rate_limit_window_s": args.rate_limit_window_s,
        "retry_after_s": args.retry_after_s,
    }
    print(json.dumps(ready), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    for runner in runners:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--links", type=int, default=DEFAULT_LINKS)
    parser.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help="loopback hosts (max 254)")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS)
    parser.add_argument("--body-bytes", type=int, default=DEFAULT_BODY_BYTES)
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    parser.add_argument(
        "--rate-limited-hosts", type=int, default=0, help="the last N hosts answer 429 during their window"
    )
    parser.add_argument("--rate-limit-window-s", type=float, default=DEFAULT_RATE_LIMIT_WINDOW_S)
    parser.add_argument("--retry-after-s", type=int, default=DEFAULT_RETRY_AFTER_S)
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when stdin reaches end of file")
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be between 1 and 254")
    if not 0 <= args.rate_limited_hosts < args.hosts:
        parser.error("--rate-limited-hosts must be at least 0 and less than --hosts")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
