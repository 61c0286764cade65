"""The check stage against real local servers: HEAD/GET, retries, 429 pauses, bot walls, verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from aiohttp import web

from bot.config import Limits
from bot.linkcheck.check import LinkChecker, classify, is_bot_wall, retry_after_s
from bot.models import FetchError, FetchErrorKind, FetchResult, Hop, LinkCheck, Verdict
from bot.net.client import HttpClient
from bot.net.resolver import StaticResolver
from tests.support.site import LocalSite
from tests.test_client import (
    ONLY_127_0_0_1,
    FakeClock,
    FlakyDns,
    ManualClock,
    RecordingServer,
    free_port,
    settings,
    settle,
)

LIMITS = Limits(retries=2, retry_backoff_s=0.5, max_retry_after_s=30.0)


class Harness:
    """A client and a checker on one fake clock: retries and pauses happen without waiting."""

    def __init__(self, client: HttpClient, checker: LinkChecker, clock: FakeClock) -> None:
        self.client = client
        self.checker = checker
        self.clock = clock


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    clock = FakeClock()
    async with HttpClient(settings(retries=2), clock=clock, sleep=clock.sleep) as client:
        yield Harness(client, LinkChecker(client, LIMITS, sleep=clock.sleep, now=lambda: 1.7e9), clock)


def methods(site: LocalSite, path: str) -> list[str]:
    return [hit.method for hit in site.hits_for(path)]


# -- ok ----------------------------------------------------------------------------------------------
async def test_200_needs_only_head(site: LocalSite, harness: Harness) -> None:
    site.html("/", "hello")
    check = await harness.checker.check(site.url("/"))
    assert (check.verdict, check.reason, check.status, check.attempts) == (Verdict.OK, "http_200", 200, 1)
    assert methods(site, "/") == ["HEAD"]


async def test_redirect_chain_ends_ok_with_hops(site: LocalSite, harness: Harness) -> None:
    site.redirect("/old", "/older", status=301)
    site.redirect("/older", "/new", status=308)
    site.html("/new", "new")
    check = await harness.checker.check(site.url("/old"))
    assert check.verdict is Verdict.OK and check.final_url == site.url("/new")
    assert [(h.status, h.location) for h in check.redirects] == [
        (301, site.url("/older")),
        (308, site.url("/new")),
    ]


async def test_405_on_head_then_200_on_get(site: LocalSite, harness: Harness) -> None:
    async def no_head(request: web.Request) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=405, headers={"Allow": "GET"})
        return web.Response(text="fine")

    site.route("/no-head", no_head)
    check = await harness.checker.check(site.url("/no-head"))
    assert (check.verdict, check.reason, check.status) == (Verdict.OK, "http_200", 200)
    assert methods(site, "/no-head") == ["HEAD", "GET"]


async def test_links_to_non_html_and_badly_encoded_bodies_are_ok(site: LocalSite, harness: Harness) -> None:
    async def pdf(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})

    async def lying(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"plain", headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})

    site.route("/doc.pdf", pdf)
    site.route("/lying", lying)
    for path in ("/doc.pdf", "/lying"):
        check = await harness.checker.check(site.url(path))
        assert check.verdict is Verdict.OK, (path, check)


# -- broken ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [404, 410, 400])
async def test_client_errors_are_broken_without_retries(
    site: LocalSite, harness: Harness, status: int
) -> None:
    site.status("/x", status)
    check = await harness.checker.check(site.url("/x"))
    assert (check.verdict, check.reason, check.status, check.attempts) == (
        Verdict.BROKEN,
        f"http_{status}",
        status,
        1,
    )
    assert methods(site, "/x") == ["HEAD", "GET"]
    assert harness.clock.sleeps == []


async def test_5xx_is_retried_with_backoff_then_broken(site: LocalSite, harness: Harness) -> None:
    site.status("/down", 500)
    check = await harness.checker.check(site.url("/down"))
    assert (check.verdict, check.reason, check.attempts) == (Verdict.BROKEN, "http_500", 3)
    assert harness.clock.sleeps == [0.5, 1.0]
    # HEAD once; later tries go straight to GET.
    assert methods(site, "/down") == ["HEAD", "GET", "GET", "GET"]


async def test_5xx_that_recovers_is_ok(site: LocalSite, harness: Harness) -> None:
    answers = iter([502, 502, 503, 200, 200])

    async def flaky(request: web.Request) -> web.StreamResponse:
        return web.Response(status=next(answers), text="")

    site.route("/flaky", flaky)
    check = await harness.checker.check(site.url("/flaky"))
    assert (check.verdict, check.attempts) == (Verdict.OK, 3)
    assert harness.clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [501, 505, 511])
async def test_lasting_5xx_is_broken_without_retries(site: LocalSite, harness: Harness, status: int) -> None:
    site.status("/never", status)
    check = await harness.checker.check(site.url("/never"))
    assert (check.verdict, check.reason, check.attempts) == (Verdict.BROKEN, f"http_{status}", 1)
    assert harness.clock.sleeps == []
    assert methods(site, "/never") == ["HEAD", "GET"]  # GET still gets its say after a failed HEAD


def test_default_retries_are_one_short_retry() -> None:
    # docs/benchmarks.md: two retries at 0.5 s and 1 s made every report wait 1.5 s for a link that
    # stays down; one retry after 0.1 s still catches a one-off failure.
    assert (Limits().retries, Limits().retry_backoff_s) == (1, 0.1)


async def test_redirect_loop_is_broken(site: LocalSite, harness: Harness) -> None:
    site.redirect("/a", "/b")
    site.redirect("/b", "/a")
    check = await harness.checker.check(site.url("/a"))
    assert (check.verdict, check.reason) == (Verdict.BROKEN, "redirect_loop")
    assert len(check.redirects) == 2


async def test_nxdomain_is_broken_and_temporary_dns_failure_unknown(site: LocalSite) -> None:
    clock = FakeClock()
    async with HttpClient(settings(), resolver=StaticResolver({}), clock=clock, sleep=clock.sleep) as c:
        check = await LinkChecker(c, LIMITS, sleep=clock.sleep).check("https://no-such-name.test/")
    assert (check.verdict, check.reason, check.attempts) == (Verdict.BROKEN, "dns_not_found", 1)
    async with HttpClient(settings(), resolver=FlakyDns(), clock=clock, sleep=clock.sleep) as c:
        check = await LinkChecker(c, LIMITS, sleep=clock.sleep).check("https://partner.test/")
    assert (check.verdict, check.reason, check.attempts) == (Verdict.UNKNOWN, "dns_failure", 3)


async def test_refused_connection_is_broken(harness: Harness) -> None:
    check = await harness.checker.check(f"http://127.0.0.1:{free_port()}/")
    assert (check.verdict, check.reason, check.attempts) == (Verdict.BROKEN, "connection_refused", 1)


async def test_tls_error_is_broken(site: LocalSite, harness: Harness) -> None:
    site.html("/", "plain http")
    check = await harness.checker.check(f"https://127.0.0.1:{site.port}/")
    assert (check.verdict, check.reason) == (Verdict.BROKEN, "tls_error")


# -- unknown -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (403, {"cf-mitigated": "challenge", "Server": "cloudflare"}),
        (503, {"cf-mitigated": "challenge"}),
        (999, {}),  # LinkedIn
        (202, {"x-amzn-waf-action": "challenge"}),  # AWS WAF: a 2xx that is not the page
        (405, {"x-amzn-waf-action": "captcha"}),
        (403, {"x-datadome": "protected"}),
        (403, {"Server": "AkamaiGHost"}),
    ],
)
async def test_bot_walls_are_unknown_and_not_retried(
    site: LocalSite, harness: Harness, status: int, headers: dict[str, str]
) -> None:
    async def wall(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers=headers, reason="Request denied")

    site.route("/walled", wall)
    check = await harness.checker.check(site.url("/walled"))
    assert (check.verdict, check.reason, check.status, check.attempts) == (
        Verdict.UNKNOWN,
        "bot_wall",
        status,
        1,
    )
    assert harness.clock.sleeps == []


async def test_plain_403_is_broken_and_401_unknown(site: LocalSite, harness: Harness) -> None:
    site.status("/forbidden", 403)
    site.status("/login", 401, headers={"WWW-Authenticate": 'Basic realm="x"'})
    forbidden = await harness.checker.check(site.url("/forbidden"))
    login = await harness.checker.check(site.url("/login"))
    assert (forbidden.verdict, forbidden.reason) == (Verdict.BROKEN, "http_403")
    assert (login.verdict, login.reason) == (Verdict.UNKNOWN, "auth_required")


async def test_timeouts_are_retried_then_unknown(site: LocalSite) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(10)
        return web.Response(text="late")

    site.route("/stall", stall)
    clock = FakeClock()
    async with HttpClient(settings(read_s=0.1), clock=clock, sleep=clock.sleep) as client:
        checker = LinkChecker(client, Limits(retries=1, retry_backoff_s=0.5), sleep=clock.sleep)
        check = await checker.check(site.url("/stall"))
    assert (check.verdict, check.reason, check.attempts) == (Verdict.UNKNOWN, "timeout", 2)
    assert clock.sleeps == [0.5]
    assert methods(site, "/stall") == ["HEAD", "GET", "GET"]


async def test_reset_is_unknown(harness: Harness) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        check = await harness.checker.check(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
    assert (check.verdict, check.reason, check.attempts) == (Verdict.UNKNOWN, "connection_reset", 3)


async def test_too_many_redirects_is_unknown(site: LocalSite, harness: Harness) -> None:
    for i in range(15):
        site.redirect(f"/r{i}", f"/r{i + 1}", status=302)
    check = await harness.checker.check(site.url("/r0"))
    assert (check.verdict, check.reason) == (Verdict.UNKNOWN, "too_many_redirects")


# -- 429 ---------------------------------------------------------------------------------------------
class GatedClock(FakeClock):
    """A fake clock whose sleeps block until the test opens the gate, so the test can look at who is
    waiting in between."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: asyncio.Queue[float] = asyncio.Queue()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.arrived.put_nowait(seconds)
        await self.gate.wait()


