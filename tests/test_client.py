"""HttpClient against real local servers: redirects, caps, deadlines, errors, limits and the address
policy (a recording server on 127.0.0.2 proves refused addresses are never connected to)."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.config import FetchSettings, Limits, Timeout, parse_networks
from bot.models import FetchErrorKind
from bot.net.client import HttpClient, fetch_error_from_exception, host_key
from bot.net.decode import BodyDecodeError, BodyDecoder, BodyTooLarge
from bot.net.policy import BlockedAddressError
from bot.net.resolver import StaticResolver
from tests.support.site import Handler, LocalSite

LOOPBACK = parse_networks("127.0.0.0/8")
ONLY_127_0_0_1 = parse_networks("127.0.0.1/32")


def settings(
    *,
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = LOOPBACK,
    total_s: float = 5.0,
    read_s: float = 5.0,
    **limits: int | float,
) -> FetchSettings:
    return FetchSettings(
        timeout=Timeout(connect_s=5.0, read_s=read_s, total_s=total_s),
        limits=Limits(**limits),  # type: ignore[arg-type]
        allow_networks=allow,
    )


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class RecordingServer:
    """A raw TCP server that counts every connection it accepts and answers 200, so a request that
    slipped past the policy would succeed and be counted."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RecordingServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingServer]:
    async with RecordingServer("127.0.0.2") as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(settings()) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- plain answers and headers -----------------------------------------------------------------------
async def test_200_with_body_and_user_agent(site: LocalSite, client: HttpClient) -> None:
    site.html("/", "<title>Hi</title>")
    result = await client.request("GET", site.url("/"), read_body=True)
    assert result.error is None
    assert result.status == 200
    assert result.body == b"<title>Hi</title>"
    assert result.content_type == "text/html" and result.charset == "utf-8"
    assert result.final_url == site.url("/") and result.redirects == ()
    sent = site.hits[0].headers
    assert sent["User-Agent"] == client.settings.user_agent
    assert sent["User-Agent"].startswith("linkpact/")
    assert sent["Accept-Encoding"] == "gzip, deflate"  # no br: nothing here could decode it
    # Requests are built without a body: Host from the URL (port included), nothing body-related.
    assert sent["Host"] == f"127.0.0.1:{site.port}"
    assert "Content-Length" not in sent and "Transfer-Encoding" not in sent


async def test_head_and_status_codes(site: LocalSite, client: HttpClient) -> None:
    site.status("/gone", 410)
    result = await client.request("HEAD", site.url("/gone"))
    assert (result.status, result.error, result.method) == (410, None, "HEAD")
    assert site.hits[-1].method == "HEAD"
    missing = await client.request("GET", site.url("/nothing-here"))
    assert missing.status == 404


async def test_extra_headers_override_defaults(site: LocalSite, client: HttpClient) -> None:
    site.html("/", "x")
    await client.request("GET", site.url("/"), extra_headers={"Accept": "text/plain", "X-Probe": "1"})
    sent = {name.lower(): value for name, value in site.hits[0].headers.items()}
    assert sent["accept"] == "text/plain"
    assert sent["x-probe"] == "1"


async def test_repeated_headers_are_joined(site: LocalSite, client: HttpClient) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.Response(text="x")
        response.headers.add("X-Robots-Tag", "noindex")
        response.headers.add("X-Robots-Tag", "googlebot: nofollow")
        return response

    site.route("/", handler)
    result = await client.request("GET", site.url("/"))
    assert result.headers["x-robots-tag"] == "noindex, googlebot: nofollow"


# -- redirects ---------------------------------------------------------------------------------------
async def test_redirect_chain_records_every_hop(site: LocalSite, client: HttpClient) -> None:
    site.redirect("/a", "/b", status=301)
    site.redirect("/b", site.url("/c"), status=302)
    site.redirect("/c", "d", status=307)
    site.redirect("/d", "/e#section", status=308)
    site.html("/e", "end")
    result = await client.request("GET", site.url("/a"), read_body=True)
    assert result.error is None and result.status == 200 and result.body == b"end"
    assert result.url == site.url("/a")
    assert result.final_url == site.url("/e")  # the fragment is not sent
    assert [(h.url, h.status, h.location) for h in result.redirects] == [
        (site.url("/a"), 301, site.url("/b")),
        (site.url("/b"), 302, site.url("/c")),
        (site.url("/c"), 307, site.url("/d")),
        (site.url("/d"), 308, site.url("/e")),
    ]


