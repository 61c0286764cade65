"""Views: pure Block Kit builders, and ``register(app)`` for view submissions."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    """Register view-submission listeners: the "Log a partnership" modal."""
    # Imported here, not at the top: the listener runs jobs that use this package's builders, so a
    # top-level import would make importing any builder import the jobs first (a cycle).
    from handlers.views.log_partnership_submission import handle_log_partnership_submission
    from handlers.views.partnership_modal import LOG_PARTNERSHIP_CALLBACK

    app.view(LOG_PARTNERSHIP_CALLBACK)(handle_log_partnership_submission)