async def test_429_retry_after_pauses_the_origin_for_every_check(site: LocalSite) -> None:
    answered = 0

    async def limited(request: web.Request) -> web.StreamResponse:
        nonlocal answered
        answered += 1
        if answered == 1:
            return web.Response(status=429, headers={"Retry-After": "7"})
        return web.Response(text="ok")

    site.route("/limited", limited)
    site.html("/other", "other")
    clock = GatedClock()
    async with HttpClient(settings(), clock=clock, sleep=clock.sleep) as client:
        checker = LinkChecker(client, LIMITS, sleep=clock.sleep)
        first = asyncio.create_task(checker.check(site.url("/limited")))
        # The retry waits out the 7 s pause (one timer sleeps for the origin)...
        assert await asyncio.wait_for(clock.arrived.get(), 5) == 7.0
        # ...and so does a check of another page on the same origin that starts meanwhile: it parks
        # behind the pause without a sleep of its own.
        second = asyncio.create_task(checker.check(site.url("/other")))
        await settle()
        assert clock.arrived.empty() and not second.done()
        assert site.hits_for("/other") == []
        assert client.paused_for(site.url("/")) == 7.0
        clock.now += 7.0
        clock.gate.set()
        limited_check, other_check = await asyncio.gather(first, second)
    assert (limited_check.verdict, limited_check.attempts) == (Verdict.OK, 2)
    assert other_check.verdict is Verdict.OK
    assert methods(site, "/limited") == ["HEAD", "HEAD"]  # no GET straight after a 429


