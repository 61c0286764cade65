"""The weekly digest in Slack: settings, the schedule's arithmetic, Block Kit within Slack's limits, posting
through the Slack stand-in exactly once per period and channel (with catch-up after downtime), and
``linkpact digest`` posting from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError, DigestSettings, Settings, slack_settings_from_env
from bot.engine import Engine
from bot.monitoring.digest import AgreementDue, Digest, DigestLedger, DigestLink, TrendPoint, build_digest
from bot.monitoring.prune import ProposalStatus, PruneProposal, Reason
from handlers.digest import latest_scheduled, post_digest, post_digest_from_cli, run_digest_job
from handlers.views.digest_blocks import (
    APPROVE_PRUNE_ACTION,
    KEEP_ACTION,
    RECHECK_PROPOSAL_ACTION,
    build_digest_blocks,
    plan_digest,
)
from handlers.views.report_blocks import MAX_BLOCKS, MAX_SECTION_TEXT
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.support.slack_api import ApiCall, SlackApiStandIn
from tests.test_agreements import page
from tests.test_digest import linking, simulate_week

CHANNEL = "C0DIGEST"


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


def client_for(api: SlackApiStandIn) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=api.api_url)


def block_dicts(blocks: list[Any]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    """Slack's Block Kit limits (docs.slack.dev/reference/block-kit)."""
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            assert len(text["text"]) <= MAX_SECTION_TEXT
            if block["type"] == "header":
                assert len(text["text"]) <= 150
        assert len(block.get("fields", [])) <= 10
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["value"]) <= 2000 and len(element["text"]["text"]) <= 75


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def mrkdwn_texts(node: Any) -> list[str]:
    """Every text Slack reads as mrkdwn (where ``<!channel>`` would notify everyone)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            return [node["text"]]
        return [t for value in node.values() for t in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    return []


def texts(blocks: list[dict[str, Any]]) -> str:
    return ApiCall("x", {"blocks": blocks}, {}, "").blocks_text()


# -- settings -------------------------------------------------------------------------------------------


def test_digest_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "LINKPACT_DIGEST_CHANNEL": "C0AAA, G0BBB,C0AAA",
            "LINKPACT_DIGEST_DAY": "Friday",
            "LINKPACT_DIGEST_TIME": "7:30",
            "LINKPACT_DIGEST_TZ": "Europe/Berlin",
        }
    )
    assert settings.digest == DigestSettings(("C0AAA", "G0BBB"), "fri", 7, 30, "Europe/Berlin")
    assert settings.digest.describe() == "Fridays at 07:30 (Europe/Berlin)"
    assert Settings.from_env({}).digest == DigestSettings((), "mon", 9, 0, "UTC")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LINKPACT_DIGEST_CHANNEL", "#marketing", "is not a channel ID"),
        ("LINKPACT_DIGEST_DAY", "someday", "is not a weekday"),
        ("LINKPACT_DIGEST_TIME", "25:00", "HH:MM"),
        ("LINKPACT_DIGEST_TIME", "9am", "HH:MM"),
        ("LINKPACT_DIGEST_TZ", "Mars/Olympus", "IANA time zone"),
    ],
)
def test_malformed_digest_settings_say_which_and_why(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: .*{message}"):
        Settings.from_env({name: value})


def test_admins_and_app_id_from_the_environment() -> None:
    base = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    slack = slack_settings_from_env(
        {
            **base,
            "LINKPACT_ADMINS": "U0ANNA, <@W0BEN|ben>, <!subteam^S0ADMINS|admins>",
            "SLACK_APP_ID": "A0X1",
        }
    )
    assert slack.admins == ("U0ANNA", "W0BEN", "S0ADMINS") and slack.app_id == "A0X1"
    assert slack_settings_from_env(base).admins == () and slack_settings_from_env(base).app_id is None
    with pytest.raises(ConfigError, match="LINKPACT_ADMINS: 'anna' is not a Slack user ID"):
        slack_settings_from_env({**base, "LINKPACT_ADMINS": "anna"})
    with pytest.raises(ConfigError, match="SLACK_APP_ID"):
        slack_settings_from_env({**base, "SLACK_APP_ID": "linkpact"})


# -- the schedule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "schedule", "expected"),
    [
        # Wednesday: the Monday before.
        ("2026-11-04T12:00:00+00:00", DigestSettings(), "2026-11-02T09:00:00+00:00"),
        # Monday, one minute early: the Monday a week before; on the minute: today.
        ("2026-11-02T08:59:00+00:00", DigestSettings(), "2026-10-26T09:00:00+00:00"),
        ("2026-11-02T09:00:00+00:00", DigestSettings(), "2026-11-02T09:00:00+00:00"),
        # New York, the day after daylight saving time ended (UTC-5), and the week before (UTC-4).
        ("2026-11-02T14:30:00+00:00", DigestSettings(tz="America/New_York"), "2026-11-02T14:00:00+00:00"),
        ("2026-11-02T13:30:00+00:00", DigestSettings(tz="America/New_York"), "2026-10-26T13:00:00+00:00"),
        # Sunday 18:00 in Tokyo is Sunday 09:00 UTC.
        (
            "2026-11-08T10:00:00+00:00",
            DigestSettings(day="sun", hour=18, tz="Asia/Tokyo"),
            "2026-11-08T09:00:00+00:00",
        ),
    ],
)
def test_latest_scheduled_time(now: str, schedule: DigestSettings, expected: str) -> None:
    result = latest_scheduled(datetime.fromisoformat(now), schedule)
    assert result.isoformat() == expected and result.tzinfo is UTC


# -- Block Kit --------------------------------------------------------------------------------------------


def synthetic_digest(*, lost: int = 0, proposals: int = 0, partner: str = "Partner Bakery") -> Digest:
    return Digest(
        period="2026-W48",
        since="2026-11-23T09:00:00+00:00",
        until="2026-11-30T09:00:00+00:00",
        lost=tuple(
            DigestLink(
                f"https://blog{i}.example/post-{i}",
                "https://ours.example/product",
                "link_removed",
                "2026-11-25T10:00:00+00:00",
                partner if i % 3 == 0 else "",
                str(i) if i % 3 == 0 else "",
                f"blog{i}.example",
            )
            for i in range(lost)
        ),
        one_sided=(
            AgreementDue("7", partner, "U0OWNER", "2026-11-09", "one_sided", ("https://p.example/r",)),
        ),
        proposals=tuple(
            PruneProposal(
                id=str(100 + i),
                agreement_id=str(i + 1),
                partner=f"{partner} {i}",
                owner="U0OWNER",
                reasons=(Reason("one_sided", "our link is live but theirs is still missing 22 days after"),),
                status=ProposalStatus.OPEN,
                created_at="2026-11-30T09:00:00+00:00",
            )
            for i in range(proposals)
        ),
        totals={"referring_domains": 12, "live_links": 30, "agreements": {"live": 3, "one_sided": 1}},
        trend=(TrendPoint("2026-W47", 10, 25), TrendPoint("2026-W48", 12, 30)),
    )


def test_a_quiet_digest_is_one_short_message() -> None:
    plan = plan_digest(
        Digest(period="2026-W48", since="2026-11-23T09:00:00+00:00", until="2026-11-30T09:00:00+00:00")
    )
    main = block_dicts(plan.main)
    assert_within_limits(main)
    assert plan.replies == [] and plan.csv is None
    assert main[0]["type"] == "header" and main[0]["text"]["text"] == "Linkpact weekly digest · 2026-W48"
    assert "Nothing changed in this period." in texts(main) and buttons(main) == []


def test_a_long_digest_is_split_into_a_thread_within_block_kit_limits() -> None:
    digest = synthetic_digest(lost=120, proposals=40)
    plan = plan_digest(digest)
    main = block_dicts(plan.main)
    replies = [block_dicts(r) for r in plan.replies]
    assert_within_limits(main)
    assert len(replies) >= 2
    for reply in replies:
        assert_within_limits(reply)
    everything = texts(main) + "\n".join(texts(r) for r in replies)
    # Every lost link is listed once: the first ten in the channel, the rest in the thread.
    assert all(everything.count(f"blog{i}.example/post-{i}|") == 1 for i in range(120))
    assert sum(texts(main).count(f"blog{i}.example/post-{i}|") for i in range(120)) == 10
    assert "*Lost links* (120)" in texts(main) and "…and 110 more in the thread" in texts(main)
    assert "*Lost links*, continued (11–120 of 120)" in everything
    # Every proposal has its three buttons exactly once; a proposal's section and buttons share a message.
    values = [b["value"] for b in buttons(main) + [b for r in replies for b in buttons(r)]]
    assert sorted(values) == sorted(str(100 + i) for i in range(40) for _ in range(3))
    for message in [main, *replies]:
        ids = [b.get("block_id", "") for b in message]
        for block_id in ids:
            if block_id.startswith("prune_proposal:"):
                assert "prune_actions:" + block_id.split(":")[1] in ids
    approve = next(b for b in buttons(main) if b["action_id"] == APPROVE_PRUNE_ACTION)
    assert approve["style"] == "danger" and approve["confirm"]["confirm"]["text"] == "Prune"
    assert {b["action_id"] for b in buttons(main)} == {
        APPROVE_PRUNE_ACTION,
        KEEP_ACTION,
        RECHECK_PROPOSAL_ACTION,
    }
    # The CSV carries every row.
    assert plan.csv is not None
    rows = plan.csv.splitlines()
    assert rows[0].startswith("section,partner,agreement_id,owner,source_url")
    assert sum(1 for r in rows if r.startswith("lost,")) == 120
    assert sum(1 for r in rows if r.startswith("prune_proposal,")) == 40
    assert "Linkpact digest 2026-W48: 120 lost links" in plan.text and "▁█ 12" in plan.text


def test_beyond_200_rows_only_the_csv_has_the_rest() -> None:
    plan = plan_digest(synthetic_digest(lost=1000))
    everything = "\n".join(texts(block_dicts(r)) for r in [plan.main, *plan.replies])
    assert "…and 800 more in the attached CSV" in everything
    assert sum(1 for i in range(1000) if f"post-{i}|" in everything) == 200
    assert all(len(r) <= MAX_BLOCKS for r in plan.replies)
    assert plan.csv is not None and sum(1 for r in plan.csv.splitlines() if r.startswith("lost,")) == 1000


def test_untrusted_names_are_escaped_and_the_preview_has_no_buttons() -> None:
    digest = synthetic_digest(lost=3, proposals=1, partner="<!channel> & =HYPERLINK(1)")
    main = block_dicts(build_digest_blocks(digest))
    mrkdwn = "\n".join(mrkdwn_texts(main))
    assert "<!channel>" not in mrkdwn and "&lt;!channel&gt; &amp;" in mrkdwn
    confirm = next(b["confirm"] for b in buttons(main) if "confirm" in b)
    assert confirm["text"]["type"] == "plain_text" and "<!channel>" in confirm["text"]["text"]
    assert buttons(block_dicts(build_digest_blocks(digest, interactive=False))) == []
    assert "'=HYPERLINK" in (plan_digest(synthetic_digest(lost=20, partner="=HYPERLINK(1)")).csv or "")


# -- posting through the stand-in ---------------------------------------------------------------------------


async def test_a_simulated_week_is_posted_once_with_buttons_and_the_chart_in_the_thread(
    engine: Engine,
    ours: LocalSite,
    partner: LocalSite,
    third: LocalSite,
    clock: Clock,
    slack_api: SlackApiStandIn,
) -> None:
    start = clock()
    await simulate_week(engine, ours, partner, third, clock)
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock(), since=start)
    ledger = DigestLedger(engine.store, clock=clock)

    delivery = await post_digest(client_for(slack_api), digest, [CHANNEL], ledger)

    assert list(delivery.posted) == [CHANNEL] and not delivery.failed and not delivery.incomplete
    [message] = slack_api.calls_to("chat.postMessage")
    blocks = message.blocks
    assert_within_limits(blocks)
    text = message.blocks_text()
    assert "Linkpact weekly digest · 2026-W48" in text
    assert "*Lost links* (2)" in text and f"<{third.url('/review')}|" in text and "`link_removed`" in text
    assert "*One-sided agreements (ours is live, theirs is missing)* (1)" in text and "Partner Bakery" in text
    assert "*Overdue agreements* (1)" in text and "Slow Partner" in text
    assert "*Restored*\n0" in text and "*Lost links*\n2" in text
    [proposal] = await engine.prune.open_proposals()
    assert [(b["action_id"], b["value"]) for b in buttons(blocks)] == [
        (action, proposal.id) for action in (APPROVE_PRUNE_ACTION, KEEP_ACTION, RECHECK_PROPOSAL_ACTION)
    ]
    assert "still missing" in text and "owner <@U0OWNER>" in text
    # When each agreement was last checked, in the reader's time zone (UTC as the fallback text).
    checked = clock().isoformat(timespec="seconds")
    assert f"last checked <!date^{int(clock().timestamp())}^{{date_short_pretty}} at {{time}}|" in text
    assert f"|{checked[:10]} {checked[11:16]} UTC>" in text
    assert message.params["text"].startswith("Linkpact digest 2026-W48: 2 lost links")
    # The 12-week chart goes into the message's thread.
    done = slack_api.calls_to("files.completeUploadExternal")
    assert len(done) == 1 and done[0].params["thread_ts"] == message.answer["ts"]
    assert done[0].params["channel_id"] == CHANNEL
    [upload] = slack_api.calls_to("upload")
    assert upload.body.startswith(b"\x89PNG")
    assert await ledger.posted(digest.period, CHANNEL)

    again = await post_digest(client_for(slack_api), digest, [CHANNEL], ledger)
    assert again.skipped == [CHANNEL] and not again.posted
    assert len(slack_api.calls_to("chat.postMessage")) == 1


async def test_120_lost_links_are_posted_as_a_message_and_a_thread_with_the_csv(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock, slack_api: SlackApiStandIn
) -> None:
    product = ours.url("/product")
    paths = [f"/post/{i}" for i in range(120)]
    for path in paths:
        partner.html(path, linking(product))
        await engine.track(partner.url(path), product)
    await engine.recheck()
    for path in paths:
        partner.html(path, page("<main>the link is gone</main>"))
    clock.advance(1)
    await engine.recheck()
    clock.advance(1)
    await engine.recheck()  # every loss confirmed
    clock.advance(hours=1)
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    assert len(digest.lost) == 120

    await post_digest(client_for(slack_api), digest, [CHANNEL], DigestLedger(engine.store, clock=clock))

    main, *replies = slack_api.calls_to("chat.postMessage")
    assert replies and all(r.params["thread_ts"] == main.answer["ts"] for r in replies)
    for call in [main, *replies]:
        assert_within_limits(call.blocks)
    posted_text = "\n".join(c.blocks_text() for c in [main, *replies])
    assert all(posted_text.count(f"<{partner.url(p)}|") == 1 for p in paths)
    uploads = {c.params["filename"]: c for c in slack_api.calls_to("files.getUploadURLExternal")}
    assert set(uploads) == {"linkpact-digest-2026-W45.csv", "linkpact-trend-2026-W45.png"}
    csv_id = uploads["linkpact-digest-2026-W45.csv"].answer["file_id"]
    [csv_upload] = [c for c in slack_api.calls_to("upload") if c.params["file_id"] == csv_id]
    assert sum(1 for line in csv_upload.body.decode().splitlines() if line.startswith("lost,")) == 120
    assert all(
        c.params["thread_ts"] == main.answer["ts"] for c in slack_api.calls_to("files.completeUploadExternal")
    )


# -- exactly once, and catch-up --------------------------------------------------------------------------


async def test_a_missed_monday_is_posted_once_when_the_bot_comes_back(
    engine: Engine, ours: LocalSite, partner: LocalSite, clock: Clock, slack_api: SlackApiStandIn
) -> None:
    partner.html("/blog", linking(ours.url("/product")))
    await engine.track(partner.url("/blog"), ours.url("/product"))
    await engine.recheck()
    schedule = DigestSettings(channels=(CHANNEL,))
    client = client_for(slack_api)
    clock.advance(9)  # Wednesday of the next week: the bot was down on Monday 09:00

    first = await run_digest_job(engine, client, schedule, clock)
    assert first is not None and first.period == "2026-W46" and list(first.posted) == [CHANNEL]
    [posted] = slack_api.calls_to("chat.postMessage")
    assert "Linkpact weekly digest · 2026-W46" in posted.blocks_text()
    assert "*New referring domains* (1)" in posted.blocks_text()

    again = await run_digest_job(engine, client, schedule, clock)  # a restart the same week
    assert again is not None and again.skipped == [CHANNEL] and not again.posted
    assert len(slack_api.calls_to("chat.postMessage")) == 1

    clock.advance(5)  # the next Monday, 09:00 has passed
    third = await run_digest_job(engine, client, schedule, clock)
    assert third is not None and third.period == "2026-W47"
    latest = slack_api.calls_to("chat.postMessage")[-1]
    # It covers the week since the previous digest, which already announced the referring domain.
    assert "2026-11-09 to 2026-11-16" in latest.blocks_text()
    assert "New referring domains" not in latest.blocks_text()


async def test_a_failure_on_the_second_channel_is_retried_without_reposting_the_first(
    engine: Engine, clock: Clock, slack_api: SlackApiStandIn
) -> None:
    schedule = DigestSettings(channels=("C0FIRST", "C0SECOND", "C0THIRD"))
    client = client_for(slack_api)
    slack_api.fail("chat.postMessage", "channel_not_found", channel="C0SECOND")

    first = await run_digest_job(engine, client, schedule, clock)
    assert first is not None
    assert list(first.posted) == ["C0FIRST", "C0THIRD"]
    assert first.failed == {"C0SECOND": "Slack answered `channel_not_found`"}

    rerun = await run_digest_job(engine, client, schedule, clock)
    assert rerun is not None and list(rerun.posted) == ["C0SECOND"]
    assert sorted(rerun.skipped) == ["C0FIRST", "C0THIRD"]
    delivered = [c.params["channel"] for c in slack_api.calls_to("chat.postMessage") if c.answer.get("ok")]
    assert sorted(delivered) == ["C0FIRST", "C0SECOND", "C0THIRD"]  # each exactly once


async def test_no_channel_means_no_digest_and_a_broken_store_is_logged_not_raised(
    engine: Engine, clock: Clock, slack_api: SlackApiStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    assert await run_digest_job(engine, client_for(slack_api), DigestSettings(), clock) is None

    class BrokenStore:
        async def get(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk gone")

    class BrokenEngine:
        store = BrokenStore()

    schedule = DigestSettings(channels=(CHANNEL,))
    assert await run_digest_job(BrokenEngine(), client_for(slack_api), schedule, clock) is None  # type: ignore[arg-type]
    assert any(r.exc_info and "the weekly digest failed" in r.getMessage() for r in caplog.records)
    assert slack_api.calls_to("chat.postMessage") == []


# -- `linkpact digest` ---------------------------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LINKPACT_"))}
    clean.update({"LINKPACT_DB": str(tmp_path / "linkpact.json"), **env})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=tmp_path, env=clean, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_linkpact_digest_posts_once_per_week_and_says_where(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-cli", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack_api.api_url,
           "LINKPACT_DIGEST_CHANNEL": "C0CLI"}  # fmt: skip
    posted = run_cli(tmp_path, "digest", "--json", **env)
    assert posted.returncode == 0, posted.stderr
    data = json.loads(posted.stdout)  # status lines stay off stdout
    assert f"linkpact digest: posted {data['period']} to C0CLI" in posted.stderr
    [message] = slack_api.calls_to("chat.postMessage")
    assert message.params["channel"] == "C0CLI" and message.headers["Authorization"] == "Bearer xoxb-cli"

    again = run_cli(tmp_path, "digest", **env)
    assert again.returncode == 0 and "was already posted to C0CLI; not again" in again.stderr
    assert len(slack_api.calls_to("chat.postMessage")) == 1


async def test_post_digest_from_cli_needs_the_slack_settings_and_a_channel(
    engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    for name in [k for k in os.environ if k.startswith("SLACK_")]:
        monkeypatch.delenv(name)
    assert await post_digest_from_cli(engine, digest) == 2
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-cli")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    assert await post_digest_from_cli(engine, digest) == 2  # the engine's settings name no channel
    assert "LINKPACT_DIGEST_CHANNEL is not set" in capsys.readouterr().err