async def test_relative_locations_resolve_against_the_current_url(
    site: LocalSite, client: HttpClient
) -> None:
    site.redirect("/dir/sub/start", "../up", status=302)
    site.redirect("/dir/up", "next", status=301)
    site.redirect("/dir/next", f"//127.0.0.1:{site.port}/root", status=307)
    site.html("/root", "root")
    result = await client.request("GET", site.url("/dir/sub/start"), read_body=True)
    assert result.body == b"root"
    assert [h.location for h in result.redirects] == [
        site.url("/dir/up"),
        site.url("/dir/next"),
        site.url("/root"),
    ]


async def test_urls_and_locations_are_requested_as_a_browser_requests_them(site: LocalSite) -> None:
    # WHATWG URL Standard (and Fetch, for Location): the IDN host is looked up and sent in punycode, a
    # raw Unicode path is percent-encoded as UTF-8, "%2e" segments are dot segments, "\\" is "/".
    raw_paths: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        raw_paths.append(request.raw_path)
        return web.Response(text="ok", content_type="text/html")

    site.redirect("/start", "\\x\\%2e%2E\\caf\u00e9", status=302)
    site.route("/café", record)
    site.route("/b\u00fccher", record)
    resolver = StaticResolver({"xn--bcher-kva.test": ["127.0.0.1"]})
    async with HttpClient(settings(), resolver=resolver) as c:
        direct = await c.request("GET", f"http://B\u00fccher.test:{site.port}/a/%2e%2E/b\u00fccher#top")
        redirected = await c.request("GET", f"http://b\u00fccher.test:{site.port}/start")
    assert direct.status == 200 and redirected.status == 200, (direct.error, redirected.error)
    assert site.hits[0].headers["Host"] == f"xn--bcher-kva.test:{site.port}"
    assert raw_paths == ["/b%C3%BCcher", "/caf%C3%A9"]
    assert redirected.redirects[0].location == f"http://xn--bcher-kva.test:{site.port}/caf%C3%A9"


async def test_query_only_location(site: LocalSite, client: HttpClient) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("page") == "2":
            return web.Response(text="page 2")
        return web.Response(status=302, headers={"Location": "?page=2"})

    site.route("/list", handler)
    result = await client.request("GET", site.url("/list"), read_body=True)
    assert result.body == b"page 2"
    assert result.final_url == site.url("/list?page=2")


async def test_head_keeps_its_method_through_303(site: LocalSite, client: HttpClient) -> None:
    site.redirect("/see-other", "/target", status=303)
    site.status("/target", 200)
    result = await client.request("HEAD", site.url("/see-other"))
    assert result.status == 200
    assert [h.method for h in site.hits] == ["HEAD", "HEAD"]


async def test_redirect_loop_is_reported(site: LocalSite, client: HttpClient) -> None:
    site.redirect("/ping", "/pong")
    site.redirect("/pong", "/ping")
    site.redirect("/self", "/self", status=302)
    result = await client.request("HEAD", site.url("/ping"))
    assert result.error is not None and result.error.kind is FetchErrorKind.REDIRECT_LOOP
    assert [h.location for h in result.redirects] == [site.url("/pong"), site.url("/ping")]
    assert len(site.hits) == 2  # detected without asking /ping a second time
    self_loop = await client.request("GET", site.url("/self"))
    assert self_loop.error is not None and self_loop.error.kind is FetchErrorKind.REDIRECT_LOOP
    assert len(self_loop.redirects) == 1


