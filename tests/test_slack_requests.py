"""What ``/slack/events`` answers to requests Slack would never send: 400, 401 or 413, one log line, no
traceback, never a 500; signed or not (Slack docs: "Verifying requests from Slack").

Two layers: a real ``linkpact serve`` subprocess fed the classic bad requests (its stderr is the log
read for tracebacks), and the in-process front door (``handlers.http_gate``) fed every valid payload
kind with each routing field replaced by a value of the wrong type.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import SlackSettings
from bot.errors import InputError
from handlers.app import EVENTS_PATH, build_app
from handlers.http_gate import MAX_REQUEST_BODY_BYTES, build_web_app, envelope_problem
from handlers.services import Services
from tests.support.slack_api import (
    SlackApiStandIn,
    block_actions_payload,
    event_body,
    file_share_event,
    interaction_body,
    message_shortcut_payload,
    sign,
    slash_command_body,
    view_submission_payload,
)
from tests.test_slack_serve import SIGNING_SECRET, ServeProcess, post, start_server

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
HUGE_BODY = b"text=" + b"a" * (MAX_REQUEST_BODY_BYTES + 1)


def _headers(body: bytes, content_type: str, *, signed: bool, timestamp: str | None = None) -> dict[str, str]:
    if not signed:
        headers = {"Content-Type": content_type}
        if timestamp is not None:
            headers["X-Slack-Request-Timestamp"] = timestamp
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
        return headers
    headers = sign(SIGNING_SECRET, body, int(time.time()))
    headers["Content-Type"] = content_type
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp  # the signature no longer covers it
    return headers


# (name, body, content type, timestamp header override); each is sent unsigned and signed.
BAD_REQUESTS: list[tuple[str, bytes, str, str | None]] = [
    ("non-numeric-timestamp", b"command=%2Flinkcheck&text=help", FORM, "yesterday"),
    ("negative-timestamp", b"command=%2Flinkcheck&text=help", FORM, "-1"),
    ("float-timestamp", b"command=%2Flinkcheck&text=help", FORM, "1700000000.5"),
    ("huge-timestamp", b"command=%2Flinkcheck&text=help", FORM, "9" * 5000),
    ("empty-timestamp", b"command=%2Flinkcheck&text=help", FORM, ""),
    ("binary-body", b"\xff\xfe\x00\x81payload=\xc3(", FORM, None),
    ("binary-json-body", b"\x89PNG\r\n\x1a\n\x00\x00", JSON, None),
    ("malformed-json", b'{"type": "event_callback", "event": ', JSON, None),
    ("deeply-nested-json", b"[" * 200_000, JSON, None),
    ("json-array", b'[{"type": "event_callback"}]', JSON, None),
    ("json-string", b'"event_callback"', JSON, None),
    ("payload-list", interaction_body([1, 2]), FORM, None),  # type: ignore[arg-type]
    ("payload-number", b"payload=42", FORM, None),
    ("payload-string", b"payload=%22block_actions%22", FORM, None),
    ("payload-null", b"payload=null", FORM, None),
    ("payload-not-json", b"payload=%7Bnope", FORM, None),
    ("json-sent-as-form", b'{"type": "url_verification"', FORM, None),
    ("wrong-content-type", b"command=%2Flinkcheck&text=help", "text/plain", None),
    (
        "multipart",
        b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--",
        "multipart/form-data",
        None,
    ),
    ("empty-body", b"", FORM, None),
    ("event-not-an-object", b'{"type": "event_callback", "event": "app_home_opened"}', JSON, None),
    ("team-a-number", b'{"type": "event_callback", "team": 5, "event": {"type": "x"}}', JSON, None),
    ("huge-body", HUGE_BODY, FORM, None),
]


def _cases() -> list[Any]:
    return [
        pytest.param(body, content_type, timestamp, signed, id=f"{name}-{'signed' if signed else 'unsigned'}")
        for name, body, content_type, timestamp in BAD_REQUESTS
        for signed in (False, True)
    ]


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slack_api: SlackApiStandIn) -> Iterator[ServeProcess]:
    srv = start_server(tmp_path_factory.mktemp("gate"), slack_api)
    # The scheduler starts (and logs) just after "listening on": let it, so each test reads its own lines.
    _wait_for_text(srv, "scheduled recheck links")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize(("body", "content_type", "timestamp", "signed"), _cases())
def test_a_bad_request_is_a_4xx_with_one_log_line_and_no_traceback(
    server: ServeProcess, body: bytes, content_type: str, timestamp: str | None, signed: bool
) -> None:
    before = len(server.lines)
    answer = post(server.url, body, _headers(body, content_type, signed=signed, timestamp=timestamp))
    unsigned_or_stale = not signed or timestamp is not None
    if unsigned_or_stale:
        assert answer.status_code == 401, answer.text
    elif body is HUGE_BODY:
        assert answer.status_code == 413, answer.text
    else:
        assert answer.status_code == 400, answer.text
    _wait_for_lines(server, before + 1)
    new = server.lines[before:]
    assert len(new) == 1 and "refused a request to /slack/events" in new[0], new
    assert "Traceback" not in server.log and " 500" not in server.log


def test_the_server_still_serves_after_the_bad_requests(
    server: ServeProcess, slack_api: SlackApiStandIn
) -> None:
    body = slash_command_body("help", response_url=slack_api.response_url("after-fuzz"))
    answer = post(server.url, body, sign(SIGNING_SECRET, body, int(time.time())))
    assert answer.status_code == 200 and "/linkcheck &lt;url&gt;" in answer.text


def test_a_command_whose_text_says_payload_reaches_the_command(
    server: ServeProcess, slack_api: SlackApiStandIn
) -> None:
    # Bolt's own parser took any form body containing "payload" for an interactivity payload: no listener.
    body = slash_command_body("help payload", response_url=slack_api.response_url("payload-word"))
    answer = post(server.url, body, sign(SIGNING_SECRET, body, int(time.time())))
    assert answer.status_code == 200, answer.text
    assert "give exactly one URL" in answer.text  # the command parsed "help payload" as it should


def _wait_for_text(server: ServeProcess, text: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in server.log and time.monotonic() < deadline:
        time.sleep(0.01)


def _wait_for_lines(server: ServeProcess, n: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(server.lines) < n and time.monotonic() < deadline:
        time.sleep(0.01)


# -- in-process: every routing field of every payload kind, with the wrong type -------------------------

SECRET = "gate-secret"
WRONG_VALUES: list[Any] = [None, 5, "x", [], {}, [5], True]


class _StubEngine:
    """Checks nothing: the mutation fuzz is about routing, and no listener gets past its own checks."""

    async def check(self, url: str, *, on_progress: Any = None) -> Any:
        raise InputError(f"{url} is not checked in this test")

    async def aclose(self) -> None:
        return None


def _valid_payloads(api: SlackApiStandIn) -> list[tuple[str, dict[str, Any], str]]:
    body = slash_command_body("help", response_url=api.response_url("mut")).decode()
    command: dict[str, Any] = dict(parse_qsl(body))
    home_opened = {"type": "app_home_opened", "user": "U0ALICE", "tab": "home", "channel": "D1"}
    home = json.loads(event_body(home_opened))
    modal = {"id": "V1", "type": "modal", "callback_id": "log_partnership_modal", "private_metadata": "{}"}
    dm = json.loads(event_body(file_share_event([{"id": "F1", "name": "x.csv"}])))
    return [
        ("command", command, FORM),
        ("block_actions", block_actions_payload("recheck_agreement", "1"), FORM),
        ("message_action", message_shortcut_payload("log_partnership", "see https://a.example/"), FORM),
        ("view_submission", view_submission_payload(modal, {}), FORM),
        ("app_home_opened", home, JSON),
        ("message.im", dm, JSON),
    ]


def _paths(node: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    if depth > 3:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key), depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node[:2]):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i), depth + 1)


def _replaced(payload: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def _encode(payload: dict[str, Any], content_type: str, kind: str) -> bytes:
    if content_type == JSON:
        return json.dumps(payload).encode()
    if kind == "command":
        return urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}).encode()
    return ("payload=" + quote(json.dumps(payload))).encode()


@pytest.fixture
async def gate(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], SlackApiStandIn]]:
    with SlackApiStandIn() as api:
        slack = SlackSettings(bot_token="xoxb-gate", signing_secret=SECRET, api_url=api.api_url)
        engine = _StubEngine()
        services = Services.create(engine, slack)  # type: ignore[arg-type]
        app = build_app(engine, slack, services=services)  # type: ignore[arg-type]
        client = TestClient(TestServer(build_web_app(app, signing_secret=SECRET, path=EVENTS_PATH)))
        await client.start_server()
        try:
            yield client, api
        finally:
            await client.close()
            await services.tasks.aclose()


async def test_no_wrongly_typed_field_of_any_payload_kind_makes_a_500_or_a_traceback(
    gate: tuple[TestClient[Any, Any], SlackApiStandIn], caplog: pytest.LogCaptureFixture
) -> None:
    client, api = gate
    caplog.set_level(logging.WARNING)
    statuses: dict[int, int] = {}
    sent = 0
    for kind, payload, content_type in _valid_payloads(api):
        for path in _paths(payload):
            for value in WRONG_VALUES:
                body = _encode(_replaced(payload, path, value), content_type, kind)
                headers = {**sign(SECRET, body, int(time.time())), "Content-Type": content_type}
                response = await client.post(EVENTS_PATH, data=body, headers=headers)
                await response.read()
                sent += 1
                statuses[response.status] = statuses.get(response.status, 0) + 1
                assert response.status < 500, (kind, path, value, await response.text())
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks][:5]
    print(f"{sent} mutated payloads: statuses {sorted(statuses.items())}")
    assert sent > 300 and statuses.get(400, 0) > 50


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"type": "event_callback", "event": {"type": "message", "user": {"id": 5}}}, "body.event.user"),
        ({"type": "block_actions", "actions": [{"action_id": 7}]}, "body.actions[0].action_id"),
        ({"type": "block_actions", "actions": []}, "block_actions without actions"),
        ({"type": "view_submission"}, "view_submission without a view"),
        ({"type": "event_callback", "event": {}}, "without an event type"),
        ({"type": "event_callback", "authorizations": ["x"]}, "body.authorizations"),
    ],
)
def test_envelope_problem_names_the_field(payload: dict[str, Any], problem: str) -> None:
    found = envelope_problem(payload)
    assert found is not None and problem in found


def test_real_payloads_have_no_envelope_problem() -> None:
    with SlackApiStandIn() as api:
        for _kind, payload, _type in _valid_payloads(api):
            assert envelope_problem(payload) is None
