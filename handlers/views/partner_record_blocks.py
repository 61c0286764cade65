"""A partner's track record (:mod:`bot.agreements.record`) as Block Kit, under ``/linkcheck partner``'s
answer: the totals in one section, then one line per agreement (newest first, at most
:data:`MAX_RECORD_AGREEMENTS`). Pure: no Slack calls."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, MarkdownTextObject, SectionBlock

from bot.agreements.record import PartnerRecord
from bot.agreements.report import agreement_record_line, plural, share_words
from handlers.views.mrkdwn import escape, truncate_mrkdwn
from handlers.views.report_blocks import MAX_SECTION_TEXT

# Lines of agreements shown; a partner with more has them all in `linkpact partner show`.
MAX_RECORD_AGREEMENTS = 10
MAX_CONTEXT_TEXT = 3000  # Block Kit: a context element's text


def build_partner_record_blocks(record: PartnerRecord) -> list[Block]:
    """At most four blocks: a divider, the totals, the agreements, and a note when some are left out."""
    median = record.median_days_to_deliver
    delivery = f"delivered on {record.delivered} of {plural(record.delivered + record.awaited, 'agreement')}"
    if median is not None:
        delivery += f", median {median:g} days after the start"
    lines = [
        f"*Track record of {escape(record.domain)}* ({plural(len(record.agreements), 'agreement')})",
        f"• Days to deliver: {delivery}",
        f"• Their links: {share_words(record.live_checks, record.definite_checks)}",
        f"• {plural(record.losses, 'loss', 'losses')}, {plural(record.reclaims, 'reclaim')} "
        "(a lost link of theirs live again)",
    ]
    shown = record.agreements[:MAX_RECORD_AGREEMENTS]
    blocks: list[Block] = [
        DividerBlock(),
        SectionBlock(text=MarkdownTextObject(text=truncate_mrkdwn("\n".join(lines), MAX_SECTION_TEXT))),
        SectionBlock(
            text=MarkdownTextObject(
                text=truncate_mrkdwn(
                    "\n".join(f"• {escape(agreement_record_line(a))}" for a in shown), MAX_SECTION_TEXT
                )
            )
        ),
    ]
    hidden = len(record.agreements) - len(shown)
    if hidden > 0:
        note = f"_…and {hidden} more {'agreement' if hidden == 1 else 'agreements'} with this partner_"
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=truncate_mrkdwn(note, MAX_CONTEXT_TEXT))])
        )
    return blocks
