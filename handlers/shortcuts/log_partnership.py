"""The "Log link partnership" message shortcut: open the modal with the message's first URL as the
partner page (and its origin as the partner site); the result goes to the message's channel."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from handlers.agreement_jobs import open_log_partnership_modal, tell_user
from handlers.services import full_engine, services_from
from handlers.slack_errors import describe_failure
from handlers.views.partnership_modal import ModalOrigin, prefill_from_message

# manifest.yml features.shortcuts[].callback_id
LOG_PARTNERSHIP_SHORTCUT = "log_partnership"


async def handle_log_partnership_shortcut(
    ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient, context: Any, logger: logging.Logger
) -> None:
    """Handle a ``message_action`` payload: ack, then ``views.open`` at once (the trigger_id lives 3 s)."""
    await ack()
    user_id = str((shortcut.get("user") or {}).get("id") or "")
    channel_id = str((shortcut.get("channel") or {}).get("id") or "")
    engine = full_engine(services_from(context))
    if engine is None:
        await tell_user(client, user_id=user_id, text="Partnership agreements are not available here.")
        return
    try:
        await open_log_partnership_modal(
            client,
            engine,
            trigger_id=str(shortcut.get("trigger_id") or ""),
            origin=ModalOrigin(channel_id=channel_id, surface="shortcut"),
            prefill=prefill_from_message(shortcut.get("message") or {}),
        )
    except Exception as exc:
        logger.exception("opening the partnership modal from a shortcut failed")
        await tell_user(
            client, user_id=user_id, channel_id=channel_id,
            text=f"The form could not be opened: {describe_failure(exc)}",
        )  # fmt: skip
