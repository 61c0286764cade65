"""Block Kit for the weekly digest and its prune proposals: pure functions, ``Digest`` in, blocks out.

A digest is planned as one channel message (the summary and the first rows of every section, the first
prune proposals with their buttons) plus replies in that message's thread (the rest of each list, the
remaining proposals), so the channel stays readable and every message stays inside Slack's limits
(Block Kit reference, docs.slack.dev/reference/block-kit: 50 blocks a message, 3,000 characters a
section's text, 10 fields a section, 150 characters a header). When anything was left out of the
channel message, :func:`digest_csv` gives every row for an attachment in the thread.

Each proposal is a section (``block_id`` ``prune_proposal:<id>``) followed by an actions block
(``prune_actions:<id>``) with **Approve prune**, **Keep** and **Recheck now**; the button handlers
(:mod:`handlers.actions.prune_buttons`) find those blocks by id to update the message in place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.agreements.model import Agreement, Direction
from bot.linkcheck.report import neutralise_cell
from bot.monitoring.digest import AgreementDue, Digest, DigestLink, trend_sparkline
from bot.monitoring.prune import PruneProposal
from handlers.views.message_blocks import pack_lines
from handlers.views.mrkdwn import escape, fallback, link, mention, plural, truncate, truncate_mrkdwn
from handlers.views.report_blocks import MAX_BLOCKS, MAX_FIELDS, MAX_HEADER_TEXT, MAX_SECTION_TEXT

APPROVE_PRUNE_ACTION = "linkpact_prune_approve"
KEEP_ACTION = "linkpact_prune_keep"
RECHECK_PROPOSAL_ACTION = "linkpact_prune_recheck"
PROPOSAL_SECTION_PREFIX = "prune_proposal:"
PROPOSAL_ACTIONS_PREFIX = "prune_actions:"

# Rows of each list in the channel message: enough to act on at a glance; the thread has the rest.
MAX_MAIN_ROWS = 10
# Proposals (with their buttons, two blocks each) in the channel message; the rest go to the thread.
MAX_MAIN_PROPOSALS = 10
# Rows of one list shown in Slack at all (message and thread); beyond that only the CSV has them, so a
# bad week with thousands of lost links does not become dozens of thread replies.
MAX_THREAD_ROWS = 200
# Link labels are shortened more than in a report: a digest row names two URLs and a partner.
LABEL_CHARS = 70
MAX_REASON_CHARS = 400
CSV_COLUMNS = (
    "section", "partner", "agreement_id", "owner", "source_url", "target_url", "reason",
    "referring_domain", "deadline", "at", "last_checked",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DigestMessages:
    """One digest as Slack messages: ``main`` for the channel, ``replies`` for its thread (each at most
    50 blocks), ``csv`` with every row when the channel message left rows out, ``text`` the notification
    fallback."""

    text: str
    main: list[Block]
    replies: list[list[Block]]
    csv: str | None


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    lines: list[str]


def plan_digest(digest: Digest, *, interactive: bool = True) -> DigestMessages:
    """Split ``digest`` into the channel message and thread replies (see the module docstring).

    ``interactive=False`` leaves the buttons out (an ephemeral preview: nothing there should act)."""
    main: list[Block] = [_header(digest), _summary(digest), _context(digest)]
    thread: list[Block] = []
    cut = False
    for section in _sections(digest):
        shown, rest = _take_rows(section.lines)
        text = f"*{section.title}* ({len(section.lines)})\n" + "\n".join(shown)
        if rest:
            cut = True
            text += f"\n_…and {len(rest)} more in the thread_"
        main.append(SectionBlock(text=MarkdownTextObject(text=truncate_mrkdwn(text, MAX_SECTION_TEXT))))
        if rest:
            thread += _continued(section, first=len(shown) + 1, rest=rest)
    if digest.proposals:
        main.append(DividerBlock())
        shown_proposals = digest.proposals[:MAX_MAIN_PROPOSALS]
        more = len(digest.proposals) - len(shown_proposals)
        title = f"*Proposed for pruning* ({len(digest.proposals)}): a person decides each one."
        if more:
            title += f" The first {len(shown_proposals)} are here, {more} more in the thread."
        main.append(SectionBlock(text=MarkdownTextObject(text=title)))
        for proposal in shown_proposals:
            main += proposal_blocks(proposal, interactive=interactive)
        for proposal in digest.proposals[MAX_MAIN_PROPOSALS:]:
            thread += proposal_blocks(proposal, interactive=interactive)
    if digest.is_quiet:
        main.append(SectionBlock(text=MarkdownTextObject(text="Nothing changed in this period.")))
    if len(main) > MAX_BLOCKS:  # by construction it stays far below; never send a message Slack refuses
        thread = main[MAX_BLOCKS - 1 :] + thread
        main = [*main[: MAX_BLOCKS - 1], _note("_…continued in the thread_")]
    return DigestMessages(
        text=digest_text(digest),
        main=main,
        replies=_chunk(thread),
        csv=digest_csv(digest) if cut else None,
    )


def build_digest_blocks(digest: Digest, *, interactive: bool = True) -> list[Block]:
    """The channel message of ``digest`` (at most 50 blocks); :func:`plan_digest` has the thread too."""
    return plan_digest(digest, interactive=interactive).main


def digest_text(digest: Digest) -> str:
    """The one-line notification text: what needs attention, and the trend."""
    counts = [
        plural(len(digest.lost), "lost link"),
        plural(len(digest.restored), "restored link"),
        plural(len(digest.proposals), "prune proposal"),
    ]
    text = f"Linkpact digest {digest.period}: " + ", ".join(counts)
    spark = trend_sparkline(digest)
    return fallback(f"{text} · {spark}" if spark else text)


# -- proposals ----------------------------------------------------------------------------------------


def proposal_blocks(proposal: PruneProposal, *, interactive: bool = True) -> list[Block]:
    """The section of one prune proposal and, when ``interactive``, its buttons."""
    blocks: list[Block] = [proposal_section(proposal)]
    if interactive:
        blocks.append(proposal_actions(proposal))
    return blocks


def proposal_section(proposal: PruneProposal, *, note: str | None = None) -> SectionBlock:
    """``#id partner · owner`` and one line per reason; ``note`` (mrkdwn) is appended when given."""
    lines = [
        f"*#{escape(proposal.agreement_id)} {escape(proposal.partner)}* · owner {mention(proposal.owner)}"
    ]
    lines += [f"• {escape(truncate(reason.text, MAX_REASON_CHARS))}" for reason in proposal.reasons]
    if note:
        lines.append(note)
    return SectionBlock(
        block_id=PROPOSAL_SECTION_PREFIX + proposal.id,
        text=MarkdownTextObject(text=truncate_mrkdwn("\n".join(lines), MAX_SECTION_TEXT)),
    )


