"""Qualification hints for a prospective link partner, computed from the partner page itself.

Seed 001, step 2 ("Define qualification criteria") asks whether a partner is relevant and whether its
page is worth a link; its red flags include irrelevant partners and the "links page" graveyard. At the
time an agreement is logged, :func:`qualification_hints` fetches the partner page (and our page) once
and answers, as hints that never block logging:

- **indexable**: whether the page can count at all (HTTP 200, no ``noindex``, canonical not elsewhere,
  robots.txt allows Googlebot; :func:`bot.linkcheck.pipeline.not_indexable_reasons`);
- **external links**: how many distinct outbound targets the page carries, and whether it is a
  **links page** (many external links *and* mostly link text);
- **our link**: where a link to our page or domain already sits (placement, rel, anchor text);
- **relevance**: TF-IDF cosine similarity (scikit-learn) between the main-content text of the partner
  page and of our page, 0..1.

See docs/qualification.md for what each hint means, its thresholds and how they were measured.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from bot.backlinks.registry import validate_user_url
from bot.errors import InputError
from bot.linkcheck.check import classify
from bot.linkcheck.engine import LinkEngine
from bot.linkcheck.extract import decode_html, nesting_cut
from bot.linkcheck.inbound import UNFOLLOWED_RELS, best_occurrence
from bot.linkcheck.pipeline import is_html, not_indexable_reasons
from bot.models import ExtractedLink, ExtractedPage, FetchErrorKind, FetchResult, Placement, Verdict
from bot.urls import (
    FETCHABLE_SCHEMES,
    hostname,
    link_key,
    registrable_domain,
    same_site,
    scheme_of,
    strip_fragment,
    url_registrable_domain,
)

__all__ = [
    "HIGH_RELEVANCE",
    "LINKS_PAGE_MIN_EXTERNAL_LINKS",
    "LINKS_PAGE_MIN_LINK_TEXT_SHARE",
    "LOW_RELEVANCE",
    "MAX_TEXT_CHARS",
    "OurLink",
    "PageText",
    "QualificationHints",
    "format_hints",
    "page_text",
    "qualification_hints",
    "relevance_band",
    "relevance_score",
]

logger = logging.getLogger(__name__)

# --- thresholds (measured on the 78 real article pages of ../shared/corpus/readability; see
# docs/qualification.md for the numbers) ---------------------------------------------------------------

# A links page carries at least this many distinct external link targets ("dozens of outbound links",
# issue 3). A count alone is not enough: 9 of the 78 corpus articles (Wikipedia, news pages with
# network footers) carry 50 or more, yet they are prose, not graveyards. Below 30 a link-heavy page is
# a short list (a contact page, a "friends" box), which the placement hint already covers.
LINKS_PAGE_MIN_EXTERNAL_LINKS = 30
# ... and link text is at least this share of its main-content text. Prose sits far below (corpus
# median 0.09, highest 0.53 on a portal page with 3 external links); a list of partner links with a
# line of introduction sits near 0.9. No corpus article meets both conditions.
LINKS_PAGE_MIN_LINK_TEXT_SHARE = 0.5
# Above this many external links a page is unusual even when it is prose (2 of 78 corpus articles).
MANY_EXTERNAL_LINKS = 100

# Relevance below this is in the range of two unrelated pages: 86% of 2,016 pairs of unrelated English
# corpus articles score below 0.10 (median 0.06), while 60 of 61 same-topic pairs (the two halves of
# one article) score above it (median 0.25).
LOW_RELEVANCE = 0.10
# At or above this the pages clearly share a topic: 99% of unrelated pairs score below 0.16 and only 2 of
# 2,016 reach 0.25 (both pairs of pages from one site); half of the same-topic pairs do.
HIGH_RELEVANCE = 0.25

# Main-content text kept per page. About 15,000 words: the longest corpus article (a Wikipedia page)
# has 125,000 characters; past this, more text does not change the topic, only the TF-IDF cost.
MAX_TEXT_CHARS = 100_000
# A <main>/<article> candidate holding less than this share of the page's text is a fragment (a
# teaser, a misused element), not the main content; the whole body (minus boilerplate) is used instead.
MAIN_MIN_TEXT_SHARE = 0.1

# Elements whose text is never page text: code, hidden content, embedded documents.
_NEVER_TEXT = "script, style, noscript, template, svg, iframe, object, [hidden], [aria-hidden='true']"
# Site chrome (HTML sectioning elements and WAI-ARIA 1.2 landmark roles): menus, footers, sidebars.
_BOILERPLATE = (
    "nav, footer, aside, [role='navigation'], [role='contentinfo'], [role='complementary'], [role='search']"
)
# A <header>/role=banner is the site banner only outside the main content; an article's own header
# holds its headline, which is topical text.
_BANNER = "header, [role='banner']"
# Where the main content is declared, most explicit first (HTML main element, WAI-ARIA role=main,
# HTML article element, schema.org articleBody).
_MAIN_SELECTORS = ("main", "[role='main']", "article", "[itemprop='articleBody']")


@dataclass(frozen=True, slots=True)
class OurLink:
    """A link on the partner page to our page (``to_our_page``) or to another page of our domain."""

    url: str
    anchor: str
    rel: frozenset[str]
    placement: Placement
    to_our_page: bool

    @property
    def followed(self) -> bool:
        return not (self.rel & UNFOLLOWED_RELS)


@dataclass(frozen=True, slots=True)
class QualificationHints:
    """What the partner page says about itself as a place for a link. Hints only, never a veto.

    - ``indexable``: ``None`` when the page could not be read (network error, bot wall, 429, 401);
      then ``not_indexable_reasons`` is empty and ``messages`` says why.
    - ``external_links``: distinct external http(s) link targets (compared by :func:`link_key`; a
      different registrable domain than the partner page, :func:`bot.urls.same_site`); 0 when the page
      could not be read. ``external_domains``: their distinct registrable domains.
    - ``link_text_share``: share (0..1) of the main-content text that is link text; ``None`` unread.
    - ``links_page``: at least :data:`LINKS_PAGE_MIN_EXTERNAL_LINKS` external links and a
      ``link_text_share`` of at least :data:`LINKS_PAGE_MIN_LINK_TEXT_SHARE`.
    - ``external_placements``: (placement, occurrences) of external links, most frequent first: where
      a new link would likely sit when the page has none to us yet.
    - ``our_domain``: the registrable domain our links are looked for under (``None``: not given).
    - ``our_link``: the best existing link to our page, else to our domain (followed and main content
      preferred); ``None`` when there is none or no page/domain of ours was given.
    - ``relevance``: :func:`relevance_score` of the two pages' main text; ``None`` when no page of ours
      was given or either page could not be read as HTML.
    - ``messages``: short human hints about what deserves attention (red flags and unknowns).
    """

    partner_page_url: str
    final_url: str
    status: int | None
    our_domain: str | None
    indexable: bool | None
    not_indexable_reasons: tuple[str, ...]
    external_links: int
    external_domains: int
    link_text_share: float | None
    links_page: bool
    external_placements: tuple[tuple[Placement, int], ...]
    our_link: OurLink | None
    relevance: float | None
    messages: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json`` output and for storing with an agreement's notes)."""
        our = self.our_link
        return {
            "partner_page_url": self.partner_page_url,
            "final_url": self.final_url,
            "status": self.status,
            "our_domain": self.our_domain,
            "indexable": self.indexable,
            "not_indexable_reasons": list(self.not_indexable_reasons),
            "external_links": self.external_links,
            "external_domains": self.external_domains,
            "link_text_share": self.link_text_share,
            "links_page": self.links_page,
            "external_placements": {p.value: n for p, n in self.external_placements},
            "our_link": None
            if our is None
            else {
                "url": our.url,
                "anchor": our.anchor,
                "rel": sorted(our.rel),
                "placement": our.placement.value,
                "to_our_page": our.to_our_page,
            },
            "relevance": self.relevance,
            "messages": list(self.messages),
        }


