"""Small, pure helpers for Slack's mrkdwn text.

Text from checked pages (anchors, URLs, titles) is untrusted: a page could carry ``<!channel>`` in an
anchor. Slack's "Formatting text for app surfaces" page says to escape ``&``, ``<`` and ``>`` as HTML
entities in any text that should not be read as markup; :func:`escape` does that.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
# A URL longer than this is shown as truncated plain text instead of a link: a link's target cannot be
# shortened without breaking it, and one monster URL must not crowd a 3,000-character section.
MAX_LINKED_URL_CHARS = 1000
# Link labels are shortened to keep one report line readable on a phone.
DEFAULT_LABEL_CHARS = 120

_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def escape(text: str) -> str:
    """Escape ``&``, ``<``, ``>`` so Slack shows ``text`` literally (no mentions, links or markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def link(url: str, label: str | None = None, *, max_label_chars: int = DEFAULT_LABEL_CHARS) -> str:
    """A mrkdwn link ``<url|label>`` with both parts escaped; very long URLs become plain text.

    ``|`` in the URL would end the link target early, so it is percent-encoded (``%7C``).
    """
    shown = escape(truncate(label if label is not None else url, max_label_chars))
    if len(url) > MAX_LINKED_URL_CHARS or not url:
        return shown
    target = escape(url.replace("|", "%7C"))
    return f"<{target}|{shown}>"


def mention(user: str | None) -> str:
    """``<@U123>`` for a Slack user ID, else the escaped name (CLI users have no Slack ID)."""
    if not user:
        return "someone"
    if _SLACK_USER_ID.match(user):
        return f"<@{user}>"
    return escape(user)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 link"``, ``"3 links"``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"