async def test_429_retry_after_http_date(site: LocalSite, harness: Harness) -> None:
    served = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    answered = 0

    async def limited(request: web.Request) -> web.StreamResponse:
        nonlocal answered
        answered += 1
        if answered == 1:
            return web.Response(
                status=429,
                headers={
                    "Date": format_datetime(served, usegmt=True),
                    "Retry-After": format_datetime(served.replace(second=9), usegmt=True),
                },
            )
        return web.Response(text="ok")

    site.route("/limited", limited)
    check = await harness.checker.check(site.url("/limited"))
    assert check.verdict is Verdict.OK
    assert harness.clock.sleeps == [9.0]  # measured against the server's Date, not our clock


async def test_429_for_good_is_unknown_rate_limited(site: LocalSite, harness: Harness) -> None:
    site.status("/busy", 429, headers={"Retry-After": "2"})
    check = await harness.checker.check(site.url("/busy"))
    assert (check.verdict, check.reason, check.attempts) == (Verdict.UNKNOWN, "rate_limited", 3)
    assert harness.clock.sleeps == [2.0, 2.0]
    assert methods(site, "/busy") == ["HEAD", "HEAD", "HEAD"]


async def test_429_asking_for_longer_than_the_cap_is_not_retried(site: LocalSite, harness: Harness) -> None:
    site.status("/later", 429, headers={"Retry-After": "3600"})
    check = await harness.checker.check(site.url("/later"))
    assert (check.verdict, check.reason, check.attempts) == (Verdict.UNKNOWN, "rate_limited", 1)
    assert harness.client.paused_for(site.url("/")) == 30.0  # the origin is still paused, for the cap