@dataclass(frozen=True, slots=True)
class PageText:
    """The visible main-content text of a page (whitespace-normalised, at most :data:`MAX_TEXT_CHARS`
    characters, title first) and the share (0..1) of that content's text that is link text."""

    text: str
    link_text_share: float


# --- the async entry point ---------------------------------------------------------------------------


async def qualification_hints(
    engine: LinkEngine,
    partner_page_url: str,
    our_page_url: str | None = None,
    *,
    our_domain: str | None = None,
) -> QualificationHints:
    """Fetch the partner page (and ``our_page_url``, concurrently) once and compute the hints.

    ``our_domain`` is a host or URL of ours (``example.com``, ``https://www.example.com/``), compared
    by registrable domain; by default it is ``our_page_url``'s. Network trouble is a value: a page that
    cannot be fetched gives hints with ``indexable=None`` (partner page) or ``relevance=None`` (our
    page) and a message. Raises :class:`InputError` only when a URL is not http(s) or the address
    policy refuses it (including a host that resolves to a refused address), as ``LinkEngine.check`` does.
    """
    partner_page_url = validate_user_url(partner_page_url, engine.policy, what="partner page URL")
    if our_page_url is not None:
        our_page_url = validate_user_url(our_page_url, engine.policy, what="URL of our page")
    our_site = _our_registrable_domain(our_domain, our_page_url)

    urls = [partner_page_url] if our_page_url is None else [partner_page_url, our_page_url]
    fetched = await asyncio.gather(*(_fetch(engine, url) for url in urls))
    for url, (fetch_result, _) in zip(urls, fetched, strict=True):
        error = fetch_result.error
        if error is not None and error.kind is FetchErrorKind.BLOCKED_ADDRESS:
            raise InputError(f"{url} was refused: {error.message}")
    (result, page), ours = fetched[0], (fetched[1] if our_page_url is not None else None)

    messages: list[str] = []
    indexable, reasons = await _indexability(engine, result, page, messages)
    # Links, text and relevance are read only from a page that answered 200 with HTML.
    readable = page if result.status == 200 else None
    links = _LinkFacts.of(readable, result.final_url)

    our_link = None
    look_for = our_site
    if our_site and url_registrable_domain(result.final_url) == our_site:
        messages.append(f"the partner page is on our own site ({our_site})")
        look_for = None  # every link there is "ours": looking for our link would mean nothing
    if look_for and readable is not None:
        our_keys = _our_keys(our_page_url, ours[0] if ours else None)
        our_link = _find_our_link(readable, our_keys, look_for)

    share: float | None = None
    relevance: float | None = None
    if readable is not None:
        our_body = _readable_body(ours) if ours is not None else None
        if ours is not None and our_body is None:
            messages.append(f"relevance unknown: our page could not be read ({_failure(ours[0])})")
        partner_text, relevance = await asyncio.to_thread(_texts_and_relevance, result, our_body)
        share = partner_text.link_text_share

    count = links.external_links
    links_page = (
        share is not None
        and count >= LINKS_PAGE_MIN_EXTERNAL_LINKS
        and share >= LINKS_PAGE_MIN_LINK_TEXT_SHARE
    )
    if links_page and share is not None:
        messages.append(f"links page: {count} external links, {share:.0%} of its text is link text")
    elif count >= MANY_EXTERNAL_LINKS:
        messages.append(f"many external links: {count} (within prose, so not a links page)")
    if readable is not None:
        messages.extend(_our_link_messages(our_link, look_for, links.placements))
    if relevance is not None and relevance < LOW_RELEVANCE:
        messages.append(f"low relevance {relevance:.2f} to our page")

    return QualificationHints(
        partner_page_url=partner_page_url,
        final_url=result.final_url,
        status=result.status,
        our_domain=our_site,
        indexable=indexable,
        not_indexable_reasons=reasons,
        external_links=count,
        external_domains=links.external_domains,
        link_text_share=None if share is None else round(share, 3),
        links_page=links_page,
        external_placements=tuple(links.placements.most_common()),
        our_link=our_link,
        relevance=None if relevance is None else round(relevance, 3),
        messages=tuple(messages),
    )


