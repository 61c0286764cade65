"""Views: pure Block Kit builders, and ``register(app)`` for view submissions.

No modal exists yet, so ``register`` adds no listener. The agreement forms of later issues will be
registered here with ``app.view("<callback_id>")(handle_..._submission)``.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    """Register view-submission listeners (none yet)."""
