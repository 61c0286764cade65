"""``app_home_opened``: publish the Home tab (the partnership dashboard and the usage of ``/linkcheck``)."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from handlers.agreement_jobs import publish_home
from handlers.services import full_engine, services_from


async def handle_app_home_opened(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    """Publish the Home view for the user who opened the Home tab (the Messages tab is ignored).

    Slack docs: "app_home_opened" event and the "views.publish" method (no extra scope needed).
    """
    if event.get("tab", "home") != "home" or not event.get("user"):
        return
    await publish_home(client, full_engine(services_from(context)), user_id=str(event["user"]))
