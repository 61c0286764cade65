r"""Small, pure helpers for Slack's mrkdwn text.

Text from checked pages (anchors, URLs, titles), from people (partner names, notes, file names) and from
errors that quote either is untrusted: a page could carry ``<!channel>`` in an anchor. Slack's
"Formatting text for app surfaces" page says to escape ``&``, ``<`` and ``>`` as HTML entities in any
text that should not be read as markup, in mrkdwn text objects and in a message's top-level ``text``
alike; :func:`escape` does that, :func:`fallback` does it for a top-level ``text``.

The rules every Slack surface of Linkpact keeps:

- untrusted text reaches mrkdwn only through :func:`escape` (or :func:`link`, :func:`fallback`,
  :func:`clip`, which escape); the only markup in a message is the markup Linkpact writes: links
  (``<url|label>``), mentions of Slack user IDs (``<@U…>``) and dates (``<!date^…>``), never
  ``<!channel>``, ``<!here>`` or ``<!everyone>``;
- text is cut with :func:`truncate` before escaping (raw text), or with :func:`truncate_mrkdwn` after
  (mrkdwn), which never cuts inside an entity (``&amp;``) or inside a link or mention; both cut on a
  grapheme-cluster boundary (Unicode UAX #29, through the ``regex`` module's ``\X``), so an emoji
  sequence or a letter with its accents is never split.
"""

from __future__ import annotations

import re

import regex

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


# A message's top-level text is a notification's preview; Slack cuts it at 40,000 characters
# (chat.postMessage, "Truncating content"), ours stay far shorter: a section's worth.
MAX_FALLBACK_CHARS = 3000
# The longest entity escape() writes is "&amp;" (5 characters).
_MAX_ENTITY_CHARS = 5
# A grapheme cluster longer than this (pathological stacks of combining marks) may be split.
_MAX_CLUSTER_CHARS = 64
_GRAPHEME = regex.compile(r"\X")


def truncate(text: str, limit: int) -> str:
    """Raw ``text`` cut to at most ``limit`` characters on a grapheme-cluster boundary, ending in "…"
    when cut. For mrkdwn (already escaped) use :func:`truncate_mrkdwn`."""
    if len(text) <= limit:
        return text
    return text[: _grapheme_floor(text, max(limit - 1, 0))] + ELLIPSIS


def truncate_mrkdwn(text: str, limit: int) -> str:
    """mrkdwn ``text`` cut to at most ``limit`` characters, ending in "…" when cut, never inside an
    entity (``&amp;``, ``&lt;``, ``&gt;``), a link, a mention or a date (``<…>``), nor a grapheme cluster.

    In escaped mrkdwn every ``&`` starts an entity and every ``<`` starts markup Linkpact wrote, so a cut
    after an ``&`` without its ``;``, or after a ``<`` without its ``>``, moves before it.
    """
    if len(text) <= limit:
        return text
    cut = _grapheme_floor(text, max(limit - 1, 0))
    opened = text.rfind("<", 0, cut)
    if opened != -1 and ">" not in text[opened:cut]:
        cut = opened
    amp = text.rfind("&", max(cut - _MAX_ENTITY_CHARS, 0), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp
    return text[:cut] + ELLIPSIS


def clip(text: str, limit: int) -> str:
    """Raw ``text`` escaped for mrkdwn, then cut so that the escaped form is at most ``limit`` characters
    (:func:`truncate_mrkdwn`: no entity is split)."""
    return truncate_mrkdwn(escape(text), limit)


def fallback(text: str) -> str:
    """A message's top-level ``text`` (notifications, screen readers) from raw ``text``: escaped, since
    Slack reads that text as mrkdwn too, and cut to :data:`MAX_FALLBACK_CHARS`."""
    return clip(text, MAX_FALLBACK_CHARS)


def _grapheme_floor(text: str, index: int) -> int:
    """The largest grapheme-cluster boundary of ``text`` at or before ``index``."""
    if index <= 0:
        return 0
    if index >= len(text):
        return len(text)
    best = 0
    for match in _GRAPHEME.finditer(text, 0, min(len(text), index + _MAX_CLUSTER_CHARS)):
        if match.end() > index:
            return int(match.start())
        best = match.end()
    return int(best)


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
