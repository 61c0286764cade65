"""Block Kit for a link report and its progress message: pure functions, ``Report`` in, blocks out.

Limits held here come from Slack's Block Kit reference (docs.slack.dev/reference/block-kit): a message
carries at most 50 blocks; a section's text at most 3,000 characters; a section at most 10 fields of
at most 2,000 characters each; a header at most 150 characters of plain text. Long lists are cut to a
readable length and end with "and N more"; the caller attaches the full list as CSV
(:func:`report_is_truncated` says when).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.linkcheck.report import unreadable_words
from bot.models import InboundResult, InboundVerdict, LinkCheck, OutboundResult, Report, Verdict
from handlers.views.mrkdwn import escape, fallback, link, mention, truncate, truncate_mrkdwn

if TYPE_CHECKING:
    from bot.engine import Progress

# Slack Block Kit limits (docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 3000

# How many entries each list shows before "and N more": enough to act on in a channel, short enough to
# read; the CSV carries the rest. Broken links come first because they are what people fix.
MAX_LISTED_BROKEN = 20
MAX_LISTED_UNKNOWN = 10
MAX_LISTED_INBOUND = 15
MAX_ANCHOR_CHARS = 80
MAX_REASON_CHARS = 160

_PHASE_LABELS = {
    "fetching page": "Fetching the page",
    "checking links": "Checking links",
    "checking backlinks": "Checking tracked backlinks",
    "done": "Finishing",
}


@dataclass(frozen=True, slots=True)
class LinkGroup:
    """One unique link target with every occurrence of it on the page (document order)."""

    check: LinkCheck
    occurrences: tuple[OutboundResult, ...]


@dataclass(frozen=True, slots=True)
class ReportListing:
    """Which rows the message lists, and how many each list leaves out."""

    broken: tuple[LinkGroup, ...]
    broken_hidden: int
    unknown: tuple[LinkGroup, ...]
    unknown_hidden: int
    inbound: tuple[InboundResult, ...]
    inbound_hidden: int

    @property
    def hidden(self) -> int:
        return self.broken_hidden + self.unknown_hidden + self.inbound_hidden


def plan_listing(report: Report) -> ReportListing:
    """Group outbound occurrences by target and cut each list to its display cap."""
    broken = _groups(report.outbound, Verdict.BROKEN)
    unknown = _groups(report.outbound, Verdict.UNKNOWN)
    order = {InboundVerdict.LOST: 0, InboundVerdict.UNKNOWN: 1, InboundVerdict.LIVE: 2}
    inbound = sorted(report.inbound, key=lambda r: order[r.verdict])  # stable: keeps tracked order
    return ReportListing(
        broken=tuple(broken[:MAX_LISTED_BROKEN]),
        broken_hidden=max(len(broken) - MAX_LISTED_BROKEN, 0),
        unknown=tuple(unknown[:MAX_LISTED_UNKNOWN]),
        unknown_hidden=max(len(unknown) - MAX_LISTED_UNKNOWN, 0),
        inbound=tuple(inbound[:MAX_LISTED_INBOUND]),
        inbound_hidden=max(len(inbound) - MAX_LISTED_INBOUND, 0),
    )


def report_is_truncated(report: Report) -> bool:
    """True when the message leaves rows out, so the full list should be attached as CSV."""
    return plan_listing(report).hidden > 0


def build_report_text(report: Report) -> str:
    """The top-level text Slack shows in notifications: one line of counts (escaped: :func:`fallback`)."""
    counts = report.verdict_counts()
    page = report.page
    if page.status is None or page.error is not None:
        return fallback(f"Link report for {page.url}: the page could not be read")
    text = (
        f"Link report for {page.url}: {counts['broken']} broken, {counts['unknown']} unknown, "
        f"{counts['ok']} ok, {counts['skipped']} skipped"
    )
    if report.inbound:
        inbound = report.inbound_counts()
        text += f"; backlinks {inbound['live']} live, {inbound['lost']} lost, {inbound['unknown']} unknown"
    return fallback(text)


def build_report_blocks(
    report: Report, *, requested_by: str | None = None, csv_attached: bool = True
) -> list[Block]:
    """The report as at most 50 blocks.

    Shows page status and indexability (with the reasons when not indexable), counts by verdict, the
    nofollow share, the broken and unknown links (status, URL, anchor text, placement, reason) and the
    tracked backlinks (live/lost/unknown with reasons). ``requested_by`` is a Slack user ID shown in the
    footer. ``csv_attached`` says whether the caller attaches the CSV when lists are cut (it cannot when
    the bot is not in the channel); the footer says where the full list is.
    """
    listing = plan_listing(report)
    blocks: list[Block] = [_header(report), _page_section(report), _counts_section(report)]

    if listing.broken:
        blocks.append(DividerBlock())
        total = len(listing.broken) + listing.broken_hidden
        blocks += _list_sections(
            f":x: *Broken links* ({total})",
            [_link_group_line(group) for group in listing.broken],
            listing.broken_hidden,
        )
    if listing.unknown:
        blocks.append(DividerBlock())
        total = len(listing.unknown) + listing.unknown_hidden
        blocks += _list_sections(
            f":grey_question: *Links we could not verify* ({total}): timeouts, bot walls, rate limits; "
            "not counted as broken",
            [_link_group_line(group) for group in listing.unknown],
            listing.unknown_hidden,
        )
    if listing.inbound:
        blocks.append(DividerBlock())
        blocks += _list_sections(
            f":link: *Tracked backlinks to this page* ({len(report.inbound)})",
            [_inbound_line(result, report.page.url) for result in listing.inbound],
            listing.inbound_hidden,
        )
    blocks.append(_footer(report, listing, requested_by=requested_by, csv_attached=csv_attached))
    return _fit(blocks)


def build_progress_blocks(
    url: str, progress: Progress | None = None, *, requested_by: str | None = None
) -> list[Block]:
    """The "Checking <url>…" message, with the phase and a done/total count once there is one."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f":hourglass_flowing_sand: Checking {link(url)}…"))
    ]
    notes = []
    if progress is not None:
        label = _PHASE_LABELS.get(progress.phase, progress.phase.capitalize())
        if progress.total > 0:
            notes.append(f"{label}: {progress.done} of {progress.total}")
        else:
            notes.append(label)
    if requested_by:
        notes.append(f"requested by {mention(requested_by)}")
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(notes))]))
    return blocks


