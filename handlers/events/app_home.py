"""``app_home_opened``: publish the Home tab with the usage of ``/linkcheck``."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.views.home_view import build_home_view


async def handle_app_home_opened(
    event: dict[str, Any], client: AsyncWebClient, logger: logging.Logger
) -> None:
    """Publish the Home view for the user who opened the Home tab (the Messages tab is ignored).

    Slack docs: "app_home_opened" event and the "views.publish" method (no extra scope needed).
    """
    if event.get("tab", "home") != "home" or not event.get("user"):
        return
    try:
        await client.views_publish(user_id=event["user"], view=build_home_view())
    except SlackApiError:
        logger.exception("could not publish the Home view")
