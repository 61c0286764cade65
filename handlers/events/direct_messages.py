"""Files sent to the bot in a direct message are imported (issue 5: "the file is picked up from a DM").

Slack sends every message of a DM with the bot as a ``message`` event with ``channel_type: im`` (event
``message.im``, scope ``im:history``; Slack docs: "message.im"). A shared file arrives as subtype
``file_share`` with the file objects in ``files``. Only those are handled: the first file is imported
(:mod:`handlers.import_jobs`) with the ``--target-site``/``--format`` options written in the message, if
any, and every answer goes to the same DM. Other messages (plain text, edits, the bot's own posts) are
left alone; Bolt already drops the bot's own events.

``message.im`` rather than ``file_shared``: ``file_shared`` fires for files in every conversation the
bot is in and carries only ids, so telling a DM from a channel would take another call and scope; the
``file_share`` message says ``channel_type: im`` and carries the file itself.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InputError
from handlers.commands.parsing import parse_import_options
from handlers.import_jobs import DirectMessageAnswers, ImportJob, run_import_job
from handlers.services import full_engine, services_from
from handlers.slack_files import SlackFile
from handlers.views.message_blocks import build_error_blocks
from handlers.views.mrkdwn import fallback

logger = logging.getLogger(__name__)

FILE_SHARE = "file_share"
NO_IMPORTS = "Importing backlink exports is not available in this Linkpact process."
BUSY = (
    "Linkpact is already importing a file for this workspace; it imports one at a time. Send this file "
    "again when that import is done."
)
ONE_FILE = "Linkpact imports one file per message: it imported {name}; send the others one by one."


def workspace_of_event(body: dict[str, Any]) -> str:
    """The key the per-workspace import slot counts by (as ``workspace_of`` does for commands)."""
    if body.get("is_enterprise_install") in (True, "true") and body.get("enterprise_id"):
        return str(body["enterprise_id"])
    return str(body.get("team_id") or "unknown-workspace")


async def handle_message_event(
    event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: Any
) -> None:
    """A ``message`` event: import the file of a ``file_share`` message in a DM with the bot."""
    if event.get("channel_type") != "im" or event.get("subtype") != FILE_SHARE or event.get("bot_id"):
        return
    files = [SlackFile.from_api(f) for f in event.get("files") or [] if isinstance(f, dict)]
    user_id = str(event.get("user") or "")
    channel_id = str(event.get("channel") or "")
    if not files or not user_id or not channel_id:
        return
    services = services_from(context)
    engine = full_engine(services)
    if engine is None:
        await _say(client, channel_id, NO_IMPORTS)
        return
    try:
        options = parse_import_options(str(event.get("text") or ""))
    except InputError as exc:
        await _say(client, channel_id, f"{exc} The file was not imported; send it again with valid options.")
        return
    workspace = workspace_of_event(body)
    if not services.import_slots.try_acquire(workspace):
        await _say(client, channel_id, BUSY)
        return
    try:  # the slot is held from here; the job gives it back when it ends
        job = ImportJob(
            user_id=user_id,
            channel_id=channel_id,
            workspace=workspace,
            target_site=options.target_site,
            fmt=options.fmt,
            file=files[0],
        )
        services.tasks.spawn(
            run_import_job(
                job,
                engine=engine,
                services=services,
                client=client,
                answers=DirectMessageAnswers(client, channel_id),
            ),
            name=f"import from a DM in {workspace}",
        )
    except BaseException:
        services.import_slots.release(workspace)
        raise
    if len(files) > 1:
        await _say(client, channel_id, ONE_FILE.format(name=files[0].name))


async def _say(client: AsyncWebClient, channel_id: str, text: str) -> None:
    try:
        await client.chat_postMessage(
            channel=channel_id, text=fallback(text), blocks=build_error_blocks(text)
        )
    except Exception:
        logger.exception("could not answer in the DM %s", channel_id)
