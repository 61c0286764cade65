"""Value types of an audit: partner pages read, reciprocal pairs, three-way cycles and findings.

All immutable; nothing here does I/O. JSON forms (``to_json``) are documented in docs/audit.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.audit.crawl import OutboundLink
from bot.audit.knowledge import KnownLink


class FindingCode(StrEnum):
    """The red flags (seeds 001 and 002; ../shared/domain.md "Red flags to surface")."""

    RECIPROCAL_SHARE = "reciprocal_share"
    OVER_OPTIMISED_ANCHOR = "over_optimised_anchor"
    RISKY_PLACEMENT = "risky_placement"  # an exchanged link in a footer, sidebar or comments
    SITEWIDE_LINK = "sitewide_link"  # our link to a partner on most of our pages
    LINKS_PAGE = "links_page"
    LINK_NETWORK = "link_network"
    PARTNER_NOT_INDEXABLE = "partner_not_indexable"
    UNRELATED_PARTNER = "unrelated_partner"
    PAID_LINK_FOLLOWED = "paid_link_followed"
    LINK_BURST = "link_burst"
    ONE_SIDED = "one_sided"


class Severity(StrEnum):
    HIGH = "high"  # a link-scheme footprint search engines act on
    MEDIUM = "medium"  # a link that passes little or nothing, or costs us equity
    LOW = "low"  # worth renegotiating


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


@dataclass(frozen=True, slots=True)
class SeenLink:
    """One link occurrence on a page read by the audit (fragment dropped from ``url``)."""

    url: str
    domain: str
    anchor: str
    rel: tuple[str, ...]
    placement: str

    @property
    def followed(self) -> bool:
        return not set(self.rel) & {"nofollow", "sponsored", "ugc"}

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "domain": self.domain,
            "anchor": self.anchor,
            "rel": list(self.rel),
            "placement": self.placement,
        }


@dataclass(frozen=True, slots=True)
class PartnerPage:
    """Another site's page read by the audit (a source page of a link to us or between partners).

    ``readable``: it answered 200 with HTML. ``indexable``: ``None`` when it could not be read
    (``unreadable_reason`` says why: timeout, bot wall, 429 ...). ``to_us``: its best link to our domain
    (followed and main content first), ``None`` when it has none. ``external``: one occurrence per
    distinct external target, for the link graph. ``relevance``: filled in after the crawl.
    """

    url: str
    final_url: str
    domain: str
    status: int | None
    readable: bool
    indexable: bool | None
    not_indexable_reasons: tuple[str, ...] = ()
    unreadable_reason: str = ""
    external_links: int = 0
    link_text_share: float | None = None
    links_page: bool = False
    to_us: SeenLink | None = None
    external: tuple[SeenLink, ...] = ()
    relevance: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "final_url": self.final_url,
            "domain": self.domain,
            "status": self.status,
            "readable": self.readable,
            "unreadable_reason": self.unreadable_reason or None,
            "indexable": self.indexable,
            "not_indexable_reasons": list(self.not_indexable_reasons),
            "external_links": self.external_links,
            "link_text_share": self.link_text_share,
            "links_page": self.links_page,
            "link_to_us": self.to_us.to_json() if self.to_us else None,
            "relevance": self.relevance,
        }


def outbound_to_json(link: OutboundLink) -> dict[str, Any]:
    return {
        "page_url": link.page_url,
        "url": link.url,
        "domain": link.domain,
        "anchor": link.anchor,
        "rel": list(link.rel),
        "placement": link.placement.value,
    }


def known_to_json(link: KnownLink) -> dict[str, Any]:
    return {
        "source_url": link.source_url,
        "target_url": link.target_url,
        "status": link.status.value,
        "origins": list(link.origins),
        "agreement_ids": list(link.agreement_ids),
        "anchor": link.anchor,
        "rel": list(link.rel) if link.rel is not None else None,
        "placement": link.placement,
        "first_live_at": link.first_live_at,
        "lost_at": link.lost_at,
    }


@dataclass(frozen=True, slots=True)
class ReciprocalPair:
    """A referring domain that links to us while we link to it: our pages' links to it and its links to
    us (each with the page it is on), and the agreements that concern it."""

    domain: str
    ours: tuple[OutboundLink, ...]
    theirs: tuple[KnownLink, ...]
    agreement_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "our_links": [outbound_to_json(link) for link in self.ours],
            "their_links": [known_to_json(link) for link in self.theirs],
            "agreement_ids": list(self.agreement_ids),
        }


@dataclass(frozen=True, slots=True)
class Edge:
    """A domain-level link A -> B and the pages that show it (``how``: where we learned it)."""

    source_domain: str
    target_domain: str
    pages: tuple[tuple[str, str, str], ...]  # (source_url, target_url, how)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.source_domain,
            "to": self.target_domain,
            "pages": [{"source_url": s, "target_url": t, "how": h} for s, t, h in self.pages],
        }


@dataclass(frozen=True, slots=True)
class Cycle:
    """A three-way cycle A -> B -> C -> A at the referring-domain level, starting with our domain when
    it is part of it. ``edges`` are the three links in order, with their pages."""

    domains: tuple[str, str, str]
    edges: tuple[Edge, Edge, Edge]
    involves_us: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "domains": list(self.domains),
            "involves_us": self.involves_us,
            "edges": [edge.to_json() for edge in self.edges],
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One red flag with its evidence.

    ``subject``: what it is about (a referring domain, a page URL, an anchor text or an ISO week);
    ``summary``: one line with the numbers; ``why``: the rule applied, with its threshold, and why it
    matters; ``urls``: the pages that show it (all of them); ``metrics``: the numbers and thresholds
    as (name, value) pairs; ``side``: ``ours`` (on our site), ``theirs`` (on a partner's) or ``""``.
    """

    code: FindingCode
    severity: Severity
    subject: str
    summary: str
    why: str
    urls: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    agreement_ids: tuple[str, ...] = ()
    metrics: tuple[tuple[str, float | int | str], ...] = ()
    side: str = ""

    def metric(self, name: str) -> float | int | str | None:
        return dict(self.metrics).get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "side": self.side or None,
            "summary": self.summary,
            "why": self.why,
            "urls": list(self.urls),
            "domains": list(self.domains),
            "agreement_ids": list(self.agreement_ids),
            "metrics": dict(self.metrics),
        }
