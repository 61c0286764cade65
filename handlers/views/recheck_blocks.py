"""Block Kit for the answer to ``/linkcheck recheck``: counts by verdict and what changed (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject

from bot.backlinks.changes import Change
from bot.monitoring.prune import PruneProposal
from bot.monitoring.recheck import RecheckSummary
from handlers.views.message_blocks import pack_lines
from handlers.views.mrkdwn import escape, fallback, link, plural, truncate_mrkdwn
from handlers.views.report_blocks import MAX_SECTION_TEXT

# Changes listed in one ephemeral answer; the weekly digest and `linkpact recheck` have all of them.
MAX_LISTED_CHANGES = 25
LABEL_CHARS = 70


def recheck_text(summary: RecheckSummary, proposals: Sequence[PruneProposal]) -> str:
    """One line: what was rechecked and how many changes and prune proposals there are."""
    return fallback(
        f"Rechecked {plural(summary.backlinks, 'tracked backlink')} and "
        f"{plural(summary.promised_links, 'promised link')}: {plural(len(summary.changes), 'change')}, "
        f"{plural(len(proposals), 'open prune proposal')}"
    )


def build_recheck_blocks(
    summary: RecheckSummary, proposals: Sequence[PruneProposal], *, agreement_ref: str | None = None
) -> list[Block]:
    """The summary (verdict counts), then one line per change (at most 25), then open proposals."""
    scope = f" of agreement #{escape(agreement_ref.lstrip('#'))}" if agreement_ref else ""
    verdicts = (
        ", ".join(f"{n} {escape(v)}" for v, n in sorted(summary.verdicts.items())) or "nothing to check"
    )
    head = (
        f"*Recheck{scope} done*: {plural(summary.backlinks, 'tracked backlink')} and "
        f"{plural(summary.promised_links, 'promised link')} · {verdicts}"
    )
    lines = [head]
    if summary.changes:
        lines.append(f"*{plural(len(summary.changes), 'change')}:*")
        lines += [change_line(c) for c in summary.changes[:MAX_LISTED_CHANGES]]
        hidden = len(summary.changes) - MAX_LISTED_CHANGES
        if hidden > 0:
            lines.append(f"_…and {hidden} more (`linkpact recheck --json` or the weekly digest)_")
    else:
        lines.append("No changes since the previous check.")
    blocks = pack_lines(lines)
    if proposals:
        names = ", ".join(f"#{escape(p.agreement_id)} {escape(p.partner)}" for p in proposals[:10])
        more = f" and {len(proposals) - 10} more" if len(proposals) > 10 else ""
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=truncate_mrkdwn(
                            f"Proposed for pruning: {names}{more}. They come with buttons in the weekly "
                            "digest (`/linkcheck digest` previews it).",
                            MAX_SECTION_TEXT,
                        )
                    )
                ]
            )
        )
    return blocks


def change_line(change: Change) -> str:
    """``• lost: <source> → <target> `link_removed` · Partner``."""
    if change.source_url:
        what = (
            f"{link(change.source_url, max_label_chars=LABEL_CHARS)} → "
            f"{link(change.target_url, max_label_chars=LABEL_CHARS)}"
        )
    else:
        what = f"agreement #{escape(change.agreement_id)}"
    line = f"• {escape(change.kind.value.replace('_', ' '))}: {what}"
    if change.before or change.after:
        line += f" ({escape(change.before or '—')} → {escape(change.after or '—')})"
    elif change.reason:
        line += f" `{escape(change.reason)}`"
    if change.partner:
        line += f" · {escape(change.partner)}"
    return line
