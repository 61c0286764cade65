"""Block actions (buttons, menus) on Linkpact's messages.

None yet. Planned: "Recheck" on a report, "Approve prune" on a partnership review, each registered here
with ``app.action("<action_id>")(handle_..._action)``. Interactivity is already enabled in manifest.yml
so adding them needs no reinstall.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    """Register block-action listeners (none yet)."""
