"""The engine's stages between fetching a page and checking its links, one type per stage.

fetch (:class:`PageFetcher`) -> extract (:class:`LinkExtractor`) -> resolve (:class:`LinkResolver`)
-> filter (:class:`LinkFilter`) -> check (:class:`bot.linkcheck.check.LinkChecker`) -> report
(:func:`page_report`, :func:`outbound_results`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import replace

from bot.config import Limits
from bot.linkcheck.check import classify, is_bot_wall
from bot.linkcheck.extract import extract_page
from bot.models import (
    ExtractedLink,
    ExtractedPage,
    FetchResult,
    LinkCheck,
    OutboundResult,
    PageReport,
    ResolvedLink,
    Verdict,
)
from bot.net.client import HttpClient
from bot.net.policy import AddressPolicy, IPNetwork
from bot.offload import Offloader
from bot.urls import (
    FETCHABLE_SCHEMES,
    link_key,
    parse_web_url,
    registrable_domain,
    same_site,
    scheme_of,
    strip_fragment,
    url_registrable_domain,
)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Bodies worth downloading: HTML, and a missing Content-Type (sniffed as HTML, as browsers do).
PAGE_BODY_TYPES = HTML_TYPES | {""}
# Parsing a large page takes long enough (tens of ms) to delay Slack acks; hand it to a thread.
PARSE_IN_THREAD_BYTES = 256 * 1024
# With worker processes (``linkpact serve``), pages from this size go to them: about 400 links, 20 ms of
# parsing, resolving and filtering, more than unpickling the result costs the loop.
OFFLOAD_MIN_BYTES = 32 * 1024
# Schemes a page commonly links to that are not web pages; each is its own skip reason.
NAMED_SKIP_SCHEMES = frozenset({"mailto", "tel", "javascript", "data", "sms", "ftp", "file"})
# ExtractedPage.incomplete_reason for a body cut at max_body_bytes (only its start was parsed).
BODY_TRUNCATED = "body_truncated"


class PageFetcher:
    """Fetch stage: GET a page with its body (decoded, capped at ``limits.max_body_bytes``)."""

    def __init__(self, client: HttpClient, limits: Limits) -> None:
        self._client = client
        self._limits = limits

    async def fetch(self, url: str) -> FetchResult:
        return await self._client.request(
            "GET",
            url,
            read_body=True,
            max_body_bytes=self._limits.max_body_bytes,
            body_types=PAGE_BODY_TYPES,
        )


class LinkExtractor:
    """Extract stage: an HTML response -> :class:`ExtractedPage`; ``None`` for other content types
    and failed fetches.

    A body cut at ``max_body_bytes`` (:attr:`FetchResult.truncated`) is parsed as far as it goes and the
    page is marked incomplete (``incomplete_reason="body_truncated"``): its links are real, but a link
    missing from it may be in the part that was not read.

    ``offload`` runs the parse off the event loop: in a worker process for pages of at least
    :data:`OFFLOAD_MIN_BYTES` when it has workers (``linkpact serve``), else in a thread for pages over
    :data:`PARSE_IN_THREAD_BYTES` (one-shot commands, which have no Slack to answer meanwhile).
    """

    def __init__(self, offload: Offloader | None = None) -> None:
        self.offload = offload or Offloader(0)

    async def extract(self, result: FetchResult) -> ExtractedPage | None:
        if not parsable(result):
            return None
        body = result.body
        if self.offload.workers and len(body) >= OFFLOAD_MIN_BYTES:
            page = await self.offload.run(extract_page, body, result.final_url, headers=result.headers)
        elif len(body) > PARSE_IN_THREAD_BYTES:
            page = await asyncio.to_thread(extract_page, body, result.final_url, headers=result.headers)
        else:
            page = extract_page(body, result.final_url, headers=result.headers)
        return mark_truncated(page, result)


def parsable(result: FetchResult) -> bool:
    """Is there HTML to extract links from (a body cut at the cap included)?"""
    return (result.error is None or result.truncated) and is_html(result)


def mark_truncated(page: ExtractedPage, result: FetchResult) -> ExtractedPage:
    if result.truncated and page.complete:
        return replace(page, complete=False, incomplete_reason=BODY_TRUNCATED)
    return page


def prepare_links(
    body: bytes, final_url: str, headers: Mapping[str, str], allow_networks: tuple[IPNetwork, ...]
) -> tuple[ExtractedPage, list[ResolvedLink]]:
    """Extract, resolve and filter one page in one call: what a worker process runs for a large page, so
    that the event loop only unpickles the result. Pure: the address policy here vets what it can
    without DNS (schemes, literal addresses), exactly as :class:`LinkFilter` does."""
    page = extract_page(body, final_url, headers=headers)
    links = LinkFilter(AddressPolicy(allow_networks)).apply(LinkResolver().resolve(final_url, page.links))
    return page, links


def is_html(result: FetchResult) -> bool:
    # A missing Content-Type on a 200 page is treated as HTML, as browsers sniff it.
    return result.content_type in HTML_TYPES or (result.content_type == "" and bool(result.body))


class LinkResolver:
    """Resolve stage: absolute URL -> the URL to request (the URL Standard's serialisation, fragment
    dropped), its comparison key (:func:`bot.urls.link_key`), and whether it is internal (same
    registrable domain as the page). Each http(s) URL is parsed once (:func:`bot.urls.parse_web_url`)."""

    def resolve(self, page_url: str, links: Iterable[ExtractedLink]) -> list[ResolvedLink]:
        page_domain = url_registrable_domain(page_url)
        resolved = []
        for link in links:
            if link.url is None:
                resolved.append(ResolvedLink(link, None, None, internal=False))
                continue
            try:
                if scheme_of(link.url) in FETCHABLE_SCHEMES:
                    web = parse_web_url(link.url)
                    internal = bool(web.host) and registrable_domain(web.host) == page_domain
                    resolved.append(ResolvedLink(link, web.href, web.key, internal=internal))
                    continue
                fetch_url = strip_fragment(link.url)
                key = link_key(fetch_url)
            except ValueError:
                resolved.append(ResolvedLink(link, None, None, internal=False))
                continue
            resolved.append(ResolvedLink(link, fetch_url, key, internal=same_site(fetch_url, page_url)))
        return resolved


class LinkFilter:
    """Filter stage: decide which links are not fetched and why (``skip_reason``).

    Skipped: unparsable URLs (``invalid_url``), non-web schemes (``mailto``, ``tel``, ``javascript``,
    ``data``, ...; others ``unsupported_scheme``), and URLs the address policy refuses before any
    connection (``blocked_address``: literal private/loopback/metadata IPs, userinfo). Hosts whose
    *resolved* address is refused are found by the client at connect time and also end ``skipped``.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    def apply(self, links: Iterable[ResolvedLink]) -> list[ResolvedLink]:
        out = []
        for item in links:
            out.append(item if item.skip_reason else _with_reason(item, self._reason(item)))
        return out

    def _reason(self, item: ResolvedLink) -> str | None:
        if item.fetch_url is None:
            return "invalid_url"
        scheme = scheme_of(item.fetch_url)
        if scheme not in FETCHABLE_SCHEMES:
            return scheme if scheme in NAMED_SKIP_SCHEMES else "unsupported_scheme"
        error = self._policy.vet_url(item.fetch_url)
        if error is not None:
            return error.kind.value
        return None