async def test_links_queued_behind_a_429_send_nothing_into_the_pause(site: LocalSite) -> None:
    """Every link on the origin keeps answering 429: each is tried once plus its one retry, none is sent
    while the origin is paused, the waiting ones share one timer per pause, and all end ``unknown``."""
    paused_when_hit: list[float] = []
    clock = ManualClock()

    async def busy(request: web.Request) -> web.StreamResponse:
        paused_when_hit.append(client.paused_for(site.url("/")))
        return web.Response(status=429, headers={"Retry-After": "2"})

    site.fallback = busy
    urls = [site.url(f"/busy/{i}") for i in range(10)]
    async with HttpClient(settings(per_host_concurrency=1), clock=clock, sleep=clock.sleep) as client:
        checker = LinkChecker(client, Limits(retries=1), sleep=clock.sleep)
        run = asyncio.create_task(checker.check_many(urls))
        while not run.done():
            # Real time passes only for the loopback server to answer; pauses end when we say so.
            await asyncio.wait({run}, timeout=0.01)
            clock.advance_to_next()
        results = run.result()
    assert {(c.verdict, c.reason, c.attempts) for c in results.values()} == {
        (Verdict.UNKNOWN, "rate_limited", 2)
    }
    assert len(site.hits) == 20 and all(m == "HEAD" for m in methods(site, "/busy/0"))
    assert paused_when_hit == [0.0] * 20  # nothing reached the server while its origin was paused
    assert len(clock.sleeps) < len(site.hits)  # one timer per pause, not one sleep per waiting link


async def test_after_a_pause_one_probe_goes_before_the_others(site: LocalSite) -> None:
    """When a pause ends, one queued link goes first; while the server still answers 429 the others stay
    parked (their tries are not spent), and they all go once a probe is answered without a new pause."""
    limited = True
    clock = ManualClock()

    async def maybe_limited(request: web.Request) -> web.StreamResponse:
        if limited:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(text="ok")

    site.fallback = maybe_limited
    urls = [site.url(f"/p/{i}") for i in range(10)]
    async with HttpClient(settings(), clock=clock, sleep=clock.sleep) as client:
        checker = LinkChecker(client, Limits(retries=1), sleep=clock.sleep)
        client.pause_origin(site.url("/"), 1.0)  # as an earlier 429 would have
        run = asyncio.create_task(checker.check_many(urls))
        await asyncio.wait_for(clock.sleeping(1), 5)  # all ten parked behind one timer
        assert site.hits == []
        clock.advance(1.0)
        await asyncio.wait_for(clock.sleeping(2), 5)  # the probe was answered 429: paused again
        assert len(site.hits) == 1
        limited = False
        clock.advance(1.0)
        results = await asyncio.wait_for(run, 5)
    assert [c.verdict for c in results.values()] == [Verdict.OK] * 10
    assert [c.attempts for c in results.values()] == [2] + [1] * 9  # only the first probe spent a try
    assert len(site.hits) == 11


async def test_a_429_on_one_port_does_not_hold_links_on_another(site: LocalSite) -> None:
    site.status("/limited", 429, headers={"Retry-After": "7"})
    clock = ManualClock()
    with LocalSite() as other:
        other.html("/fine", "fine")
        async with HttpClient(settings(), clock=clock, sleep=clock.sleep) as client:
            checker = LinkChecker(client, Limits(retries=1), sleep=clock.sleep)
            limited = asyncio.create_task(checker.check(site.url("/limited")))
            await asyncio.wait_for(clock.sleeping(1), 5)  # the 429 came back: the origin's pause began
            fine = await asyncio.wait_for(checker.check(other.url("/fine")), 5)
            assert fine.verdict is Verdict.OK and not limited.done()
            clock.advance(7.0)
            check = await asyncio.wait_for(limited, 5)
    assert (check.verdict, check.reason, check.attempts) == (Verdict.UNKNOWN, "rate_limited", 2)


# -- skipped -----------------------------------------------------------------------------------------
async def test_blocked_and_unsupported_targets_are_skipped(site: LocalSite) -> None:
    async with RecordingServer("127.0.0.2") as recorder:
        site.redirect("/to-internal", recorder.url("/"))
        async with HttpClient(settings(allow=ONLY_127_0_0_1)) as client:
            checker = LinkChecker(client, LIMITS)
            results = await checker.check_many(
                [
                    "http://169.254.169.254/latest/meta-data/",
                    recorder.url("/"),
                    site.url("/to-internal"),
                    "ftp://example.com/file",
                    "http://user:pw@example.com/",
                ]
            )
        assert recorder.connections == 0
    reasons = [(c.verdict, c.reason) for c in results.values()]
    assert reasons == [
        (Verdict.SKIPPED, "blocked_address"),
        (Verdict.SKIPPED, "blocked_address"),
        (Verdict.SKIPPED, "blocked_address"),
        (Verdict.SKIPPED, "unsupported_scheme"),
        (Verdict.SKIPPED, "invalid_url"),
    ]


