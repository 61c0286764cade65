"""The audit report: one value with its JSON form, a terminal rendering, a CSV of every finding, and the
short summary a Slack message needs (``summary_lines`` + ``top_findings`` + ``findings_csv``)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bot.agreements.report import plural
from bot.audit.crawl import CrawlResult, StopReason
from bot.audit.models import (
    SEVERITY_ORDER,
    Cycle,
    Finding,
    PartnerPage,
    ReciprocalPair,
    Severity,
    outbound_to_json,
)
from bot.audit.settings import AuditSettings
from bot.linkcheck.report import neutralise_cell

AUDIT_JSON_VERSION = 1
# Lines of evidence per finding, pairs and cycles shown in the terminal before "and N more".
TEXT_MAX_ITEMS = 10

_STOP_WORDS = {
    StopReason.PAGE_CAP: "the page cap",
    StopReason.TIME_CAP: "the time cap",
}


@dataclass(frozen=True, slots=True)
class Profile:
    """The backlink profile at the referring-domain level: domains that link to us (``live`` or
    ``unverified``), those of them we link back to, and the share with its threshold."""

    referring_domains: int
    reciprocal_domains: int
    share: float | None  # None when nothing links to us
    threshold: float

    def to_json(self) -> dict[str, Any]:
        return {
            "referring_domains": self.referring_domains,
            "reciprocal_domains": self.reciprocal_domains,
            "reciprocal_share": None if self.share is None else round(self.share, 4),
            "reciprocal_share_threshold": self.threshold,
        }


@dataclass(frozen=True)
class AuditReport:
    """One audit of our site. ``pages_left_out``: partner pages not read because of
    ``settings.max_partner_pages``; ``notes``: limits met and unknowns, in words."""

    site_url: str
    domain: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    max_pages: int
    time_limit_s: float
    settings: AuditSettings
    crawl: CrawlResult
    partner_pages: tuple[PartnerPage, ...]
    pages_left_out: int
    profile: Profile
    pairs: tuple[ReciprocalPair, ...]
    cycles: tuple[Cycle, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stopped_early(self) -> StopReason | None:
        return self.crawl.stopped_early

    def counts(self) -> dict[str, int]:
        """Findings per code."""
        return dict(Counter(f.code.value for f in self.findings))

    def severity_counts(self) -> dict[str, int]:
        counts = Counter(f.severity.value for f in self.findings)
        return {s.value: counts.get(s.value, 0) for s in Severity}

    def top_findings(self, n: int = 5) -> list[Finding]:
        """The ``n`` most severe findings (the list is already ordered most severe first)."""
        return sorted(self.findings, key=lambda f: SEVERITY_ORDER[f.severity])[:n]

    def summary_lines(self) -> list[str]:
        """A few plain lines (no markup) for a message header: crawl, profile, counts."""
        return [crawl_line(self), profile_line(self), findings_line(self)]

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object (layout: docs/audit.md)."""
        crawl = self.crawl
        return {
            "version": AUDIT_JSON_VERSION,
            "site_url": self.site_url,
            "domain": self.domain,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "crawl": {
                "discovery": crawl.discovery.value,
                "sitemaps_read": list(crawl.sitemaps_read),
                "sitemap_urls": crawl.sitemap_urls,
                "pages_fetched": len(crawl.pages),
                "html_pages": len(crawl.html_pages),
                "max_pages": self.max_pages,
                "time_limit_s": self.time_limit_s,
                "stopped_early": crawl.stopped_early.value if crawl.stopped_early else None,
                "duration_s": crawl.duration_s,
                "crawl_delay_s": crawl.crawl_delay_s,
                "robots": [
                    {"origin": r.origin, "status": r.status, "http_status": r.http_status}
                    for r in crawl.robots
                ],
                "robots_disallowed": {
                    "count": crawl.robots_disallowed_count,
                    "urls": list(crawl.robots_disallowed),
                },
                "failed": [{"url": p.url, "error": p.error} for p in crawl.failed],
                "pages": [p.final_url for p in crawl.html_pages],
            },
            "outbound": [outbound_to_json(link) for link in crawl.outbound],
            "profile": self.profile.to_json(),
            "reciprocal_pairs": [pair.to_json() for pair in self.pairs],
            "cycles": [cycle.to_json() for cycle in self.cycles],
            "partner_pages": {
                "read": [page.to_json() for page in self.partner_pages],
                "left_out": self.pages_left_out,
            },
            "findings": [finding.to_json() for finding in self.findings],
            "counts": self.counts(),
            "severity_counts": self.severity_counts(),
            "settings": self.settings.to_json(),
            "notes": list(self.notes),
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


# -- lines ----------------------------------------------------------------------------------------------


def crawl_line(report: AuditReport) -> str:
    crawl = report.crawl
    domains = len({link.domain for link in crawl.outbound})
    how = (
        f"from the sitemap ({len(crawl.sitemaps_read)} file{'s' if len(crawl.sitemaps_read) != 1 else ''})"
        if crawl.discovery.value == "sitemap"
        else "by following links from the home page"
    )
    line = (
        f"Crawled {plural(len(crawl.html_pages), 'page')} of {report.domain} {how}: "
        f"{plural(len(crawl.outbound), 'outbound link')} to {plural(domains, 'domain')}."
    )
    if crawl.stopped_early is not None:
        limit = (
            f"{report.max_pages} pages"
            if crawl.stopped_early is StopReason.PAGE_CAP
            else f"{report.time_limit_s:g} s"
        )
        stop = _STOP_WORDS[crawl.stopped_early]
        line += f" Stopped early at {stop} ({limit}): some pages were not crawled."
    return line


def profile_line(report: AuditReport) -> str:
    p = report.profile
    if p.share is None:
        return "Backlink profile: Linkpact knows of no site linking to us yet (track or import backlinks)."
    return (
        f"Backlink profile: {p.referring_domains} referring domains, {p.reciprocal_domains} reciprocal "
        f"({p.share:.0%}; flagged above {p.threshold:.0%}); {len(report.cycles)} three-way cycles."
    )


def findings_line(report: AuditReport) -> str:
    if not report.findings:
        return "No red flags found."
    counts = report.severity_counts()
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"{len(report.findings)} red flags: {parts}."


def _more(lines: list[str], total: int, shown: int, indent: str) -> None:
    if total > shown:
        lines.append(f"{indent}... and {total - shown} more (use --json for all)")


def render_audit_text(report: AuditReport) -> str:
    """A terminal report: summary, crawl notes, reciprocal pairs, cycles, then every finding with its
    evidence (first :data:`TEXT_MAX_ITEMS` URLs each)."""
    lines = [f"Audit of {report.site_url} ({report.domain})", *report.summary_lines()]
    crawl = report.crawl
    if crawl.robots_disallowed_count:
        lines.append(f"robots.txt kept {crawl.robots_disallowed_count} URLs out of our crawl (linkpact).")
    if crawl.failed:
        lines.append(f"{len(crawl.failed)} URLs could not be crawled (see --json: crawl.failed).")
    lines.extend(f"Note: {note}" for note in report.notes)

    lines.append(f"Reciprocal pairs ({len(report.pairs)}):")
    for pair in report.pairs[:TEXT_MAX_ITEMS]:
        ids = f" [agreement #{', #'.join(pair.agreement_ids)}]" if pair.agreement_ids else ""
        our_pages = len({link.page_url for link in pair.ours})
        lines.append(
            f"  {pair.domain}: we link from {our_pages} page(s), they link from "
            f"{len(pair.theirs) or 'a page read by this audit'}{ids}"
        )
        for link in pair.ours[:2]:
            lines.append(f"    ours:   {link.page_url} -> {link.url} ({link.placement.value})")
        for known in pair.theirs[:2]:
            lines.append(f"    theirs: {known.source_url} -> {known.target_url} ({known.status.value})")
    _more(lines, len(report.pairs), TEXT_MAX_ITEMS, "  ")

    lines.append(f"Three-way cycles ({len(report.cycles)}):")
    for cycle in report.cycles[:TEXT_MAX_ITEMS]:
        a, b, c = cycle.domains
        lines.append(f"  {a} -> {b} -> {c} -> {a}")
        for edge in cycle.edges:
            if edge.pages:
                source, target, how = edge.pages[0]
                lines.append(f"    {source} -> {target} ({how})")
    _more(lines, len(report.cycles), TEXT_MAX_ITEMS, "  ")

    lines.append(f"Red flags ({len(report.findings)}):")
    for finding in report.findings:
        side = f" [{finding.side}]" if finding.side else ""
        lines.append(f"  {finding.severity.value.upper()} {finding.code.value}{side}: {finding.summary}")
        lines.append(f"    why: {finding.why}")
        for url in finding.urls[:TEXT_MAX_ITEMS]:
            lines.append(f"    - {url}")
        _more(lines, len(finding.urls), TEXT_MAX_ITEMS, "    ")
    lines.append(f"Audited in {report.duration_s:.1f} s.")
    return "\n".join(lines) + "\n"


# -- CSV ----------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "kind", "code", "severity", "subject", "side", "summary", "why", "domains", "agreement_ids", "urls",
    "metrics",
)  # fmt: skip


