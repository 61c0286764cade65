"""The Home tab's partnership buttons: "Log a partnership" opens the modal, "Re-check" verifies one
agreement now and publishes the Home tab again."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from handlers.agreement_jobs import HOME_SURFACE, open_log_partnership_modal, run_recheck_job, tell_user
from handlers.services import full_engine, services_from
from handlers.slack_errors import describe_failure
from handlers.views.partnership_modal import ModalOrigin


async def handle_open_log_partnership_action(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: Any, logger: logging.Logger
) -> None:
    """Open the modal from the Home tab: no channel, so the result goes to the owner by DM."""
    await ack()
    user_id = str((body.get("user") or {}).get("id") or "")
    engine = full_engine(services_from(context))
    if engine is None:
        await tell_user(client, user_id=user_id, text="Partnership agreements are not available here.")
        return
    try:
        await open_log_partnership_modal(
            client,
            engine,
            trigger_id=str(body.get("trigger_id") or ""),
            origin=ModalOrigin(channel_id="", surface=HOME_SURFACE),
        )
    except Exception as exc:
        logger.exception("opening the partnership modal from the Home tab failed")
        await tell_user(
            client, user_id=user_id, text=f"The form could not be opened: {describe_failure(exc)}"
        )


async def handle_recheck_agreement_action(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Ack, then re-check the agreement whose id is the button's value in a background task."""
    await ack()
    services = services_from(context)
    engine = full_engine(services)
    user_id = str((body.get("user") or {}).get("id") or "")
    agreement_id = str(action.get("value") or "")
    if engine is None or not agreement_id:
        return
    services.tasks.spawn(
        run_recheck_job(agreement_id, user_id=user_id, engine=engine, client=client),
        name=f"re-check partnership #{agreement_id}",
    )
