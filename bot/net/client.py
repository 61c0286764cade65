"""The one HTTP seam of the engine: :class:`HttpClient`, one per process, shared by every check.

httpx's API over the httpx-aiohttp transport (aiohttp does the I/O: on a loopback web of 991 links it
spent about 1.7 s of CPU where httpx's own transport spent 13 s). Requests are ``httpx.Request`` objects
handed to the transport (httpx's transport API, ``handle_async_request``) and answers are
``httpx.Response`` objects; ``httpx.AsyncClient`` is left out because everything it adds on top of the
transport (redirects, auth, a client-wide cookie jar) is done here or not wanted, and it cost about a
fifth of the CPU of a link check (docs/benchmarks.md). Sharing one client means one connection pool and
one set of per-host limits and per-origin 429 pauses across all concurrent users and jobs.

What it adds on top of httpx:

- the address policy on every hop (:mod:`bot.net.policy`; resolved addresses are vetted by
  :class:`bot.net.resolver.PolicyResolver`, so aiohttp connects to exactly the vetted address);
- redirects followed by our code (at most ``limits.max_redirects``), each :class:`Hop` recorded, loops
  detected; cookies set during one request's redirect chain are kept for that chain only;
- per-phase timeouts plus a total deadline per request (httpx has none), so a slow drip cannot hold a
  check for ever;
- body decoding under a cap (:mod:`bot.net.decode`): a gzip bomb costs at most the cap in memory;
- a global and a per-host concurrency limit, and per-origin pauses (429 Retry-After) for everyone;
  requests queued behind a pause wait holding no slot and wake once, when it ends.

Network problems are never raised: :meth:`HttpClient.request` returns a :class:`FetchResult` whose
``error`` says what went wrong (:class:`FetchErrorKind`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import heapq
import itertools
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport

from bot.config import FetchSettings
from bot.models import FetchError, FetchErrorKind, FetchResult, Hop
from bot.net.decode import ACCEPT_ENCODING, BodyDecodeError, BodyDecoder, BodyTooLarge
from bot.net.policy import AddressPolicy, BlockedAddressError
from bot.net.resolver import NOT_FOUND_CODES, PolicyResolver
from bot.urls import resolve_url, strip_fragment

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# Statuses whose Location we follow (RFC 9110 section 15.4); 300, 304 and 305 are final answers.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# A browser-like Accept: some servers answer bare "*/*" clients differently (or with a bot wall).
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# An unread body forces aiohttp to drop the connection; bodies this small (redirects, short error
# pages) are read and discarded instead, so the connection goes back to the pool.
DRAIN_MAX_BYTES = 16 * 1024
# Encoded bodies may be a little larger than their decoded form (incompressible data); past the cap
# plus this slack the raw stream is refused too, so trailing garbage cannot pile up in memory.
RAW_SLACK_BYTES = 64 * 1024
# aiohttp's defaults (8 KiB a header) reject real sites with long Set-Cookie or CSP headers;
# browsers accept far more. These stay small enough to bound memory per response.
MAX_HEADER_LINE_BYTES = 16 * 1024
MAX_HEADER_FIELD_BYTES = 64 * 1024
# The port an origin has when its URL leaves the port out (RFC 9110 sections 4.2.1 and 4.2.2).
DEFAULT_PORTS = {"http": 80, "https": 443}


def host_key(url: str) -> str:
    """The key the per-host concurrency limit uses: the URL's host, lower-case ASCII, no port, no final
    dot.

    Every port and scheme of a machine shares the key: the limit bounds the load we put on a server, and
    ``http://`` and ``https://`` of a site (or two ports of one host) are almost always the same
    machines, so a per-origin limit would let a page that links both double the load. ``""`` for a URL
    without a host.
    """
    try:
        return _host_of(httpx.URL(url))
    except (httpx.InvalidURL, ValueError, TypeError):
        return ""


def origin_key(url: str) -> str:
    """The key 429 pauses use: the URL's origin (scheme, host, port; RFC 6454 section 4) as
    ``scheme://host:port``, the port always written (80/443 when the URL leaves it out), host as in
    :func:`host_key` (IPv6 in brackets). ``""`` for a URL without a scheme or host.

    A 429 (RFC 6585 section 4) is an answer from the server behind one origin: another port or scheme of
    the same host may well be another service, which asked for nothing, so it is not paused.
    """
    keys = _keys_of(url)
    return "" if keys is None else keys[0]


def _keys_of(url: str) -> tuple[str, str] | None:
    """``(origin_key, host_key)`` of ``url``, or None when it has no scheme or host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    if not parsed.scheme or not parsed.raw_host:
        return None
    host = _host_of(parsed)
    return _origin_of(parsed, host), host