def proposal_actions(proposal: PruneProposal) -> ActionsBlock:
    """**Approve prune** (danger, behind a confirmation), **Keep**, **Recheck now**; value: proposal id."""
    confirm = ConfirmObject(
        title="Prune this partnership?",
        # Plain text: the partner's name is shown as typed, never read as markup.
        text=PlainTextObject(
            text=truncate(
                f"#{proposal.agreement_id} {proposal.partner} will be marked pruned and its owner told "
                "which of our pages still link to the partner. This cannot be undone from Slack.",
                300,
            )
        ),
        confirm="Prune",
        deny="Cancel",
        style="danger",
    )
    return ActionsBlock(
        block_id=PROPOSAL_ACTIONS_PREFIX + proposal.id,
        elements=[
            ButtonElement(
                text="Approve prune",
                action_id=APPROVE_PRUNE_ACTION,
                value=proposal.id,
                style="danger",
                confirm=confirm,
            ),
            ButtonElement(text="Keep", action_id=KEEP_ACTION, value=proposal.id),
            ButtonElement(text="Recheck now", action_id=RECHECK_PROPOSAL_ACTION, value=proposal.id),
        ],
    )


def proposal_outcome(proposal_id: str, text: str) -> ContextBlock:
    """What replaces a proposal's buttons once it is decided (same ``block_id`` as the buttons)."""
    return ContextBlock(
        block_id=PROPOSAL_ACTIONS_PREFIX + proposal_id,
        elements=[MarkdownTextObject(text=truncate_mrkdwn(text, MAX_SECTION_TEXT))],
    )


def slack_date(iso: str | None, *, with_time: bool = True) -> str:
    """A date Slack shows in each reader's own time zone (``<!date^…>``, "Formatting text for app
    surfaces"), with the UTC value as the fallback text."""
    if not iso:
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return escape(iso)
    token = "{date_short_pretty} at {time}" if with_time else "{date_short_pretty}"
    fallback = iso[:16].replace("T", " ") + " UTC" if with_time else iso[:10]
    return f"<!date^{int(moment.timestamp())}^{token}|{fallback}>"


