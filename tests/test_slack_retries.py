"""Retried Events API deliveries (same ``event_id``, ``X-Slack-Retry-Num``) have their effect once
(Slack docs, "The Events API": retries). Driven in-process with Bolt's real dispatch, signed requests,
a real engine on a TinyDB file and the Slack stand-in, whose calls are counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.config import SlackSettings
from bot.engine import Engine
from bot.store import open_store
from handlers.app import build_app
from handlers.event_ledger import EVENT_MEMORY_S, EVENTS_TABLE, EventLedger
from handlers.services import Services
from tests.support.site import LocalSite
from tests.support.slack_api import DOWNLOAD_METHOD, SlackApiStandIn, event_body, file_share_event, sign

SECRET = "retries-signing-secret"
TOKEN = "xoxb-retries-token"
DM = "D0ALICE"


class WallClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot:
    app: AsyncApp
    services: Services
    api: SlackApiStandIn
    engine: Engine

    async def deliver(self, body: bytes, *, retry: int = 0) -> int:
        """One delivery of an Events API body, as Slack sends it (a retry carries X-Slack-Retry-*)."""
        headers: dict[str, str | Sequence[str]] = {
            **sign(SECRET, body, int(time.time())), "Content-Type": "application/json"
        }  # fmt: skip
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        response = await self.app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        return response.status

    async def settle(self) -> None:
        """Let Bolt's after-ack listeners and the jobs they started finish."""
        for _ in range(50):
            await asyncio.sleep(0.02)
            await self.services.tasks.join()


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn(bot_token=TOKEN) as api:
        yield api


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock()


@pytest.fixture
async def bot(engine: Engine, slack_api: SlackApiStandIn, wall_clock: WallClock) -> AsyncIterator[Bot]:
    slack = SlackSettings(bot_token=TOKEN, signing_secret=SECRET, api_url=slack_api.api_url)
    services = Services.create(engine, slack, wall_clock=wall_clock)
    try:
        yield Bot(build_app(engine, slack, services=services), services, slack_api, engine)
    finally:
        await services.tasks.aclose()


def home_opened() -> bytes:
    return event_body({"type": "app_home_opened", "user": "U0ALICE", "channel": DM, "tab": "home"})


async def test_app_home_opened_delivered_twice_publishes_once(bot: Bot) -> None:
    body = home_opened()
    assert await bot.deliver(body) == 200
    await bot.settle()
    assert await bot.deliver(body, retry=1) == 200
    assert await bot.deliver(body, retry=2) == 200
    await bot.settle()
    assert len(bot.api.calls_to("views.publish")) == 1
    # Another event (another event_id) is handled.
    assert await bot.deliver(home_opened()) == 200
    await bot.settle()
    assert len(bot.api.calls_to("views.publish")) == 2


async def test_two_concurrent_deliveries_of_one_event_publish_once(bot: Bot) -> None:
    body = home_opened()
    statuses = await asyncio.gather(bot.deliver(body), bot.deliver(body, retry=1), bot.deliver(body, retry=2))
    assert statuses == [200, 200, 200]
    await bot.settle()
    assert len(bot.api.calls_to("views.publish")) == 1


async def test_a_dm_file_share_delivered_twice_is_imported_once(
    bot: Bot, ours: LocalSite, partner: LocalSite
) -> None:
    partner.html("/links", f'<html><body><main><a href="{ours.url("/")}">Crumb Club</a></main></body></html>')
    shared = bot.api.share_file(
        "links.csv", f"Linking page\r\n{partner.url('/links')}\r\n".encode(), channel=DM
    )
    body = event_body(
        file_share_event([bot.api.file_object(shared)], channel_id=DM, text=f"--target-site {ours.url('/')}")
    )
    assert await bot.deliver(body) == 200
    await bot.settle()
    assert await bot.deliver(body, retry=1) == 200
    await bot.settle()
    assert len(bot.api.calls_to(DOWNLOAD_METHOD)) == 1
    summaries = [c for c in bot.api.calls_to("chat.postMessage") if "imported *links.csv*" in c.blocks_text()]
    assert len(summaries) == 1
    assert len(await bot.engine.tracked()) == 1


async def test_an_event_is_forgotten_after_the_memory_and_the_table_stays_small(
    bot: Bot, wall_clock: WallClock
) -> None:
    body = home_opened()
    await bot.deliver(body)
    await bot.settle()
    wall_clock.now += EVENT_MEMORY_S + 1
    await bot.deliver(home_opened())  # another event: expired ids are dropped on the way
    await bot.settle()
    stored = await bot.engine.store.find(EVENTS_TABLE)
    assert len(stored) == 1
    await bot.deliver(body)  # long after: a new delivery, handled again
    await bot.settle()
    assert len(bot.api.calls_to("views.publish")) == 3


async def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    async with open_store(path) as store:
        assert await EventLedger(store).first_delivery("Ev1", now_s=1000.0)
    async with open_store(path) as store:
        ledger = EventLedger(store)
        assert not await ledger.first_delivery("Ev1", now_s=1010.0)
        assert await ledger.first_delivery("Ev2", now_s=1010.0)


async def test_without_a_store_the_ledger_keeps_ids_in_memory() -> None:
    ledger = EventLedger(None, memory_s=60)
    results = [
        await ledger.first_delivery(e, now_s=t) for e, t in [("a", 0), ("a", 30), ("b", 30), ("a", 61)]
    ]
    assert results == [True, False, True, True]
