"""Block Kit for ``/linkcheck audit``: the progress message and the audit's result (issue 6).

Pure functions, :class:`bot.audit.AuditReport` in, blocks out. The result shows the summary (pages
crawled, whether and why the crawl stopped early, the reciprocal share with its threshold, the pairs and
the cycles), the most severe findings with their evidence, and a **Propose prunes** button when a finding
calls for one; the full list is the CSV (:func:`bot.audit.findings_csv`) in the message's thread. Limits
as in :mod:`handlers.views.report_blocks`; page URLs, anchors and domains are untrusted and escaped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.audit import AuditReport, Finding, Severity
from handlers.views.mrkdwn import escape, fallback, link, mention, plural, truncate, truncate_mrkdwn
from handlers.views.report_blocks import MAX_FIELD_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT

if TYPE_CHECKING:
    from bot.engine import Progress

PROPOSE_PRUNES_ACTION = "audit_propose_prunes"
AUDIT_ACTIONS_BLOCK = "audit_actions"
# Findings shown in the message (most severe first); the CSV has every one. Ten keep the message to one
# screen while covering every high-severity flag of a typical audit.
MAX_LISTED_FINDINGS = 10
MAX_LISTED_PAIRS = 10
MAX_LISTED_CYCLES = 5
MAX_LISTED_NOTES = 3
# Evidence URLs shown per finding before "and N more".
MAX_EVIDENCE_URLS = 3
MAX_SUMMARY_CHARS = 400
MAX_WHY_CHARS = 500

_SEVERITY_ICONS = {
    Severity.HIGH: ":red_circle:",
    Severity.MEDIUM: ":large_orange_circle:",
    Severity.LOW: ":large_yellow_circle:",
}
_PHASE_LABELS = {"crawling our site": "Crawling our site", "reading partner pages": "Reading partner pages"}
_STOP_WORDS = {"page_cap": "the page cap", "time_cap": "the time cap"}


def audit_progress_text(domain: str) -> str:
    return fallback(f"Auditing {domain}…")


def build_audit_progress_blocks(
    site_url: str, domain: str, progress: Progress | None = None, *, requested_by: str | None = None
) -> list[Block]:
    """ "Auditing <site>…" with the phase (crawling our site, reading partner pages) and a done/total
    count once there is one."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f":hourglass_flowing_sand: Auditing the link profile of {link(site_url, domain)}…"
            )
        )
    ]
    notes = []
    if progress is not None:
        label = _PHASE_LABELS.get(progress.phase, progress.phase.capitalize())
        notes.append(f"{label}: {progress.done} of {progress.total}" if progress.total > 0 else label)
    else:
        notes.append("Reading what Linkpact knows and the sitemap")
    if requested_by:
        notes.append(f"requested by {mention(requested_by)}")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(notes))]))
    return blocks


def audit_text(report: AuditReport) -> str:
    """Plain-text fallback of the result (notifications, screen readers)."""
    return fallback(f"Link-profile audit of {report.domain}: " + " ".join(report.summary_lines()))


def build_audit_blocks(
    report: AuditReport,
    *,
    audit_id: str,
    requested_by: str,
    csv_attached: bool,
    prune_candidates: int,
) -> list[Block]:
    """The audit's result. ``prune_candidates``: how many agreements a finding proposes to review for
    pruning (the **Propose prunes** button, value ``audit_id``, is shown only when there are some);
    ``csv_attached``: the full CSV follows in the thread (else: how to get it)."""
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"Link-profile audit: {report.domain}", MAX_HEADER_TEXT)),
        SectionBlock(
            text=MarkdownTextObject(
                text=truncate_mrkdwn(
                    "\n".join(escape(line) for line in report.summary_lines()), MAX_SECTION_TEXT
                )
            ),
            fields=[MarkdownTextObject(text=truncate_mrkdwn(f, MAX_FIELD_TEXT)) for f in _fields(report)],
        ),
    ]
    blocks += _pairs_and_cycles(report)
    findings = report.top_findings(MAX_LISTED_FINDINGS)
    if findings:
        blocks.append(DividerBlock())
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*Top findings* ({len(findings)} of {len(report.findings)}, most severe first)"
                )
            )
        )
        blocks += [SectionBlock(text=MarkdownTextObject(text=finding_mrkdwn(f))) for f in findings]
    notes = [escape(note) for note in report.notes[:MAX_LISTED_NOTES]]
    if len(report.notes) > MAX_LISTED_NOTES:
        notes.append(f"…and {len(report.notes) - MAX_LISTED_NOTES} more notes in the CSV's report")
    if notes:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=truncate_mrkdwn("\n".join(notes), MAX_SECTION_TEXT))]
            )
        )
    if prune_candidates:
        blocks.append(_propose_button(audit_id, prune_candidates))
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=_footer(report, requested_by, csv_attached))])
    )
    return blocks


