"""``linkpact serve`` in HTTP mode, as a real subprocess, driven the way Slack drives it.

Slash commands are form-encoded and signed exactly as Slack signs them; the bot's Web API calls go to a
local stand-in for Slack (``SLACK_API_URL``) and the pages it checks are served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from tests.support.site import LocalSite
from tests.support.slack_api import (
    RESPONSE_URL_METHOD,
    ApiCall,
    SlackApiStandIn,
    sign,
    slash_command_body,
    slash_command_fields,
)

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-bot-token-do-not-log"
APP_TOKEN = "xapp-test-app-token-do-not-log"
# Slack gives an app 3 s to ack; we want to be far inside that, whatever else is running.
ACK_BUDGET_S = 1.5
START_TIMEOUT_S = 30.0
MAX_CHECKS_PER_WORKSPACE = 2
# How old a request may be before it counts as a replay (Slack docs: "Verifying requests from Slack").
STALE_AFTER_S = 5 * 60


# -- the server process -------------------------------------------------------------------------------


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise


def serve_command(port: int) -> list[str]:
    """``linkpact serve`` from this interpreter's environment (``python -m bot.cli`` as a fallback)."""
    script = shutil.which("linkpact", path=str(Path(sys.executable).parent))
    if script:
        return [script, "serve", "--port", str(port)]
    return [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LINKPACT_"))}
    env.update(overrides)
    return env


def start_server(
    tmp_path: Path, slack_api: SlackApiStandIn, *, wait_until_listening: bool = True, **env: str
) -> ServeProcess:
    port = free_port()
    process = subprocess.Popen(
        serve_command(port),
        cwd=tmp_path,  # no stray .env from the developer's checkout
        env=clean_env(
            **{
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack_api.api_url,
                "LINKPACT_DB": str(tmp_path / "linkpact.json"),
                "LINKPACT_ALLOW_NETWORKS": "127.0.0.0/8",
                "LINKPACT_MAX_CHECKS_PER_WORKSPACE": str(MAX_CHECKS_PER_WORKSPACE),
                "LINKPACT_TIMEOUT_S": "10",
                **env,
            }
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = ServeProcess(process, f"http://127.0.0.1:{port}/slack/events")
    listening = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            server.lines.append(line)
            if "listening on" in line:
                listening.set()
        listening.set()  # the process ended: stop waiting

    threading.Thread(target=read_stderr, name="serve-stderr", daemon=True).start()
    if not wait_until_listening:
        return server
    if not listening.wait(START_TIMEOUT_S) or process.poll() is not None:
        server.stop()
        raise AssertionError(f"linkpact serve did not start:\n{server.log}")
    return server


# -- Slack's side -------------------------------------------------------------------------------------

_names = count(1)


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    text: str


def post(url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
    """One POST over a plain socket connection (no client-side set-up cost in the measured time)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, response.read().decode())
    finally:
        connection.close()


@dataclass
class Sent:
    response: HttpAnswer
    elapsed_s: float
    response_name: str  # the response_url's name at the stand-in


def send_command(
    server: ServeProcess,
    slack_api: SlackApiStandIn,
    text: str,
    *,
    channel: str,
    team: str = "T0MAIN",
    timestamp: int | None = None,
    secret: str = SIGNING_SECRET,
) -> Sent:
    name = f"cmd{next(_names)}"
    body = slash_command_body(
        text, response_url=slack_api.response_url(name), channel_id=channel, team_id=team
    )
    headers = sign(secret, body, int(time.time()) if timestamp is None else timestamp)
    started = time.perf_counter()
    response = post(server.url, body, headers)
    return Sent(response, time.perf_counter() - started, name)


def in_channel(channel: str, needle: str | None = None) -> Callable[[ApiCall], bool]:
    def match(call: ApiCall) -> bool:
        return call.params.get("channel") == channel and (needle is None or needle in call.blocks_text())

    return match


def ack_json(sent: Sent) -> dict[str, object]:
    assert sent.response.status_code == 200, sent.response.text
    data = json.loads(sent.response.text)
    assert isinstance(data, dict)
    return data


# -- fixtures -----------------------------------------------------------------------------------------


class SlowPage:
    """A page that answers only once released (so a check stays running as long as a test needs)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 20)
        return web.Response(text='<a href="/ok">ok</a>', content_type="text/html")


@pytest.fixture(scope="module")
def web_site() -> Iterator[LocalSite]:
    site = LocalSite()
    site.start()
    site.html("/ok", "<p>fine</p>")
    site.html(
        "/",
        """<!doctype html><html><head><title>Partner resources</title></head><body>
        <main><p>Read <a href="/ok">the guide</a> and <a href="/missing">the old guide</a>.</p>
        <a href="mailto:team@example.com">write to us</a></main>
        <footer><a href="/ok">home</a></footer></body></html>""",
    )
    site.html("/landing", '<html><head><title>Landing</title></head><body><a href="/ok">ok</a></body></html>')
    site.html("/partner", '<html><body><main><a href="/landing">our friends</a></main></body></html>')
    dead = "".join(f'<li><a href="/dead/{i}">dead {i}</a></li>' for i in range(30))
    site.html(
        "/many", f"<html><head><title>Many</title></head><body><main><ul>{dead}</ul></main></body></html>"
    )
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slack_api: SlackApiStandIn) -> Iterator[ServeProcess]:
    srv = start_server(tmp_path_factory.mktemp("serve"), slack_api)
    try:
        yield srv
    finally:
        srv.stop()


# -- tests --------------------------------------------------------------------------------------------


def test_a_signed_check_is_acked_fast_then_posted_updated_and_replaced_by_the_report(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    page = web_site.url("/")
    sent = send_command(server, slack_api, page, channel="C0CHECK")
    assert sent.response.status_code == 200
    print(f"ack time of /linkcheck <url>: {sent.elapsed_s * 1000:.0f} ms")
    assert sent.elapsed_s < ACK_BUDGET_S

    posted = slack_api.wait_for_call("chat.postMessage", in_channel("C0CHECK"))
    assert posted.params["text"] == f"Checking {page}…"
    assert posted.headers.get("Authorization") == f"Bearer {BOT_TOKEN}"
    final = slack_api.wait_for_call("chat.update", in_channel("C0CHECK", "Link report"))
    assert final.params["ts"] == posted.answer["ts"]  # the message Slack said it posted
    assert slack_api.calls.index(posted) < slack_api.calls.index(final)
    text = final.blocks_text()
    assert "Link report: Partner resources" in text
    assert "HTTP 200 · indexable" in text
    assert "*OK*\n2" in text and "*Broken*\n1" in text and "*Skipped*\n1" in text and "*Unknown*\n0" in text
    assert f"*404* <{web_site.url('/missing')}|" in text and "“the old guide” · main" in text
    assert "requested by <@U0ALICE>" in text
    assert final.params["text"].startswith(f"Link report for {page}: 1 broken")
    # A short report needs no CSV.
    assert not [
        c
        for c in slack_api.calls_to("files.completeUploadExternal")
        if c.params.get("channel_id") == "C0CHECK"
    ]


@pytest.mark.parametrize(
    ("secret", "age_s"),
    [("not-the-secret", 0), (SIGNING_SECRET, STALE_AFTER_S + 60)],
    ids=["bad-signature", "stale-timestamp"],
)
def test_requests_not_signed_by_slack_are_refused_with_401(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite, secret: str, age_s: int
) -> None:
    sent = send_command(
        server, slack_api, web_site.url("/"), channel="C0FORGED", secret=secret,
        timestamp=int(time.time()) - age_s,
    )  # fmt: skip
    assert sent.response.status_code == 401
    assert not slack_api.responses(sent.response_name)


def test_an_unsigned_request_is_refused(server: ServeProcess) -> None:
    body = b"command=%2Flinkcheck&text=help"
    response = post(server.url, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401


def test_healthz_answers_ok_without_a_signature(server: ServeProcess) -> None:
    """What the Docker image's HEALTHCHECK asks (no Slack signature: Slack never calls it)."""
    health = server.url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(health, timeout=5) as response:
        assert (response.status, response.read()) == (200, b"ok")


@pytest.mark.parametrize("text", ["help", "", "  HELP "])
def test_help_and_a_bare_command_answer_usage_ephemerally(
    server: ServeProcess, slack_api: SlackApiStandIn, text: str
) -> None:
    sent = send_command(server, slack_api, text, channel="C0HELP")
    assert sent.elapsed_s < ACK_BUDGET_S
    data = ack_json(sent)
    assert data["response_type"] == "ephemeral"
    blocks = json.dumps(data["blocks"])
    assert "/linkcheck &lt;url&gt;" in blocks and "track &lt;source-url&gt; &lt;target-url&gt;" in blocks


def test_a_malformed_command_is_answered_in_the_ack(server: ServeProcess, slack_api: SlackApiStandIn) -> None:
    data = ack_json(send_command(server, slack_api, "https://a.example/ https://b.example/", channel="C0BAD"))
    assert data["response_type"] == "ephemeral"
    assert "give exactly one URL" in str(data["text"])


def test_a_url_that_is_not_http_gets_an_ephemeral_reason_and_nothing_in_the_channel(
    server: ServeProcess, slack_api: SlackApiStandIn
) -> None:
    sent = send_command(server, slack_api, "ftp://files.example/report.pdf", channel="C0FTP")
    assert sent.response.status_code == 200
    answer = slack_api.wait_for_response(sent.response_name)
    assert answer.params["response_type"] == "ephemeral"
    assert "http(s)" in answer.blocks_text()
    assert not [c for c in slack_api.calls_to("chat.postMessage") if c.params.get("channel") == "C0FTP"]


def test_a_refused_address_gets_an_ephemeral_refusal_and_is_never_announced(
    server: ServeProcess, slack_api: SlackApiStandIn
) -> None:
    # Slack's link markup, and the cloud metadata address (link-local, outside the allowed 127/8).
    sent = send_command(
        server, slack_api, "<http://169.254.169.254/latest/meta-data|169.254.169.254>", channel="C0SSRF"
    )
    assert sent.response.status_code == 200
    answer = slack_api.wait_for_response(sent.response_name)
    text = answer.blocks_text()
    assert answer.params["response_type"] == "ephemeral"
    assert "http://169.254.169.254/latest/meta-data was refused" in text
    assert not [c for c in slack_api.calls_to("chat.postMessage") if c.params.get("channel") == "C0SSRF"]


def test_acks_stay_fast_while_a_thousand_link_check_runs(
    server: ServeProcess, slack_api: SlackApiStandIn
) -> None:
    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok", content_type="text/html")

    with LocalSite() as big_site:
        links = "".join(f'<a href="/p/{i}">link {i}</a>' for i in range(1000))
        big_site.html("/big", f"<html><body><main>{links}</main></body></html>")
        big_site.fallback = ok
        sent = send_command(server, slack_api, big_site.url("/big"), channel="C0BIG", team="T0BIG")
        assert sent.response.status_code == 200
        acks = [send_command(server, slack_api, "help", channel="C0BIGHELP", team="T0BIG") for _ in range(10)]
        report = slack_api.wait_for_call("chat.update", in_channel("C0BIG", "Link report"), timeout_s=60)
    slowest = max(a.elapsed_s for a in acks)
    print(f"slowest of 10 acks during a 1,000-link check: {slowest * 1000:.0f} ms")
    assert all(a.response.status_code == 200 for a in acks)
    assert slowest < ACK_BUDGET_S
    assert "*Links on the page*\n1000 (1000 unique)" in report.blocks_text()
    assert "*OK*\n1000" in report.blocks_text()


def test_beyond_the_per_workspace_cap_the_answer_is_busy(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    slow = SlowPage()
    web_site.route("/slow", slow)
    try:
        running = [
            send_command(server, slack_api, web_site.url("/slow"), channel=f"C0BUSY{i}", team="T0BUSY")
            for i in range(MAX_CHECKS_PER_WORKSPACE)
        ]
        assert all(s.response.status_code == 200 and not s.response.text for s in running)
        busy = send_command(server, slack_api, web_site.url("/slow"), channel="C0BUSYX", team="T0BUSY")
        print(f"ack time while {MAX_CHECKS_PER_WORKSPACE} checks run: {busy.elapsed_s * 1000:.0f} ms")
        assert busy.elapsed_s < ACK_BUDGET_S
        data = ack_json(busy)
        assert data["response_type"] == "ephemeral" and "Try again" in str(data["text"])
        # Another workspace is not affected by this one's cap.
        other = send_command(server, slack_api, web_site.url("/ok"), channel="C0OTHER", team="T0OTHER")
        assert other.response.status_code == 200 and not other.response.text
        slack_api.wait_for_call("chat.update", in_channel("C0OTHER", "Link report"))
    finally:
        slow.release.set()
    for i in range(MAX_CHECKS_PER_WORKSPACE):
        slack_api.wait_for_call("chat.update", in_channel(f"C0BUSY{i}", "Link report"))
    # Slots are given back: the workspace can check again.
    again = send_command(server, slack_api, web_site.url("/ok"), channel="C0BUSYZ", team="T0BUSY")
    assert again.response.status_code == 200 and not again.response.text
    slack_api.wait_for_call("chat.update", in_channel("C0BUSYZ", "Link report"))


def test_track_tracked_check_untrack(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    source, target = web_site.url("/partner"), web_site.url("/landing")

    def answer(text: str) -> str:
        sent = send_command(server, slack_api, text, channel="C0TRACK", team="T0TRACK")
        assert sent.response.status_code == 200 and sent.elapsed_s < ACK_BUDGET_S
        reply = slack_api.wait_for_response(sent.response_name)
        assert reply.params["response_type"] == "ephemeral"
        return reply.blocks_text()

    assert "Now tracking the backlink" in answer(f"track {source} <{target}|landing>")
    assert "Already tracking" in answer(f"track {source} {target}")
    listed = answer("tracked")
    assert "1 tracked backlink" in listed and source in listed and "added by <@U0ALICE>" in listed

    send_command(server, slack_api, target, channel="C0TRACK", team="T0TRACK")
    report = slack_api.wait_for_call("chat.update", in_channel("C0TRACK", "Link report")).blocks_text()
    assert "*Backlinks live*\n1" in report and "*Backlinks lost*\n0" in report
    assert f"*live* <{source}|" in report and "“our friends”" in report

    assert "Stopped tracking" in answer(f"untrack {source} {target}")
    assert "No tracked backlinks to" in answer(f"tracked {target}")
    data = ack_json(send_command(server, slack_api, f"track {source}", channel="C0TRACK", team="T0TRACK"))
    assert "needs two URLs" in str(data["text"])


def test_a_long_report_is_cut_and_the_full_list_attached_as_csv_in_the_thread(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    send_command(server, slack_api, web_site.url("/many"), channel="C0CSV")
    posted = slack_api.wait_for_call("chat.postMessage", in_channel("C0CSV"))
    final = slack_api.wait_for_call("chat.update", in_channel("C0CSV", "Link report"))
    assert "*Broken*\n30" in final.blocks_text() and "and 10 more" in final.blocks_text()
    done = slack_api.wait_for_call(
        "files.completeUploadExternal", lambda c: c.params.get("channel_id") == "C0CSV"
    )
    assert done.params["thread_ts"] == posted.answer["ts"]  # in the report's thread
    file_id = json.loads(done.params["files"])[0]["id"]
    url_call = slack_api.wait_for_call(
        "files.getUploadURLExternal", lambda c: c.answer.get("file_id") == file_id
    )
    assert url_call.params["filename"].startswith("linkpact-127.0.0.1-")
    upload = slack_api.wait_for_call("upload", lambda c: c.params["file_id"] == file_id)
    csv_text = upload.body.decode()
    assert csv_text.startswith("direction,url,verdict,reason,status")
    assert sum(1 for line in csv_text.splitlines() if "/dead/" in line and ",broken," in line) == 30


def test_a_failed_csv_upload_keeps_the_report_and_says_what_is_missing(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    slack_api.fail("files.completeUploadExternal", "not_allowed_token_type", channel="C0CSVFAIL")
    sent = send_command(server, slack_api, web_site.url("/many"), channel="C0CSVFAIL")
    answer = slack_api.wait_for_response(sent.response_name)
    assert "The report is posted, but its CSV could not be attached" in answer.blocks_text()
    assert "not_allowed_token_type" in answer.blocks_text()
    assert slack_api.wait_for_call("chat.update", in_channel("C0CSVFAIL", "Link report"))
    assert not [c for c in slack_api.calls_to("chat.delete") if c.params.get("channel") == "C0CSVFAIL"]


def test_when_the_bot_is_not_in_the_channel_the_report_goes_to_the_requester(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    slack_api.fail("chat.postMessage", "not_in_channel", channel="C0PRIVATE")
    sent = send_command(server, slack_api, web_site.url("/"), channel="C0PRIVATE")
    first = slack_api.wait_for_response(sent.response_name)
    assert "Checking" in first.blocks_text() and "not a member" in first.blocks_text()
    final = slack_api.wait_for_response(sent.response_name, lambda c: "Link report" in c.blocks_text())
    assert final.params["response_type"] == "ephemeral" and final.params["replace_original"] is True
    assert "*Broken*\n1" in final.blocks_text()
    assert not [c for c in slack_api.calls_to("chat.update") if c.params.get("channel") == "C0PRIVATE"]


def test_a_rate_limited_update_is_retried_after_retry_after(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    slack_api.rate_limit("chat.update", retry_after_s=0, times=1, channel="C0RATE")
    send_command(server, slack_api, web_site.url("/"), channel="C0RATE")
    report = in_channel("C0RATE", "Link report")
    delivered = slack_api.wait_for_call("chat.update", lambda c: report(c) and c.answer.get("ok") is True)
    attempts = [c for c in slack_api.calls_to("chat.update") if report(c)]
    assert [a.answer.get("error") for a in attempts] == ["ratelimited", None]  # 429, then the retry
    assert attempts[-1] is delivered


def test_a_failure_is_reported_ephemerally_logged_with_traceback_and_the_bot_keeps_serving(
    server: ServeProcess, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    slack_api.fail("chat.update", "internal_error", times=1000, channel="C0FAIL")
    sent = send_command(server, slack_api, web_site.url("/"), channel="C0FAIL")
    answer = slack_api.wait_for_response(sent.response_name)
    assert answer.params["response_type"] == "ephemeral"
    assert "The check failed: Slack answered `internal_error`" in answer.blocks_text(), (
        answer.blocks_text(),
        server.log[-3000:],
    )
    # The half-done "Checking…" message does not linger in the channel.
    slack_api.wait_for_call("chat.delete", lambda c: c.params.get("channel") == "C0FAIL")
    assert "Traceback" in server.log and "the check of" in server.log
    # Still serving.
    assert ack_json(send_command(server, slack_api, "help", channel="C0FAIL"))["response_type"] == "ephemeral"


def test_sigterm_stops_cleanly_marks_running_checks_and_logs_no_secrets(
    tmp_path: Path, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    srv = start_server(tmp_path, slack_api)
    slow = SlowPage()
    web_site.route("/slow-stop", slow)
    try:
        sent = send_command(srv, slack_api, web_site.url("/slow-stop"), channel="C0STOP", team="T0STOP")
        assert sent.response.status_code == 200
        slack_api.wait_for_call("chat.postMessage", in_channel("C0STOP"))
        assert srv.stop(signal.SIGTERM) == 0
    finally:
        slow.release.set()
        if srv.process.poll() is None:
            srv.stop(signal.SIGKILL)
    stopped = slack_api.wait_for_call("chat.update", in_channel("C0STOP", "stopped before"))
    assert "run `/linkcheck` again" in stopped.blocks_text()
    log = srv.log
    assert "listening on http://0.0.0.0:" in log and "/slack/events" in log and "stopped" in log
    assert BOT_TOKEN not in log and SIGNING_SECRET not in log
    assert "/response_url/" not in log and RESPONSE_URL_METHOD + "/" not in log


def test_socket_mode_takes_commands_over_the_websocket_and_answers_through_the_web_api(
    tmp_path: Path, slack_api: SlackApiStandIn, web_site: LocalSite
) -> None:
    srv = start_server(tmp_path, slack_api, SLACK_APP_TOKEN=APP_TOKEN)
    try:
        assert "listening on Slack Socket Mode" in srv.log
        # The scheduler starts once the listener is connected, not before.
        deadline = time.monotonic() + 10
        while "scheduled recheck links" not in srv.log and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.log.index("listening on Slack Socket Mode") < srv.log.index("scheduled recheck links")
        opened = slack_api.wait_for_call("apps.connections.open")
        assert opened.headers.get("Authorization") == f"Bearer {APP_TOKEN}"

        help_id = slack_api.send_envelope(
            "slash_commands", slash_command_fields("help", response_url=slack_api.response_url("sock-help"))
        )
        ack = slack_api.wait_for_socket_ack(help_id)
        assert ack.params["payload"]["response_type"] == "ephemeral"
        assert "/linkcheck &lt;url&gt;" in json.dumps(ack.params["payload"]["blocks"])

        started = time.perf_counter()
        check_id = slack_api.send_envelope(
            "slash_commands",
            slash_command_fields(
                web_site.url("/"), response_url=slack_api.response_url("sock-check"), channel_id="C0SOCKET"
            ),
        )
        slack_api.wait_for_socket_ack(check_id)
        print(f"Socket Mode ack time: {(time.perf_counter() - started) * 1000:.0f} ms")
        assert time.perf_counter() - started < ACK_BUDGET_S
        final = slack_api.wait_for_call("chat.update", in_channel("C0SOCKET", "Link report"))
        assert "*Broken*\n1" in final.blocks_text()
        assert srv.stop() == 0
    finally:
        if srv.process.poll() is None:
            srv.stop(signal.SIGKILL)
    assert APP_TOKEN not in srv.log and BOT_TOKEN not in srv.log


def test_missing_settings_are_a_clear_start_up_error(tmp_path: Path) -> None:
    result = subprocess.run(
        serve_command(free_port()),
        cwd=tmp_path,
        env=clean_env(SLACK_SIGNING_SECRET=SIGNING_SECRET),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and ".env.example" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_a_clear_start_up_error(tmp_path: Path, slack_api: SlackApiStandIn) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            serve_command(port),
            cwd=tmp_path,
            env=clean_env(
                SLACK_BOT_TOKEN=BOT_TOKEN,
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=slack_api.api_url,
                LINKPACT_DB=str(tmp_path / "linkpact.json"),
            ),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"linkpact serve: cannot listen on 0.0.0.0:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_interrupts_a_socket_mode_connection_that_keeps_failing(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    slack_api.fail("apps.connections.open", "internal_error", times=1000)
    before = len(slack_api.calls_to("apps.connections.open"))
    try:
        srv = start_server(tmp_path, slack_api, wait_until_listening=False, SLACK_APP_TOKEN=APP_TOKEN)
        try:
            # The start-up check, then the Socket Mode client's own attempts (after 0.5-1 s, then 1-2 s).
            slack_api.wait_for(lambda c: len(slack_api.calls_to("apps.connections.open")) >= before + 3)
            deadline = time.monotonic() + 10
            while srv.log.count("cannot connect to Slack") < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            started = time.perf_counter()
            assert srv.stop(signal.SIGTERM, timeout_s=8) == 0
            assert time.perf_counter() - started < 5
        finally:
            if srv.process.poll() is None:
                srv.stop(signal.SIGKILL)
    finally:
        slack_api.clear_failures()
    assert "listening on" not in srv.log and "stopped" in srv.log
    # One line per failed attempt, no traceback; the scheduler never started (nothing was listening).
    attempts = len(slack_api.calls_to("apps.connections.open")) - before - 1
    failures = [line for line in srv.lines if "cannot connect to Slack" in line]
    # An attempt still in flight when SIGTERM came ends unlogged: the process was stopping.
    assert attempts - 1 <= len(failures) <= attempts and len(failures) >= 2, srv.log
    assert "Slack answered `internal_error`" in failures[0] and "next attempt in" in failures[0]
    assert "Traceback" not in srv.log
    assert "scheduled" not in srv.log


@pytest.mark.parametrize(
    ("method", "variable", "extra_env"),
    [
        ("auth.test", "SLACK_BOT_TOKEN", {}),
        ("apps.connections.open", "SLACK_APP_TOKEN", {"SLACK_APP_TOKEN": APP_TOKEN}),
    ],
    ids=["bot-token", "app-token"],
)
def test_a_token_slack_refuses_is_a_clear_start_up_error(
    tmp_path: Path, slack_api: SlackApiStandIn, method: str, variable: str, extra_env: dict[str, str]
) -> None:
    slack_api.fail(method, "invalid_auth")
    result = subprocess.run(
        serve_command(free_port()),
        cwd=tmp_path,
        env=clean_env(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack_api.api_url,
            LINKPACT_DB=str(tmp_path / "linkpact.json"),
            **extra_env,
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"linkpact serve: Slack refused {variable}: invalid_auth" in result.stderr
    assert "Traceback" not in result.stderr
    assert BOT_TOKEN not in result.stderr and APP_TOKEN not in result.stderr


def test_dotenv_fills_settings_but_the_real_environment_wins(tmp_path: Path) -> None:
    # .env provides the signing secret; the real environment's empty-token override is absent, so the
    # token from .env is used, and LINKPACT_MAX_CHECKS_PER_WORKSPACE from the environment beats .env's.
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-from-dotenv\nSLACK_SIGNING_SECRET=from-dotenv\nLINKPACT_MAX_CHECKS_PER_WORKSPACE=oops\n"
    )
    result = subprocess.run(
        serve_command(free_port()),
        cwd=tmp_path,
        env=clean_env(LINKPACT_MAX_CHECKS_PER_WORKSPACE="0"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    # The environment's "0" wins over .env's "oops": the error names the environment's value.
    assert result.returncode == 2
    assert "LINKPACT_MAX_CHECKS_PER_WORKSPACE: must be at least 1, got 0" in result.stderr
    assert "SLACK_BOT_TOKEN" not in result.stderr  # filled from .env
