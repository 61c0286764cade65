"""Slash commands."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    """Register ``/linkcheck`` (manifest.yml declares it)."""
    # Imported here, not at the top: the command's jobs (imports, audits) use helpers of this package
    # (check_job), so a top-level import would make importing any helper import every job first (a cycle).
    from handlers.commands.linkcheck import COMMAND, handle_linkcheck_command

    app.command(COMMAND)(handle_linkcheck_command)
