"""The audit's thresholds and caps: one frozen value object, each default named with the reason for it.

See docs/audit.md for the same table in prose. Every threshold is a setting so a team can tune it, and
the report echoes the values it used next to each finding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bot.agreements.qualify import (
    LINKS_PAGE_MIN_EXTERNAL_LINKS,
    LINKS_PAGE_MIN_LINK_TEXT_SHARE,
    LOW_RELEVANCE,
)
from bot.models import Placement

# -- the crawl of our own site -------------------------------------------------------------------------

# Pages fetched at most (issue 6: "up to N pages, default 500"). Enough to cover the pages that carry
# outbound links on most small and medium sites, small enough to finish in a minute or two.
DEFAULT_MAX_PAGES = 500
# Wall-clock cap on the crawl, in seconds: a person waits for the answer (CLI or Slack); 500 pages at
# 4 at a time take about a minute on a healthy site, so five minutes only stops a slow or huge one.
DEFAULT_TIME_LIMIT_S = 300.0
# The robots.txt product token our crawl obeys (RFC 9309 section 2.2.1: the token, not the full
# User-Agent header; our header is "linkpact/VERSION (+contact URL)").
CRAWLER_TOKEN = "linkpact"
# Pages requested at once. The client also limits every host to 4 connections; this matches it so a
# batch is one round of requests to our own server.
DEFAULT_CRAWL_CONCURRENCY = 4
# A robots.txt Crawl-delay above this many seconds is capped: 10 s between pages already makes a
# 500-page crawl last over an hour, where the time cap stops it anyway.
DEFAULT_MAX_CRAWL_DELAY_S = 10.0
# Sitemap files read at most (an index plus its children). Sitemaps.org allows 50,000 index entries,
# but a page cap of hundreds is reached long before the 20th file.
DEFAULT_MAX_SITEMAP_FILES = 20
# Bytes read (and, for .gz sitemaps, inflated) per sitemap file. Sitemaps.org allows 50 MB; 10 MB
# holds about 100,000 <url> entries, far more than the page cap needs, and bounds memory per file.
DEFAULT_MAX_SITEMAP_BYTES = 10_000_000

# -- what is read about other sites ----------------------------------------------------------------------

# Partner pages fetched to learn their external links (partner-to-partner edges for three-way cycles),
# placement, indexability and topic. Each is one request to someone else's server; 200 covers the
# source pages of a typical partnership programme while keeping the audit polite.
DEFAULT_MAX_PARTNER_PAGES = 200

# -- red-flag thresholds -------------------------------------------------------------------------------

# Seed 001 wants reciprocal links to be a minor part of the profile, and the domain brief names a
# "mostly reciprocal" profile (over half) as a red flag. The flag fires from 30% so a team hears about
# it while the share is still well under half, early enough to change course.
DEFAULT_MAX_RECIPROCAL_SHARE = 0.3
# Below this many referring domains a share says little (2 of 3 is 67%): the share is still reported,
# but not flagged.
DEFAULT_MIN_PROFILE_DOMAINS = 5
# The same exact-match anchor from this many referring domains is a footprint (seed 001: "exact-match
# commercial keywords ... repeatedly"; seed 002: "optimized anchor text across many sites"). Two sites
# can pick the same product name by chance; three choosing the same keyword phrase rarely do.
DEFAULT_ANCHOR_MIN_DOMAINS = 3
# Anchors that say nothing about the target (seed 002: natural phrases like "this study", "a helpful
# guide"). Compared after normalisation (case, punctuation and spacing ignored).
GENERIC_ANCHORS = frozenset(
    {
        "click here", "here", "this", "this guide", "a helpful guide", "this study", "this article",
        "this post", "this page", "this site", "this website", "website", "web site", "site", "link",
        "this link", "read more", "more", "learn more", "more info", "source", "via", "see here",
        "visit", "visit site", "visit website", "homepage", "home page", "official site", "go",
    }
)  # fmt: skip
# Placements of an exchanged link with little value and some risk (domain brief; seed 001 "Ignoring
# Link Placement": "a link buried in a website footer or a spammy comment section").
RISKY_PLACEMENTS = frozenset({Placement.FOOTER, Placement.ASIDE, Placement.COMMENTS})
# Our link to a partner is sitewide when it is on at least this share of our crawled pages ("most")...
DEFAULT_SITEWIDE_MIN_SHARE = 0.5
# ... and on at least this many pages (on a 2-page site, one page is half of it without being sitewide).
DEFAULT_SITEWIDE_MIN_PAGES = 3
# Referring domains / partners interlinked on links pages that make a link network (seed 001
# "Partnering with Link Networks"): three sites linking to each other from link dumps is a pattern,
# two could be a friendship.
DEFAULT_NETWORK_MIN_DOMAINS = 3
# Link velocity (seed 002: "steady growth tends to look more natural than sudden spikes"): a week is a
# burst when its new referring domains exceed this multiple of the median weekly count ...
DEFAULT_BURST_FACTOR = 3.0
# ... and number at least this many (three new sites in a week is not a spike for anyone) ...
DEFAULT_BURST_MIN_DOMAINS = 5
# ... over a baseline of up to this many preceding weeks (a quarter: long enough for a stable median).
DEFAULT_BURST_BASELINE_WEEKS = 12
# Weeks are judged only once this many weeks of history precede them: the week tracking started holds
# every link that was already there (its age unknown), which is not velocity.
DEFAULT_BURST_MIN_HISTORY_WEEKS = 4
# URLs listed as evidence per finding in the terminal, Slack and CSV (JSON keeps them all).
DEFAULT_MAX_EVIDENCE_URLS = 20


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Caps and thresholds of one audit. Units are in the names; shares are 0..1.

    ``brand_terms``: words or phrases that make an anchor a brand anchor (case and punctuation ignored);
    empty means the labels of our registrable domain before its public suffix (``our-shop.co.uk`` ->
    ``our shop``, ``ourshop``). ``min_relevance`` and the links-page rule reuse the qualification
    thresholds measured in docs/qualification.md.
    """

    crawler_token: str = CRAWLER_TOKEN
    crawl_concurrency: int = DEFAULT_CRAWL_CONCURRENCY
    max_crawl_delay_s: float = DEFAULT_MAX_CRAWL_DELAY_S
    max_sitemap_files: int = DEFAULT_MAX_SITEMAP_FILES
    max_sitemap_bytes: int = DEFAULT_MAX_SITEMAP_BYTES
    max_partner_pages: int = DEFAULT_MAX_PARTNER_PAGES
    max_reciprocal_share: float = DEFAULT_MAX_RECIPROCAL_SHARE
    min_profile_domains: int = DEFAULT_MIN_PROFILE_DOMAINS
    anchor_min_domains: int = DEFAULT_ANCHOR_MIN_DOMAINS
    brand_terms: tuple[str, ...] = ()
    generic_anchors: frozenset[str] = GENERIC_ANCHORS
    risky_placements: frozenset[Placement] = RISKY_PLACEMENTS
    sitewide_min_share: float = DEFAULT_SITEWIDE_MIN_SHARE
    sitewide_min_pages: int = DEFAULT_SITEWIDE_MIN_PAGES
    links_page_min_external_links: int = LINKS_PAGE_MIN_EXTERNAL_LINKS
    links_page_min_link_text_share: float = LINKS_PAGE_MIN_LINK_TEXT_SHARE
    network_min_domains: int = DEFAULT_NETWORK_MIN_DOMAINS
    min_relevance: float = LOW_RELEVANCE
    burst_factor: float = DEFAULT_BURST_FACTOR
    burst_min_domains: int = DEFAULT_BURST_MIN_DOMAINS
    burst_baseline_weeks: int = DEFAULT_BURST_BASELINE_WEEKS
    burst_min_history_weeks: int = DEFAULT_BURST_MIN_HISTORY_WEEKS
    max_evidence_urls: int = DEFAULT_MAX_EVIDENCE_URLS

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["generic_anchors"] = sorted(self.generic_anchors)
        data["risky_placements"] = sorted(p.value for p in self.risky_placements)
        data["brand_terms"] = list(self.brand_terms)
        return data
