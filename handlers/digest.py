"""Posting the weekly digest to Slack: exactly once per period and channel, and caught up after downtime.

:func:`post_digest` posts the channel message to each configured channel the ledger
(:class:`bot.monitoring.digest.DigestLedger`)
does not list yet for the period, and records it right after that
channel's message is accepted, so a crash between two channels never posts twice to the first. The thread
(the rest of long lists, more proposals, the CSV, the trend chart) follows; a failure there is logged and
does not post the digest again, because a second copy in the channel is worse than a missing attachment.

:func:`run_digest_job` is what the scheduler runs (and what runs once at start-up): it posts the digest of
the latest scheduled time at or before now, if not yet posted. A digest missed while the bot was down is
therefore posted when it comes back; after several missed weeks only the latest one is posted, and it
covers everything since the last posted digest.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config import ConfigError, DigestSettings, SlackSettings, slack_settings_from_env
from bot.monitoring.digest import Digest, DigestLedger, build_digest, trend_chart_png
from bot.monitoring.recheck import iso_week
from handlers.commands.check_job import describe_failure
from handlers.views.digest_blocks import DigestMessages, chart_filename, csv_filename, plan_digest

if TYPE_CHECKING:
    from bot.engine import Engine

logger = logging.getLogger(__name__)

# A 429 from Slack is retried after its Retry-After this many times (as for the bot's own client).
SLACK_RATE_LIMIT_RETRIES = 2
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_CONFIG = 2


@dataclass
class DigestDelivery:
    """What one posting did. ``posted``: channel -> ts of its digest message; ``skipped``: channels that
    already had this period's digest; ``failed``: channel -> why nothing was posted there (a rerun tries
    again); ``incomplete``: channel -> what of the thread (replies, CSV, chart) could not be added."""

    period: str
    posted: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    incomplete: dict[str, list[str]] = field(default_factory=dict)


def web_client(slack: SlackSettings) -> AsyncWebClient:
    """A Web API client on ``slack.api_url`` that retries rate-limited calls after Slack's Retry-After
    (Slack docs: "Rate limits"; slack_sdk's retry handlers)."""
    return AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[
            *async_default_handlers(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES),
        ],
    )


async def post_digest(
    client: AsyncWebClient, digest: Digest, channels: Sequence[str], ledger: DigestLedger
) -> DigestDelivery:
    """Post ``digest`` to every channel in ``channels`` not yet posted for ``digest.period``.

    Never raises for a failure on one channel: it is in ``failed`` (and logged) and the next channel is
    still tried. If the ledger cannot be written after Slack took the message, that channel is in
    ``failed`` too and a rerun may post it again: the one window exactly-once cannot close."""
    delivery = DigestDelivery(digest.period)
    plan = plan_digest(digest)
    chart: bytes | None = None
    chart_done = False
    for channel in channels:
        if await ledger.posted(digest.period, channel):
            delivery.skipped.append(channel)
            continue
        posting = asyncio.ensure_future(_post_and_record(client, digest, plan, channel, ledger))
        try:
            # Shielded: once Slack has the message, the ledger must hear of it, even when the bot is
            # shutting down (a cancelled job would otherwise post the same digest again after restart).
            response = await asyncio.shield(posting)
        except asyncio.CancelledError:
            await posting
            raise
        except Exception as exc:
            logger.exception("posting the digest %s to %s failed", digest.period, channel)
            delivery.failed[channel] = describe_failure(exc)
            continue
        ts = str(response.get("ts") or "")
        delivery.posted[channel] = ts
        if not chart_done:  # drawn once, off the event loop (matplotlib takes a while)
            chart = await _chart(digest)
            chart_done = True
        problems = await _post_thread(
            client, str(response.get("channel") or channel), ts, digest, plan, chart
        )
        if problems:
            delivery.incomplete[channel] = problems
    return delivery


async def _post_and_record(
    client: AsyncWebClient, digest: Digest, plan: DigestMessages, channel: str, ledger: DigestLedger
) -> AsyncSlackResponse:
    """Post the channel message, then record it in the ledger right away."""
    response = await client.chat_postMessage(
        channel=channel, text=plan.text, blocks=plan.main, unfurl_links=False, unfurl_media=False
    )
    await ledger.mark_posted(digest, channel, ts=str(response.get("ts") or ""))
    return response


async def _chart(digest: Digest) -> bytes | None:
    try:
        return await asyncio.to_thread(trend_chart_png, digest)
    except Exception:
        logger.exception("drawing the trend chart of %s failed", digest.period)
        return None


