"""Socket Mode when Slack cannot be reached: exponential backoff with jitter, one log line per failed
attempt (no traceback), and the scheduler started only once the listener is connected. In-process with
the Slack stand-in (``apps.connections.open`` and its WebSocket) and an injected sleep that records the
waits instead of waiting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot.config import SlackSettings
from handlers.app import _run_socket_mode, build_app
from handlers.socket_mode import RECONNECT_INITIAL_DELAY_S, RECONNECT_MAX_DELAY_S, Backoff
from tests.support.slack_api import SlackApiStandIn, slash_command_fields

APP_TOKEN = "xapp-socket-test"
OPEN = "apps.connections.open"


class _StubEngine:
    async def check(self, url: str, *, on_progress: Any = None) -> Any:
        raise AssertionError("not reached")

    async def aclose(self) -> None:
        return None


class RecordingSleep:
    """Records each wait and yields to the loop once, so a test never really waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


class Listener:
    """Runs ``_run_socket_mode`` as ``linkpact serve`` does, with the injected sleep and a fixed jitter."""

    def __init__(self, api: SlackApiStandIn, *, fraction: float = 0.5) -> None:
        slack = SlackSettings(
            bot_token="xoxb-socket", signing_secret="s", app_token=APP_TOKEN, api_url=api.api_url
        )
        self.app = build_app(_StubEngine(), slack)  # type: ignore[arg-type]
        self.sleep = RecordingSleep()
        self.stop = asyncio.Event()
        self.listening = asyncio.Event()
        self.opens_when_listening: int | None = None
        self.api = api
        self.task = asyncio.create_task(
            _run_socket_mode(
                self.app,
                APP_TOKEN,
                self.stop,
                on_listening=self.on_listening,
                backoff=Backoff(fraction=lambda: fraction),
                sleep=self.sleep,
            )
        )

    async def on_listening(self) -> None:
        self.opens_when_listening = len(self.api.calls_to(OPEN))
        self.listening.set()

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


def failure_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "cannot connect to Slack" in r.getMessage()]


async def test_failed_connections_back_off_exponentially_with_one_line_each_then_the_listener_starts(
    slack_api: SlackApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack_api.fail(OPEN, "internal_error", times=5)
    listener = Listener(slack_api)
    try:
        await asyncio.wait_for(listener.listening.wait(), 20)
        # The listener answers: a command over the WebSocket is acknowledged.
        envelope = await asyncio.to_thread(
            slack_api.send_envelope,
            "slash_commands",
            slash_command_fields("help", response_url=slack_api.response_url("sock")),
        )
        await asyncio.to_thread(slack_api.wait_for_socket_ack, envelope)
    finally:
        await listener.close()

    # fraction 0.5: each wait is 3/4 of its ceiling, and the ceiling doubles from 1 s.
    assert listener.sleep.delays == [0.75, 1.5, 3.0, 6.0, 12.0]
    assert listener.opens_when_listening == 6  # five refusals, then the connection: only then "listening"
    lines = failure_lines(caplog)
    assert len(lines) == 5
    assert [r.levelno for r in lines] == [logging.WARNING] * 5
    assert "attempt 1: Slack answered `internal_error`" in lines[0].getMessage()
    assert "next attempt in 0.8 s" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert any("connected to Slack after 5 failed attempts" in r.getMessage() for r in caplog.records)


async def test_a_dropped_connection_reconnects_through_the_same_backoff(
    slack_api: SlackApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = Listener(slack_api, fraction=0.0)
    try:
        await asyncio.wait_for(listener.listening.wait(), 20)
        assert listener.sleep.delays == []
        slack_api.fail(OPEN, "internal_error", times=2)
        await asyncio.to_thread(slack_api.drop_socket)
        await asyncio.to_thread(slack_api.wait_for, lambda c: len(slack_api.calls_to(OPEN)) >= 4)
        envelope = await asyncio.to_thread(
            slack_api.send_envelope,
            "slash_commands",
            slash_command_fields("help", response_url=slack_api.response_url("sock2")),
        )
        await asyncio.to_thread(slack_api.wait_for_socket_ack, envelope)
    finally:
        await listener.close()
    assert listener.sleep.delays == [0.5, 1.0]  # fraction 0: half of each ceiling
    assert len(failure_lines(caplog)) == 2
    assert not [r for r in caplog.records if r.exc_info]


async def test_stop_interrupts_a_connection_that_keeps_failing(slack_api: SlackApiStandIn) -> None:
    slack_api.fail(OPEN, "internal_error", times=1000)
    listener = Listener(slack_api)
    await asyncio.to_thread(slack_api.wait_for, lambda c: len(slack_api.calls_to(OPEN)) >= 3)
    await listener.close()
    assert not listener.listening.is_set()  # the scheduler never started
    slack_api.clear_failures()


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.999])
def test_backoff_grows_to_its_cap_within_the_jitter_band(fraction: float) -> None:
    backoff = Backoff(fraction=lambda: fraction)
    delays = [backoff.delay_s(n) for n in range(1, 12)]
    assert delays == sorted(delays)  # equal jitter: waits never shrink
    for n, delay in enumerate(delays, start=1):
        ceiling = min(RECONNECT_MAX_DELAY_S, RECONNECT_INITIAL_DELAY_S * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] <= RECONNECT_MAX_DELAY_S and delays[-1] >= RECONNECT_MAX_DELAY_S / 2
