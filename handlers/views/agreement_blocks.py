"""Block Kit for partnership agreements: one agreement with its per-link verdicts, the list by state, and
the result posted after logging (pure functions; limits as in :mod:`handlers.views.report_blocks`).

Every text that comes from people or pages (partner names, anchors, notes, URLs) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.agreements.model import (
    QUALIFICATION_FIELDS,
    Agreement,
    AgreementState,
    Direction,
    LinkHealth,
    PromisedLink,
)
from bot.agreements.qualify import QualificationHints, format_hints
from bot.agreements.report import STATE_ORDER
from handlers.views.mrkdwn import escape, fallback, link, mention, plural, truncate, truncate_mrkdwn
from handlers.views.report_blocks import MAX_BLOCKS, MAX_FIELD_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT

COMMAND = "/linkcheck"
# Agreements one list message shows before "and N more"; `linkpact agreement list` shows them all.
MAX_LISTED_AGREEMENTS = 40
# Promised links shown for one agreement (a direct exchange has 2, a three-way 3; imports may hold more).
MAX_LISTED_LINKS = 20
# The most recent history entries shown with an agreement; `linkpact agreement show` shows them all.
MAX_HISTORY_ENTRIES = 10
MAX_NAME_CHARS = 80
MAX_ANCHOR_CHARS = 80
MAX_NOTE_CHARS = 500

STATE_ICONS = {
    AgreementState.LIVE: ":white_check_mark:",
    AgreementState.PENDING: ":hourglass_flowing_sand:",
    AgreementState.ONE_SIDED: ":warning:",
    AgreementState.BROKEN: ":x:",
    AgreementState.PRUNED: ":wastebasket:",
}
STATE_WORDS = {
    AgreementState.LIVE: "live: every promised link is healthy",
    AgreementState.PENDING: "pending: waiting for links before the deadline",
    AgreementState.ONE_SIDED: "one-sided: ours is live, theirs is missing after the deadline",
    AgreementState.BROKEN: "broken: a link that was live is lost or no longer as agreed",
    AgreementState.PRUNED: "pruned: ended by a person",
}
HEALTH_ICONS = {
    LinkHealth.HEALTHY: ":white_check_mark:",
    LinkHealth.FAILING: ":x:",
    LinkHealth.UNKNOWN: ":grey_question:",
    LinkHealth.NOT_CHECKED: ":hourglass_flowing_sand:",
}
# What each named reason means (../shared/domain.md, "A tracked link is healthy when").
REASON_WORDS = {
    "link_present": "the link is on the page",
    "via_redirect": "the link is on the page (it reaches the target through a redirect)",
    "link_removed": "the page does not link to the target",
    "page_gone": "the page is gone (404 or 410)",
    "noindex": "the page is noindex, so the link does not count",
    "canonicalized_away": "the page's canonical points elsewhere, so the link does not count",
    "robots_blocked": "robots.txt blocks the page, so the link does not count",
    "now_nofollow": "the link carries nofollow/sponsored/ugc but a followed link was agreed",
    "not_sponsored": 'a paid link must carry rel="sponsored" (Google Search Central)',
    "not_nofollow": 'the link should carry rel="nofollow"',
    "not_ugc": 'the link should carry rel="ugc"',
    "anchor_changed": "the anchor text is not the agreed one",
    "unreachable": "the page could not be reached",
    "bot_wall": "a bot wall answered instead of the page",
    "rate_limited": "the site asked us to slow down (429)",
    "auth_required": "the page needs a login (401)",
    "temporarily_unavailable": "the site is temporarily unavailable (503)",
    "page_incomplete": "only part of the page could be read, and the link was not in it",
    "not_html": "the page is not HTML",
}


def reason_words(reason: str) -> str:
    """A reason code with its meaning: ``now_nofollow`` -> "`now_nofollow`: the link carries …"."""
    if not reason:
        return ""
    if reason.startswith("moved_to_"):
        meaning = f"the link sits in the {reason.removeprefix('moved_to_')}, not where agreed"
    else:
        meaning = REASON_WORDS.get(reason, "")
    return f"`{escape(reason)}`: {meaning}" if meaning else f"`{escape(reason)}`"


def _name(agreement: Agreement) -> str:
    return escape(truncate(agreement.partner_name, MAX_NAME_CHARS))


def deadline_words(agreement: Agreement, today: date) -> str:
    days = (agreement.deadline - today).days
    when = agreement.deadline.isoformat()
    if agreement.overdue(today):
        return f"{when} (overdue by {plural(-days, 'day')})"
    if days >= 0 and agreement.state(today) is AgreementState.PENDING:
        return f"{when} (in {plural(days, 'day')})" if days else f"{when} (today)"
    return when


def healthy_count(agreement: Agreement) -> str:
    healthy = sum(1 for link_ in agreement.links if link_.health is LinkHealth.HEALTHY)
    return f"{healthy}/{len(agreement.links)} links healthy"


def agreement_summary_line(agreement: Agreement, today: date) -> str:
    """One mrkdwn line: ``#3 *Partner* (domain) · exchange · pending · deadline … · 1/2 links healthy``."""
    state = agreement.state(today)
    return " · ".join(
        [
            f"{STATE_ICONS[state]} *#{escape(agreement.id)} {_name(agreement)}* "
            f"({escape(agreement.partner_domain)})",
            agreement.kind.value,
            state.value,
            f"deadline {deadline_words(agreement, today)}",
            healthy_count(agreement),
            f"owner {mention(agreement.owner)}",
        ]
    )


