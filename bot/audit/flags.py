"""The red-flag rules of the audit. Each rule reads an :class:`AuditContext` and returns findings with
their evidence; thresholds come from :class:`bot.audit.settings.AuditSettings` (docs/audit.md).

"Partners" below are the domains we exchange links with: reciprocal pairs and agreement partners.
"Our link profile" is every referring domain that links to us (``live`` or ``unverified``).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

from bot.agreements.model import AgreementKind, Direction, normalise_anchor
from bot.audit.crawl import CrawlResult, OutboundLink
from bot.audit.knowledge import LINKING, Knowledge, KnownLink, LinkStatus
from bot.audit.models import SEVERITY_ORDER, Finding, FindingCode, PartnerPage, ReciprocalPair, Severity
from bot.audit.settings import AuditSettings
from bot.models import Placement
from bot.urls import link_key, registrable_domain

# A naked URL or bare domain as anchor text ("https://x.example/a", "www.x.example", "x.example").
_URLISH = re.compile(r"^(?:https?://|www\.)\S*$|^[\w-]+(?:\.[\w-]+)+(?::\d+)?(?:/\S*)?$", re.IGNORECASE)
# A compact brand form shorter than this is not matched inside other words ("ab" is in "about").
MIN_COMPACT_BRAND_CHARS = 4
UNFOLLOWED = frozenset({"nofollow", "sponsored", "ugc"})


def _key(url: str) -> str:
    try:
        return link_key(url)
    except ValueError:
        return url


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class AuditContext:
    """Everything the rules read. ``links``: known links as the audit sees them
    (:func:`bot.audit.graph.effective_links`); ``pages``: partner pages read, relevance filled in."""

    domain: str
    settings: AuditSettings
    crawl: CrawlResult
    knowledge: Knowledge
    links: list[KnownLink]
    pages: list[PartnerPage]
    pairs: list[ReciprocalPair]
    now: datetime
    brand_terms: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def inbound(self) -> list[KnownLink]:
        """Links to us from other domains that count (``live`` or ``unverified``)."""
        return [
            k for k in self.links if k.target_domain == self.domain and k.source_domain != self.domain
            and k.status in LINKING
        ]  # fmt: skip

    @cached_property
    def referring_domains(self) -> set[str]:
        return {k.source_domain for k in self.inbound}

    @cached_property
    def partners(self) -> set[str]:
        return {p.domain for p in self.pairs} | self.knowledge.partner_domains

    @cached_property
    def page_by_key(self) -> dict[str, PartnerPage]:
        return {_key(p.url): p for p in self.pages}

    def agreement_ids(self, domain: str) -> tuple[str, ...]:
        return tuple(a.id for a in self.knowledge.agreements_with(domain))

    @staticmethod
    def unique(urls: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(urls))


# -- anchors -------------------------------------------------------------------------------------------


def brand_terms_for(domain: str, configured: Iterable[str] = ()) -> tuple[str, ...]:
    """Normalised brand phrases: the configured ones, else the label of our registrable domain before
    its public suffix (``our-shop.co.uk`` -> ``our shop``). An IP address has no brand."""
    terms = [normalise_anchor(t) for t in configured if normalise_anchor(t)]
    if not terms:
        host = registrable_domain(domain)
        label = host.split(".", 1)[0]
        if label and not host.replace(".", "").isdigit() and ":" not in host:
            terms.append(normalise_anchor(label.replace("-", " ").replace("_", " ")))
    return tuple(dict.fromkeys(terms))


def anchor_kind(anchor: str, brand_terms: Iterable[str], generic: frozenset[str]) -> str:
    """``empty``, ``url`` (naked URL or domain), ``brand`` (contains a brand term), ``generic``
    ("click here", "this guide", ... after normalisation) or ``keyword`` (exact-match: anything else)."""
    raw = anchor.strip()
    norm = normalise_anchor(raw)
    if not norm:
        return "empty"
    if _URLISH.match(raw):
        return "url"
    padded, compact = f" {norm} ", norm.replace(" ", "")
    for term in brand_terms:
        term_compact = term.replace(" ", "")
        long_enough = len(term_compact) >= MIN_COMPACT_BRAND_CHARS
        if f" {term} " in padded or (long_enough and term_compact in compact):
            return "brand"
    if norm in generic:
        return "generic"
    return "keyword"


def flag_reciprocal_share(ctx: AuditContext) -> list[Finding]:
    """Reciprocal referring domains / all referring domains above ``max_reciprocal_share``."""
    total = len(ctx.referring_domains)
    reciprocal = sorted(d for d in (p.domain for p in ctx.pairs) if d in ctx.referring_domains)
    s = ctx.settings
    if total < s.min_profile_domains or not total:
        return []
    share = len(reciprocal) / total
    if share <= s.max_reciprocal_share:
        return []
    urls = [k.source_url for k in ctx.inbound if k.source_domain in reciprocal]
    return [
        Finding(
            code=FindingCode.RECIPROCAL_SHARE,
            severity=Severity.HIGH,
            subject=ctx.domain,
            summary=f"{len(reciprocal)} of {total} referring domains are reciprocal ({share:.0%}; "
            f"threshold {s.max_reciprocal_share:.0%})",
            why="Reciprocal links should stay a minor part of the backlink profile (seed 001); a profile "
            "built on exchanges is what Google's spam policy calls excessive link exchanges.",
            urls=ctx.unique(urls),
            domains=tuple(reciprocal),
            metrics=(
                ("reciprocal_domains", len(reciprocal)),
                ("referring_domains", total),
                ("share", round(share, 3)),
                ("threshold", s.max_reciprocal_share),
            ),
        )
    ]


def flag_anchors(ctx: AuditContext) -> list[Finding]:
    """The same exact-match anchor (not brand, URL or generic) from ``anchor_min_domains`` or more
    referring domains."""
    groups: dict[str, dict[str, list[KnownLink]]] = defaultdict(lambda: defaultdict(list))
    shown: dict[str, list[str]] = defaultdict(list)
    for link in ctx.inbound:
        anchor = link.anchor if link.anchor is not None else link.agreed_anchor
        if not anchor:
            continue
        if anchor_kind(anchor, ctx.brand_terms, ctx.settings.generic_anchors) != "keyword":
            continue
        norm = normalise_anchor(anchor)
        groups[norm][link.source_domain].append(link)
        shown[norm].append(anchor.strip())
    total = len(ctx.referring_domains)
    findings = []
    for norm, by_domain in sorted(groups.items()):
        if len(by_domain) < ctx.settings.anchor_min_domains:
            continue
        display = max(set(shown[norm]), key=shown[norm].count)
        domains = sorted(by_domain)
        urls = [link.source_url for d in domains for link in by_domain[d]]
        findings.append(
            Finding(
                code=FindingCode.OVER_OPTIMISED_ANCHOR,
                severity=Severity.HIGH,
                subject=display,
                summary=f'anchor "{display}" is used by {len(domains)} of {total} referring domains '
                f"(threshold {ctx.settings.anchor_min_domains})",
                why="The same exact-match keyword anchor across many sites is a link-scheme footprint "
                "(seed 001); brand names, URLs and natural phrases are not counted.",
                urls=ctx.unique(urls),
                domains=tuple(domains),
                agreement_ids=tuple(dict.fromkeys(i for d in domains for i in ctx.agreement_ids(d))),
                metrics=(
                    ("domains", len(domains)),
                    ("referring_domains", total),
                    ("threshold", ctx.settings.anchor_min_domains),
                ),
            )
        )
    return findings


# -- placement ------------------------------------------------------------------------------------------


def _by_domain(outbound: Iterable[OutboundLink]) -> dict[str, list[OutboundLink]]:
    groups: dict[str, list[OutboundLink]] = defaultdict(list)
    for link in outbound:
        groups[link.domain].append(link)
    return groups


def flag_placements(ctx: AuditContext) -> list[Finding]:
    """Exchanged links (with partners) in a footer, sidebar or comments: our links to partners on our
    pages, and their links to us (the best occurrence on the source page)."""
    risky = ctx.settings.risky_placements
    findings = []
    ours = _by_domain(ctx.crawl.outbound)
    for domain in sorted(ctx.partners):
        bad = [link for link in ours.get(domain, []) if link.placement in risky]
        if bad:
            where = sorted({link.placement.value for link in bad})
            pages = ctx.unique(link.page_url for link in bad)
            findings.append(
                Finding(
                    code=FindingCode.RISKY_PLACEMENT,
                    severity=Severity.LOW,
                    subject=domain,
                    side="ours",
                    summary=f"our link to partner {domain} sits in the {'/'.join(where)} on "
                    f"{_plural(len(pages), 'page')}",
                    why="A link in a footer, sidebar or comments passes little value and looks like an "
                    "exchange (seed 001, 'Ignoring Link Placement'); place it in the main content.",
                    urls=pages,
                    domains=(domain,),
                    agreement_ids=ctx.agreement_ids(domain),
                    metrics=(("pages", len(pages)), ("placements", ",".join(where))),
                )
            )
    theirs: dict[str, list[KnownLink]] = defaultdict(list)
    for link in ctx.inbound:
        if link.source_domain in ctx.partners and link.placement and Placement(link.placement) in risky:
            theirs[link.source_domain].append(link)
    for domain in sorted(theirs):
        links = theirs[domain]
        where = sorted({link.placement or "" for link in links})
        findings.append(
            Finding(
                code=FindingCode.RISKY_PLACEMENT,
                severity=Severity.LOW,
                subject=domain,
                side="theirs",
                summary=f"{domain}'s link to us sits in the {'/'.join(where)} on "
                f"{_plural(len(links), 'page')}",
                why="A link in a footer, sidebar or comments passes little value and looks like an "
                "exchange (seed 001, 'Ignoring Link Placement'); ask for a place in the main content.",
                urls=ctx.unique(link.source_url for link in links),
                domains=(domain,),
                agreement_ids=ctx.agreement_ids(domain),
                metrics=(("pages", len(links)), ("placements", ",".join(where))),
            )
        )
    return findings


def flag_sitewide(ctx: AuditContext) -> list[Finding]:
    """Our link to a partner on at least ``sitewide_min_share`` of our crawled pages (and at least
    ``sitewide_min_pages`` pages)."""
    html = {_key(p.final_url) for p in ctx.crawl.html_pages}
    if not html:
        return []
    s = ctx.settings
    findings = []
    for domain, links in sorted(_by_domain(ctx.crawl.outbound).items()):
        if domain not in ctx.partners:
            continue
        pages = ctx.unique(link.page_url for link in links)
        share = len(pages) / len(html)
        if len(pages) < s.sitewide_min_pages or share < s.sitewide_min_share:
            continue
        findings.append(
            Finding(
                code=FindingCode.SITEWIDE_LINK,
                severity=Severity.MEDIUM,
                subject=domain,
                side="ours",
                summary=f"our link to partner {domain} is on {len(pages)} of {len(html)} crawled pages "
                f"({share:.0%}; threshold {s.sitewide_min_share:.0%})",
                why="A sitewide link to an exchange partner (blogroll, footer) is a classic exchange "
                "footprint and passes no more than one link would; keep one contextual link.",
                urls=pages,
                domains=(domain,),
                agreement_ids=ctx.agreement_ids(domain),
                metrics=(
                    ("pages", len(pages)),
                    ("crawled_pages", len(html)),
                    ("share", round(share, 3)),
                    ("threshold", s.sitewide_min_share),
                ),
            )
        )
    return findings


# -- links pages and networks ----------------------------------------------------------------------------


def _linking_pages(ctx: AuditContext) -> list[PartnerPage]:
    """Read pages that link to us, once each."""
    return [p for p in ctx.pages if p.readable and p.to_us is not None]


def flag_links_pages(ctx: AuditContext) -> list[Finding]:
    """Pages that are mostly outbound links (qualification's rule: ``links_page_min_external_links``
    distinct external targets and ``links_page_min_link_text_share`` of the main text is link text):
    partner pages that link to us, and our own pages."""
    s = ctx.settings
    rule = (
        f"{s.links_page_min_external_links}+ external links and "
        f"{s.links_page_min_link_text_share:.0%}+ link text"
    )
    findings = []
    for page in _linking_pages(ctx):
        if not page.links_page:
            continue
        findings.append(
            Finding(
                code=FindingCode.LINKS_PAGE,
                severity=Severity.MEDIUM,
                subject=page.url,
                side="theirs",
                summary=f"{page.domain} links to us from a links page: {page.external_links} external links, "
                f"{page.link_text_share or 0:.0%} of its text is link text",
                why=f"A page that is mostly outbound links ({rule}) is a graveyard: little value, and a "
                "sign of cross-linking for its own sake (seed 001).",
                urls=(page.url,),
                domains=(page.domain,),
                agreement_ids=ctx.agreement_ids(page.domain),
                metrics=(
                    ("external_links", page.external_links),
                    ("link_text_share", page.link_text_share or 0),
                    ("min_external_links", s.links_page_min_external_links),
                    ("min_link_text_share", s.links_page_min_link_text_share),
                ),
            )
        )
    counts = {_key(p.final_url): p.external_links for p in ctx.crawl.html_pages}
    for ours in ctx.crawl.html_pages:
        text = ctx.crawl.texts.get(_key(ours.final_url))
        if text is None or ours.external_links < s.links_page_min_external_links:
            continue
        if text.link_text_share < s.links_page_min_link_text_share:
            continue
        targets = {o.domain for o in ctx.crawl.outbound if o.page_url == ours.final_url}
        partners = sorted(targets & ctx.partners)
        findings.append(
            Finding(
                code=FindingCode.LINKS_PAGE,
                severity=Severity.MEDIUM,
                subject=ours.final_url,
                side="ours",
                summary=f"our page is a links page: {counts[_key(ours.final_url)]} external links, "
                f"{text.link_text_share:.0%} of its text is link text, {_plural(len(partners), 'partner')}",
                why=f"A page of ours that is mostly outbound links ({rule}) is the 'links page graveyard' "
                "(seed 001): place partner links in useful content instead.",
                urls=(ours.final_url,),
                domains=tuple(partners),
                metrics=(
                    ("external_links", ours.external_links),
                    ("link_text_share", round(text.link_text_share, 3)),
                    ("partners", len(partners)),
                ),
            )
        )
    return findings


def flag_networks(ctx: AuditContext) -> list[Finding]:
    """Domains of our link profile (referring domains and partners) that link to each other from links
    pages: each connected group of at least ``network_min_domains`` domains is one finding."""
    members = ctx.referring_domains | ctx.partners
    neighbours: dict[str, set[str]] = defaultdict(set)
    pages_of: dict[str, set[str]] = defaultdict(set)
    for page in ctx.pages:
        if not page.readable or not page.links_page or page.domain not in members:
            continue
        for seen in page.external:
            if seen.domain in members and seen.domain != page.domain:
                neighbours[page.domain].add(seen.domain)
                neighbours[seen.domain].add(page.domain)
                pages_of[page.domain].add(page.url)
    findings = []
    done: set[str] = set()
    for start in sorted(neighbours):
        if start in done:
            continue
        group, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node in group:
                continue
            group.add(node)
            todo.extend(neighbours[node] - group)
        done |= group
        if len(group) < ctx.settings.network_min_domains:
            continue
        domains = sorted(group)
        urls = sorted(u for d in domains for u in pages_of[d])
        findings.append(
            Finding(
                code=FindingCode.LINK_NETWORK,
                severity=Severity.HIGH,
                subject=", ".join(domains),
                summary=f"{len(domains)} domains of our link profile link to each other from "
                f"{_plural(len(urls), 'links page')}",
                why="Sites of our link profile cross-linking on link-dump pages form a link network "
                "(seed 001, 'Partnering with Link Networks'; Google: partner pages exclusively for "
                f"cross-linking). Threshold: {ctx.settings.network_min_domains} domains.",
                urls=tuple(urls),
                domains=tuple(domains),
                agreement_ids=tuple(dict.fromkeys(i for d in domains for i in ctx.agreement_ids(d))),
                metrics=(
                    ("domains", len(domains)),
                    ("pages", len(urls)),
                    ("threshold", ctx.settings.network_min_domains),
                ),
            )
        )
    return findings


# -- partner quality -------------------------------------------------------------------------------------


def flag_not_indexable(ctx: AuditContext) -> list[Finding]:
    """Partner pages linking to us that answered but cannot be indexed (their link counts for nothing)."""
    sources = {_key(k.source_url) for k in ctx.links if k.target_domain == ctx.domain}
    findings = []
    for page in ctx.pages:
        if page.domain not in ctx.partners or page.indexable is not False or _key(page.url) not in sources:
            continue
        reasons = ", ".join(page.not_indexable_reasons)
        findings.append(
            Finding(
                code=FindingCode.PARTNER_NOT_INDEXABLE,
                severity=Severity.MEDIUM,
                subject=page.url,
                side="theirs",
                summary=f"{page.domain}'s page is not indexable ({reasons})",
                why="A link on a page search engines cannot index passes nothing (noindex, canonical "
                "elsewhere, robots.txt, gone): the exchange gives them our link for nothing.",
                urls=(page.url,),
                domains=(page.domain,),
                agreement_ids=ctx.agreement_ids(page.domain),
                metrics=(("status", page.status or 0), ("reasons", reasons)),
            )
        )
    return findings


def flag_unrelated(ctx: AuditContext) -> list[Finding]:
    """Partners whose pages linking to us all score below ``min_relevance`` against our text."""
    scores: dict[str, list[PartnerPage]] = defaultdict(list)
    for page in _linking_pages(ctx):
        if page.domain in ctx.partners and page.relevance is not None:
            scores[page.domain].append(page)
    findings = []
    threshold = ctx.settings.min_relevance
    for domain, pages in sorted(scores.items()):
        best = max(p.relevance or 0.0 for p in pages)
        if best >= threshold:
            continue
        findings.append(
            Finding(
                code=FindingCode.UNRELATED_PARTNER,
                severity=Severity.MEDIUM,
                subject=domain,
                side="theirs",
                summary=f"{domain} is off-topic: relevance {best:.2f} to our pages "
                f"(threshold {threshold:.2f})",
                why="Links between unrelated sites look manipulative and carry little weight (seed 001, "
                "'Linking to Irrelevant Websites'). Relevance: TF-IDF cosine of the partner page and "
                "our page it links to (or our home page), docs/qualification.md.",
                urls=tuple(p.url for p in pages),
                domains=(domain,),
                agreement_ids=ctx.agreement_ids(domain),
                metrics=(("relevance", round(best, 3)), ("threshold", threshold)),
            )
        )
    return findings


def flag_paid_followed(ctx: AuditContext) -> list[Finding]:
    """Links of ``paid`` agreements seen without nofollow/sponsored/ugc (Google Search Central,
    "Qualify your outbound links to Google": paid links should carry rel="sponsored")."""
    findings = []
    our_links = defaultdict(list)
    for link in ctx.crawl.outbound:
        our_links[(_key(link.page_url), _key(link.url))].append(link)
    for agreement in ctx.knowledge.agreements:
        if agreement.kind is not AgreementKind.PAID:
            continue
        for promised in agreement.links:
            if promised.direction is Direction.OURS:
                seen = our_links.get((_key(promised.source_url), _key(promised.target_url)), [])
                followed_links = [link for link in seen if link.followed]
                followed = bool(followed_links)
                rel = " ".join(followed_links[0].rel) if followed_links else ""
            else:
                page = ctx.page_by_key.get(_key(promised.source_url))
                if page is not None and page.to_us is not None:
                    followed = page.to_us.followed
                    rel = " ".join(page.to_us.rel)
                elif promised.seen_anchor is not None:
                    followed = not set(promised.seen_rel) & UNFOLLOWED
                    rel = " ".join(promised.seen_rel)
                else:
                    continue
            if not followed:
                continue
            ours_side = promised.direction is Direction.OURS
            where = "our page" if ours_side else f"{agreement.partner_domain}'s page"
            findings.append(
                Finding(
                    code=FindingCode.PAID_LINK_FOLLOWED,
                    severity=Severity.HIGH,
                    subject=agreement.partner_domain,
                    side=promised.direction.value,
                    summary=f"paid link on {where} is followed (rel: {rel or 'none'}); "
                    f"agreement #{agreement.id}",
                    why='Paid links must carry rel="sponsored" (or nofollow); a followed paid link '
                    "violates Google's spam policy on link schemes.",
                    urls=(promised.source_url, promised.target_url),
                    domains=(agreement.partner_domain,),
                    agreement_ids=(agreement.id,),
                    metrics=(("rel", rel or "none"),),
                )
            )
    return findings


# -- velocity ---------------------------------------------------------------------------------------------


def week_start(moment: datetime) -> date:
    return (moment - timedelta(days=moment.weekday())).date()


def flag_bursts(ctx: AuditContext) -> list[Finding]:
    """Weeks whose new referring domains number at least ``burst_min_domains`` and exceed
    ``burst_factor`` times the median of up to ``burst_baseline_weeks`` preceding weeks (zero weeks
    count), judged only with ``burst_min_history_weeks`` weeks of history before them."""
    firsts: dict[date, list[tuple[str, str]]] = defaultdict(list)
    for domain, at in ctx.knowledge.first_live.items():
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            continue
        firsts[week_start(moment)].append((domain, at))
    if not firsts:
        return []
    s = ctx.settings
    first_week, this_week = min(firsts), week_start(ctx.now)
    weeks = [first_week + timedelta(weeks=i) for i in range((this_week - first_week).days // 7 + 1)]
    counts = [len(firsts.get(week, [])) for week in weeks]
    findings = []
    for index, week in enumerate(weeks):
        if index < s.burst_min_history_weeks:
            continue
        baseline = counts[max(0, index - s.burst_baseline_weeks) : index]
        median = statistics.median(baseline)
        count = counts[index]
        if count < s.burst_min_domains or count <= s.burst_factor * median:
            continue
        new = sorted(firsts[week])
        findings.append(
            Finding(
                code=FindingCode.LINK_BURST,
                severity=Severity.HIGH,
                subject=f"week of {week.isoformat()}",
                summary=f"{count} new referring domains in the week of {week.isoformat()}, against a "
                f"median of {median:g} a week over the {len(baseline)} weeks before",
                why=f"Sudden bursts of new links look unnatural (seeds 001, 002: link velocity). Rule: at "
                f"least {s.burst_min_domains} and more than {s.burst_factor:g}x the median week.",
                domains=tuple(d for d, _ in new),
                metrics=(
                    ("new_domains", count),
                    ("median", median),
                    ("baseline_weeks", len(baseline)),
                    ("factor", s.burst_factor),
                    ("min_domains", s.burst_min_domains),
                ),
            )
        )
    return findings


# -- one-sided ----------------------------------------------------------------------------------------------


def flag_one_sided(ctx: AuditContext) -> list[Finding]:
    """Domains we still link to whose every known link to us is lost or never came (and none counts)."""
    ours = _by_domain(ctx.crawl.outbound)
    gone: dict[str, list[KnownLink]] = defaultdict(list)
    for link in ctx.links:
        if link.target_domain == ctx.domain and link.status in (LinkStatus.LOST, LinkStatus.MISSING):
            gone[link.source_domain].append(link)
    findings = []
    for domain in sorted(gone):
        if domain not in ours or domain in ctx.referring_domains:
            continue
        lost = gone[domain]
        our_pages = ctx.unique(link.page_url for link in ours[domain])
        states = ", ".join(sorted({f"{k.status.value}{' ' + k.reason if k.reason else ''}" for k in lost}))
        findings.append(
            Finding(
                code=FindingCode.ONE_SIDED,
                severity=Severity.MEDIUM,
                subject=domain,
                side="ours",
                summary=f"we link to {domain} from {_plural(len(our_pages), 'page')} but it no longer links "
                f"back ({states})",
                why="A one-sided exchange gives our link equity away for nothing (seed 001, 'One-Sided or "
                "Unfulfilled Agreements'): a candidate for pruning.",
                urls=our_pages + ctx.unique(k.source_url for k in lost),
                domains=(domain,),
                agreement_ids=ctx.agreement_ids(domain),
                metrics=(("our_pages", len(our_pages)), ("their_links", len(lost))),
            )
        )
    return findings


RULES: tuple[Callable[[AuditContext], list[Finding]], ...] = (
    flag_reciprocal_share,
    flag_anchors,
    flag_placements,
    flag_sitewide,
    flag_links_pages,
    flag_networks,
    flag_not_indexable,
    flag_unrelated,
    flag_paid_followed,
    flag_bursts,
    flag_one_sided,
)


def all_findings(ctx: AuditContext) -> list[Finding]:
    """Every rule's findings, most severe first (then by code and subject)."""
    findings = [finding for rule in RULES for finding in rule(ctx)]
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.code.value, f.subject, f.side))
