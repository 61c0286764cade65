"""Block actions (buttons, menus) on Linkpact's surfaces.

The Home tab's "Log a partnership" and "Re-check" buttons, the weekly digest's prune buttons
(**Approve prune**, **Keep**, **Recheck now**: :mod:`handlers.actions.prune_buttons`) and the audit's
**Propose prunes** (:mod:`handlers.actions.audit_buttons`). Each is registered here with
``app.action("<action_id>")(handle_..._action)``.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    """Register block-action listeners."""
    # Imported here, not at the top: the jobs behind the buttons use helpers of this package
    # (prune_buttons), so a top-level import would make importing any helper import every job (a cycle).
    from handlers.actions import audit_buttons, prune_buttons
    from handlers.actions.agreement_buttons import (
        handle_open_log_partnership_action,
        handle_recheck_agreement_action,
    )
    from handlers.views.home_view import OPEN_LOG_PARTNERSHIP_ACTION, RECHECK_ACTION

    app.action(OPEN_LOG_PARTNERSHIP_ACTION)(handle_open_log_partnership_action)
    app.action(RECHECK_ACTION)(handle_recheck_agreement_action)
    prune_buttons.register(app)
    audit_buttons.register(app)