def link_verdict_line(promised: PromisedLink) -> str:
    """One promised link: direction, source → target, what is expected, its verdict and the reason."""
    side = "we link" if promised.direction is Direction.OURS else "they link"
    expect = [promised.expected_rel.value]
    if promised.expected_anchor:
        expect.append(f"anchor “{escape(truncate(promised.expected_anchor, MAX_ANCHOR_CHARS))}”")
    if promised.expected_placement:
        expect.append(promised.expected_placement.value)
    health = "not checked yet" if promised.health is LinkHealth.NOT_CHECKED else promised.health.value
    line = (
        f"{HEALTH_ICONS[promised.health]} *{escape(promised.id)}* {side}: {link(promised.source_url)} → "
        f"{link(promised.target_url)} · expects {', '.join(expect)} · *{health}*"
    )
    if promised.reason and promised.health is not LinkHealth.NOT_CHECKED:
        line += f" · {reason_words(promised.reason)}"
    seen = _seen(promised)
    if seen and promised.health is LinkHealth.FAILING:
        line += f" · seen: {seen}"
    if promised.unknown_reason:
        line += f" · _last check inconclusive: {reason_words(promised.unknown_reason)}; not a loss_"
    if promised.suspicion is not None:
        line += (
            f" · _suspected loss ({reason_words(promised.suspicion.reason)}): confirmed only if a later "
            "check still sees it_"
        )
    return line


def _seen(promised: PromisedLink) -> str:
    parts = []
    if promised.seen_anchor is not None:
        parts.append(f"anchor “{escape(truncate(promised.seen_anchor, MAX_ANCHOR_CHARS))}”")
    if promised.seen_rel:
        parts.append("rel " + "/".join(escape(r) for r in promised.seen_rel))
    if promised.seen_placement:
        parts.append(escape(promised.seen_placement))
    return ", ".join(parts)


def build_agreement_blocks(
    agreement: Agreement, today: date, *, history: Sequence[Mapping[str, Any]] | None = None
) -> list[Block]:
    """One agreement: header, facts (state, kind, deadline, owner, contact, partner site), the promised
    links with their verdicts and reasons, qualification, notes and (when given) its recent history."""
    state = agreement.state(today)
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"Partnership #{agreement.id}: {agreement.partner_name}", MAX_HEADER_TEXT)),
        SectionBlock(text=MarkdownTextObject(text=f"{STATE_ICONS[state]} *{STATE_WORDS[state]}*")),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=truncate_mrkdwn(f, MAX_FIELD_TEXT)) for f in _facts(agreement, today)
            ]
        ),
        DividerBlock(),
    ]
    lines = [link_verdict_line(p) for p in agreement.links[:MAX_LISTED_LINKS]]
    hidden = len(agreement.links) - MAX_LISTED_LINKS
    if hidden > 0:
        lines.append(
            f"_…and {hidden} more (`linkpact agreement show {escape(agreement.id)}` lists them all)_"
        )
    blocks += pack_sections(f"*Promised links* ({healthy_count(agreement)})", lines)
    qualification = _qualification_lines(agreement)
    if qualification:
        blocks += pack_sections("*Qualification*", qualification)
    if agreement.notes:
        blocks += pack_sections("*Notes*", [escape(truncate(agreement.notes, MAX_NOTE_CHARS))])
    if history is not None:
        blocks += _history_blocks(history)
    return fit(blocks)


