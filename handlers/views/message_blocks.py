"""Block Kit for the short answers of ``/linkcheck``: usage, errors, notices, tracked backlinks.

Pure functions; limits as in :mod:`handlers.views.report_blocks` (Slack Block Kit reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from handlers.views.mrkdwn import escape, fallback, link, mention, plural, truncate, truncate_mrkdwn
from handlers.views.report_blocks import MAX_SECTION_TEXT

COMMAND = "/linkcheck"
# Tracked backlinks listed in one ephemeral answer; `linkpact tracked` in a terminal lists them all.
MAX_LISTED_TRACKED = 40
MAX_MESSAGE_CHARS = 1000

USAGE_LINES = (
    f"• `{COMMAND} <url>`: check every link on the page and every tracked backlink to it; "
    "the report is posted in this channel",
    f"• `{COMMAND} track <source-url> <target-url>`: track a backlink (the source page should link to "
    "the target)",
    f"• `{COMMAND} untrack <source-url> <target-url>`: stop tracking that backlink",
    f"• `{COMMAND} tracked [target-url]`: list tracked backlinks, all or those to one target",
    f"• `{COMMAND} partner`: log a link partnership in a form; Linkpact verifies every promised link "
    "right away and posts the result here (also: the *Log link partnership* message shortcut, and the "
    "Home tab)",
    f"• `{COMMAND} partner <id|domain>`: one partnership with each link's verdict, its reason and the "
    "history",
    f"• `{COMMAND} partners [state]`: partnerships by state (pending, live, one_sided, broken, pruned), "
    "newest first",
    f"• `{COMMAND} partners export`: the partnerships as a CSV file (Linkody's columns first) in this "
    "channel",
    f"• `{COMMAND} recheck [id|domain]`: recheck every tracked backlink and promised link now (or one "
    "partnership's) and see what changed",
    f"• `{COMMAND} digest`: preview the weekly digest, only to you (nothing is posted)",
    f"• `{COMMAND} import [--target-site URL] [--format NAME]`: import the backlink export you just shared "
    "here (Search Console, Ahrefs, Semrush, Moz, Majestic, a list of URLs; up to 50 MB); the new "
    "backlinks are then verified. Or send the file to Linkpact in a direct message",
    f"• `{COMMAND} audit <our-site> [--pages N]`: crawl our site and list the reciprocal links and "
    "three-way cycles we already have, and the red flags, with the CSV and a *Propose prunes* button",
    f"• `{COMMAND} help`: this message",
)
VERDICTS_NOTE = (
    "Verdicts: *ok* (2xx, possibly after redirects), *broken* (4xx/5xx, no such domain, redirect loop, "
    "TLS error), *unknown* (timeouts, 503, bot walls, rate limits: never called broken), *skipped* (mailto:, "
    "tel:, javascript:, addresses Linkpact may not visit)."
)


class TrackedRow(Protocol):
    """What the tracked list shows of a tracked backlink (``bot.engine.TrackedBacklink`` fits)."""

    @property
    def source_url(self) -> str: ...
    @property
    def target_url(self) -> str: ...
    @property
    def added_by(self) -> str | None: ...
    @property
    def added_at(self) -> object: ...


def help_text() -> str:
    """The top-level text of the usage answer (escaped: its ``<url>`` is not a link)."""
    return fallback(
        f"Usage: {COMMAND} <url> | track SOURCE TARGET | untrack SOURCE TARGET | tracked [TARGET] | "
        "partner [ID|DOMAIN] | partners [STATE|export] | recheck [ID|DOMAIN] | digest | "
        "import [--target-site URL] [--format NAME] | audit SITE [--pages N] | help"
    )


def build_help_blocks() -> list[Block]:
    """Usage of ``/linkcheck`` and what the verdicts mean."""
    intro = (
        "*Linkpact* reports the health of every link on a page (outbound) and of every tracked backlink "
        "that should point to it (inbound), and keeps track of link partnerships: who promised which "
        "links, and whether both directions hold."
    )
    return [
        # Escaped: "<url>" in the usage is literal text, not a link (Slack reads <…> even in code spans).
        SectionBlock(text=MarkdownTextObject(text=intro + "\n" + "\n".join(escape(u) for u in USAGE_LINES))),
        ContextBlock(elements=[MarkdownTextObject(text=VERDICTS_NOTE)]),
    ]


def build_error_blocks(message: str, *, hint: str | None = None) -> list[Block]:
    """A warning with ``message`` shown literally (escaped, at most 1,000 characters) and an optional hint."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f":warning: {escape(truncate(message, MAX_MESSAGE_CHARS))}")
        )
    ]
    if hint:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=hint)]))
    return blocks


