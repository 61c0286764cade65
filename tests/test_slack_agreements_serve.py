"""Partnership agreements through ``linkpact serve`` (HTTP mode, a real subprocess): the command, the modal
submission and the Home tab arrive signed as Slack sends them; the acks stay fast while verification
runs in the background against local sites."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.site import LocalSite
from tests.support.slack_api import (
    SlackApiStandIn,
    event_body,
    interaction_body,
    sign,
    view_submission_payload,
)
from tests.test_slack_serve import (
    ACK_BUDGET_S,
    SIGNING_SECRET,
    ServeProcess,
    in_channel,
    post,
    send_command,
    start_server,
)

CHANNEL = "C0SERVEPART"


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slack_api: SlackApiStandIn) -> Iterator[ServeProcess]:
    srv = start_server(tmp_path_factory.mktemp("serve-agreements"), slack_api)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def ours() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.1") as site:
        yield site


@pytest.fixture(scope="module")
def partner() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.2") as site:
        yield site


def send(server: ServeProcess, body: bytes, content_type: str | None = None) -> tuple[int, str, float]:
    headers = sign(SIGNING_SECRET, body, int(time.time()))
    if content_type:
        headers["Content-Type"] = content_type
    started = time.perf_counter()
    answer = post(server.url, body, headers)
    return answer.status_code, answer.text, time.perf_counter() - started


def test_log_a_partnership_from_the_command_to_the_verified_result_and_the_home_tab(
    server: ServeProcess, slack_api: SlackApiStandIn, ours: LocalSite, partner: LocalSite
) -> None:
    ours.html("/partners", f'<html><body><main><a href="{partner.url("/")}">Partner</a></main></body></html>')
    partner.html("/links", f'<html><body><main><a href="{ours.url("/")}">Us</a></main></body></html>')

    sent = send_command(server, slack_api, "partner", channel=CHANNEL)
    assert sent.response.status_code == 200 and sent.response.text == ""
    assert sent.elapsed_s < ACK_BUDGET_S
    opened = slack_api.wait_for_call("views.open")
    view = opened.answer["view"]
    assert json.loads(view["private_metadata"])["channel"] == CHANNEL

    answers = {
        "partner_name": "Partner",
        "partner_site": partner.url("/"),
        "link_1_source": ours.url("/partners"),
        "link_1_target": partner.url("/"),
        "link_2_source": partner.url("/links"),
        "link_2_target": partner.url("/elsewhere"),  # their page linking to their own page
    }
    status, text, elapsed = send(server, interaction_body(view_submission_payload(view, answers)))
    assert status == 200 and elapsed < ACK_BUDGET_S
    refused = json.loads(text)
    assert refused["response_action"] == "errors" and list(refused["errors"]) == ["link_2_target"]

    answers["link_2_target"] = ours.url("/")
    status, text, elapsed = send(server, interaction_body(view_submission_payload(view, answers)))
    print(f"ack time of a valid modal submission: {elapsed * 1000:.0f} ms")
    assert status == 200 and json.loads(text) == {"response_action": "clear"}
    assert elapsed < ACK_BUDGET_S
    result = slack_api.wait_for_call("chat.update", in_channel(CHANNEL, "Partnership #1: Partner"))
    assert result.params["text"] == "Partnership #1 with Partner: live, 2/2 links healthy"

    event = {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0", "tab": "home", "event_ts": "1.2"}
    status, _, _ = send(server, event_body(event), "application/json")
    assert status == 200
    home = slack_api.wait_for_call("views.publish")
    assert "#1 Partner" in json.dumps(home.params["view"]) and "Re-check" in json.dumps(home.params["view"])

    assert "Traceback" not in server.log