def outcome_text(proposal: PruneProposal) -> str:
    """The outcome line of a decided proposal, for the message update."""
    status = proposal.status.value
    who = mention(proposal.decided_by)
    if status == "approved":
        return f":scissors: *Pruned* by {who} on {slack_date(proposal.decided_at)}."
    if status == "kept":
        until = slack_date(proposal.snoozed_until, with_time=False)
        return f":shield: *Kept* by {who} on {slack_date(proposal.decided_at)}; asked again after {until}."
    if status == "stale":
        return ":information_source: No longer applies: the reasons went away; nothing was pruned."
    return ""


def health_note(agreement: Agreement, *, rechecked_at: str, by: str) -> str:
    """One line per promised link after a "Recheck now": whose page, healthy or why not."""
    lines = [f"_Rechecked {slack_date(rechecked_at)} by {mention(by)}:_"]
    for item in agreement.links:
        side = "our link on" if item.direction is Direction.OURS else "their link on"
        state = item.health.value.replace("_", " ")
        reason = f" ({escape(item.reason)})" if item.reason and item.health.value != "healthy" else ""
        unknown = f", page unreadable: {escape(item.unknown_reason)}" if item.unknown_reason else ""
        lines.append(
            f"  {side} {link(item.source_url, max_label_chars=LABEL_CHARS)}: {state}{reason}{unknown}"
        )
    return "\n".join(lines)


# -- sections -------------------------------------------------------------------------------------------


def _sections(digest: Digest) -> list[_Section]:
    candidates = [
        _Section("Lost links", [_link_line(r, with_reason=True) for r in digest.lost]),
        _Section("Restored links", [_link_line(r, with_reason=False) for r in digest.restored]),
        _Section("New referring domains",
                 [f"• {escape(d)}" for d in digest.new_referring_domains]),
        _Section("Lost referring domains (no live link left)",
                 [f"• {escape(d)}" for d in digest.lost_referring_domains]),
        _Section("One-sided agreements (ours is live, theirs is missing)",
                 [_due_line(a) for a in digest.one_sided]),
        _Section("Overdue agreements", [_due_line(a) for a in digest.overdue]),
        _Section("Pruned, but our link is still up",
                 [_still_linking_line(a) for a in digest.still_linking_pruned]),
    ]  # fmt: skip
    return [s for s in candidates if s.lines]


def _link_line(row: DigestLink, *, with_reason: bool) -> str:
    line = (
        f"• {link(row.source_url, max_label_chars=LABEL_CHARS)} → "
        f"{link(row.target_url, max_label_chars=LABEL_CHARS)}"
    )
    if with_reason and row.reason:
        line += f" · `{escape(row.reason)}`"
    if row.partner:
        line += f" · {escape(row.partner)}" + (f" (#{escape(row.agreement_id)})" if row.agreement_id else "")
    return line


def _due_line(row: AgreementDue) -> str:
    missing = ", ".join(link(url, max_label_chars=LABEL_CHARS) for url in row.missing[:3])
    more = f" and {len(row.missing) - 3} more" if len(row.missing) > 3 else ""
    line = f"• #{escape(row.id)} {escape(row.partner)} · owner {mention(row.owner)} · deadline {row.deadline}"
    return line + (f" · not live: {missing}{more}" if missing else "") + f" · {_checked(row)}"


def _checked(row: AgreementDue) -> str:
    return f"last checked {slack_date(row.last_checked)}" if row.last_checked else "not checked yet"


def _still_linking_line(row: AgreementDue) -> str:
    # For a pruned agreement, AgreementDue.missing holds our pages that still carry the partner link.
    pages = ", ".join(escape(url) for url in row.missing[:3])
    more = f" and {len(row.missing) - 3} more" if len(row.missing) > 3 else ""
    return (
        f"• #{escape(row.id)} {escape(row.partner)} · {mention(row.owner)}: our link to the partner is "
        f"still up; remove it from {pages}{more} · {_checked(row)}"
    )