def _facts(agreement: Agreement, today: date) -> list[str]:
    contact = ", ".join(
        part
        for part in (
            escape(agreement.contact.name),
            escape(agreement.contact.email),
            mention(agreement.contact.slack_user) if agreement.contact.slack_user else "",
        )
        if part
    )
    facts = [
        f"*Kind*\n{agreement.kind.value}",
        f"*Deadline*\n{deadline_words(agreement, today)}",
        f"*Partner site*\n{link(agreement.partner_site)}",
        f"*Owner*\n{mention(agreement.owner)}",
    ]
    if contact:
        facts.append(f"*Contact*\n{contact}")
    if agreement.created_at:
        facts.append(f"*Logged*\n{escape(agreement.created_at[:10])}")
    return facts


def _qualification_lines(agreement: Agreement) -> list[str]:
    lines = []
    for name in QUALIFICATION_FIELDS:
        score = getattr(agreement.qualification, name)
        if not score.note and score.score is None:
            continue
        value = f"{score.score}/5" if score.score is not None else ""
        note = escape(truncate(score.note, MAX_NOTE_CHARS))
        lines.append(f"• {name.replace('_', ' ')}: {value} {note}".rstrip())
    return lines


def history_line(entry: Mapping[str, Any]) -> str:
    at = str(entry.get("at", ""))[:16].replace("T", " ")
    details = ", ".join(
        f"{k}={v}" for k, v in entry.items() if k not in ("id", "agreement_id", "at", "by", "action")
    )
    text = f"• {escape(at)} · {mention(str(entry.get('by') or ''))} · {escape(str(entry.get('action', '')))}"
    return f"{text} {escape(truncate(details, MAX_NOTE_CHARS))}".rstrip()


def _history_blocks(history: Sequence[Mapping[str, Any]]) -> list[Block]:
    recent = list(history)[-MAX_HISTORY_ENTRIES:]
    earlier = len(history) - len(recent)
    title = "*History* (who changed what, oldest first)"
    if earlier > 0:
        title += f"; {plural(earlier, 'earlier entry', 'earlier entries')} not shown"
    return [DividerBlock(), *pack_sections(title, [history_line(e) for e in recent])]


def build_agreement_list_blocks(
    agreements: Sequence[Agreement], today: date, *, state: AgreementState | None = None
) -> list[Block]:
    """Agreements grouped by state (broken, one-sided, pending, live, pruned), newest first within each,
    at most :data:`MAX_LISTED_AGREEMENTS` lines, then "and N more"."""
    scope = f" {state.value}" if state else ""
    if not agreements:
        return [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"No{scope} partnerships yet. Log one with `{COMMAND} partner` (a form opens)."
                )
            )
        ]
    groups = group_by_state(agreements, today)
    noun = f"{state.value} partnership" if state else "partnership"
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"*{plural(len(agreements), noun)}*, newest first"))
    ]
    shown = 0
    for group_state, members in groups:
        if shown >= MAX_LISTED_AGREEMENTS:
            break
        take = members[: MAX_LISTED_AGREEMENTS - shown]
        shown += len(take)
        title = f"{STATE_ICONS[group_state]} *{group_state.value}* ({len(members)})"
        blocks += pack_sections(title, [f"• {agreement_summary_line(a, today)}" for a in take])
    hidden = len(agreements) - shown
    footer = f"`{COMMAND} partner &lt;id&gt;` shows one with its link verdicts and history."
    if hidden > 0:
        footer = f"…and {hidden} more (`linkpact agreement list` lists them all). " + footer
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    return fit(blocks)