def _with_reason(item: ResolvedLink, reason: str | None) -> ResolvedLink:
    if reason is None:
        return item
    return ResolvedLink(item.link, item.fetch_url, item.key, item.internal, skip_reason=reason)


def page_report(
    requested_url: str,
    result: FetchResult,
    page: ExtractedPage | None,
    robots_txt_allowed: bool | None,
) -> PageReport:
    """Report stage for the page itself, including indexability.

    A page is indexable when it answers 200 after redirects, is HTML, carries no ``noindex`` (meta robots,
    googlebot meta or X-Robots-Tag), its canonical does not point elsewhere, and robots.txt does not
    disallow Googlebot (Google Search Central: "Block Search indexing with noindex", "Consolidate duplicate
    URLs"). An unreadable robots.txt (``None``) does not make a page non-indexable. A page that could not
    be read (:func:`unreadable_reason`) has ``indexable=None`` (unknown) and no not-indexable reasons.
    """
    unreadable = unreadable_reason(result)
    reasons = [] if unreadable else not_indexable_reasons(result, page, robots_txt_allowed)
    facts = page.facts if page is not None else None
    return PageReport(
        url=requested_url,
        final_url=result.final_url,
        status=result.status,
        indexable=None if unreadable else not reasons,
        title=facts.title if facts else "",
        content_type=result.content_type,
        canonical=facts.canonical if facts else None,
        robots=facts.robots if facts else frozenset(),
        robots_txt_allowed=robots_txt_allowed,
        not_indexable_reasons=tuple(reasons),
        redirects=result.redirects,
        error=result.error,
        unreadable_reason=unreadable,
    )