async def test_cookie_check_redirect_is_not_a_loop_and_cookies_do_not_leak(
    site: LocalSite, client: HttpClient
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.cookies.get("seen") == "1":
            return web.Response(text="welcome")
        response = web.Response(status=302, headers={"Location": "/cookie-wall"})
        response.set_cookie("seen", "1")
        return response

    site.route("/cookie-wall", handler)
    first = await client.request("GET", site.url("/cookie-wall"), read_body=True)
    assert first.error is None and first.body == b"welcome" and len(first.redirects) == 1
    second = await client.request("GET", site.url("/cookie-wall"), read_body=True)
    assert second.body == b"welcome" and len(second.redirects) == 1
    # A new request starts without the cookie: nothing is shared between checks.
    assert "Cookie" not in site.hits[2].headers
    assert site.hits[3].headers.get("Cookie") == "seen=1"


async def test_too_many_redirects(site: LocalSite) -> None:
    for i in range(10):
        site.redirect(f"/hop{i}", f"/hop{i + 1}", status=302)
    async with HttpClient(settings(max_redirects=3)) as c:
        result = await c.request("GET", site.url("/hop0"))
    assert result.error is not None and result.error.kind is FetchErrorKind.TOO_MANY_REDIRECTS
    assert len(result.redirects) == 4
    assert [h.path for h in site.hits] == ["/hop0", "/hop1", "/hop2", "/hop3"]  # /hop4 never asked


async def test_redirect_to_other_schemes_and_userinfo_is_refused(site: LocalSite, client: HttpClient) -> None:
    site.redirect("/to-ftp", "ftp://files.example.com/x")
    site.redirect("/to-creds", "http://admin:admin@example.com/")
    ftp = await client.request("GET", site.url("/to-ftp"))
    assert ftp.error is not None and ftp.error.kind is FetchErrorKind.UNSUPPORTED_SCHEME
    assert ftp.final_url == "ftp://files.example.com/x" and len(ftp.redirects) == 1
    creds = await client.request("GET", site.url("/to-creds"))
    assert creds.error is not None and creds.error.kind is FetchErrorKind.INVALID_URL


# -- the address policy, proven with a recording server ---------------------------------------------
async def test_recording_server_sees_connections_when_allowed(recorder: RecordingServer) -> None:
    # The control: with 127.0.0.2 allowed the recorder is reached, so its zero counts below mean something.
    async with HttpClient(settings(allow=LOOPBACK)) as c:
        result = await c.request("GET", recorder.url("/"), read_body=True)
    assert result.status == 200 and result.body == b"ok"
    assert recorder.connections == 1


async def test_redirect_to_a_blocked_address_is_never_connected(
    site: LocalSite, recorder: RecordingServer
) -> None:
    site.redirect("/out", recorder.url("/steal"), status=302)
    async with HttpClient(settings(allow=ONLY_127_0_0_1)) as c:
        result = await c.request("GET", site.url("/out"))
    assert result.error is not None and result.error.kind is FetchErrorKind.BLOCKED_ADDRESS
    assert result.redirects[0].location == recorder.url("/steal")
    assert result.final_url == recorder.url("/steal") and result.status is None
    assert recorder.connections == 0


async def test_redirect_to_a_name_resolving_to_a_blocked_address(
    site: LocalSite, recorder: RecordingServer
) -> None:
    resolver = StaticResolver({"partner.test": ["127.0.0.1"], "evil.test": ["127.0.0.2"]})
    site.redirect("/out", f"http://evil.test:{recorder.port}/steal", status=301)
    async with HttpClient(settings(allow=ONLY_127_0_0_1), resolver=resolver) as c:
        via_redirect = await c.request("GET", f"http://partner.test:{site.port}/out")
        direct = await c.request("HEAD", f"http://evil.test:{recorder.port}/")
    for result in (via_redirect, direct):
        assert result.error is not None and result.error.kind is FetchErrorKind.BLOCKED_ADDRESS
        assert "evil.test" in result.error.message
    assert len(via_redirect.redirects) == 1 and len(site.hits) == 1
    assert recorder.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.2]/",
        "http://[64:ff9b::7f00:2]/",
        "http://[2002:7f00:2::]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://2130706434/",  # 127.0.0.2 as one number
    ],
)
async def test_literal_blocked_addresses_are_refused_before_connecting(
    url: str, recorder: RecordingServer
) -> None:
    async with HttpClient(settings(allow=ONLY_127_0_0_1)) as c:
        result = await c.request("GET", url)
        recorder_result = await c.request("GET", recorder.url("/"))
    assert result.error is not None and result.error.kind is FetchErrorKind.BLOCKED_ADDRESS, result.error
    assert result.status is None
    assert recorder_result.error is not None and recorder_result.error.kind is FetchErrorKind.BLOCKED_ADDRESS
    assert recorder.connections == 0


async def test_default_policy_refuses_localhost_by_name(site: LocalSite) -> None:
    site.html("/", "secret")
    async with HttpClient(FetchSettings()) as c:  # no exemptions: the real default
        result = await c.request("GET", f"http://localhost:{site.port}/")
    assert result.error is not None and result.error.kind is FetchErrorKind.BLOCKED_ADDRESS
    assert site.hits == []