def _host_of(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii", errors="replace").rstrip(".").lower()


def _origin_of(url: httpx.URL, host: str) -> str:
    port = url.port or DEFAULT_PORTS.get(url.scheme, 0)
    return f"{url.scheme}://[{host}]:{port}" if ":" in host else f"{url.scheme}://{host}:{port}"


@dataclass(eq=False)
class _Host:
    """One host's share of the per-host limit: ``free`` slots, and its origins that have state."""

    key: str
    free: int
    origins: dict[str, _Origin] = field(default_factory=dict)


@dataclass(eq=False)
class _Origin:
    """One origin's pause and its queue of parked requests (oldest first, each with its ticket; the
    future's result says whether the request was let go as the probe)."""

    key: str
    host: _Host
    paused_until: float = 0.0  # on the client's clock; in the past when not paused
    waiters: collections.deque[tuple[int, asyncio.Future[bool]]] = field(default_factory=collections.deque)
    timer: asyncio.Task[None] | None = None  # the one task that sleeps until the pause ends
    probe_next: bool = False  # a pause just ended: the next request let go is the probe
    probing: bool = False  # the probe is out: the others wait for its answer


@dataclass
class _Chain:
    """What one request carries from hop to hop: the cookies its redirect chain set (never shared with
    other requests), made when the first ``Set-Cookie`` arrives."""

    cookies: httpx.Cookies | None = None


@dataclass
class _HopState:
    """What one exchange learned before it ended (normally or not)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    body: bytes = b""


class HttpClient:
    """Shared HTTP client. Build one per process; use it as ``async with`` or call :meth:`aclose`.

    ``settings``: identity (``User-Agent: settings.user_agent``), timeouts (per phase, and
    ``timeout.total_s`` per request), limits and ``allow_networks`` for the address policy.
    ``resolver``: the DNS resolver the policy wraps (default aiohttp's ``ThreadedResolver``; tests and
    benchmarks pass a :class:`bot.net.resolver.StaticResolver`). ``clock``/``sleep`` (seconds) drive
    host pauses and ``elapsed_s``; tests inject fakes so nothing waits for real.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        resolver: AbstractResolver | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_networks)
        self._resolver = PolicyResolver(self.policy, resolver)
        self._clock = clock
        self._sleep = sleep
        # The global and per-host limits and the 429 pauses (see _slot): free global slots, hosts with
        # requests in flight or state, origins with parked requests or a pause, and a heap of
        # (oldest parked ticket, origin key) entries for _dispatch (stale entries are skipped there).
        self._free = settings.limits.concurrency
        self._per_host = settings.limits.per_host_concurrency
        self._hosts: dict[str, _Host] = {}
        self._origins: dict[str, _Origin] = {}
        self._ready: list[tuple[int, str]] = []
        self._tickets = itertools.count()
        self._transport: AiohttpTransport | None = None
        self._closed = False
        timeout = settings.timeout
        # What httpx.AsyncClient(timeout=...) would put on each request; the transport maps it onto
        # aiohttp's phases ("pool" is aiohttp's "connect": pool wait + DNS + TCP + TLS).
        self._timeouts = httpx.Timeout(
            connect=timeout.connect_s, read=timeout.read_s, write=timeout.read_s, pool=timeout.connect_s
        ).as_dict()
        self._headers = httpx.Headers(
            {
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
                "Connection": "keep-alive",
            }
        )

    # -- lifecycle ----------------------------------------------------------------------------------
    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool and the resolver. Later requests, and requests still waiting for a
        slot or the end of a pause, raise RuntimeError."""
        self._closed = True
        for origin in list(self._origins.values()):
            if origin.timer is not None:
                origin.timer.cancel()
            while origin.waiters:
                _, future = origin.waiters.popleft()
                if not future.done():
                    future.set_exception(RuntimeError("HttpClient is closed"))
        self._origins.clear()
        self._ready.clear()
        if self._transport is not None:
            await self._transport.aclose()  # closes its aiohttp session and connection pool
            self._transport = None
        await self._resolver.close()

    def _transport_for_requests(self) -> AiohttpTransport:
        # Built lazily: aiohttp's connector and session need a running event loop.
        if self._closed:
            raise RuntimeError("HttpClient is closed")
        if self._transport is None:
            tls = _ssl_context()
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                limit=self.settings.limits.concurrency,
                limit_per_host=0,  # our per-host semaphore is the limit (it also spans hops)
                ssl=tls,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # no proxies or .netrc credentials from the environment
                max_line_size=MAX_HEADER_LINE_BYTES,
                max_field_size=MAX_HEADER_FIELD_BYTES,
            )
            # verify=tls only spares the transport building a context of its own: it sends every
            # request through ``session``, whose connector holds the same context.
            self._transport = AiohttpTransport(client=session, verify=tls)
        return self._transport

    # -- politeness ---------------------------------------------------------------------------------
    def pause_origin(self, url: str, seconds: float) -> None:
        """Hold every later request to ``url``'s origin (:func:`origin_key`: scheme, host, port) for
        ``seconds`` from now.

        Used for 429 Retry-After (RFC 9110 section 10.2.3, RFC 6585 section 4): the pause applies to
        every check sharing this client, and to that origin only (another port or scheme of the same host
        keeps going). A shorter pause never shortens the one in force; a longer one extends it, also for
        requests already waiting. Requests already on the wire are not recalled. Requests queued for the
        origin wait without a slot and are woken once, when the pause is over and a slot is theirs. When
        a pause ends, one of them goes first, as a probe; the others follow once it has been answered
        without a new pause, so a server still limiting costs one more 429, not one per queued request.
        ``url`` without a scheme or host is ignored.
        """
        keys = _keys_of(url)
        if keys is None or seconds <= 0:
            return
        origin = self._origin_state(*keys)
        origin.paused_until = max(origin.paused_until, self._clock() + seconds)
        if origin.waiters:
            self._start_timer(origin)

    def paused_for(self, url: str) -> float:
        """Seconds left on the pause of ``url``'s origin (0.0 when it is not paused)."""
        if not self._origins:
            return 0.0
        origin = self._origins.get(origin_key(url))
        if origin is None:
            return 0.0
        left = origin.paused_until - self._clock()
        if left <= 0:
            self._forget(origin)
            return 0.0
        return left

    @contextlib.asynccontextmanager
    async def _slot(self, origin: str, host: str) -> AsyncIterator[None]:
        """Hold one per-host and one global slot for a request to ``origin`` on ``host``.

        A request that cannot go at once (its origin paused, its host's or the global limit reached)
        parks in its origin's queue holding no slot, and is woken once, already holding both slots, when
        its turn comes: oldest parked request first among those whose origin is not paused and whose
        host has a free slot. So a pause never makes queued requests take slots to find out, a busy or
        paused host never holds a global slot another host could use, and one origin's pause never
        delays another origin. After a pause the origin's first request is a probe (see
        :meth:`pause_origin`).
        """
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = _Host(host, self._per_host)
        state = self._origins.get(origin) if self._origins else None
        probe = False
        if (
            gate.free > 0
            and self._free > 0
            and (
                state is None
                or (not state.waiters and not state.probing and state.paused_until <= self._clock())
            )
        ):
            gate.free -= 1
            self._free -= 1
        else:
            probe = await self._park(state or self._origin_state(origin, host))
        try:
            yield
        finally:
            self._release(gate, origin if probe else None)

    async def _park(self, origin: _Origin) -> bool:
        """Wait in ``origin``'s queue until :meth:`_dispatch` hands over both slots; True when this
        request goes as the probe after a pause. Raises RuntimeError when the client is closed
        meanwhile; cancelled, it holds nothing afterwards."""
        ticket = next(self._tickets)
        again = False
        while True:
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            if again:
                origin.waiters.appendleft((ticket, future))  # it was the oldest: it stays first in line
            else:
                origin.waiters.append((ticket, future))
            if origin.waiters[0][0] == ticket:
                heapq.heappush(self._ready, (ticket, origin.key))
            if origin.paused_until > self._clock():
                self._start_timer(origin)
            elif not again:
                self._dispatch()
            try:
                await future
            except asyncio.CancelledError:
                if future.cancelled():
                    self._leave(origin, ticket, future)  # never woken: it took nothing
                elif future.exception() is None:  # woken with both slots, cancelled before it ran
                    self._release(origin.host, origin.key if future.result() else None)
                raise
            probe = future.result()
            # Woken with both slots. A request that got a 429 frees its slot before its checker pauses
            # the origin, so the request woken by that release may find the origin paused by now: it
            # hands the slots back and waits, first in line, instead of sending into the pause.
            current = self._origins.get(origin.key)
            if current is None or current.paused_until <= self._clock():
                return probe
            self._release(current.host, origin.key if probe else None)
            origin = current
            again = True

    def _dispatch(self) -> None:
        """Hand free slots to parked requests, oldest ticket first, skipping paused origins (their
        timer brings them back) and full hosts (a slot freed on that host brings them back)."""
        ready = self._ready
        now: float | None = None
        while self._free > 0 and ready:
            ticket, key = heapq.heappop(ready)
            origin = self._origins.get(key)
            if origin is None:
                continue
            waiters = origin.waiters
            dropped = False
            while waiters and waiters[0][1].done():  # cancelled; its task has not run _leave yet
                waiters.popleft()
                dropped = True
            if not waiters:
                self._forget(origin)
                continue
            if waiters[0][0] != ticket:  # a stale entry: the current head has (or now gets) its own
                if dropped:
                    heapq.heappush(ready, (waiters[0][0], key))
                continue
            if now is None:
                now = self._clock()
            if origin.paused_until > now:
                self._start_timer(origin)
                continue
            if origin.probing:  # the probe's answer brings it back (_probe_done)
                continue
            gate = origin.host
            if gate.free <= 0:
                continue
            _, future = waiters.popleft()
            gate.free -= 1
            self._free -= 1
            if origin.probe_next:
                origin.probe_next = False
                origin.probing = True
                future.set_result(True)
                continue
            future.set_result(False)
            if waiters:
                heapq.heappush(ready, (waiters[0][0], key))
            else:
                self._forget(origin)

    def _release(self, gate: _Host, probe_of: str | None = None) -> None:
        """Give back one slot on ``gate`` and the global one; ``probe_of``: the origin whose probe
        this request was."""
        gate.free += 1
        self._free += 1
        if probe_of is not None:
            # Judged on the next turn of the loop: the probe's caller sees the answer first, and pauses
            # the origin again (a 429) before the requests waiting on the probe could be let go.
            asyncio.get_running_loop().call_soon(self._probe_done, probe_of)
        for origin in gate.origins.values():  # those a full host held back may go now
            if origin.waiters:
                heapq.heappush(self._ready, (origin.waiters[0][0], origin.key))
        if self._ready:
            self._dispatch()
        if gate.free >= self._per_host and not gate.origins:
            self._hosts.pop(gate.key, None)

    def _probe_done(self, key: str) -> None:
        """The probe after ``key``'s pause was answered: let the others go, unless paused again."""
        origin = self._origins.get(key)
        if origin is None:
            return
        origin.probing = False
        if origin.waiters:
            if origin.paused_until > self._clock():
                self._start_timer(origin)  # the probe was refused: its end makes a new probe
            else:
                heapq.heappush(self._ready, (origin.waiters[0][0], key))
                self._dispatch()
        self._forget(origin)

    def _leave(self, origin: _Origin, ticket: int, future: asyncio.Future[bool]) -> None:
        """Take a cancelled request out of its origin's queue."""
        waiters = origin.waiters
        was_head = bool(waiters) and waiters[0][0] == ticket
        with contextlib.suppress(ValueError):  # _dispatch may have dropped it already
            waiters.remove((ticket, future))
        if was_head and waiters:
            heapq.heappush(self._ready, (waiters[0][0], origin.key))
            self._dispatch()
        self._forget(origin)

    def _origin_state(self, key: str, host: str) -> _Origin:
        origin = self._origins.get(key)
        if origin is None:
            gate = self._hosts.get(host)
            if gate is None:
                gate = self._hosts[host] = _Host(host, self._per_host)
            origin = self._origins[key] = gate.origins[key] = _Origin(key, gate)
        return origin

    def _forget(self, origin: _Origin) -> None:
        """Drop an origin's state once nothing is parked on it, no timer runs, no probe is out and no
        pause is in force."""
        if (
            origin.waiters
            or origin.timer is not None
            or origin.probing
            or origin.paused_until > self._clock()
        ):
            return
        self._origins.pop(origin.key, None)
        gate = origin.host
        gate.origins.pop(origin.key, None)
        if gate.free >= self._per_host and not gate.origins:
            self._hosts.pop(gate.key, None)

    def _start_timer(self, origin: _Origin) -> None:
        if origin.timer is None and not self._closed:
            origin.timer = asyncio.get_running_loop().create_task(self._end_pause(origin))

    async def _end_pause(self, origin: _Origin) -> None:
        """The one task that sleeps while ``origin`` is paused (again if the pause was extended), then
        lets its oldest parked request go as the probe."""
        try:
            while (left := origin.paused_until - self._clock()) > 0:
                await self._sleep(left)
        finally:
            origin.timer = None
        if origin.waiters:
            origin.probe_next = True
            heapq.heappush(self._ready, (origin.waiters[0][0], origin.key))
            self._dispatch()
        self._forget(origin)

    # -- requests -----------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        url: str,
        *,
        read_body: bool = False,
        max_body_bytes: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        body_types: Collection[str] | None = None,
    ) -> FetchResult:
        """Request ``url``, following redirects, and never raise for a network problem.

        ``read_body``: download and decode the final body, at most ``max_body_bytes`` decoded bytes
        (default ``limits.max_body_bytes``); when False the body is not downloaded. ``body_types``
        (lower-case media types such as ``{"text/html"}``): when given, other types' bodies are not
        downloaded either. ``extra_headers`` override the defaults (User-Agent, Accept,
        Accept-Encoding).

        Returns a :class:`FetchResult`; ``error`` is set for refused URLs (``INVALID_URL``,
        ``UNSUPPORTED_SCHEME``, ``BLOCKED_ADDRESS``, on any hop), DNS, connect, TLS, timeout (a phase
        timeout or the total deadline of ``timeout.total_s`` seconds of network time over all hops,
        body included; time queued behind concurrency limits or host pauses does not count), reset,
        ``REDIRECT_LOOP``, ``TOO_MANY_REDIRECTS``, ``BODY_TOO_LARGE`` (``body`` then holds the first
        ``max_body_bytes``) and ``DECODE_ERROR``. Raises RuntimeError only when the client is closed.
        """
        started = self._clock()
        method = method.upper()
        cap = self.settings.limits.max_body_bytes if max_body_bytes is None else max_body_bytes
        max_redirects = self.settings.limits.max_redirects
        headers = self._headers
        if extra_headers:
            headers = httpx.Headers(headers)
            headers.update(extra_headers)
        budget = self.settings.timeout.total_s
        hops: list[Hop] = []
        chain = _Chain()
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        current = url
        transport = self._transport_for_requests()

        def result(state: _HopState | None, error: FetchError | None) -> FetchResult:
            return FetchResult(
                url=url,
                final_url=current,
                status=state.status if state else None,
                headers=state.headers if state else {},
                body=state.body if state else b"",
                redirects=tuple(hops),
                error=error,
                elapsed_s=self._clock() - started,
                method=method,
            )

        while True:
            target = self.policy.vetted(current)
            if isinstance(target, FetchError):
                return result(None, target)
            if target.scheme == "https":
                _trusted_ssl_context()  # CA certificates in place before any TLS handshake
            seen.add(_loop_key(_without_fragment(current, target), chain.cookies))
            if budget <= 0:
                return result(None, _deadline_error(self.settings.timeout.total_s))
            state = _HopState()
            want_body = read_body and method != "HEAD"
            loop = asyncio.get_running_loop()
            host = _host_of(target)
            async with self._slot(_origin_of(target, host), host):
                began = loop.time()
                try:
                    async with asyncio.timeout(budget) as deadline:
                        await self._exchange(
                            transport, method, target, headers, chain, state, want_body, cap, body_types
                        )
                except BodyTooLarge as exc:
                    state.body = exc.prefix
                    return result(state, FetchError(FetchErrorKind.BODY_TOO_LARGE, str(exc)))
                except BodyDecodeError as exc:
                    return result(state, FetchError(FetchErrorKind.DECODE_ERROR, str(exc)))
                except TimeoutError:
                    if deadline.expired():
                        return result(state, _deadline_error(self.settings.timeout.total_s))
                    return result(state, FetchError(FetchErrorKind.TIMEOUT, "timed out"))
                except Exception as exc:
                    return result(state, self._error_from(exc, current))
                finally:
                    budget -= loop.time() - began

            if state.location is None:
                return result(state, None)
            assert state.status is not None
            try:
                # Fetch Standard, "HTTP-redirect fetch": Location is parsed by the URL Standard against
                # the URL of the response, as a browser does (not RFC 3986's merge).
                next_url = strip_fragment(resolve_url(state.location, str(target)))
            except ValueError as exc:
                return result(
                    state,
                    FetchError(
                        FetchErrorKind.INVALID_URL,
                        f"redirect to an invalid URL {state.location!r}: {exc}",
                    ),
                )
            hops.append(Hop(url=current, status=state.status, location=next_url))
            if _loop_key(next_url, chain.cookies) in seen:
                return result(
                    state,
                    FetchError(
                        FetchErrorKind.REDIRECT_LOOP, f"redirect loop: {next_url} was already visited"
                    ),
                )
            if len(hops) > max_redirects:
                return result(
                    state,
                    FetchError(FetchErrorKind.TOO_MANY_REDIRECTS, f"more than {max_redirects} redirects"),
                )
            method = _redirect_method(method, state.status)
            current = next_url

    async def _exchange(
        self,
        transport: httpx.AsyncBaseTransport,
        method: str,
        url: httpx.URL,
        headers: httpx.Headers,
        chain: _Chain,
        state: _HopState,
        want_body: bool,
        cap: int,
        body_types: Collection[str] | None,
    ) -> None:
        """One request/response on the wire; fills ``state`` as it learns things.

        The request goes straight to the transport (httpx's transport API): ``httpx.AsyncClient.send``
        would add its own redirect, auth and client-wide cookie handling, none of which we use (redirects
        and per-chain cookies are ours), for about a fifth of the CPU a link check costs.
        """
        request = _bodiless_request(method, url, headers, {"timeout": self._timeouts})
        if chain.cookies:
            chain.cookies.set_cookie_header(request)
        response = await transport.handle_async_request(request)
        try:
            state.status = response.status_code
            state.headers = received = _header_dict(response.headers)
            if "set-cookie" in received:
                # Only then: the cookie jar builds urllib request/response stand-ins on every call.
                if chain.cookies is None:
                    chain.cookies = httpx.Cookies()
                chain.cookies.extract_cookies(response)
            if response.status_code in REDIRECT_STATUSES and "location" in received:
                state.location = response.headers.get_list("location")[0]
                await _drain(response, received, method)
                return
            media_type = received.get("content-type", "").split(";", 1)[0].strip().lower()
            if not want_body or (body_types is not None and media_type not in body_types):
                await _drain(response, received, method)
                return
            state.body = await _read_body(response, cap, received)
        finally:
            await response.aclose()

    def _error_from(self, exc: Exception, url: str) -> FetchError:
        error = fetch_error_from_exception(exc)
        if error is None:
            logger.exception("unexpected error fetching %s", url)
            return FetchError(FetchErrorKind.PROTOCOL_ERROR, f"unexpected error: {exc!r}")
        return error


