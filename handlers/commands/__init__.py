"""Slash commands."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.commands.linkcheck import COMMAND, handle_linkcheck_command


def register(app: AsyncApp) -> None:
    """Register ``/linkcheck`` (manifest.yml declares it)."""
    app.command(COMMAND)(handle_linkcheck_command)
