"""``view_submission`` of the "Log a partnership" modal: validate in the modal, or ack and log.

Validation is pure (no network, no store) so it runs before the ack, inside Slack's 3 seconds: bad
fields come back with ``response_action: errors`` and Slack marks each one in the modal; nothing is
stored. A valid submission is acked with ``response_action: clear`` (the modal closes) and logged and
verified in a background task (Slack docs: "Handling user interaction in modals").
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.agreements.model import AgreementInputError
from handlers.agreement_jobs import LogPartnershipJob, run_log_partnership_job
from handlers.services import full_engine, services_from
from handlers.views.partnership_modal import ModalOrigin, block_errors, read_partnership_submission

NO_AGREEMENTS = "Partnership agreements are not available in this Linkpact process."


async def handle_log_partnership_submission(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
    logger: logging.Logger,
) -> None:
    """Handle one submission (payload: Slack's ``view_submission``; the owner is the submitting user)."""
    services = services_from(context)
    engine = full_engine(services)
    if engine is None:
        await ack(response_action="errors", errors={"partner_name": NO_AGREEMENTS})
        return
    user_id = str((body.get("user") or {}).get("id") or "")
    submission = read_partnership_submission((view.get("state") or {}).get("values") or {}, owner=user_id)
    try:
        engine.agreements.validate(submission.data)
    except AgreementInputError as exc:
        await ack(response_action="errors", errors=block_errors(exc.errors, submission.link_rows))
        return
    await ack(response_action="clear")
    job = LogPartnershipJob(
        data=submission.data, user_id=user_id, origin=ModalOrigin.decode(view.get("private_metadata"))
    )
    services.tasks.spawn(
        run_log_partnership_job(job, engine=engine, client=client), name=f"log partnership for {user_id}"
    )
