"""The App Home tab: the partnership dashboard, then what Linkpact does and how to use it (pure).

Agreements are grouped by state, overdue ones first (past the deadline with a link not healthy yet: the
ones to chase), each with a "Re-check" button. A Home view holds at most 100 blocks (Slack docs, "Views"
reference); the dashboard lists at most :data:`MAX_HOME_AGREEMENTS` agreements, then "and N more".
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.agreements.model import Agreement
from handlers.views.agreement_blocks import (
    STATE_ICONS,
    agreement_summary_line,
    fit,
    group_by_state,
)
from handlers.views.message_blocks import build_help_blocks
from handlers.views.mrkdwn import escape, plural, truncate, truncate_mrkdwn

# Slack's limit for a Home tab view.
MAX_HOME_BLOCKS = 100
# One section per agreement: 40 keeps the tab readable and leaves room for group titles and usage.
MAX_HOME_AGREEMENTS = 40
MAX_NOTE_CHARS = 500

RECHECK_ACTION = "recheck_agreement"
OPEN_LOG_PARTNERSHIP_ACTION = "open_log_partnership"


def build_home_view(
    agreements: Sequence[Agreement] | None = None,
    *,
    today: date | None = None,
    rechecking: Collection[str] = (),
    note: str | None = None,
) -> View:
    """A ``home`` view: the dashboard of ``agreements`` (None: no dashboard, usage only), then the usage
    of ``/linkcheck``. ``rechecking``: ids whose re-check is running (their button says so). ``note``:
    a line of plain text shown above the dashboard (e.g. why the agreements could not be read)."""
    blocks: list[Block] = [HeaderBlock(text="Linkpact")]
    if agreements is not None or note:
        blocks += _dashboard(agreements or [], today or date.today(), rechecking, note)
        blocks.append(DividerBlock())
    blocks += build_help_blocks()
    return View(type="home", blocks=fit(blocks, MAX_HOME_BLOCKS))


def _dashboard(
    agreements: Sequence[Agreement], today: date, rechecking: Collection[str], note: str | None
) -> list[Block]:
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text="*Link partnerships*: who promised which links, and whether both directions hold."
            )
        ),
        ActionsBlock(
            block_id="home_actions",
            elements=[
                ButtonElement(
                    text="Log a partnership",
                    action_id=OPEN_LOG_PARTNERSHIP_ACTION,
                    value="home",
                    style="primary",
                )
            ],
        ),
    ]
    if note:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=f":warning: {escape(truncate(note, MAX_NOTE_CHARS))}"))
        )
    if not agreements:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="No partnerships logged yet.")]))
        return blocks
    overdue = [a for a in agreements if a.overdue(today)]
    others = [a for a in agreements if not a.overdue(today)]
    counts = " · ".join(
        [f"{STATE_ICONS[s]} {len(m)} {s.value}" for s, m in group_by_state(agreements, today)]
        + ([f":alarm_clock: {len(overdue)} overdue"] if overdue else [])
    )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=counts)]))
    groups: list[tuple[str, list[Agreement]]] = []
    if overdue:
        groups.append(
            (f":alarm_clock: *Overdue* ({len(overdue)}): past the deadline, a link still missing", overdue)
        )
    groups += [(f"{STATE_ICONS[s]} *{s.value}* ({len(m)})", m) for s, m in group_by_state(others, today)]
    shown = 0
    for title, members in groups:
        if shown >= MAX_HOME_AGREEMENTS:
            break
        blocks.append(SectionBlock(text=MarkdownTextObject(text=title)))
        for agreement in members[: MAX_HOME_AGREEMENTS - shown]:
            blocks.append(_agreement_section(agreement, today, rechecking=agreement.id in rechecking))
            shown += 1
    hidden = len(agreements) - shown
    if hidden > 0:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"…and {plural(hidden, 'more partnership')}: `/linkcheck partners` lists "
                        "them all."
                    )
                ]
            )
        )
    return blocks


def _agreement_section(agreement: Agreement, today: date, *, rechecking: bool) -> SectionBlock:
    label = "Re-checking…" if rechecking else "Re-check"
    return SectionBlock(
        block_id=f"agreement_{agreement.id}",
        text=MarkdownTextObject(text=truncate_mrkdwn(agreement_summary_line(agreement, today), 3000)),
        accessory=ButtonElement(text=label, action_id=RECHECK_ACTION, value=agreement.id),
    )
