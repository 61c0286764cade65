"""Shortcuts (manifest.yml ``features.shortcuts``)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.shortcuts.log_partnership import LOG_PARTNERSHIP_SHORTCUT, handle_log_partnership_shortcut


def register(app: AsyncApp) -> None:
    """Register the "Log link partnership" message shortcut."""
    app.shortcut(LOG_PARTNERSHIP_SHORTCUT)(handle_log_partnership_shortcut)