async def _fetch(engine: LinkEngine, url: str) -> tuple[FetchResult, ExtractedPage | None]:
    return await engine.fetch_page(url)


async def _indexability(
    engine: LinkEngine, result: FetchResult, page: ExtractedPage | None, messages: list[str]
) -> tuple[bool | None, tuple[str, ...]]:
    """``(indexable, reasons)``; ``(None, ())`` when the page could not be read (message added)."""
    verdict, _ = classify(result)
    if result.error is not None or result.status is None or verdict is Verdict.UNKNOWN:
        # Unreachable, bot wall, 429, 401: whether the page counts is unknown, not "no".
        messages.append(f"could not read the partner page ({_failure(result)}): indexable unknown")
        return None, ()
    robots_allowed = None
    if result.status == 200:
        robots_allowed = await engine.robots_allowed(result.final_url)
    reasons = tuple(not_indexable_reasons(result, page, robots_allowed))
    if reasons:
        status = f", HTTP {result.status}" if result.status != 200 else ""
        messages.append(f"not indexable ({', '.join(reasons)}{status})")
    return not reasons, reasons


def _failure(result: FetchResult) -> str:
    """A short reason why a page could not be used: the error kind, a bot-wall reason or a status."""
    if result.error is not None:
        return result.error.kind.value
    verdict, reason = classify(result)
    if verdict is Verdict.UNKNOWN or result.status != 200:
        return reason
    return f"not HTML: {result.content_type or 'no content type'}"