# -- check_many --------------------------------------------------------------------------------------
async def test_check_many_checks_each_unique_url_once(site: LocalSite, harness: Harness) -> None:
    site.html("/a", "a")
    site.status("/b", 404)
    urls = [site.url("/a"), site.url("/b"), site.url("/a"), site.url("/a")]
    done: list[LinkCheck] = []
    results = await harness.checker.check_many(urls, on_done=done.append)
    assert list(results) == [site.url("/a"), site.url("/b")]
    assert results[site.url("/a")].verdict is Verdict.OK
    assert results[site.url("/b")].verdict is Verdict.BROKEN
    assert sorted(c.url for c in done) == sorted(results)
    assert methods(site, "/a") == ["HEAD"]


async def test_check_many_runs_concurrently_within_the_host_limit(site: LocalSite) -> None:
    in_flight = peak = 0

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.02)  # the server's latency, so checks overlap
            return web.Response(text="ok")
        finally:
            in_flight -= 1

    site.fallback = slow
    async with HttpClient(settings(per_host_concurrency=3)) as client:
        results = await LinkChecker(client, LIMITS).check_many(site.url(f"/p{i}") for i in range(12))
    assert all(c.verdict is Verdict.OK for c in results.values())
    assert peak == 3


async def test_a_failing_progress_callback_does_not_stop_the_checks(
    site: LocalSite, harness: Harness
) -> None:
    site.html("/a", "a")
    site.html("/b", "b")

    def explode(check: LinkCheck) -> None:
        raise RuntimeError("progress display broke")

    results = await harness.checker.check_many([site.url("/a"), site.url("/b")], on_done=explode)
    assert [c.verdict for c in results.values()] == [Verdict.OK, Verdict.OK]


# -- pure rules ----------------------------------------------------------------------------------------
def result(status: int | None = 200, headers: dict[str, str] | None = None, **kwargs: object) -> FetchResult:
    return FetchResult(
        url="https://example.com/", final_url="https://example.com/", status=status, headers=headers or {},
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_classify_statuses_and_errors() -> None:
    assert classify(result(204)) == (Verdict.OK, "http_204")
    assert classify(result(500)) == (Verdict.BROKEN, "http_500")
    assert classify(result(300)) == (Verdict.UNKNOWN, "http_300")
    assert classify(result(429)) == (Verdict.UNKNOWN, "rate_limited")
    assert classify(result(None, error=FetchError(FetchErrorKind.TIMEOUT, "t"))) == (
        Verdict.UNKNOWN,
        "timeout",
    )
    hop = (Hop("https://example.com/", 301, "https://x"),)
    bad_redirect = result(301, redirects=hop, error=FetchError(FetchErrorKind.INVALID_URL, "bad"))
    assert classify(bad_redirect) == (Verdict.BROKEN, "invalid_redirect")
    too_big = result(200, error=FetchError(FetchErrorKind.BODY_TOO_LARGE, "big"))
    assert classify(too_big) == (Verdict.OK, "http_200")
    for kind in FetchErrorKind:
        verdict, reason = classify(result(None, error=FetchError(kind, "x")))
        assert reason and verdict in Verdict


def test_bot_wall_signatures() -> None:
    assert is_bot_wall(result(403, {"cf-mitigated": "challenge"}))
    assert is_bot_wall(result(999))
    assert not is_bot_wall(result(404, {"server": "cloudflare"}))
    assert not is_bot_wall(result(200, {"x-datadome": "protected"}))  # passed the wall: the real page
    assert not is_bot_wall(result(403, {"server": "nginx"}))


def test_retry_after_values() -> None:
    assert retry_after_s(result(429, {"retry-after": "120"}), now=0) == 120.0
    http_date = "Wed, 21 Oct 2015 07:28:30 GMT"
    assert retry_after_s(result(429, {"retry-after": http_date}), now=1445412480.0) == 30.0
    in_the_past = {"retry-after": http_date, "date": "Wed, 21 Oct 2015 08:00:00 GMT"}
    assert retry_after_s(result(429, in_the_past), now=0) == 0.0
    assert retry_after_s(result(429, {"retry-after": "soon"}), now=0) is None
    assert retry_after_s(result(429, {"retry-after": "-5"}), now=0) is None
    assert retry_after_s(result(429), now=0) is None