def fetch_error_from_exception(exc: BaseException) -> FetchError | None:
    """Map an exception raised while fetching to a :class:`FetchError`, or None when it is not a
    network problem we know.

    httpx-aiohttp re-raises aiohttp's exceptions as httpx ones (``from`` the original), and not always
    as the closest httpx type (a server disconnect becomes ``httpx.ConnectTimeout``), so the decision
    is made on the whole ``__cause__``/``__context__`` chain, most telling cause first.
    """
    chain = _chain(exc)

    def find(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    def has_errno(*codes: int) -> bool:
        return any(isinstance(e, OSError) and e.errno in codes for e in chain)

    if (found := find(BlockedAddressError)) is not None:
        return FetchError(FetchErrorKind.BLOCKED_ADDRESS, str(found))
    if isinstance(found := find(socket.gaierror), socket.gaierror):
        if found.errno in NOT_FOUND_CODES:
            return FetchError(
                FetchErrorKind.DNS_NOT_FOUND, f"the host name does not exist ({found.strerror})"
            )
        return FetchError(FetchErrorKind.DNS_FAILURE, f"DNS lookup failed ({found.strerror or found})")
    if find(aiohttp.ClientConnectorDNSError) is not None:
        return FetchError(FetchErrorKind.DNS_FAILURE, "DNS lookup failed")
    if (found := find(ssl.SSLError, ssl.CertificateError, aiohttp.ClientSSLError)) is not None:
        return FetchError(FetchErrorKind.TLS_ERROR, f"TLS error: {_detail(found)}")
    if find(ConnectionRefusedError) is not None or has_errno(errno.ECONNREFUSED):
        return FetchError(FetchErrorKind.CONNECT_REFUSED, "connection refused")
    if find(TimeoutError) is not None:
        return FetchError(FetchErrorKind.TIMEOUT, "timed out")
    if find(
        ConnectionResetError, BrokenPipeError, ConnectionAbortedError, aiohttp.ServerDisconnectedError
    ) is not None or has_errno(errno.ECONNRESET, errno.EPIPE):
        return FetchError(FetchErrorKind.CONNECTION_RESET, "the server closed the connection")
    if (found := find(aiohttp.ClientPayloadError)) is not None:
        return FetchError(FetchErrorKind.CONNECTION_RESET, f"the body was cut short: {_detail(found)}")
    if (found := find(aiohttp.InvalidURL, httpx.InvalidURL)) is not None:
        return FetchError(FetchErrorKind.INVALID_URL, f"invalid URL: {_detail(found)}")
    if (found := find(httpx.UnsupportedProtocol)) is not None:
        return FetchError(FetchErrorKind.UNSUPPORTED_SCHEME, _detail(found))
    if (found := find(OSError)) is not None:
        return FetchError(FetchErrorKind.CONNECT_ERROR, f"could not connect: {_detail(found)}")
    if (
        found := find(
            aiohttp.ClientResponseError,
            HttpProcessingError,
            httpx.RemoteProtocolError,
            httpx.LocalProtocolError,
            httpx.DecodingError,
        )
    ) is not None:
        return FetchError(FetchErrorKind.PROTOCOL_ERROR, f"invalid HTTP response: {_detail(found)}")
    if find(httpx.TimeoutException) is not None:
        return FetchError(FetchErrorKind.TIMEOUT, "timed out")
    if (found := find(httpx.NetworkError, aiohttp.ClientConnectionError)) is not None:
        return FetchError(FetchErrorKind.CONNECT_ERROR, f"could not connect: {_detail(found)}")
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        for nxt in (current.__cause__, current.__context__, getattr(current, "os_error", None)):
            if isinstance(nxt, BaseException):
                pending.append(nxt)
    # Deepest causes are the most telling (an OSError beats the httpx wrapper around it).
    return chain[::-1]


def _detail(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _deadline_error(total_s: float) -> FetchError:
    return FetchError(FetchErrorKind.TIMEOUT, f"no complete answer within the {total_s:g} s deadline")


def _header_dict(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.multi_items():
        key = key.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _bodiless_request(
    method: str, url: httpx.URL, headers: httpx.Headers, extensions: dict[str, object]
) -> httpx.Request:
    """An ``httpx.Request`` without a body, built from an empty stream: httpx then skips encoding a body
    and rebuilding the headers around it (~20 microseconds a request, ~2% of a check's CPU). The
    ``Host`` header it would have added first is added, first, by aiohttp from the same URL."""
    request = httpx.Request(method, url, headers=headers, stream=httpx.ByteStream(b""), extensions=extensions)
    request.read()  # the transport sends ``request.content`` (empty: no body), not the stream
    return request


def _loop_key(url: str, jar: httpx.Cookies | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    # Revisiting a URL is a loop only if nothing changed: a "set a cookie and redirect to yourself"
    # page answers differently the second time (the cookie is then sent).
    if not jar:
        return url, ()
    return url, tuple(sorted((cookie.name, cookie.value or "") for cookie in jar.jar))


def _without_fragment(text: str, url: httpx.URL) -> str:
    """``url`` (parsed from ``text``) as a string without its fragment; re-parsing only when it has one."""
    return str(url.copy_with(fragment=None)) if "#" in text else str(url)


def _redirect_method(method: str, status: int) -> str:
    """RFC 9110 section 15.4: 303 turns anything but HEAD into GET; 301/302 turn POST into GET."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


async def _drain(response: httpx.Response, headers: Mapping[str, str], method: str) -> None:
    """Read and drop a small body so the connection can be reused; leave big ones unread."""
    length = headers.get("content-length", "")
    if not length.isdigit() or int(length) > DRAIN_MAX_BYTES or method == "HEAD":
        return
    try:
        async for _ in response.aiter_raw():
            pass
    except Exception:  # the answer is already known; a broken body only costs the connection
        logger.debug("could not drain the body of %s", response.url, exc_info=True)


async def _read_body(response: httpx.Response, cap: int, headers: Mapping[str, str]) -> bytes:
    """The decoded body, at most ``cap`` bytes. Raises BodyTooLarge or BodyDecodeError."""
    decoder = BodyDecoder(headers.get("content-encoding", ""), cap)
    raw_seen = 0
    async for chunk in response.aiter_raw():
        raw_seen += len(chunk)
        decoder.feed(chunk)
        if raw_seen > cap + RAW_SLACK_BYTES:
            raise BodyTooLarge(cap, decoder.decoded)
    return decoder.finish()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The TLS client context every connection shares (an SSLContext is reusable): certificate and host
    name verification on, as ``ssl.create_default_context`` sets them. Its CA certificates are loaded by
    :func:`_trusted_ssl_context` before the first https request, not here: loading them costs about
    0.05 s of CPU, which a check of plain-http links never needs to pay."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    keylog = os.environ.get("SSLKEYLOGFILE")  # as create_default_context does, for debugging TLS
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context


@functools.cache
def _trusted_ssl_context() -> ssl.SSLContext:
    """:func:`_ssl_context` with the CA certificates httpx's default context trusts: ``$SSL_CERT_FILE``,
    else ``$SSL_CERT_DIR``, else certifi's bundle (so verification works the same on slim images)."""
    context = _ssl_context()
    if cafile := os.environ.get("SSL_CERT_FILE"):
        context.load_verify_locations(cafile=cafile)
    elif capath := os.environ.get("SSL_CERT_DIR"):
        context.load_verify_locations(capath=capath)
    else:
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    return context