def _fields(report: AuditReport) -> list[str]:
    crawl = report.crawl
    how = "from the sitemap" if crawl.discovery.value == "sitemap" else "following links"
    stopped = crawl.stopped_early
    if stopped is None:
        stop = "no: every page found was crawled"
    else:
        limit = f"{report.max_pages} pages" if stopped.value == "page_cap" else f"{report.time_limit_s:g} s"
        stop = f"yes, at {_STOP_WORDS.get(stopped.value, stopped.value)} ({limit})"
    profile = report.profile
    if profile.share is None:
        share = f"unknown: no referring domain known (flagged above {profile.threshold:.0%})"
    else:
        share = (
            f"{profile.share:.0%}: {profile.reciprocal_domains} of {profile.referring_domains} referring "
            f"domains (flagged above {profile.threshold:.0%})"
        )
    severities = report.severity_counts()
    flags = " · ".join(f"{n} {s}" for s, n in severities.items()) if report.findings else "none"
    return [
        f"*Pages crawled*\n{len(crawl.html_pages)} ({how})",
        f"*Stopped early*\n{stop}",
        f"*Reciprocal share*\n{share}",
        f"*Reciprocal pairs · three-way cycles*\n{len(report.pairs)} · {len(report.cycles)}",
        f"*Red flags*\n{flags}",
    ]


def _pairs_and_cycles(report: AuditReport) -> list[Block]:
    lines = []
    if report.pairs:
        shown = []
        for pair in report.pairs[:MAX_LISTED_PAIRS]:
            ids = f" (#{', #'.join(escape(i) for i in pair.agreement_ids)})" if pair.agreement_ids else ""
            shown.append(f"`{escape(pair.domain)}`{ids}")
        more = len(report.pairs) - MAX_LISTED_PAIRS
        lines.append("*Reciprocal pairs*: " + ", ".join(shown) + (f" and {more} more" if more > 0 else ""))
    if report.cycles:
        shown = [" → ".join(f"`{escape(d)}`" for d in (*c.domains, c.domains[0])) for c in report.cycles]
        more = len(report.cycles) - MAX_LISTED_CYCLES
        lines.append(
            "*Three-way cycles*: "
            + "; ".join(shown[:MAX_LISTED_CYCLES])
            + (f" and {more} more" if more > 0 else "")
        )
    if not lines:
        return []
    return [SectionBlock(text=MarkdownTextObject(text=truncate_mrkdwn("\n".join(lines), MAX_SECTION_TEXT)))]


def finding_mrkdwn(finding: Finding) -> str:
    """One finding: severity, code and side, its summary, why (the rule and threshold), first evidence."""
    side = f" ({finding.side})" if finding.side else ""
    lines = [
        f"{_SEVERITY_ICONS.get(finding.severity, '')} *{finding.severity.value.upper()}* "
        f"`{finding.code.value}`{side}: {escape(truncate(finding.summary, MAX_SUMMARY_CHARS))}",
        f"_{escape(truncate(finding.why, MAX_WHY_CHARS))}_",
    ]
    evidence = [f"• {link(url)}" for url in finding.urls[:MAX_EVIDENCE_URLS]]
    hidden = len(finding.urls) - MAX_EVIDENCE_URLS
    if hidden > 0:
        evidence.append(f"• …and {hidden} more (CSV)")
    return truncate_mrkdwn("\n".join(lines + evidence), MAX_SECTION_TEXT)


def _propose_button(audit_id: str, candidates: int) -> ActionsBlock:
    agreements = plural(candidates, "agreement")
    return ActionsBlock(
        block_id=AUDIT_ACTIONS_BLOCK,
        elements=[
            ButtonElement(
                text="Propose prunes",
                action_id=PROPOSE_PRUNES_ACTION,
                value=audit_id,
                confirm=ConfirmObject(
                    title="Propose prunes?",
                    text=(
                        f"Open prune proposals for the {agreements} these findings question. Nothing is "
                        "pruned: each agreement's owner or an admin approves or keeps each one in the "
                        "weekly digest."
                    ),
                    confirm="Propose",
                    deny="Cancel",
                ),
            )
        ],
    )


def _footer(report: AuditReport, requested_by: str, csv_attached: bool) -> str:
    parts = [f"Requested by {mention(requested_by)}", f"audited in {report.duration_s:.0f} s"]
    if csv_attached:
        parts.append("every finding, pair and cycle is in the CSV in this thread")
    else:
        parts.append("for the CSV of every finding, invite Linkpact here or run `linkpact audit --csv FILE`")
    return " · ".join(parts)


def build_proposals_text(
    *,
    user_id: str,
    domain: str,
    opened: list[tuple[str, str]],
    updated: list[tuple[str, str]],
    skipped: int,
    left_to_others: int,
) -> str:
    """The answer to **Propose prunes** (mrkdwn): ``opened``/``updated`` are (agreement id, partner)."""

    def names(items: list[tuple[str, str]]) -> str:
        return ", ".join(f"#{escape(i)} {escape(p)}" for i, p in items)

    count = plural(len(opened), "prune proposal")
    head = f"{mention(user_id)} opened {count} from the audit of {escape(domain)}"
    lines = [head + (f": {names(opened)}." if opened else ".")]
    if updated:
        lines.append(f"Already open, the audit's reasons were added: {names(updated)}.")
    if skipped:
        lines.append(f"{plural(skipped, 'agreement')} skipped: already pruned, or kept recently (snoozed).")
    if left_to_others:
        lines.append(
            f"{plural(left_to_others, 'agreement')} owned by others left for their owners or an admin."
        )
    lines.append(
        "They appear in the next weekly digest with *Approve prune* and *Keep*; nothing is pruned until "
        "the owner or an admin approves."
    )
    return "\n".join(lines)