def _readable_body(fetched: tuple[FetchResult, ExtractedPage | None]) -> FetchResult | None:
    result, page = fetched
    if result.error is None and result.status == 200 and page is not None and is_html(result):
        return result
    return None


# --- links ------------------------------------------------------------------------------------------


def _key(link: ExtractedLink) -> str | None:
    try:
        return link_key(strip_fragment(link.url or ""))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _LinkFacts:
    external_links: int  # distinct external targets, by link_key
    external_domains: int  # their distinct registrable domains
    placements: Counter[Placement]  # occurrences of external links per placement

    @classmethod
    def of(cls, page: ExtractedPage | None, page_url: str) -> _LinkFacts:
        """External = an http(s) link to another registrable domain than the page's (same_site)."""
        if page is None:
            return cls(0, 0, Counter())
        external = [
            link
            for link in page.links
            if link.url is not None
            and scheme_of(link.url) in FETCHABLE_SCHEMES
            and hostname(link.url)
            and not same_site(link.url, page_url)
        ]
        targets = {key for key in map(_key, external) if key is not None}
        domains = {url_registrable_domain(link.url or "") for link in external}
        return cls(len(targets), len(domains), Counter(link.placement for link in external))


def _our_registrable_domain(our_domain: str | None, our_page_url: str | None) -> str | None:
    if our_domain:
        value = our_domain.strip()
        host = hostname(value if "://" in value else f"http://{value}")
        return registrable_domain(host) if host else None
    if our_page_url:
        return url_registrable_domain(our_page_url) or None
    return None


def _our_keys(our_page_url: str | None, fetched: FetchResult | None) -> set[str]:
    """Comparison keys of our page: as given and, when it redirects, where it ends."""
    keys: set[str] = set()
    for url in (our_page_url, fetched.final_url if fetched is not None and fetched.error is None else None):
        if url:
            try:
                keys.add(link_key(url))
            except ValueError:
                continue
    return keys


def _find_our_link(page: ExtractedPage, our_keys: set[str], our_site: str) -> OurLink | None:
    """The best link to our page (exact target), else to any page of our registrable domain."""
    to_page: list[ExtractedLink] = []
    to_site: list[ExtractedLink] = []
    for link in page.links:
        if link.url is None or scheme_of(link.url) not in FETCHABLE_SCHEMES:
            continue
        if url_registrable_domain(link.url) != our_site:
            continue
        (to_page if _key(link) in our_keys else to_site).append(link)
    candidates = to_page or to_site
    if not candidates:
        return None
    best = best_occurrence(candidates)
    return OurLink(
        url=best.url or best.href,
        anchor=best.anchor,
        rel=best.rel,
        placement=best.placement,
        to_our_page=bool(to_page),
    )


