"""``/linkcheck digest`` and ``/linkcheck recheck [ID]``: the background halves (after the ack).

Both answer only the person who asked, through the command's ``response_url`` (ephemeral): the digest
preview is built now and marks nothing as posted, so the scheduled digest still goes out; a recheck
answers with its counts and changes once it is done.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject

from bot.config import DigestSettings
from bot.errors import InputError
from bot.monitoring.digest import build_digest
from handlers.commands.check_job import Respond, describe_failure, respond_ephemeral
from handlers.commands.parsing import HELP_HINT, MonitorRequest, PreviewDigest
from handlers.monitoring import MonitoringState, recheck_all
from handlers.services import Services, full_engine
from handlers.views.digest_blocks import plan_digest
from handlers.views.message_blocks import build_error_blocks, build_notice_blocks
from handlers.views.mrkdwn import fallback
from handlers.views.recheck_blocks import build_recheck_blocks, recheck_text
from handlers.views.report_blocks import MAX_BLOCKS

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.monitoring.prune import PruneProposal
    from bot.monitoring.recheck import RecheckSummary

logger = logging.getLogger(__name__)

NO_MONITORING = "Monitoring (rechecks, the digest) is not available in this Linkpact process."
BUSY = (
    "A full recheck is already running (the schedule's or someone's); its changes will be in the weekly "
    "digest. Try again in a few minutes."
)


async def run_monitor_request(
    request: MonitorRequest, *, services: Services, respond: Respond, user_id: str
) -> None:
    """Run ``/linkcheck digest`` or ``/linkcheck recheck [ID]`` after the ack; never raises."""
    engine = full_engine(services)
    if engine is None:
        await respond_ephemeral(respond, text=NO_MONITORING, blocks=build_error_blocks(NO_MONITORING))
        return
    if isinstance(request, PreviewDigest):
        await run_digest_preview(engine=engine, schedule=engine.settings.digest, respond=respond)
        return
    await run_recheck_request(
        engine=engine,
        state=services.monitoring,
        respond=respond,
        user_id=user_id,
        agreement_ref=request.agreement_ref,
    )


async def run_digest_preview(*, engine: Engine, schedule: DigestSettings, respond: Respond) -> None:
    """Build the digest as it would be posted now and show it to the requester only; never raises."""
    try:
        digest = await build_digest(engine.store, engine.agreements, engine.prune, until=engine.now())
        plan = plan_digest(digest, interactive=False)
    except Exception as exc:
        logger.exception("building the digest preview failed")
        message = f"The digest could not be built: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(message), blocks=build_error_blocks(message))
        return
    if schedule.channels:
        where = ", ".join(f"<#{c}>" for c in schedule.channels)
        note = (
            f"Preview, only visible to you: nothing was posted. The digest goes to {where} "
            f"on {schedule.describe()}, with the buttons to decide each prune proposal."
        )
    else:
        note = (
            "Preview, only visible to you. No digest is posted on a schedule: set LINKPACT_DIGEST_CHANNEL "
            "to have it posted every week."
        )
    if plan.replies:
        note += " In the posted digest, the rest of the long lists follows in its thread."
    preview: list[Block] = [ContextBlock(elements=[MarkdownTextObject(text=note)])]
    preview += plan.main[: MAX_BLOCKS - 1]
    await respond_ephemeral(respond, text=f"Preview: {plan.text}", blocks=preview)


async def run_recheck_request(
    *,
    engine: Engine,
    state: MonitoringState,
    respond: Respond,
    user_id: str,
    agreement_ref: str | None,
) -> None:
    """Recheck everything (one full recheck at a time) or one agreement, then answer with the summary;
    never raises."""
    try:
        if agreement_ref:
            result: tuple[RecheckSummary, list[PruneProposal]] | None = await engine.recheck(
                agreement_ref=agreement_ref, by=user_id or "slack"
            )
        else:
            result = await recheck_all(engine, state, by=user_id or "slack")
        if result is None:
            await respond_ephemeral(respond, text=BUSY, blocks=build_notice_blocks(BUSY))
            return
    except InputError as exc:
        await respond_ephemeral(
            respond, text=fallback(str(exc)), blocks=build_error_blocks(str(exc), hint=HELP_HINT)
        )
        return
    except Exception as exc:
        logger.exception("/linkcheck recheck failed")
        message = f"The recheck failed: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(message), blocks=build_error_blocks(message))
        return
    summary, proposals = result
    await respond_ephemeral(
        respond,
        text=recheck_text(summary, proposals),
        blocks=build_recheck_blocks(summary, proposals, agreement_ref=agreement_ref),
    )