def group_by_state(
    agreements: Iterable[Agreement], today: date
) -> list[tuple[AgreementState, list[Agreement]]]:
    """Non-empty groups in :data:`bot.agreements.report.STATE_ORDER`, keeping the given order within."""
    groups: dict[AgreementState, list[Agreement]] = {s: [] for s in STATE_ORDER}
    for agreement in agreements:
        groups[agreement.state(today)].append(agreement)
    return [(s, members) for s, members in groups.items() if members]


def agreement_list_text(agreements: Sequence[Agreement], today: date) -> str:
    counts = ", ".join(f"{len(m)} {s.value}" for s, m in group_by_state(agreements, today))
    return fallback(f"{plural(len(agreements), 'partnership')}" + (f": {counts}" if counts else ""))


def build_logged_blocks(agreement: Agreement, *, logged_by: str) -> list[Block]:
    """The message posted right after storing: verification is running."""
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=f":hourglass_flowing_sand: {mention(logged_by)} logged partnership "
                f"*#{escape(agreement.id)} {_name(agreement)}* ({agreement.kind.value}); verifying its "
                f"{plural(len(agreement.links), 'promised link')}…"
            )
        )
    ]


def logged_text(agreement: Agreement) -> str:
    return fallback(f"Partnership #{agreement.id} with {agreement.partner_name} logged; verifying its links…")


def build_agreement_result_blocks(
    agreement: Agreement,
    today: date,
    *,
    logged_by: str,
    hints: QualificationHints | None = None,
    hints_error: str | None = None,
    check_error: str | None = None,
) -> list[Block]:
    """The result of logging: the agreement with each link's verdict, then the qualification hints of
    the partner page (hints only, never a veto). ``check_error``: the verification itself failed."""
    blocks = build_agreement_blocks(agreement, today)
    if check_error:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f":warning: The agreement is stored, but verifying it failed: "
                    f"{escape(truncate(check_error, MAX_NOTE_CHARS))}. Re-check it from the Linkpact Home "
                    "tab."
                )
            )
        )
    blocks.append(DividerBlock())
    if hints is not None:
        blocks += pack_sections("*Qualification hints* (from the partner page itself)", hint_lines(hints))
    else:
        why = escape(truncate(hints_error or "not computed", MAX_NOTE_CHARS))
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=f"*Qualification hints*: unavailable ({why})"))
        )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Logged by {mention(logged_by)} · `{COMMAND} partner {escape(agreement.id)}` "
                    "shows it with its history · re-check it from the Linkpact Home tab"
                )
            ]
        )
    )
    return fit(blocks)


def hint_lines(hints: QualificationHints) -> list[str]:
    """:func:`bot.agreements.qualify.format_hints` as mrkdwn: red flags (``! ``) get a warning sign."""
    lines = []
    for line in format_hints(hints):
        if line.startswith("! "):
            lines.append(f":warning: {escape(line[2:])}")
        else:
            lines.append(f"• {escape(line)}")
    return lines


def result_text(agreement: Agreement, today: date) -> str:
    state = agreement.state(today)
    return fallback(
        f"Partnership #{agreement.id} with {agreement.partner_name}: {state.value}, "
        f"{healthy_count(agreement)}"
    )


# -- packing --------------------------------------------------------------------------------------------


def pack_sections(title: str, lines: Sequence[str]) -> list[Block]:
    """``title`` and ``lines`` in as few sections as the 3,000-character limit allows."""
    sections: list[Block] = []
    current = title
    for line in lines:
        line = truncate_mrkdwn(line, MAX_SECTION_TEXT)
        if current and len(current) + 1 + len(line) > MAX_SECTION_TEXT:
            sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
    return sections


def fit(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """Guard a surface's block limit (50 in a message): the caps above keep far below it."""
    if len(blocks) <= limit:
        return blocks
    note = ContextBlock(elements=[MarkdownTextObject(text="_…shortened to fit Slack's limits_")])
    return [*blocks[: limit - 1], note]