_PLACEMENT_WORDS = {
    Placement.MAIN: "the main content",
    Placement.NAV: "the navigation",
    Placement.HEADER: "the header",
    Placement.ASIDE: "the sidebar",
    Placement.FOOTER: "the footer",
    Placement.COMMENTS: "the comments",
}


def _our_link_messages(
    our_link: OurLink | None, our_site: str | None, placements: Counter[Placement]
) -> list[str]:
    if our_site is None:
        return []
    if our_link is None:
        if not placements:
            return [f"no link to {our_site} yet, and the page has no external links"]
        where = ", ".join(f"{p.value} {n}" for p, n in placements.most_common())
        return [f"no link to {our_site} yet; its external links sit in: {where}"]
    messages = []
    which = "our link" if our_link.to_our_page else f"a link to {our_site} (not our page)"
    if our_link.placement is not Placement.MAIN:
        messages.append(f"{which} would sit in {_PLACEMENT_WORDS[our_link.placement]}")
    if not our_link.followed:
        messages.append(f"{which} is {'/'.join(sorted(our_link.rel & UNFOLLOWED_RELS))}")
    return messages


# --- text and relevance ------------------------------------------------------------------------------


def _texts_and_relevance(partner: FetchResult, ours: FetchResult | None) -> tuple[PageText, float | None]:
    """Runs in a worker thread: parsing and TF-IDF take tens of milliseconds (more on the first call,
    which imports scikit-learn)."""
    partner_text = page_text(partner.body, partner.charset)
    if ours is None:
        return partner_text, None
    our_text = page_text(ours.body, ours.charset)
    return partner_text, relevance_score(partner_text.text, our_text.text)


def page_text(body: bytes | str, charset: str | None = None) -> PageText:
    """The visible main-content text of an HTML page and its link-text share.

    ``body`` is the raw body (decoded by the HTML standard's rules, ``charset`` from Content-Type) or
    text. The main content is the first ``<main>``, ``role=main``, ``<article>`` or
    ``itemprop=articleBody`` element holding at least :data:`MAIN_MIN_TEXT_SHARE` of the page's text,
    else the whole ``<body>``. Never text: script, style, noscript, template, svg, iframe, hidden
    elements; site chrome is dropped too (nav, footer, aside and their ARIA landmark roles, and the
    site header when the whole body is used). The ``<title>`` comes first. Never raises.
    """
    text = body if isinstance(body, str) else decode_html(body, charset)
    cut = nesting_cut(text)  # the same bounded-work guard as link extraction
    if cut is not None:
        text = text[:cut]
    try:
        tree = LexborHTMLParser(text)
    except UnicodeEncodeError:  # lone surrogates in a caller's str
        tree = LexborHTMLParser(text.encode("utf-8", "replace").decode("utf-8"))
    title_node = tree.css_first("title")
    title = _text_of(title_node) if title_node is not None else ""
    root = tree.body
    if root is None:
        return PageText(title[:MAX_TEXT_CHARS], 0.0)
    _remove(root, _NEVER_TEXT)
    container = _main_container(root)
    _remove(container, _BOILERPLATE if container is not root else f"{_BOILERPLATE}, {_BANNER}")
    content = _text_of(container)
    linked = sum(len(_text_of(a)) for a in container.css("a[href]"))
    share = min(1.0, linked / len(content)) if content else 0.0
    # The title is the page's own summary of its topic; most articles repeat it as their headline.
    joined = f"{title} {content}".strip() if title and title not in content else content
    return PageText(joined[:MAX_TEXT_CHARS], share)


def _text_of(node: LexborNode) -> str:
    return " ".join(node.text(deep=True, separator=" ").split())


