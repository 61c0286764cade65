"""``/linkcheck partners [state]``, ``/linkcheck partner <id|domain>`` and ``/linkcheck partners export``:
the background half, after the ack.

The list and one agreement are answered privately (ephemeral, through the command's response_url): they
are lookups for the person who asked, like ``tracked``, and would only clutter the channel. The CSV
export is uploaded to the channel (files.uploadV2) so the team gets the file; when the bot is not a
member there, the person gets the CSV privately inline when it is short, else a note saying how to get
it.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.agreements.csvfile import export_csv_bytes
from bot.errors import InputError
from handlers.commands.check_job import Respond, respond_ephemeral
from handlers.commands.parsing import (
    HELP_HINT,
    ExportPartnerships,
    ListPartnerships,
    PartnershipRequest,
    ShowPartnership,
)
from handlers.slack_errors import NOT_IN_CHANNEL_ERRORS, describe_failure
from handlers.views.agreement_blocks import (
    agreement_list_text,
    build_agreement_blocks,
    build_agreement_list_blocks,
    fit,
)
from handlers.views.message_blocks import build_error_blocks, build_notice_blocks
from handlers.views.mrkdwn import fallback, mention, plural
from handlers.views.partner_record_blocks import build_partner_record_blocks
from handlers.views.report_blocks import MAX_BLOCKS

if TYPE_CHECKING:
    from bot.engine import Engine

logger = logging.getLogger(__name__)

COMMAND = "/linkcheck"
# A CSV this short is shown inline (in a code block) when it cannot be uploaded: a section holds at most
# 3,000 characters, less the code fences and the sentence around it.
MAX_INLINE_CSV_CHARS = 2700


def export_filename(today: date) -> str:
    """``linkpact-partnerships-<YYYY-MM-DD>.csv``."""
    return f"linkpact-partnerships-{today.isoformat()}.csv"


async def run_partnership_request(
    request: PartnershipRequest,
    *,
    engine: Engine,
    client: AsyncWebClient,
    respond: Respond,
    channel_id: str,
    user_id: str,
) -> None:
    """Answer one list/show/export request; never raises (errors become ephemeral messages and logs)."""
    service = engine.agreements
    today = service.today()
    try:
        if isinstance(request, ListPartnerships):
            agreements = await service.all(request.state)
            await respond_ephemeral(
                respond,
                text=agreement_list_text(agreements, today),
                blocks=build_agreement_list_blocks(agreements, today, state=request.state),
            )
        elif isinstance(request, ShowPartnership):
            agreement = await service.get(request.ref)
            history = await service.history(agreement.id)
            state = agreement.state(today).value
            # The partner's track record over every agreement with them follows the agreement itself.
            record = build_partner_record_blocks(await service.partner_record(agreement.id))
            blocks = build_agreement_blocks(agreement, today, history=history)
            await respond_ephemeral(
                respond,
                text=fallback(f"Partnership #{agreement.id} with {agreement.partner_name}: {state}"),
                blocks=[*fit(blocks, MAX_BLOCKS - len(record)), *record],
            )
        elif isinstance(request, ExportPartnerships):
            await _export(engine, client, respond, channel_id=channel_id, user_id=user_id)
        else:  # pragma: no cover - LogPartnership opens the modal in the command handler
            raise TypeError(f"not handled here: {request!r}")
    except InputError as exc:
        await respond_ephemeral(
            respond, text=fallback(str(exc)), blocks=build_error_blocks(str(exc), hint=HELP_HINT)
        )
    except Exception as exc:
        logger.exception("%s %s failed", COMMAND, type(request).__name__)
        message = f"The command failed: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(message), blocks=build_error_blocks(message))


async def _export(
    engine: Engine, client: AsyncWebClient, respond: Respond, *, channel_id: str, user_id: str
) -> None:
    service = engine.agreements
    today = service.today()
    agreements = await service.all()
    data = export_csv_bytes(agreements, today=today)
    try:
        await client.files_upload_v2(
            channel=channel_id,
            filename=export_filename(today),
            title=f"Link partnerships, {today.isoformat()}",
            content=data,
            initial_comment=(
                f"{mention(user_id)} exported {plural(len(agreements), 'partnership')}: one row per "
                "promised link, "
                "Linkody's import columns first (see docs/agreements-csv.md)."
            ),
        )
    except SlackApiError as exc:
        if exc.response.get("error") not in NOT_IN_CHANNEL_ERRORS:
            raise
        await _export_privately(respond, data)


async def _export_privately(respond: Respond, data: bytes) -> None:
    text = data.decode("utf-8-sig")
    intro = (
        "Linkpact is not a member of this conversation, so it cannot upload the CSV here. Invite it "
        "(`/invite @Linkpact`) and run the export again, or use `linkpact agreement export FILE.csv`."
    )
    # Code blocks show their content literally, but Slack still reads &, < and > as escapes.
    shown = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(shown) <= MAX_INLINE_CSV_CHARS:
        blocks = build_notice_blocks(f"{intro} Here it is inline:\n```{shown}```")
    else:
        blocks = build_notice_blocks(intro)
    await respond_ephemeral(respond, text=fallback(intro), blocks=blocks)
