"""One :class:`Report`, rendered for people (terminal text), for programs (JSON, CSV), and parsed input.

The JSON layout is documented in ``docs/report-json.md``; Block Kit rendering lives in ``handlers/``.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from bot.errors import InputError
from bot.models import InboundResult, InboundVerdict, OutboundResult, Report, Verdict

REPORT_JSON_VERSION = 1
# Spreadsheet programs run a cell that starts with one of these as a formula (OWASP "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Slack sends links typed in a message as <https://x|label> or <https://x>.
_SLACK_LINK = re.compile(r"^<([^|>]+)(?:\|[^>]*)?>$")
# Lines of broken/unknown links shown in the terminal before "and N more".
TEXT_MAX_PROBLEM_LINES = 50
# What the reasons a page could not be read mean (PageReport.unreadable_reason); others show as codes.
UNREADABLE_WORDS = {
    "bot_wall": "a bot wall or challenge answered instead of the page",
    "rate_limited": "the site asked us to slow down (HTTP 429)",
    "auth_required": "the page needs a login (HTTP 401)",
    "temporarily_unavailable": "the site is temporarily unavailable (HTTP 503)",
    "timeout": "no complete answer in time",
    "body_too_large": "the page is larger than the download cap, so it was read only in part",
}


def parse_user_url(text: str) -> str:
    """The URL in what a user typed: a bare URL or Slack's ``<https://x|x>`` markup, trimmed.

    Raises :class:`InputError` when there is no URL. Scheme and address checks happen in the engine.
    """
    text = text.strip()
    match = _SLACK_LINK.match(text)
    if match:
        text = match.group(1).strip()
    if not text:
        raise InputError("give a URL to check, e.g. https://partner.example/resources")
    if " " in text:
        raise InputError(f"{text!r} is not a single URL")
    return text


def _rel(rel: frozenset[str]) -> list[str]:
    return sorted(rel)


def outbound_to_json(result: OutboundResult) -> dict[str, Any]:
    check = result.check
    return {
        "url": result.link.url if result.link.url is not None else result.link.href,
        "href": result.link.href,
        "status": check.status,
        "verdict": check.verdict.value,
        "reason": check.reason,
        "anchor": result.link.anchor,
        "rel": _rel(result.link.rel),
        "placement": result.link.placement.value,
        "internal": result.internal,
        "final_url": check.final_url,
        "redirects": [{"url": h.url, "status": h.status, "location": h.location} for h in check.redirects],
    }


def inbound_to_json(result: InboundResult) -> dict[str, Any]:
    return {
        "source_url": result.source_url,
        "target_url": result.target_url,
        "verdict": result.verdict.value,
        "reason": result.reason,
        "status": result.status,
        "anchor": result.anchor,
        "rel": _rel(result.rel),
        "placement": result.placement.value if result.placement else None,
        "via_redirect": result.via_redirect,
    }


def summary(report: Report) -> dict[str, Any]:
    unique = {r.check.url for r in report.outbound}
    return {
        "links": len(report.outbound),
        "unique_urls": len(unique),
        "outbound": report.verdict_counts(),
        "inbound": report.inbound_counts(),
        "internal": sum(1 for r in report.outbound if r.internal),
        "external": sum(1 for r in report.outbound if not r.internal),
        "nofollow_share": round(report.nofollow_share, 4),
        "has_problems": report.has_problems,
    }


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready object (layout: ``docs/report-json.md``)."""
    page = report.page
    return {
        "version": REPORT_JSON_VERSION,
        "started_at": report.started_at,
        "duration_s": report.duration_s,
        "page": {
            "url": page.url,
            "final_url": page.final_url,
            "status": page.status,
            "indexable": page.indexable,
            "not_indexable_reasons": list(page.not_indexable_reasons),
            "unreadable_reason": page.unreadable_reason,
            "title": page.title,
            "content_type": page.content_type,
            "canonical": page.canonical,
            "robots": sorted(page.robots),
            "robots_txt_allowed": page.robots_txt_allowed,
            "redirects": [{"url": h.url, "status": h.status, "location": h.location} for h in page.redirects],
            "error": {"kind": page.error.kind.value, "message": page.error.message} if page.error else None,
        },
        "outbound": [outbound_to_json(r) for r in report.outbound],
        "inbound": [inbound_to_json(r) for r in report.inbound],
        "summary": summary(report),
    }


