"""The one HTTP seam of the engine: :class:`HttpClient`, one per process, shared by every check.

httpx's API over the httpx-aiohttp transport (aiohttp does the I/O: on a loopback web of 991 links it
spent about 1.7 s of CPU where httpx's own transport spent 13 s). Requests are ``httpx.Request`` objects
handed to the transport (httpx's transport API, ``handle_async_request``) and answers are
``httpx.Response`` objects; ``httpx.AsyncClient`` is left out because everything it adds on top of the
transport (redirects, auth, a client-wide cookie jar) is done here or not wanted, and it cost about a
fifth of the CPU of a link check (docs/benchmarks.md). Sharing one client means one connection pool and
one set of per-host limits and 429 pauses across all concurrent users and jobs.

What it adds on top of httpx:

- the address policy on every hop (:mod:`bot.net.policy`; resolved addresses are vetted by
  :class:`bot.net.resolver.PolicyResolver`, so aiohttp connects to exactly the vetted address);
- redirects followed by our code (at most ``limits.max_redirects``), each :class:`Hop` recorded, loops
  detected; cookies set during one request's redirect chain are kept for that chain only;
- per-phase timeouts plus a total deadline per request (httpx has none), so a slow drip cannot hold a
  check for ever;
- body decoding under a cap (:mod:`bot.net.decode`): a gzip bomb costs at most the cap in memory;
- a global and a per-host concurrency limit, and per-host pauses (429 Retry-After) for everyone.

Network problems are never raised: :meth:`HttpClient.request` returns a :class:`FetchResult` whose
``error`` says what went wrong (:class:`FetchErrorKind`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
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


def host_key(url: str) -> str:
    """The key per-host limits and pauses use: the URL's host, lower-case ASCII, no port, no final dot.

    Every port of a machine shares the key (politeness is owed to the machine). ``""`` for a URL
    without a host.
    """
    try:
        return _host_of(httpx.URL(url))
    except (httpx.InvalidURL, ValueError, TypeError):
        return ""


def _host_of(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii", errors="replace").rstrip(".").lower()


def _normal_host(host: str) -> str:
    if "://" in host:
        return host_key(host)
    return host.strip().rstrip(".").lower()


@dataclass
class _HostGate:
    semaphore: asyncio.Semaphore
    users: int = 0


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
        self._global = asyncio.Semaphore(settings.limits.concurrency)
        self._hosts: dict[str, _HostGate] = {}
        self._paused_until: dict[str, float] = {}
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
        """Close the connection pool and the resolver. Later requests raise RuntimeError."""
        self._closed = True
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
    def pause_host(self, host: str, seconds: float) -> None:
        """Hold every later request to ``host`` (a host name or a URL) for ``seconds`` from now.

        Used for 429 Retry-After (RFC 9110 section 10.2.3, RFC 6585 section 4): the pause applies to
        every check sharing this client. A longer pause already in force is kept.
        """
        key = _normal_host(host)
        if not key or seconds <= 0:
            return
        until = self._clock() + seconds
        self._paused_until[key] = max(until, self._paused_until.get(key, until))

    def paused_for(self, host: str) -> float:
        """Seconds left on ``host``'s pause (0.0 when it is not paused)."""
        if not self._paused_until:
            return 0.0
        key = _normal_host(host)
        until = self._paused_until.get(key)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._paused_until[key]
            return 0.0
        return left

    @contextlib.asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """Wait out any pause, then hold one per-host and one global slot (per-host first, so a
        request queued behind a busy host never sits on a global slot)."""
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = _HostGate(asyncio.Semaphore(self.settings.limits.per_host_concurrency))
        gate.users += 1
        try:
            while True:
                while (left := self.paused_for(host)) > 0:
                    await self._sleep(left)
                await gate.semaphore.acquire()
                if self.paused_for(host) <= 0:
                    break
                gate.semaphore.release()  # paused while we queued: wait again without the slot
            try:
                async with self._global:
                    yield
            finally:
                gate.semaphore.release()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._hosts[host]

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
            async with self._slot(_host_of(target)):
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