async def test_userinfo_and_other_schemes_are_refused(client: HttpClient, site: LocalSite) -> None:
    for url, kind in [
        (f"http://user:pw@127.0.0.1:{site.port}/", FetchErrorKind.INVALID_URL),
        ("ftp://127.0.0.1/", FetchErrorKind.UNSUPPORTED_SCHEME),
        ("file:///etc/passwd", FetchErrorKind.UNSUPPORTED_SCHEME),
    ]:
        result = await client.request("GET", url)
        assert result.error is not None and result.error.kind is kind
    assert site.hits == []


# -- DNS, connect and TLS errors ---------------------------------------------------------------------
async def test_nxdomain_via_static_resolver(site: LocalSite) -> None:
    site.html("/", "ok")
    resolver = StaticResolver({"partner.test": ["127.0.0.1"]})
    async with HttpClient(settings(), resolver=resolver) as c:
        known = await c.request("GET", f"http://partner.test:{site.port}/")
        unknown = await c.request("GET", "http://nope.test/")
    assert known.status == 200
    assert site.hits[0].headers["Host"] == f"partner.test:{site.port}"
    assert unknown.error is not None and unknown.error.kind is FetchErrorKind.DNS_NOT_FOUND


class FlakyDns(AbstractResolver):
    """A resolver whose DNS server is unreachable (EAI_AGAIN: try again later)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    async def close(self) -> None:
        return None


async def test_temporary_dns_failure_is_not_nxdomain() -> None:
    async with HttpClient(settings(), resolver=FlakyDns()) as c:
        result = await c.request("GET", "http://partner.test/")
    assert result.error is not None and result.error.kind is FetchErrorKind.DNS_FAILURE


async def test_refused_connection(client: HttpClient) -> None:
    result = await client.request("GET", f"http://127.0.0.1:{free_port()}/")
    assert result.error is not None and result.error.kind is FetchErrorKind.CONNECT_REFUSED
    assert result.status is None


async def test_tls_handshake_with_a_plain_http_server_is_a_tls_error(
    site: LocalSite, client: HttpClient
) -> None:
    site.html("/", "plain")
    result = await client.request("GET", f"https://127.0.0.1:{site.port}/")
    assert result.error is not None and result.error.kind is FetchErrorKind.TLS_ERROR, result.error


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a cert")
async def test_self_signed_certificate_is_a_tls_error(tmp_path: Path, client: HttpClient) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
               "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]  # fmt: skip
    await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_get("/", _fixed(b"secure", {}))
    runner = web.AppRunner(app)
    await runner.setup()
    tls_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await tls_site.start()
    port = runner.addresses[0][1]
    try:
        result = await client.request("GET", f"https://127.0.0.1:{port}/")
    finally:
        await runner.cleanup()
    assert result.error is not None and result.error.kind is FetchErrorKind.TLS_ERROR
    assert "certificate" in result.error.message.lower()


TRUST_PROBE = """
import asyncio, ipaddress, sys
from bot.config import FetchSettings
from bot.net.client import HttpClient, _ssl_context

async def main(http_url, https_url):
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    async with HttpClient(FetchSettings(allow_networks=loopback)) as client:
        plain = await client.request("GET", http_url)
        before = _ssl_context().cert_store_stats()["x509_ca"]
        secure = await client.request("GET", https_url, read_body=True)
    print(plain.error.kind.value, before, secure.status, secure.body.decode(), secure.error)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certs")