def progress_text(url: str) -> str:
    """The top-level text of the progress message (escaped: :func:`fallback`)."""
    return fallback(f"Checking {url}…")


# -- pieces ---------------------------------------------------------------------------------------------


def _groups(outbound: Iterable[OutboundResult], verdict: Verdict) -> list[LinkGroup]:
    by_target: dict[str, list[OutboundResult]] = {}
    checks: dict[str, LinkCheck] = {}
    for result in outbound:
        if result.check.verdict is not verdict:
            continue
        by_target.setdefault(result.check.url, []).append(result)
        checks.setdefault(result.check.url, result.check)
    return [LinkGroup(checks[key], tuple(rows)) for key, rows in by_target.items()]


def _header(report: Report) -> HeaderBlock:
    page = report.page
    name = page.title.strip() or urlsplit(page.final_url or page.url).netloc or page.url
    return HeaderBlock(text=truncate(f"Link report: {name}", MAX_HEADER_TEXT))


def _page_section(report: Report) -> SectionBlock:
    page = report.page
    lines = [f"*Page* {link(page.url)}"]
    if page.redirects and page.final_url != page.url:
        lines.append(f"Redirected {len(page.redirects)}× to {link(page.final_url)}")
    if page.error is not None or page.status is None:
        why = page.error.message if page.error is not None else "no answer"
        code = page.error.kind.value if page.error is not None else "no_response"
        lines.append(
            f":x: The page could not be read (`{escape(code)}`): {escape(truncate(why, MAX_REASON_CHARS))}"
            " · indexability unknown"
        )
    elif page.indexable is None:
        why = unreadable_words(page.unreadable_reason or "no_response")
        lines.append(
            f":grey_question: HTTP {page.status} · the page could not be read: "
            f"{escape(truncate(why, MAX_REASON_CHARS))} · indexability unknown"
        )
    else:
        status_icon = ":white_check_mark:" if page.status < 400 else ":x:"
        status = f"{status_icon} HTTP {page.status}"
        if page.indexable:
            lines.append(f"{status} · indexable")
        else:
            reasons = ", ".join(page.not_indexable_reasons) or "see robots and canonical"
            lines.append(f"{status} · :warning: not indexable: {escape(truncate(reasons, MAX_REASON_CHARS))}")
    if page.canonical and page.canonical != page.final_url:
        lines.append(f"Canonical: {link(page.canonical)}")
    return SectionBlock(text=MarkdownTextObject(text=truncate_mrkdwn("\n".join(lines), MAX_SECTION_TEXT)))


