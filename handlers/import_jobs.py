"""Importing a backlink export shared in Slack (issue 5, "Where"): the background half of
``/linkcheck import`` and of a file sent to the bot in a DM.

Steps, after the ack: find the file (the newest one the person shared in the channel within
:data:`handlers.slack_files.RECENT_FILE_WINDOW_S`, or the file of the DM message), download it with the
bot token (:mod:`handlers.slack_files`: Slack's host only, size capped before and while downloading, time
limits), import it with :func:`bot.imports.import_backlinks` (which parses in a worker thread, so the
event loop keeps answering), post the summary, and verify the new backlinks in the background with a full
recheck as soon as none is running (:func:`handlers.monitoring.recheck_when_free`: the engine's one HTTP
client and its per-host limits, the polite rate). The verification's result follows in the summary's
thread; live backlinks then count as referring domains in the next weekly digest.

Where answers go (:class:`ImportAnswers`): for the command, the summary is posted in the channel (the team
sees what was imported) and errors privately through the response_url; when the bot is not in the
channel, everything goes privately. For a DM, everything goes to that DM. Errors are one clear sentence;
tracebacks go to the log only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.backlinks.registry import BACKLINKS_TABLE
from bot.errors import InputError
from bot.imports import ImportSummary, import_backlinks
from handlers.commands.check_job import Respond, respond_ephemeral
from handlers.monitoring import recheck_when_free
from handlers.services import Services
from handlers.slack_errors import NOT_IN_CHANNEL_ERRORS, describe_failure
from handlers.slack_files import (
    RECENT_FILE_WINDOW_S,
    FileImportError,
    SlackFile,
    complete_file,
    download_file,
    newest_shared_file,
)
from handlers.views.import_blocks import (
    build_import_blocks,
    build_verification_blocks,
    import_text,
    verification_text,
)
from handlers.views.message_blocks import build_error_blocks
from handlers.views.mrkdwn import fallback

if TYPE_CHECKING:
    from bot.engine import Engine

logger = logging.getLogger(__name__)

COMMAND = "/linkcheck"
IMPORT_HINT = (
    "Share the export in this conversation (drag the file into the message box and send it), then run "
    f"`{COMMAND} import` within the hour; or send the file to Linkpact in a direct message."
)
# Slack errors of files.list/files.info that mean the app was installed without files:read.
SCOPE_ERRORS = frozenset({"missing_scope", "not_allowed_token_type", "no_permission"})


class NoFileError(FileImportError):
    """No file to import was found."""


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One import: who asked, where, the options (``target_site``, ``fmt``: as for ``linkpact import``),
    and the file when it is already known (a DM's file_share message); None means "look it up"."""

    user_id: str
    channel_id: str
    workspace: str
    target_site: str | None = None
    fmt: str | None = None
    file: SlackFile | None = None


class ImportAnswers(Protocol):
    """Where an import's answers go."""

    async def summary(self, *, text: str, blocks: Sequence[Block]) -> None:
        """Post the import summary (remembering where, for :meth:`followup`)."""

    async def followup(self, *, text: str, blocks: Sequence[Block]) -> None:
        """Post the verification result next to the summary (its thread); best effort."""

    async def error(self, *, text: str, blocks: Sequence[Block]) -> None:
        """Tell the person what went wrong."""


