"""The background half of ``/linkcheck <url>``: run the check and keep one channel message current.

The message is posted ("Checking <url>…") when the engine reports its first progress, which it does
right after it accepted the URL, so a refused or malformed URL never shows up in the channel. It is then
updated at most once every ``progress_interval_s`` and finally replaced by the report; when the lists
were cut, the full CSV goes into the message's thread. When the bot may not post in the channel
(``not_in_channel``, ``channel_not_found``: a private channel or a DM it is not part of), everything goes
to the requester alone through the command's ``response_url``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InputError
from bot.linkcheck.report import report_csv
from bot.models import Report
from handlers.commands.parsing import HELP_HINT
from handlers.services import Services
from handlers.slack_errors import NOT_IN_CHANNEL_ERRORS, describe_failure
from handlers.views.message_blocks import build_error_blocks, build_not_in_channel_blocks, build_notice_blocks
from handlers.views.mrkdwn import fallback, link
from handlers.views.report_blocks import (
    build_progress_blocks,
    build_report_blocks,
    build_report_text,
    progress_text,
    report_is_truncated,
)

if TYPE_CHECKING:
    from bot.engine import Progress

logger = logging.getLogger(__name__)

# A stopped check gets this long to say so in its message before the process exits.
STOP_NOTE_TIMEOUT_S = 2.0


class Respond(Protocol):
    """Bolt's ``respond`` (posts to the command's response_url)."""

    def __call__(self, text: str = "", blocks: Any = None, **kwargs: Any) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class CheckJob:
    """One requested check: what to check, where to answer and who asked."""

    url: str
    channel_id: str
    user_id: str
    workspace: str


class Throttle:
    """Allows an action at most once every ``interval_s`` (by the injected ``clock``, in seconds)."""

    def __init__(self, clock: Callable[[], float], interval_s: float) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._last: float | None = None

    def mark(self) -> None:
        """Record that the action happened now."""
        self._last = self._clock()

    def ready(self) -> bool:
        """True (and marks) when ``interval_s`` has passed since the last action."""
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            return False
        self._last = now
        return True


class ReportMessage:
    """The channel message of one check, driven by the engine's (synchronous) progress callback.

    Slack calls run as tasks on the running loop; :meth:`settle` waits for them, so the final update
    never races a late progress update.
    """

    def __init__(self, client: AsyncWebClient, respond: Respond, job: CheckJob, throttle: Throttle) -> None:
        self._client = client
        self._respond = respond
        self._job = job
        self._throttle = throttle
        self._post_task: asyncio.Task[None] | None = None
        self._update_task: asyncio.Task[None] | None = None
        self.ts: str | None = None
        self.not_in_channel = False

    def on_progress(self, progress: Progress) -> None:
        """Engine callback: post on the first call, then update when the throttle allows."""
        loop = asyncio.get_running_loop()
        if self._post_task is None:
            self._throttle.mark()
            self._post_task = loop.create_task(self._post(progress))
            return
        if progress.phase == "done" or self.ts is None:
            return
        if self._update_task is not None and not self._update_task.done():
            return
        if self._throttle.ready():
            self._update_task = loop.create_task(self._update_progress(progress))

    @property
    def started(self) -> bool:
        return self._post_task is not None

    async def ensure_posted(self) -> None:
        """Post now if no progress came yet, and wait for pending Slack calls (progress errors are logged)."""
        if self._post_task is None:
            self._post_task = asyncio.get_running_loop().create_task(self._post(None))
        await self.settle()

    async def settle(self) -> None:
        """Wait for the pending post and progress update; raise if posting failed for another reason."""
        if self._update_task is not None:
            await asyncio.gather(self._update_task, return_exceptions=True)
        if self._post_task is not None:
            await self._post_task

    async def _post(self, progress: Progress | None) -> None:
        job = self._job
        try:
            response = await self._client.chat_postMessage(
                channel=job.channel_id,
                text=progress_text(job.url),
                blocks=build_progress_blocks(job.url, progress, requested_by=job.user_id),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            if exc.response.get("error") in NOT_IN_CHANNEL_ERRORS:
                self.not_in_channel = True
                await respond_ephemeral(
                    self._respond,
                    text=progress_text(job.url),
                    blocks=build_progress_blocks(job.url, progress) + build_not_in_channel_blocks(),
                )
                return
            raise
        self.ts = response.get("ts")
        # Updates go to the channel ID Slack answered with (a DM's channel may differ from the one asked).
        channel = response.get("channel")
        if isinstance(channel, str) and channel:
            self._job = CheckJob(job.url, channel, job.user_id, job.workspace)

    async def _update_progress(self, progress: Progress) -> None:
        try:
            await self.update(
                text=progress_text(self._job.url),
                blocks=build_progress_blocks(self._job.url, progress, requested_by=self._job.user_id),
            )
        except SlackApiError as exc:
            # A missed progress update is harmless; the final update still replaces the message.
            logger.warning("progress update failed: %s", exc.response.get("error"))

    async def update(self, *, text: str, blocks: Any) -> None:
        assert self.ts is not None
        await self._client.chat_update(channel=self._job.channel_id, ts=self.ts, text=text, blocks=blocks)

    async def delete(self) -> None:
        """Remove the message (a refused or failed check leaves nothing in the channel); best effort."""
        if self.ts is None:
            return
        try:
            await self._client.chat_delete(channel=self._job.channel_id, ts=self.ts)
        except SlackApiError as exc:
            logger.warning("could not delete the progress message: %s", exc.response.get("error"))

    @property
    def channel_id(self) -> str:
        return self._job.channel_id


async def run_check_job(
    job: CheckJob, *, services: Services, client: AsyncWebClient, respond: Respond
) -> None:
    """Run one check end to end and answer in Slack; never raises (errors become messages and logs).

    Releases the job's workspace slot when done. Slack docs: "Implementing slash commands"
    (response_url, ephemeral responses), chat.postMessage, chat.update, chat.delete, files.uploadV2.
    """
    message = ReportMessage(client, respond, job, Throttle(services.clock, services.progress_interval_s))
    try:
        report = await services.engine.check(job.url, on_progress=message.on_progress)
        await message.ensure_posted()
        await _deliver(report, job, message, client, respond)
    except InputError as exc:
        await _settle_quietly(message)
        await message.delete()
        await respond_ephemeral(
            respond,
            text=fallback(str(exc)),
            blocks=build_error_blocks(str(exc), hint=HELP_HINT),
            replace_original=message.not_in_channel,
        )
    except asyncio.CancelledError:
        await _note_stopped(message, job)
        raise
    except Exception as exc:
        logger.exception("the check of %s failed", job.url)
        await _settle_quietly(message)
        await message.delete()
        why = describe_failure(exc)
        await respond_ephemeral(
            respond,
            text=fallback(f"The check failed: {why}"),
            blocks=build_error_blocks(f"The check failed: {why}"),
            replace_original=message.not_in_channel,
        )
    finally:
        services.slots.release(job.workspace)


async def _deliver(
    report: Report, job: CheckJob, message: ReportMessage, client: AsyncWebClient, respond: Respond
) -> None:
    truncated = report_is_truncated(report)
    if message.not_in_channel:
        blocks = build_report_blocks(report, requested_by=job.user_id, csv_attached=False)
        await respond_ephemeral(respond, text=build_report_text(report), blocks=blocks, replace_original=True)
        return
    blocks = build_report_blocks(report, requested_by=job.user_id, csv_attached=True)
    await message.update(text=build_report_text(report), blocks=blocks)
    if not truncated:
        return
    await attach_csv_in_thread(
        client,
        respond,
        channel=message.channel_id,
        thread_ts=message.ts,
        filename=csv_filename(report),
        title=f"Every link on {report.page.url}",
        content=report_csv(report),
        comment="The full list of links (outbound and tracked backlinks) as CSV.",
        what="report",
    )


async def attach_csv_in_thread(
    client: AsyncWebClient,
    respond: Respond,
    *,
    channel: str | None,
    thread_ts: str | None,
    filename: str,
    title: str,
    content: str,
    comment: str,
    what: str,
) -> None:
    """Upload a CSV into the thread of a message already posted; when that fails, only the attachment is
    missing, so the requester is told just that (privately) and the traceback goes to the log."""
    try:
        await client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            filename=filename,
            title=title,
            content=content,
            initial_comment=fallback(comment),
        )
    except Exception as exc:
        logger.exception("attaching %s failed", filename)
        why = f"The {what} is posted, but its CSV could not be attached: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(why), blocks=build_error_blocks(why))


def csv_filename(report: Report) -> str:
    """``linkpact-<host>-<YYYY-MM-DD>.csv`` (host with characters unsafe in file names replaced; the day
    the check started)."""
    return dated_csv_filename("linkpact", urlsplit(report.page.url).hostname or "page", report.started_at)


def dated_csv_filename(prefix: str, name: str, started_at: str) -> str:
    """``<prefix>-<name>-<YYYY-MM-DD>.csv``: ``name`` with characters unsafe in file names replaced, the
    day from ``started_at`` (ISO 8601; today when it is not a date)."""
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in name)
    try:
        day = date.fromisoformat(started_at[:10])
    except ValueError:
        day = date.today()
    return f"{prefix}-{safe}-{day.isoformat()}.csv"


async def _settle_quietly(message: ReportMessage) -> None:
    try:
        await message.settle()
    except Exception:
        logger.exception("posting the progress message failed")


async def respond_ephemeral(
    respond: Respond, *, text: str, blocks: Any, replace_original: bool = False
) -> None:
    """An ephemeral answer through the response_url; failures are logged (the URL itself never is)."""
    try:
        response = await respond(
            text=text, blocks=blocks, response_type="ephemeral", replace_original=replace_original
        )
    except Exception:
        logger.exception("could not answer through the response_url")
        return
    status = getattr(response, "status_code", 200)
    if status != 200:
        logger.warning("the response_url answered HTTP %s", status)


async def _note_stopped(message: ReportMessage, job: CheckJob) -> None:
    """On shutdown, say in the channel message that the check stopped (best effort, bounded)."""
    if not message.started:
        return
    text = fallback(f"Linkpact stopped before the check of {job.url} finished; run `/linkcheck` again.")
    blocks = build_notice_blocks(
        f":octagonal_sign: Linkpact stopped before the check of {link(job.url)} finished; "
        "run `/linkcheck` again."
    )
    try:
        async with asyncio.timeout(STOP_NOTE_TIMEOUT_S):
            await message.settle()  # the post may still be on its way: its ts is needed
            if message.ts is not None:
                await message.update(text=text, blocks=blocks)
    except (Exception, asyncio.CancelledError):
        logger.warning("could not mark the check of %s as stopped", job.url)