def _remove(node: LexborNode, selector: str) -> None:
    # css() answers in document order, so an ancestor comes before its descendants; removing in
    # reverse never touches a node whose ancestor has already been freed.
    for found in reversed(node.css(selector)):
        found.decompose()


def _main_container(root: LexborNode) -> LexborNode:
    whole = len(_text_of(root))
    for selector in _MAIN_SELECTORS:
        candidate = root.css_first(selector)
        if candidate is not None and len(_text_of(candidate)) >= MAIN_MIN_TEXT_SHARE * whole:
            return candidate
    return root


def relevance_score(text_a: str, text_b: str) -> float:
    """Topical similarity of two texts, 0..1 (0: no shared meaningful word, 1: the same text).

    TF-IDF cosine similarity (scikit-learn ``TfidfVectorizer(stop_words="english",
    sublinear_tf=True)`` fitted on the two texts): each text becomes a vector with one weight per word,
    1 + log(count) times the word's inverse document frequency (a word in only one of the texts weighs
    more than one in both), English stop words dropped, vectors scaled to length 1; the score is the
    cosine of the angle between them. Each text is capped at :data:`MAX_TEXT_CHARS`. An empty text, or
    one with only stop words, gives 0.0. Pure and CPU-bound (about 10 ms for two long articles): call
    it in a thread from async code. See docs/qualification.md for what scores mean in practice.
    """
    text_a, text_b = text_a[:MAX_TEXT_CHARS], text_b[:MAX_TEXT_CHARS]
    if not text_a.strip() or not text_b.strip():
        return 0.0
    # Imported here: scikit-learn (with numpy and scipy) takes a second or more to import, which
    # every CLI command and the Slack app's start-up would otherwise pay.
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform([text_a, text_b])
    except ValueError:
        return 0.0  # "empty vocabulary": nothing but stop words and one-letter tokens
    # Rows are L2-normalised (norm="l2" by default), so their dot product is the cosine.
    cosine = float(matrix[0].multiply(matrix[1]).sum())
    return min(1.0, max(0.0, cosine))


# --- rendering ---------------------------------------------------------------------------------------


def relevance_band(score: float) -> str:
    """``low`` (below :data:`LOW_RELEVANCE`), ``moderate``, or ``high`` (from :data:`HIGH_RELEVANCE`)."""
    if score < LOW_RELEVANCE:
        return "low"
    return "high" if score >= HIGH_RELEVANCE else "moderate"


def format_hints(h: QualificationHints) -> list[str]:
    """One line per hint, for the terminal and Slack, ending with a reminder that hints never block.

    Lines: the page (and where it redirected), indexability, external links, our link, relevance,
    then each entry of ``h.messages`` prefixed with ``"! "``.
    """
    page = h.partner_page_url
    if h.final_url and h.final_url != h.partner_page_url:
        page += f" -> {h.final_url}"
    lines = [f"Partner page: {page}"]
    if h.indexable is None:
        lines.append("Indexable: unknown (the page could not be read)")
    elif h.indexable:
        lines.append("Indexable: yes")
    else:
        lines.append(f"Indexable: no ({', '.join(h.not_indexable_reasons)})")
    if h.indexable is None:
        lines.append("External links: unknown")
    else:
        kind = " - a links page" if h.links_page else ""
        domains = "domain" if h.external_domains == 1 else "domains"
        lines.append(f"External links: {h.external_links} to {h.external_domains} {domains}{kind}")
    our = h.our_link
    if our is not None:
        target = "our page" if our.to_our_page else "our site (another page)"
        rel = "followed" if our.followed else "/".join(sorted(our.rel & UNFOLLOWED_RELS))
        anchor = f', anchor "{our.anchor}"' if our.anchor else ", no anchor text"
        lines.append(f"Our link: to {target}, in {_PLACEMENT_WORDS[our.placement]}, {rel}{anchor}")
    if h.relevance is not None:
        lines.append(f"Relevance to our page: {h.relevance:.2f} ({relevance_band(h.relevance)})")
    lines.extend(f"! {message}" for message in h.messages)
    lines.append("These are hints: they never block logging an agreement.")
    return lines