def unreadable_reason(result: FetchResult) -> str | None:
    """Why the page could not be read, or None when it answered for itself.

    The error kind when no usable answer came (``timeout``, ``dns_not_found``, ``connection_reset``,
    ``body_too_large`` for a body cut at the cap, ...), ``no_response``, or the check stage's reason
    for an answer that is not the page's own (:func:`bot.linkcheck.check.classify`: ``bot_wall``,
    ``rate_limited`` for 429, ``auth_required`` for 401, ``temporarily_unavailable`` for 503).
    """
    if result.error is not None:
        return result.error.kind.value
    if result.status is None:
        return "no_response"
    verdict, reason = classify(result)
    if verdict is Verdict.UNKNOWN and (result.status >= 400 or is_bot_wall(result)):
        return reason
    return None


def not_indexable_reasons(
    result: FetchResult, page: ExtractedPage | None, robots_txt_allowed: bool | None
) -> list[str]:
    """Why a fetched page is not indexable: ``unreachable``, ``page_gone``, ``not_html``, ``noindex``,
    ``canonicalized_away``, ``robots_blocked``; empty when it is indexable."""
    if result.error is not None or result.status is None:
        return ["unreachable"]
    if result.status != 200:
        return ["page_gone" if result.status >= 400 else f"status_{result.status}"]
    reasons = []
    if page is None:
        reasons.append("not_html")
    else:
        if page.facts.noindex:
            reasons.append("noindex")
        if canonicalized_away(result.final_url, page.facts.canonical):
            reasons.append("canonicalized_away")
    if robots_txt_allowed is False:
        reasons.append("robots_blocked")
    return reasons


def canonicalized_away(final_url: str, canonical: str | None) -> bool:
    """True when the page declares a canonical URL other than itself (compared by :func:`link_key`)."""
    if not canonical:
        return False
    try:
        return link_key(canonical) != link_key(final_url)
    except ValueError:
        return False  # a malformed canonical is ignored, as search engines ignore it


def outbound_results(
    links: Iterable[ResolvedLink], checks: Mapping[str, LinkCheck]
) -> tuple[OutboundResult, ...]:
    """Join every occurrence with its target's check (skipped links get a ``skipped`` check)."""
    out = []
    for item in links:
        if item.skip_reason is not None or item.fetch_url is None:
            url = item.fetch_url or item.link.url or item.link.href
            check = LinkCheck(url=url, verdict=Verdict.SKIPPED, reason=item.skip_reason or "invalid_url")
        else:
            check = checks[item.fetch_url]
        out.append(OutboundResult(link=item.link, internal=item.internal, check=check))
    return tuple(out)


def check_from_page(result: FetchResult, verdict: Verdict, reason: str) -> LinkCheck:
    """A link to the checked page itself reuses the page's own fetch instead of a second request."""
    return LinkCheck(
        url=result.url,
        verdict=verdict,
        reason=reason,
        status=result.status,
        final_url=result.final_url,
        redirects=result.redirects,
    )
