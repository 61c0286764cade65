"""Events API listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.events.app_home import handle_app_home_opened


def register(app: AsyncApp) -> None:
    """Register event listeners: ``app_home_opened`` publishes the Home tab; ``message`` (DMs with the
    bot, ``message.im``) imports a file sent there."""
    # Imported here: the import job uses the commands package's helpers (see handlers.commands).
    from handlers.events.direct_messages import handle_message_event

    app.event("app_home_opened")(handle_app_home_opened)
    app.event("message")(handle_message_event)
