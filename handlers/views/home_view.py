"""The App Home tab: what Linkpact does and how to use it (pure)."""

from __future__ import annotations

from slack_sdk.models.blocks import DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from handlers.views.message_blocks import build_help_blocks


def build_home_view() -> View:
    """A ``home`` view with the usage of ``/linkcheck``; published on ``app_home_opened``."""
    return View(type="home", blocks=[HeaderBlock(text="Linkpact"), DividerBlock(), *build_help_blocks()])