def _take_rows(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """The first rows that fit one section (at most :data:`MAX_MAIN_ROWS`), and the rest."""
    budget = MAX_SECTION_TEXT - 200  # room for the title and the "and N more" line
    shown: list[str] = []
    used = 0
    for line in lines[:MAX_MAIN_ROWS]:
        if shown and used + len(line) + 1 > budget:
            break
        shown.append(line)
        used += len(line) + 1
    return shown, list(lines[len(shown) :])


def _continued(section: _Section, *, first: int, rest: Sequence[str]) -> list[Block]:
    """The rest of a list for the thread: packed sections, at most :data:`MAX_THREAD_ROWS` rows in all."""
    room = max(MAX_THREAD_ROWS - (first - 1), 0)
    listed, hidden = list(rest[:room]), len(rest) - room
    last = first + len(listed) - 1
    lines = [f"*{section.title}*, continued ({first}–{last} of {len(section.lines)})", *listed]
    if hidden > 0:
        lines.append(f"_…and {hidden} more in the attached CSV_")
    return pack_lines(lines)


def _chunk(blocks: Sequence[Block]) -> list[list[Block]]:
    """Thread replies of at most 50 blocks; a proposal's section and buttons stay in the same reply."""
    replies: list[list[Block]] = []
    current: list[Block] = []
    for index, block in enumerate(blocks):
        keep_with_next = (
            isinstance(block, SectionBlock)
            and (block.block_id or "").startswith(PROPOSAL_SECTION_PREFIX)
            and index + 1 < len(blocks)
        )
        needed = 2 if keep_with_next else 1
        if current and len(current) + needed > MAX_BLOCKS:
            replies.append(current)
            current = []
        current.append(block)
    if current:
        replies.append(current)
    return replies


# -- header, summary ------------------------------------------------------------------------------------


def _header(digest: Digest) -> HeaderBlock:
    return HeaderBlock(text=truncate(f"Linkpact weekly digest · {digest.period}", MAX_HEADER_TEXT))


def _summary(digest: Digest) -> SectionBlock:
    totals = digest.totals
    domains = totals.get("referring_domains", 0)
    change = f" (+{len(digest.new_referring_domains)} / −{len(digest.lost_referring_domains)})"
    states = totals.get("agreements") or {}
    agreements = " · ".join(f"{n} {state.replace('_', '-')}" for state, n in states.items() if n) or "none"
    fields = [
        f"*Referring domains*\n{domains}{change}",
        f"*Live backlinks*\n{totals.get('live_links', 0)}",
        f"*Lost links*\n{len(digest.lost)}",
        f"*Restored*\n{len(digest.restored)}",
        f"*Agreements*\n{agreements}",
        f"*Proposed for pruning*\n{len(digest.proposals)}",
    ]
    return SectionBlock(
        fields=[MarkdownTextObject(text=truncate_mrkdwn(f, 2000)) for f in fields[:MAX_FIELDS]]
    )


def _context(digest: Digest) -> ContextBlock:
    period = f"{digest.since[:10]} to {digest.until[:10]}"
    spark = trend_sparkline(digest)
    return _note(f"{period} · {escape(spark)}" if spark else period)


def _note(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate_mrkdwn(text, MAX_SECTION_TEXT))])


# -- CSV -------------------------------------------------------------------------------------------------


def digest_csv(digest: Digest) -> str:
    """Every row of every digest list as CSV (:data:`CSV_COLUMNS`; formula-looking cells neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)

    def row(section: str, **values: Any) -> None:
        writer.writerow(
            [neutralise_cell(section), *(neutralise_cell(values.get(c, "")) for c in CSV_COLUMNS[1:])]
        )

    def links(section: str, rows: Sequence[DigestLink]) -> None:
        for r in rows:
            row(
                section, partner=r.partner, agreement_id=r.agreement_id, source_url=r.source_url,
                target_url=r.target_url, reason=r.reason, referring_domain=r.referring_domain, at=r.at,
            )  # fmt: skip

    def dues(section: str, rows: Sequence[AgreementDue], reason: Callable[[AgreementDue], str]) -> None:
        for r in rows:
            for url in r.missing or ("",):
                row(section, partner=r.partner, agreement_id=r.id, owner=r.owner, source_url=url,
                    reason=reason(r), deadline=r.deadline, last_checked=r.last_checked or "")  # fmt: skip

    links("lost", digest.lost)
    links("restored", digest.restored)
    for domain in digest.new_referring_domains:
        row("new_referring_domain", referring_domain=domain)
    for domain in digest.lost_referring_domains:
        row("lost_referring_domain", referring_domain=domain)
    dues("one_sided", digest.one_sided, lambda r: r.state)
    dues("overdue", digest.overdue, lambda r: r.state)
    for r in digest.still_linking_pruned:
        row("pruned_still_linking", partner=r.partner, agreement_id=r.id, owner=r.owner,
            reason="our link to the partner is still up", last_checked=r.last_checked or "")  # fmt: skip
    for p in digest.proposals:
        row("prune_proposal", partner=p.partner, agreement_id=p.agreement_id, owner=p.owner,
            reason="; ".join(r.text for r in p.reasons), at=p.created_at)  # fmt: skip
    return buffer.getvalue()


def csv_filename(digest: Digest) -> str:
    return f"linkpact-digest-{digest.period}.csv"


def chart_filename(digest: Digest) -> str:
    return f"linkpact-trend-{digest.period}.png"