def unreadable_words(reason: str) -> str:
    """``bot_wall: a bot wall or challenge answered instead of the page``; unknown reasons as they are."""
    words = UNREADABLE_WORDS.get(reason)
    return f"{reason}: {words}" if words else reason


def page_status_line(report: Report) -> str:
    page = report.page
    if page.error is not None:
        return (
            f"{page.url}: could not be read ({page.error.kind.value}: {page.error.message}); "
            "indexability unknown"
        )
    moved = f" -> {page.final_url}" if page.final_url != page.url else ""
    if page.indexable is None:
        why = unreadable_words(page.unreadable_reason or "no_response")
        return f"{page.url}{moved}: HTTP {page.status}, could not be read ({why}); indexability unknown"
    reasons = ", ".join(page.not_indexable_reasons)
    index = "indexable" if page.indexable else f"not indexable ({reasons})"
    return f"{page.url}{moved}: HTTP {page.status}, {index}"


def _count(n: int, noun: str) -> str:
    """``1 link``, ``2 links``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_text(report: Report) -> str:
    """A terminal report: page line, counts, broken then unknown links, inbound backlinks."""
    lines = [page_status_line(report)]
    if report.page.title:
        lines.append(f"  title: {report.page.title}")
    counts = report.verdict_counts()
    unique = len({r.check.url for r in report.outbound})
    lines.append(
        f"Outbound: {_count(len(report.outbound), 'link')} ({_count(unique, 'unique URL')}): "
        + ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict)
        + f"; nofollow/sponsored/ugc share {report.nofollow_share:.0%}"
    )
    for verdict in (Verdict.BROKEN, Verdict.UNKNOWN):
        rows = [r for r in report.outbound if r.check.verdict is verdict]
        if not rows:
            continue
        lines.append(f"  {verdict.value.upper()}:")
        for r in rows[:TEXT_MAX_PROBLEM_LINES]:
            status = r.check.status if r.check.status is not None else "-"
            anchor = f' "{r.link.anchor}"' if r.link.anchor else ""
            lines.append(f"    {status} {r.check.url}{anchor} [{r.link.placement.value}] ({r.check.reason})")
        if len(rows) > TEXT_MAX_PROBLEM_LINES:
            lines.append(f"    ... and {len(rows) - TEXT_MAX_PROBLEM_LINES} more (use --json for all)")
    if report.inbound:
        inbound = report.inbound_counts()
        lines.append(
            f"Inbound: {_count(len(report.inbound), 'tracked backlink')}: "
            + ", ".join(f"{inbound[v.value]} {v.value}" for v in InboundVerdict)
        )
        for b in report.inbound:
            details = []
            if b.anchor is not None:
                details.append(f'anchor "{b.anchor}"')
            if b.rel:
                details.append("rel " + " ".join(sorted(b.rel)))
            if b.placement is not None:
                details.append(b.placement.value)
            extra = f" ({', '.join(details)})" if details else ""
            lines.append(f"    {b.verdict.value.upper()} {b.source_url} ({b.reason}){extra}")
    else:
        lines.append(
            "Inbound: no tracked backlinks point to this page (linkpact track SOURCE TARGET adds one)"
        )
    lines.append(f"Checked in {report.duration_s:.1f} s.")
    return "\n".join(lines) + "\n"


def neutralise_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will show as text, never run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


CSV_COLUMNS = (
    "direction", "url", "verdict", "reason", "status", "anchor", "rel", "placement", "internal",
    "source_url", "target_url",
)  # fmt: skip


def report_csv(report: Report) -> str:
    """Every outbound occurrence and every inbound backlink as CSV (formula-looking cells neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in report.outbound:
        row = [
            "outbound", r.check.url, r.check.verdict.value, r.check.reason, r.check.status,
            r.link.anchor, " ".join(sorted(r.link.rel)), r.link.placement.value, r.internal,
            report.page.final_url, r.check.url,
        ]  # fmt: skip
        writer.writerow([neutralise_cell(c) for c in row])
    for b in report.inbound:
        row = [
            "inbound", b.source_url, b.verdict.value, b.reason, b.status, b.anchor or "",
            " ".join(sorted(b.rel)), b.placement.value if b.placement else "", False,
            b.source_url, b.target_url,
        ]  # fmt: skip
        writer.writerow([neutralise_cell(c) for c in row])
    return buffer.getvalue()
