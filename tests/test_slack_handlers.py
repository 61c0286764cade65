"""The Slack handlers in-process: command parsing, progress throttling on an injected clock, failures,
per-workspace slots and the Home tab, with Bolt's real dispatch and the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackSettings
from bot.engine import Progress, TrackedBacklink
from bot.errors import InputError
from bot.models import PageReport, Report
from handlers.app import build_app
from handlers.commands.check_job import CheckJob, ReportMessage, Throttle, csv_filename, describe_failure
from handlers.commands.linkcheck import workspace_of
from handlers.commands.parsing import (
    CheckPage,
    ListTracked,
    ShowHelp,
    TrackBacklink,
    UntrackBacklink,
    parse_linkcheck_text,
)
from handlers.services import BackgroundTasks, CheckSlots, Services
from tests.support.slack_api import SlackApiStandIn, sign, slash_command_body

SECRET = "in-process-secret"
URL = "https://partner.example/resources"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


# -- parsing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ShowHelp()),
        ("help", ShowHelp()),
        (URL, CheckPage(URL)),
        (f"<{URL}|partner.example/resources>", CheckPage(URL)),
        (f"check {URL}", CheckPage(URL)),
        (f"track https://a.example/p <{URL}>", TrackBacklink("https://a.example/p", URL)),
        (f"UNTRACK https://a.example/p {URL}", UntrackBacklink("https://a.example/p", URL)),
        ("tracked", ListTracked(None)),
        (f"tracked {URL}", ListTracked(URL)),
    ],
)
def test_parse_linkcheck_text(text: str, expected: object) -> None:
    assert parse_linkcheck_text(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("track https://a.example/", "needs two URLs"),
        ("tracked a b", "at most one target URL"),
        ("https://a.example/ https://b.example/", "exactly one URL"),
        ("check", "exactly one URL"),
    ],
)
def test_parse_linkcheck_text_refuses_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_linkcheck_text(text)


# -- small parts --------------------------------------------------------------------------------------


def test_check_slots_cap_each_workspace_separately() -> None:
    slots = CheckSlots(limit=2)
    assert slots.try_acquire("T1") and slots.try_acquire("T1")
    assert not slots.try_acquire("T1")
    assert slots.try_acquire("T2")
    slots.release("T1")
    assert slots.running("T1") == 1 and slots.try_acquire("T1")


def test_throttle_allows_one_action_per_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, 2.0)
    throttle.mark()
    seen = []
    for now in (0.5, 1.99, 2.0, 2.5, 3.9, 4.0, 10.0):
        clock.now = now
        seen.append(throttle.ready())
    assert seen == [False, False, True, False, False, True, True]


def test_workspace_of_counts_an_enterprise_install_as_one() -> None:
    assert workspace_of({"team_id": "T1"}) == "T1"
    assert workspace_of({"team_id": "T1", "enterprise_id": "E1", "is_enterprise_install": "true"}) == "E1"


def test_describe_failure_is_one_line_without_traceback() -> None:
    slack_error = SlackApiError("boom", {"ok": False, "error": "msg_too_long"})
    assert describe_failure(slack_error) == "Slack answered `msg_too_long`"
    assert describe_failure(RuntimeError("disk full\nmore detail")) == "RuntimeError: disk full"
    assert describe_failure(TimeoutError()) == "TimeoutError"


def test_csv_filename_names_host_and_day() -> None:
    report = Report(
        page=PageReport(url="https://Partner.example:8443/a?b", final_url="x", status=200, indexable=True),
        outbound=(),
        inbound=(),
        started_at="2025-03-01T10:00:00+00:00",
        duration_s=1.0,
    )
    assert csv_filename(report) == "linkpact-partner.example-2025-03-01.csv"
    odd = Report(
        page=PageReport(url="http://[::1]:8080/", final_url="x", status=200, indexable=True),
        outbound=(),
        inbound=(),
        started_at="2025-12-31T23:59:59+00:00",
        duration_s=1.0,
    )
    assert csv_filename(odd) == "linkpact---1-2025-12-31.csv"


async def test_background_tasks_are_cancelled_at_close() -> None:
    tasks = BackgroundTasks()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks.spawn(forever(), name="forever")
    await started.wait()
    assert len(tasks) == 1
    await tasks.aclose(grace_s=5)
    assert cancelled.is_set() and len(tasks) == 0


# -- progress message against the stand-in -----------------------------------------------------------


async def test_progress_is_posted_once_then_updated_at_most_every_two_seconds(
    slack_api: SlackApiStandIn,
) -> None:
    clock = FakeClock()
    client = AsyncWebClient(token="xoxb-t", base_url=slack_api.api_url)
    responses: list[dict[str, Any]] = []

    async def respond(text: str = "", blocks: Any = None, **kwargs: Any) -> None:
        responses.append({"text": text, **kwargs})

    message = ReportMessage(client, respond, CheckJob(URL, "C1", "U1", "T1"), Throttle(clock, 2.0))
    message.on_progress(Progress("fetching page", 0, 1))
    await message.settle()
    assert message.ts == slack_api.calls_to("chat.postMessage")[0].answer["ts"]
    for now, done in ((0.5, 1), (1.9, 2), (2.0, 3), (3.0, 4), (4.1, 5)):
        clock.now = now
        message.on_progress(Progress("checking links", done, 10))
    await message.settle()
    clock.now = 6.5
    message.on_progress(Progress("checking links", 9, 10))
    clock.now = 9.0
    message.on_progress(Progress("done", 10, 10))  # the report replaces the message; no update for done
    await message.settle()

    posted = slack_api.calls_to("chat.postMessage")
    assert len(posted) == 1 and posted[0].params["text"] == f"Checking {URL}…"
    updates = [u.blocks_text() for u in slack_api.calls_to("chat.update")]
    # 2.0 s: due. 3.0 s: too soon. 4.1 s: due, but the 2.0 s update was still in flight. 6.5 s: due.
    assert len(updates) == 2
    assert "Checking links: 3 of 10" in updates[0] and "Checking links: 9 of 10" in updates[1]
    assert all(u.params["ts"] == message.ts for u in slack_api.calls_to("chat.update"))
    assert responses == []


async def test_not_in_channel_falls_back_to_the_requester(slack_api: SlackApiStandIn) -> None:
    slack_api.fail("chat.postMessage", "channel_not_found", channel="D1")
    client = AsyncWebClient(token="xoxb-t", base_url=slack_api.api_url)
    responses: list[dict[str, Any]] = []

    async def respond(text: str = "", blocks: Any = None, **kwargs: Any) -> None:
        responses.append({"text": text, **kwargs})

    message = ReportMessage(client, respond, CheckJob(URL, "D1", "U1", "T1"), Throttle(FakeClock(), 2.0))
    await message.ensure_posted()
    assert message.not_in_channel and message.ts is None
    assert responses == [
        {"text": f"Checking {URL}…", "response_type": "ephemeral", "replace_original": False}
    ]


# -- Bolt dispatch with a stand-in engine -------------------------------------------------------------


class ScriptedEngine:
    """An engine whose answers the test scripts: each ``check`` pops the next outcome."""

    def __init__(self, outcomes: list[Callable[[], Report]]) -> None:
        self.outcomes = outcomes
        self.closed = False

    async def check(self, url: str, *, on_progress: Callable[[Progress], None] | None = None) -> Report:
        if on_progress:
            on_progress(Progress("fetching page", 0, 1))
        return self.outcomes.pop(0)()

    async def track(self, source_url: str, target_url: str, *, added_by: str | None = None) -> bool:
        raise OSError("store is read-only")

    async def untrack(self, source_url: str, target_url: str) -> bool:
        return False

    async def tracked(self, target_url: str | None = None) -> list[TrackedBacklink]:
        return []

    async def aclose(self) -> None:
        self.closed = True


def good_report() -> Report:
    return Report(
        page=PageReport(url=URL, final_url=URL, status=200, indexable=True, title="Fine"),
        outbound=(),
        inbound=(),
        started_at="2025-03-01T10:00:00+00:00",
        duration_s=0.1,
    )


def boom() -> Report:
    raise RuntimeError("the parser exploded")


def command_request(
    slack_api: SlackApiStandIn, text: str, name: str, channel: str = "C1"
) -> AsyncBoltRequest:
    body = slash_command_body(text, response_url=slack_api.response_url(name), channel_id=channel)
    headers: dict[str, str | Sequence[str]] = {**sign(SECRET, body, int(time.time()))}
    return AsyncBoltRequest(body=body.decode(), headers=headers)


def make_services(engine: ScriptedEngine, slack_api: SlackApiStandIn) -> tuple[Services, SlackSettings]:
    settings = SlackSettings(bot_token="xoxb-t", signing_secret=SECRET, api_url=slack_api.api_url)
    return Services.create(engine, settings), settings


async def test_an_unexpected_failure_is_answered_logged_and_the_next_check_still_runs(
    slack_api: SlackApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    engine = ScriptedEngine([boom, good_report])
    services, settings = make_services(engine, slack_api)
    app = build_app(engine, settings, services=services)

    with caplog.at_level(logging.ERROR):
        response = await app.async_dispatch(command_request(slack_api, URL, "first"))
        assert response.status == 200
        await services.tasks.join()
    answer = await asyncio.to_thread(slack_api.wait_for_response, "first")
    assert answer.params["response_type"] == "ephemeral"
    assert "The check failed: RuntimeError: the parser exploded" in answer.blocks_text()
    failures = [r for r in caplog.records if r.exc_info and "the check of" in r.getMessage()]
    assert failures and failures[0].exc_info is not None and failures[0].exc_info[0] is RuntimeError
    assert services.slots.running("T0TEST") == 0  # the slot came back

    response = await app.async_dispatch(command_request(slack_api, URL, "second", channel="C2"))
    assert response.status == 200
    await services.tasks.join()
    final = await asyncio.to_thread(
        slack_api.wait_for_call, "chat.update", lambda c: c.params.get("channel") == "C2"
    )
    assert "Link report: Fine" in final.blocks_text()


async def test_a_failing_track_says_the_command_failed(
    slack_api: SlackApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    engine = ScriptedEngine([])
    services, settings = make_services(engine, slack_api)
    app = build_app(engine, settings, services=services)
    with caplog.at_level(logging.ERROR):
        await app.async_dispatch(command_request(slack_api, f"track https://a.example/ {URL}", "track"))
        await services.tasks.join()
    answer = await asyncio.to_thread(slack_api.wait_for_response, "track")
    assert "The command failed: OSError: store is read-only" in answer.blocks_text()
    assert any(r.exc_info for r in caplog.records)


async def test_app_home_opened_publishes_the_home_view(slack_api: SlackApiStandIn) -> None:
    engine = ScriptedEngine([])
    services, settings = make_services(engine, slack_api)
    app = build_app(engine, settings, services=services)
    payload = {
        "token": "legacy",
        "team_id": "T0TEST",
        "api_app_id": "A0LINKPACT",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0", "tab": "home",
                  "event_ts": "1.2"},
    }  # fmt: skip
    body = json.dumps(payload).encode()
    headers: dict[str, str | Sequence[str]] = {
        **sign(SECRET, body, int(time.time())),
        "Content-Type": "application/json",
    }
    response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
    assert response.status == 200
    # The listener runs on this loop after the ack: wait in a thread so the loop keeps running.
    published = await asyncio.to_thread(slack_api.wait_for_call, "views.publish")
    assert published.params["user_id"] == "U0ALICE"
    view = published.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["type"] == "home" and "/linkcheck" in json.dumps(view)