def _counts_section(report: Report) -> SectionBlock:
    counts = report.verdict_counts()
    unique = len({r.check.url for r in report.outbound})
    fields = [
        f"*Links on the page*\n{len(report.outbound)} ({unique} unique)",
        f"*Nofollow share*\n{report.nofollow_share:.0%} (nofollow, sponsored or ugc)",
        f":white_check_mark: *OK*\n{counts[Verdict.OK.value]}",
        f":x: *Broken*\n{counts[Verdict.BROKEN.value]}",
        f":grey_question: *Unknown*\n{counts[Verdict.UNKNOWN.value]}",
        f":fast_forward: *Skipped*\n{counts[Verdict.SKIPPED.value]}",
    ]
    if report.inbound:
        inbound = report.inbound_counts()
        fields += [
            f":link: *Backlinks live*\n{inbound[InboundVerdict.LIVE.value]}",
            f":broken_heart: *Backlinks lost*\n{inbound[InboundVerdict.LOST.value]}",
            f":grey_question: *Backlinks unknown*\n{inbound[InboundVerdict.UNKNOWN.value]}",
        ]
    else:
        fields.append("*Tracked backlinks*\nnone point here yet")
    return SectionBlock(
        fields=[MarkdownTextObject(text=truncate_mrkdwn(f, MAX_FIELD_TEXT)) for f in fields[:MAX_FIELDS]]
    )


def _anchor(text: str) -> str:
    text = text.strip()
    if not text:
        return "_(no anchor text)_"
    return f"“{escape(truncate(text, MAX_ANCHOR_CHARS))}”"


def _link_group_line(group: LinkGroup) -> str:
    check = group.check
    first = group.occurrences[0].link
    status = f"*{check.status}*" if check.status is not None else f"*{escape(check.reason)}*"
    parts = [f"• {status} {link(first.url or check.url)}", _anchor(first.anchor)]
    placements = list(dict.fromkeys(o.link.placement.value for o in group.occurrences))
    parts.append(", ".join(placements))
    if len(group.occurrences) > 1:
        parts.append(f"{len(group.occurrences)} places")
    if check.status is not None and check.reason and check.reason != str(check.status):
        parts.append(f"_{escape(truncate(check.reason, MAX_REASON_CHARS))}_")
    return " · ".join(parts)


_INBOUND_ICONS = {
    InboundVerdict.LIVE: ":white_check_mark:",
    InboundVerdict.LOST: ":broken_heart:",
    InboundVerdict.UNKNOWN: ":grey_question:",
}


def _inbound_line(result: InboundResult, page_url: str) -> str:
    parts = [f"• {_INBOUND_ICONS[result.verdict]} *{result.verdict.value}* {link(result.source_url)}"]
    if result.target_url != page_url:
        parts.append(f"→ {link(result.target_url)}")
    if result.verdict is not InboundVerdict.LIVE or result.reason not in ("", "ok", "live"):
        parts.append(f"_{escape(truncate(result.reason, MAX_REASON_CHARS))}_")
    if result.anchor is not None:
        parts.append(_anchor(result.anchor))
    if result.placement is not None:
        parts.append(result.placement.value)
    unfollowed = sorted(result.rel & {"nofollow", "sponsored", "ugc"})
    parts.append(", ".join(unfollowed) if unfollowed else ("followed" if result.anchor is not None else ""))
    if result.via_redirect:
        parts.append("via a redirect")
    return " · ".join(p for p in parts if p)


def _list_sections(title: str, lines: Sequence[str], hidden: int) -> list[Block]:
    """``title`` and ``lines`` packed into as few sections as the 3,000-character limit allows."""
    if hidden:
        lines = [*lines, f"_…and {hidden} more (every row is in the CSV)_"]
    sections: list[Block] = []
    current = title
    for line in lines:
        line = truncate_mrkdwn(line, MAX_SECTION_TEXT)
        if len(current) + 1 + len(line) > MAX_SECTION_TEXT:
            sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
            current = line
        else:
            current = f"{current}\n{line}"
    sections.append(SectionBlock(text=MarkdownTextObject(text=current)))
    return sections


def _footer(report: Report, listing: ReportListing, *, requested_by: str | None, csv_attached: bool) -> Block:
    notes = [f"Checked in {report.duration_s:.1f} s", escape(report.started_at)]
    if requested_by:
        notes.append(f"requested by {mention(requested_by)}")
    if listing.hidden:
        if csv_attached:
            notes.append("the full list is attached as CSV in the thread")
        else:
            notes.append("invite Linkpact to this channel to get the full list as CSV")
    text = truncate_mrkdwn(" · ".join(notes), MAX_CONTEXT_TEXT)
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def _fit(blocks: list[Block]) -> list[Block]:
    """Guard the 50-block limit: by construction the caps above keep far below it."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    note = ContextBlock(elements=[MarkdownTextObject(text="_…shortened to fit Slack's message limits_")])
    return [*blocks[: MAX_BLOCKS - 2], note, blocks[-1]]
