"""The audit result's **Propose prunes** button (``/linkcheck audit``; the work is in
:func:`handlers.audit_jobs.run_propose_prunes`)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from handlers.actions.prune_buttons import ButtonClick
from handlers.audit_jobs import run_propose_prunes
from handlers.commands.check_job import Respond
from handlers.services import services_from
from handlers.views.audit_blocks import PROPOSE_PRUNES_ACTION


def register(app: AsyncApp) -> None:
    app.action(PROPOSE_PRUNES_ACTION)(handle_propose_prunes_action)


async def handle_propose_prunes_action(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: Respond, context: Any
) -> None:
    """Ack at once (Slack wants it within 3 s, "Handling user interaction"), then open the proposals in
    a background task held by :class:`handlers.services.BackgroundTasks`."""
    await ack()
    services = services_from(context)
    click = ButtonClick.from_body(body)
    services.tasks.spawn(
        run_propose_prunes(click, services=services, client=client, respond=respond),
        name=f"propose prunes from audit {click.value}",
    )