def findings_csv(report: AuditReport) -> str:
    """Every finding, reciprocal pair and three-way cycle as CSV rows (``kind``: ``finding``,
    ``reciprocal_pair`` or ``cycle``); lists are space-separated, metrics a JSON object. Cells a
    spreadsheet would run as a formula are neutralised (:func:`bot.linkcheck.report.neutralise_cell`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for f in report.findings:
        row: list[object] = [
            "finding", f.code.value, f.severity.value, f.subject, f.side, f.summary, f.why,
            " ".join(f.domains), " ".join(f.agreement_ids), " ".join(f.urls),
            json.dumps(dict(f.metrics), ensure_ascii=False, sort_keys=True),
        ]  # fmt: skip
        writer.writerow([neutralise_cell(cell) for cell in row])
    for pair in report.pairs:
        urls = [link.page_url for link in pair.ours] + [k.source_url for k in pair.theirs]
        row = [
            "reciprocal_pair", "", "", pair.domain, "", f"we link to {pair.domain} and it links to us",
            "", pair.domain, " ".join(pair.agreement_ids), " ".join(dict.fromkeys(urls)),
            json.dumps({"our_links": len(pair.ours), "their_links": len(pair.theirs)}, sort_keys=True),
        ]  # fmt: skip
        writer.writerow([neutralise_cell(cell) for cell in row])
    for cycle in report.cycles:
        a, b, c = cycle.domains
        urls = [source for edge in cycle.edges for source, _, _ in edge.pages]
        row = [
            "cycle", "", "", f"{a} -> {b} -> {c} -> {a}", "", "three-way link cycle", "",
            " ".join(cycle.domains), "", " ".join(dict.fromkeys(urls)),
            json.dumps({"involves_us": cycle.involves_us}),
        ]  # fmt: skip
        writer.writerow([neutralise_cell(cell) for cell in row])
    return buffer.getvalue()