async def test_ca_certificates_are_loaded_before_the_first_https_request_only(tmp_path: Path) -> None:
    # Loading them costs ~0.05 s, which a check of plain-http links skips; an https request still
    # verifies against the CAs httpx would trust (here $SSL_CERT_FILE, a CA made for the test).
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    await asyncio.to_thread(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA",
        "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    await asyncio.to_thread(
        openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "leaf.key", "-out", "leaf.csr",
    )  # fmt: skip
    (tmp_path / "leaf.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    await asyncio.to_thread(
        openssl, "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", "leaf.pem", "-extfile", "leaf.ext",
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    app = web.Application()
    app.router.add_get("/", _fixed(b"secure", {}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = runner.addresses[0][1]
    env = {"PATH": "/usr/bin:/bin", "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
    try:
        probe = await asyncio.create_subprocess_exec(
            sys.executable, "-c", TRUST_PROBE, f"http://127.0.0.1:{free_port()}/",
            f"https://127.0.0.1:{port}/", env=env, cwd=Path(__file__).parent.parent,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(probe.communicate(), timeout=60)
    finally:
        await runner.cleanup()
    assert probe.returncode == 0, err.decode()
    assert out.decode().split() == ["connect_refused", "0", "200", "secure", "None"]


async def test_server_closing_without_answer_is_a_reset(client: HttpClient) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await client.request("GET", f"http://127.0.0.1:{port}/")
    assert result.error is not None and result.error.kind is FetchErrorKind.CONNECTION_RESET


async def test_body_cut_short_is_a_reset(client: HttpClient) -> None:
    async def short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short_body, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await client.request("GET", f"http://127.0.0.1:{port}/", read_body=True)
    assert result.status == 200
    assert result.error is not None and result.error.kind is FetchErrorKind.CONNECTION_RESET


# -- deadlines ---------------------------------------------------------------------------------------
async def slow_drip(request: web.Request) -> web.StreamResponse:
    """Answer at once, then send one byte every 50 ms for 10 s: every read is quick, the body is not."""
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    for _ in range(200):
        await response.write(b"x")
        await asyncio.sleep(0.05)
    return response


async def test_slow_drip_body_hits_the_total_deadline(site: LocalSite) -> None:
    site.route("/drip", slow_drip)
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with HttpClient(settings(total_s=0.5, read_s=5.0)) as c:
        result = await c.request("GET", site.url("/drip"), read_body=True)
    took = loop.time() - began
    assert result.status == 200
    assert result.error is not None and result.error.kind is FetchErrorKind.TIMEOUT
    assert "deadline" in result.error.message
    assert took < 2.0  # the read timeout (5 s) never fired; the 0.5 s deadline did


async def test_body_not_read_unless_asked(site: LocalSite) -> None:
    site.route("/drip", slow_drip)
    async with HttpClient(settings(total_s=0.5)) as c:
        result = await c.request("GET", site.url("/drip"))
    assert result.error is None and result.status == 200 and result.body == b""


async def test_read_timeout_while_waiting_for_headers(site: LocalSite) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(10)
        return web.Response(text="late")

    site.route("/stall", stall)
    async with HttpClient(settings(read_s=0.2, total_s=5.0)) as c:
        result = await c.request("HEAD", site.url("/stall"))
    assert result.error is not None and result.error.kind is FetchErrorKind.TIMEOUT
    assert result.status is None


# -- bodies: caps, encodings, types ------------------------------------------------------------------
async def test_oversized_body_is_capped_with_its_prefix(site: LocalSite, client: HttpClient) -> None:
    big = b"a" * 300_000

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        for i in range(0, len(big), 10_000):
            await response.write(big[i : i + 10_000])
        return response

    site.route("/chunked", chunked)
    site.route("/sized", _fixed(big, {"Content-Type": "text/html"}))
    for path in ("/chunked", "/sized"):
        result = await client.request("GET", site.url(path), read_body=True, max_body_bytes=100_000)
        assert result.error is not None and result.error.kind is FetchErrorKind.BODY_TOO_LARGE
        assert result.status == 200
        assert result.body == big[:100_000]
    fits = await client.request("GET", site.url("/sized"), read_body=True, max_body_bytes=300_000)
    assert fits.error is None and fits.body == big


def gzip_bomb(decoded_mb: int) -> bytes:
    """``decoded_mb`` MB of zeros, gzipped (about 1000:1), built without holding the decoded form."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(decoded_mb)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def test_gzip_bomb_is_refused_in_bounded_memory(site: LocalSite, client: HttpClient) -> None:
    bomb = gzip_bomb(50)
    assert len(bomb) < 200_000

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})

    site.route("/bomb", handler)
    tracemalloc.start()
    try:
        result = await client.request("GET", site.url("/bomb"), read_body=True, max_body_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error is not None and result.error.kind is FetchErrorKind.BODY_TOO_LARGE
    assert result.body == bytes(1_000_000)
    assert peak < 10_000_000, f"peak {peak / 1e6:.1f} MB while refusing a 50 MB bomb"


async def test_gzip_and_deflate_bodies_are_decoded(site: LocalSite, client: HttpClient) -> None:
    text = b"<p>hello</p>" * 1000
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    encoded = {
        "/gzip": ("gzip", gzip.compress(text)),
        "/two-members": ("gzip", gzip.compress(text[:5000]) + gzip.compress(text[5000:])),
        "/deflate": ("deflate", zlib.compress(text)),
        "/raw-deflate": ("deflate", raw_deflate.compress(text) + raw_deflate.flush()),
        "/stacked": ("deflate, gzip", gzip.compress(zlib.compress(text))),
    }
    for path, (coding, body) in encoded.items():
        site.route(path, _fixed(body, {"Content-Type": "text/html", "Content-Encoding": coding}))
    for path in encoded:
        result = await client.request("GET", site.url(path), read_body=True)
        assert result.error is None, (path, result.error)
        assert result.body == text, path


@pytest.mark.parametrize("chunk_size", [1, 7, 65536])
def test_decoder_handles_any_chunking(chunk_size: int) -> None:
    text = b"<p>hello decoder</p>" * 500
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    cases = {
        "gzip": gzip.compress(text),
        "x-gzip": gzip.compress(text[:100]) + gzip.compress(text[100:]),
        "deflate": zlib.compress(text),
        "Deflate": raw.compress(text) + raw.flush(),
        "identity": text,
        "": text,
        "deflate, gzip": gzip.compress(zlib.compress(text)),
    }
    for coding, body in cases.items():
        decoder = BodyDecoder(coding, cap=len(text))
        for i in range(0, len(body), chunk_size):
            decoder.feed(body[i : i + chunk_size])
        assert decoder.finish() == text, coding
        too_small = BodyDecoder(coding, cap=len(text) - 1)
        with pytest.raises(BodyTooLarge) as caught:
            for i in range(0, len(body), chunk_size):
                too_small.feed(body[i : i + chunk_size])
            too_small.finish()
        assert caught.value.prefix == text[: len(text) - 1], coding


def test_decoder_refuses_garbage_and_unknown_codings() -> None:
    with pytest.raises(BodyDecodeError):
        BodyDecoder("gzip", cap=100).feed(b"this is not gzip")
    with pytest.raises(BodyDecodeError):
        BodyDecoder("deflate", cap=100).feed(b"\xff" * 50)
    with pytest.raises(BodyDecodeError, match="br"):
        BodyDecoder("br", cap=100)
    trailing = BodyDecoder("gzip", cap=100)
    trailing.feed(gzip.compress(b"ok") + b"\x00junk after the stream")
    assert trailing.finish() == b"ok"


def _fixed(body: bytes, headers: dict[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers=headers)

    return handler


async def test_broken_content_encoding_is_a_decode_error(site: LocalSite, client: HttpClient) -> None:
    html = {"Content-Type": "text/html"}
    site.route("/lies", _fixed(b"<p>not gzip at all</p>", {**html, "Content-Encoding": "gzip"}))
    site.route("/brotli", _fixed(b"\x0b\x02\x80hi\x03", {**html, "Content-Encoding": "br"}))
    for path in ("/lies", "/brotli"):
        result = await client.request("GET", site.url(path), read_body=True)
        assert result.status == 200
        assert result.error is not None and result.error.kind is FetchErrorKind.DECODE_ERROR, path
    # Without the body the answer is still usable (a link check does not read it).
    head = await client.request("GET", site.url("/lies"))
    assert head.error is None and head.status == 200


async def test_non_html_bodies_can_be_left_unread(site: LocalSite, client: HttpClient) -> None:
    site.route("/doc.pdf", _fixed(b"%PDF-1.7 ...", {"Content-Type": "application/pdf"}))
    site.route("/data.json", _fixed(b'{"a": 1}', {"Content-Type": "application/json; charset=utf-8"}))
    html_only = {"text/html", "application/xhtml+xml"}
    pdf = await client.request("GET", site.url("/doc.pdf"), read_body=True, body_types=html_only)
    assert (pdf.error, pdf.status, pdf.body, pdf.content_type) == (None, 200, b"", "application/pdf")
    data = await client.request("GET", site.url("/data.json"), read_body=True)
    assert data.body == b'{"a": 1}' and data.content_type == "application/json" and data.charset == "utf-8"


# -- concurrency and pauses --------------------------------------------------------------------------
class InFlight:
    """Counts requests the server is handling at once, overall and per Host header."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.per_host: dict[str, int] = {}
        self.peak_per_host: dict[str, int] = {}

    async def handler(self, request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "").split(":")[0]
        self.now += 1
        self.per_host[host] = self.per_host.get(host, 0) + 1
        self.peak = max(self.peak, self.now)
        self.peak_per_host[host] = max(self.peak_per_host.get(host, 0), self.per_host[host])
        try:
            await asyncio.sleep(0.02)  # the server's own latency, so requests overlap
            return web.Response(text="ok")
        finally:
            self.now -= 1
            self.per_host[host] -= 1


async def test_per_host_concurrency_never_exceeds_the_limit(site: LocalSite) -> None:
    counter = InFlight()
    site.route("/slow", counter.handler)
    async with HttpClient(settings(per_host_concurrency=2, concurrency=50)) as c:
        results = await asyncio.gather(*(c.request("GET", site.url(f"/slow?i={i}")) for i in range(12)))
    assert all(r.status == 200 for r in results)
    assert counter.peak == 2


async def test_per_host_limit_is_per_host_and_global_limit_holds(site: LocalSite) -> None:
    counter = InFlight()
    site.route("/slow", counter.handler)
    resolver = StaticResolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"], "c.test": ["127.0.0.1"]})
    urls = [f"http://{h}.test:{site.port}/slow" for h in "abc" for _ in range(4)]
    async with HttpClient(settings(per_host_concurrency=1, concurrency=50), resolver=resolver) as c:
        await asyncio.gather(*(c.request("GET", u) for u in urls))
    assert counter.peak_per_host == {"a.test": 1, "b.test": 1, "c.test": 1}
    assert counter.peak == 3
    counter.peak = 0
    async with HttpClient(settings(per_host_concurrency=4, concurrency=2), resolver=resolver) as c:
        await asyncio.gather(*(c.request("GET", u) for u in urls))
    assert counter.peak == 2


async def test_paused_host_waits_on_the_injected_clock(site: LocalSite) -> None:
    site.html("/", "ok")
    clock = FakeClock()
    async with HttpClient(settings(), clock=clock, sleep=clock.sleep) as c:
        c.pause_host(site.url("/"), 12.5)
        assert c.paused_for("127.0.0.1") == 12.5
        c.pause_host("127.0.0.1", 3)  # a shorter pause never shortens the one in force
        result = await c.request("GET", site.url("/"))
        other = await c.request("GET", site.url("/"))
    assert result.status == 200 and other.status == 200
    assert clock.sleeps == [12.5]
    assert c.paused_for("127.0.0.1") == 0.0


def test_host_key() -> None:
    assert host_key("https://WWW.Example.COM.:8443/x") == "www.example.com"
    assert host_key("http://bücher.de/") == "xn--bcher-kva.de"
    assert host_key("http://[::1]:80/") == "::1"
    assert host_key("not a url at all \x00") in ("", "not a url at all \x00")


def test_exception_chains_map_to_error_kinds() -> None:
    def chained(inner: BaseException, *outer: BaseException) -> BaseException:
        current = inner
        for wrapper in outer:
            wrapper.__cause__ = current
            current = wrapper
        return current

    import aiohttp
    import httpx

    refused = chained(ConnectionRefusedError(111, "refused"), httpx.ConnectError("x"))
    blocked = chained(BlockedAddressError("evil.test", ["10.0.0.1"]), httpx.ConnectError("x"))
    nxdomain = chained(socket.gaierror(socket.EAI_NONAME, "no"), httpx.ConnectError("x"))
    disconnect = chained(aiohttp.ServerDisconnectedError(), httpx.ConnectTimeout("x"))
    assert fetch_error_from_exception(refused).kind is FetchErrorKind.CONNECT_REFUSED  # type: ignore[union-attr]
    assert fetch_error_from_exception(blocked).kind is FetchErrorKind.BLOCKED_ADDRESS  # type: ignore[union-attr]
    assert fetch_error_from_exception(nxdomain).kind is FetchErrorKind.DNS_NOT_FOUND  # type: ignore[union-attr]
    # httpx-aiohttp maps a disconnect to ConnectTimeout; the cause says what really happened.
    assert fetch_error_from_exception(disconnect).kind is FetchErrorKind.CONNECTION_RESET  # type: ignore[union-attr]
    assert fetch_error_from_exception(ValueError("a bug")) is None


async def test_closed_client_refuses_requests() -> None:
    c = HttpClient(settings())
    await c.aclose()
    with pytest.raises(RuntimeError):
        await c.request("GET", "http://example.com/")