class CommandAnswers:
    """``/linkcheck import``: the summary in the channel (privately when the bot is not a member), errors
    privately through the command's response_url."""

    def __init__(self, client: AsyncWebClient, respond: Respond, channel_id: str) -> None:
        self._client = client
        self._respond = respond
        self._channel_id = channel_id
        self._where: tuple[str, str] | None = None  # (channel, ts) of the posted summary

    async def summary(self, *, text: str, blocks: Sequence[Block]) -> None:
        try:
            response = await self._client.chat_postMessage(
                channel=self._channel_id, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in NOT_IN_CHANNEL_ERRORS:
                raise
            await respond_ephemeral(self._respond, text=text, blocks=blocks)
            return
        self._where = (str(response.get("channel") or self._channel_id), str(response.get("ts") or ""))

    async def followup(self, *, text: str, blocks: Sequence[Block]) -> None:
        if self._where is None:  # the summary went privately; so does this (while the response_url lives)
            await respond_ephemeral(self._respond, text=text, blocks=blocks)
            return
        channel, ts = self._where
        await _post_quietly(self._client, channel, text, blocks, thread_ts=ts)

    async def error(self, *, text: str, blocks: Sequence[Block]) -> None:
        await respond_ephemeral(self._respond, text=text, blocks=blocks)


class DirectMessageAnswers:
    """A file sent to the bot in a DM: every answer in that DM, the verification in the summary's thread."""

    def __init__(self, client: AsyncWebClient, channel_id: str) -> None:
        self._client = client
        self._channel_id = channel_id
        self._ts: str | None = None

    async def summary(self, *, text: str, blocks: Sequence[Block]) -> None:
        response = await self._client.chat_postMessage(
            channel=self._channel_id, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        self._ts = str(response.get("ts") or "") or None

    async def followup(self, *, text: str, blocks: Sequence[Block]) -> None:
        await _post_quietly(self._client, self._channel_id, text, blocks, thread_ts=self._ts)

    async def error(self, *, text: str, blocks: Sequence[Block]) -> None:
        await _post_quietly(self._client, self._channel_id, text, blocks)


async def _post_quietly(
    client: AsyncWebClient, channel: str, text: str, blocks: Sequence[Block], *, thread_ts: str | None = None
) -> None:
    kwargs: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
    try:
        await client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False, **kwargs
        )
    except Exception:
        logger.exception("posting an import message to %s failed", channel)


async def run_import_job(
    job: ImportJob,
    *,
    engine: Engine,
    services: Services,
    client: AsyncWebClient,
    answers: ImportAnswers,
) -> None:
    """Find, download and import the file of ``job``, answer with the summary, then verify the new
    backlinks; never raises (errors become one message to the person, tracebacks go to the log).

    Releases the workspace's import slot once the import is stored (the verification that follows can
    take long and holds no memory worth guarding)."""
    try:
        summary = await _import(job, engine=engine, services=services, client=client)
    except InputError as exc:
        await answers.error(text=fallback(str(exc)), blocks=build_error_blocks(str(exc), hint=_hint(exc)))
        return
    except SlackApiError as exc:
        error = exc.response.get("error", "an error")
        logger.warning("the import for %s failed: Slack answered %s", job.user_id, error)
        message = f"The import failed: Slack answered `{error}`."
        if error in SCOPE_ERRORS:
            message += (
                " Linkpact needs the `files:read` scope to read shared files: reinstall it from manifest.yml."
            )
        await answers.error(text=fallback(message), blocks=build_error_blocks(message))
        return
    except Exception as exc:
        logger.exception("the import for %s failed", job.user_id)
        message = f"The import failed: {describe_failure(exc)}"
        await answers.error(text=fallback(message), blocks=build_error_blocks(message))
        return
    finally:
        services.import_slots.release(job.workspace)
    verifying = summary.new_backlinks > 0
    try:
        await answers.summary(
            text=import_text(summary),
            blocks=build_import_blocks(summary, user_id=job.user_id, verifying=verifying),
        )
    except Exception as exc:
        # The import is stored; only its summary is missing, so say exactly that.
        logger.exception("posting the summary of import %s failed", summary.import_id)
        message = (
            f"{summary.filename} was imported ({summary.new_backlinks:,} new backlinks), but the summary "
            f"could not be posted: {describe_failure(exc)}"
        )
        await answers.error(text=fallback(message), blocks=build_error_blocks(message))
    if verifying:
        await verify_import(summary, engine=engine, services=services, answers=answers, user_id=job.user_id)


def _hint(exc: InputError) -> str | None:
    return IMPORT_HINT if isinstance(exc, NoFileError) else None


async def _import(
    job: ImportJob, *, engine: Engine, services: Services, client: AsyncWebClient
) -> ImportSummary:
    file = job.file
    if file is None:
        since = services.wall_clock() - RECENT_FILE_WINDOW_S
        file = await newest_shared_file(client, channel_id=job.channel_id, user_id=job.user_id, since=since)
        if file is None:
            raise NoFileError(
                "Linkpact found no file you shared in this conversation in the last hour. In a private "
                "channel, invite Linkpact first (`/invite @Linkpact`): it only sees files where it is a "
                "member."
            )
    file = await complete_file(client, file)
    limits = services.import_limits
    data = await download_file(
        file, token=services.slack.bot_token, api_url=services.slack.api_url, limits=limits
    )
    logger.info("importing %s (%d bytes) for %s", file.id, len(data), job.user_id)
    return await import_backlinks(
        engine,
        data,
        filename=file.name,
        target_site=job.target_site,
        fmt=job.fmt,
        added_by=job.user_id,
        max_bytes=limits.max_bytes,
    )


async def verify_import(
    summary: ImportSummary, *, engine: Engine, services: Services, answers: ImportAnswers, user_id: str
) -> None:
    """Verify the backlinks ``summary`` added (a full recheck once none is running), then post what was
    found for those backlinks: counts by verdict and the reasons; never raises."""
    try:
        await recheck_when_free(engine, services.monitoring, by=user_id or "slack")
        docs = await engine.store.find(BACKLINKS_TABLE, import_id=summary.import_id)
    except Exception:
        logger.exception("verifying the backlinks of import %s failed", summary.import_id)
        return
    verdicts = Counter(str(doc.get("last_verdict") or "unknown") for doc in docs)
    reasons = Counter(
        str(doc.get("last_reason"))
        for doc in docs
        if doc.get("last_verdict") != "live" and doc.get("last_reason")
    )
    await answers.followup(
        text=verification_text(summary.filename, verdicts),
        blocks=build_verification_blocks(summary.filename, verdicts, reasons),
    )