def build_notice_blocks(message_mrkdwn: str) -> list[Block]:
    """One section of already-formatted mrkdwn (callers escape untrusted parts with ``link``/``escape``)."""
    return [SectionBlock(text=MarkdownTextObject(text=truncate_mrkdwn(message_mrkdwn, MAX_SECTION_TEXT)))]


def build_track_blocks(source_url: str, target_url: str, *, newly_tracked: bool) -> list[Block]:
    """Answer to ``/linkcheck track``."""
    pair = f"{link(source_url)} → {link(target_url)}"
    if newly_tracked:
        text = (
            f":white_check_mark: Now tracking the backlink {pair}. "
            f"`{COMMAND} {escape(target_url)}` verifies it along with the page."
        )
    else:
        text = f"Already tracking the backlink {pair}."
    return build_notice_blocks(text)


def build_untrack_blocks(source_url: str, target_url: str, *, removed: bool) -> list[Block]:
    """Answer to ``/linkcheck untrack``."""
    pair = f"{link(source_url)} → {link(target_url)}"
    if removed:
        return build_notice_blocks(f"Stopped tracking the backlink {pair}.")
    return build_notice_blocks(f"The backlink {pair} was not tracked, so nothing changed.")


def build_tracked_blocks(backlinks: Sequence[TrackedRow], *, target_url: str | None = None) -> list[Block]:
    """The tracked backlinks (all, or those to ``target_url``), at most 40 listed, then "and N more"."""
    scope = f" to {link(target_url)}" if target_url else ""
    if not backlinks:
        return build_notice_blocks(
            f"No tracked backlinks{scope}. Add one with "
            f"`{COMMAND} track &lt;source-url&gt; &lt;target-url&gt;`."
        )
    lines = [f"*{plural(len(backlinks), 'tracked backlink')}*{scope}"]
    for row in backlinks[:MAX_LISTED_TRACKED]:
        added = str(row.added_at)[:10] if row.added_at else ""
        by = f"added by {mention(row.added_by)}" if row.added_by else "added"
        lines.append(
            f"• {link(row.source_url)} → {link(row.target_url)} · {by}"
            + (f" on {escape(added)}" if added else "")
        )
    hidden = len(backlinks) - MAX_LISTED_TRACKED
    if hidden > 0:
        lines.append(f"_…and {hidden} more (`linkpact tracked` lists them all)_")
    return pack_lines(lines)


def pack_lines(lines: Sequence[str]) -> list[Block]:
    """mrkdwn ``lines`` in as few sections as hold them (3,000 characters each; a longer line is cut)."""
    sections: list[Block] = []
    current = ""
    for line in (truncate_mrkdwn(line, MAX_SECTION_TEXT) for line in lines):
        if current and len(current) + 1 + len(line) > MAX_SECTION_TEXT:
            sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
    return sections


def build_not_in_channel_blocks() -> list[Block]:
    """Why a report is only visible to the requester, and how to share reports in the channel."""
    return [
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Linkpact is not a member of this conversation, so only you will see this report. "
                    "Invite it (`/invite @Linkpact`) to post reports, with their CSV, for everyone."
                )
            ]
        )
    ]
