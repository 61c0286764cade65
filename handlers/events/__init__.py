"""Events API listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.events.app_home import handle_app_home_opened


def register(app: AsyncApp) -> None:
    """Register event listeners: ``app_home_opened`` publishes the Home tab."""
    app.event("app_home_opened")(handle_app_home_opened)