async def _post_thread(
    client: AsyncWebClient,
    channel: str,
    ts: str,
    digest: Digest,
    plan: DigestMessages,
    chart: bytes | None,
) -> list[str]:
    """The replies, the CSV and the chart in the digest's thread; returns what failed (also logged)."""
    problems = []
    for number, blocks in enumerate(plan.replies, start=2):
        try:
            await client.chat_postMessage(
                channel=channel,
                thread_ts=ts,
                text=f"{plan.text} (continued, part {number} of {len(plan.replies) + 1})",
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            logger.exception("posting part %d of the digest to %s failed", number, channel)
            problems.append(f"part {number}: {describe_failure(exc)}")
    if plan.csv is not None:
        try:
            await client.files_upload_v2(
                channel=channel,
                thread_ts=ts,
                content=plan.csv,
                filename=csv_filename(digest),
                title=f"Linkpact digest {digest.period}: every row",
            )
        except Exception as exc:
            logger.exception("attaching the digest CSV in %s failed", channel)
            problems.append(f"CSV: {describe_failure(exc)}")
    if chart is not None:
        try:
            await client.files_upload_v2(
                channel=channel,
                thread_ts=ts,
                file=chart,
                filename=chart_filename(digest),
                title=f"Referring domains and live backlinks, last {len(digest.trend)} weeks",
                alt_txt="Line chart of referring domains and live backlinks per week",
            )
        except Exception as exc:
            logger.exception("uploading the trend chart in %s failed", channel)
            problems.append(f"chart: {describe_failure(exc)}")
    return problems


# -- the schedule --------------------------------------------------------------------------------------


def latest_scheduled(now: datetime, schedule: DigestSettings) -> datetime:
    """The latest scheduled digest time at or before ``now``, in UTC: the configured weekday and local
    time in the configured zone (daylight saving time as :mod:`zoneinfo` has it). ``now`` is aware."""
    zone = schedule.zone
    local = now.astimezone(zone)
    back = (local.weekday() - schedule.weekday) % 7
    for weeks in (0, 1):
        day = local.date() - timedelta(days=back + 7 * weeks)
        candidate = datetime.combine(day, time(schedule.hour, schedule.minute), tzinfo=zone)
        if candidate <= now:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a week earlier is always before now")


async def run_digest_job(
    engine: Engine,
    client: AsyncWebClient,
    schedule: DigestSettings,
    clock: Callable[[], datetime],
) -> DigestDelivery | None:
    """Post the digest of the latest scheduled time at or before ``clock()`` where it is not posted yet.

    The scheduler runs this on the configured weekday and time, and once at start-up (catch-up).
    Returns what was done (None when no channel is configured or it failed); never raises: a failure
    is logged with its traceback and the next run tries again."""
    if not schedule.channels:
        return None
    try:
        until = latest_scheduled(clock(), schedule)
        period = iso_week(until)
        ledger = DigestLedger(engine.store, clock=clock)
        pending = [c for c in schedule.channels if not await ledger.posted(period, c)]
        if not pending:
            logger.info("the digest %s is already posted to every channel", period)
            return DigestDelivery(period, skipped=list(schedule.channels))
        digest = await build_digest(engine.store, engine.agreements, engine.prune, until=until)
        delivery = await post_digest(client, digest, schedule.channels, ledger)
    except Exception:
        logger.exception("the weekly digest failed")
        return None
    if delivery.posted:
        logger.info("posted the digest %s to %s", delivery.period, ", ".join(delivery.posted))
    for channel, why in delivery.failed.items():
        logger.warning("the digest %s was not posted to %s: %s", delivery.period, channel, why)
    return delivery


# -- `linkpact digest` ---------------------------------------------------------------------------------


async def post_digest_from_cli(engine: Engine, digest: Digest) -> int:
    """``linkpact digest`` without ``--dry-run``: post ``digest`` to ``LINKPACT_DIGEST_CHANNEL`` through
    the Web API at ``SLACK_API_URL`` (the same ledger as the scheduler: once per period and channel).

    Status lines go to stderr (stdout holds the digest, possibly as JSON). Returns the exit code: 0
    posted (or already posted), 1 a channel failed, 2 a missing or malformed setting."""
    try:
        slack = slack_settings_from_env()
    except ConfigError as exc:
        print(f"linkpact digest: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    channels = engine.settings.digest.channels
    if not channels:
        print(
            "linkpact digest: LINKPACT_DIGEST_CHANNEL is not set, so there is nowhere to post "
            "(add --dry-run to only print the digest)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    delivery = await post_digest(
        web_client(slack), digest, channels, DigestLedger(engine.store, clock=engine.now)
    )
    for channel, ts in delivery.posted.items():
        print(f"linkpact digest: posted {digest.period} to {channel} (ts {ts})", file=sys.stderr)
    for channel in delivery.skipped:
        print(f"linkpact digest: {digest.period} was already posted to {channel}; not again", file=sys.stderr)
    for channel, problems in delivery.incomplete.items():
        print(f"linkpact digest: in {channel}'s thread, not added: {'; '.join(problems)}", file=sys.stderr)
    for channel, why in delivery.failed.items():
        print(f"linkpact digest: could not post to {channel}: {why}", file=sys.stderr)
    return EXIT_PROBLEMS if delivery.failed else EXIT_OK
