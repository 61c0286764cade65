"""Inbound verification: does each tracked source page still link to our target, in a way that counts?

A backlink is ``live`` when its source page answers 200, contains an ``<a href>``/``<area href>`` that
resolves (base href, relative URLs, redirects of the target) to the target, and the page is indexable.
Otherwise it is ``lost`` with one named reason, checked in this order (``../shared/domain.md``; Google
Search Central on noindex, canonicals and robots.txt):

``unreachable`` (the host name does not exist) -> ``page_gone`` (404, 410) -> ``link_removed`` ->
``noindex`` -> ``canonicalized_away`` -> ``robots_blocked``.

Only a definite answer is evidence of a loss: a host name that does not exist (NXDOMAIN, RFC 8020),
404 Not Found or 410 Gone (RFC 9110 sections 15.5.5, 15.5.11), or a link missing from a page that was
read in full. A loss still becomes a confirmed one only on a second check (:mod:`bot.backlinks.confirm`).
Everything else is ``unknown``, never ``lost``: a page that cannot be read (timeout, a DNS failure that
may pass, reset, bot wall, 429, 401, 503 with or
without ``Retry-After``: ``unreachable``, ``bot_wall``, ``rate_limited``, ``auth_required``,
``temporarily_unavailable``), another error status (``http_<status>``: a 500 or a bare 403 says
nothing about the link), and a page parsed only in part (``page_incomplete``: a body cut at
``max_body_bytes``, or HTML nested too deeply to parse whole) on which the link was not found.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.backlinks.registry import TrackedBacklink
from bot.linkcheck.check import LinkChecker, classify
from bot.linkcheck.pipeline import LinkExtractor, PageFetcher, canonicalized_away
from bot.linkcheck.robots import RobotsCache
from bot.models import (
    ExtractedLink,
    ExtractedPage,
    FetchErrorKind,
    FetchResult,
    InboundResult,
    InboundVerdict,
    LinkCheck,
    Placement,
    Verdict,
)
from bot.urls import (
    FETCHABLE_SCHEMES,
    link_key,
    scheme_of,
    site_of,
    strip_fragment,
)

# Links on the source page to our own site that are probed to see whether they redirect to the target.
# Bounded so a page full of links to us cannot turn one verification into hundreds of requests.
MAX_REDIRECT_CANDIDATES = 10
UNFOLLOWED_RELS = frozenset({"nofollow", "sponsored", "ugc"})
# Statuses that say the source page is gone (RFC 9110: 404 Not Found, 410 Gone); any other error status
# may be passing (500, 502, 504), or a refusal of our client (a bare 403): unknown, not lost.
GONE_STATUSES = frozenset({404, 410})
# Backlinks of one page evaluated between two turns of the event loop: each is a few dictionary lookups
# (tens of microseconds), so a slice stays within a few milliseconds and Slack is never kept waiting.
YIELD_EVERY_BACKLINKS = 200


@dataclass(frozen=True, slots=True)
class _Match:
    link: ExtractedLink
    via_redirect: bool


# How a link occurrence ranks (see best_occurrence), then its index on the page: a total order, so the
# best of several groups of occurrences is the best of their union.
_Rank = tuple[bool, bool, int, int]


def _rank(link: ExtractedLink, index: int) -> _Rank:
    return (bool(link.rel & UNFOLLOWED_RELS), link.placement is not Placement.MAIN, link.position, index)


class _PageIndex:
    """One source page's links, indexed once, so each backlink on the page is a lookup, not a search.

    - ``best_by_key``: the comparison key of each link (:func:`bot.urls.link_key` of its URL without the
      fragment) -> its most valuable occurrence (:func:`best_occurrence`);
    - ``by_site``: a registrable domain -> the page's distinct link URLs on that site in document order
      of their first occurrence, each with its most valuable occurrence: the links probed for a
      redirect to a missing target of that site;
    - ``probed``: per site, what the probe of those links found: ``(url, key of where it redirects)``,
      so a page is probed once per site however many of its backlinks are missing;
    - ``external_links``: :func:`count_external_links` of the page, counted once.

    Links without an http(s) URL, or whose URL cannot be parsed, cannot link to a target: left out.
    """

    __slots__ = ("best_by_key", "by_site", "external_links", "probed")

    def __init__(self, page: ExtractedPage, page_url: str) -> None:
        self.best_by_key: dict[str, tuple[_Rank, ExtractedLink]] = {}
        self.by_site: dict[str, dict[str, tuple[_Rank, ExtractedLink]]] = {}
        self.probed: dict[str, list[tuple[str, str]]] = {}
        self.external_links = count_external_links(page, page_url)
        for index, link in enumerate(page.links):
            if link.url is None or scheme_of(link.url) not in FETCHABLE_SCHEMES:
                continue
            fetch_url = strip_fragment(link.url)
            try:
                key = link_key(fetch_url)
            except ValueError:
                continue
            rank = _rank(link, index)
            best = self.best_by_key.get(key)
            if best is None or rank < best[0]:
                self.best_by_key[key] = (rank, link)
            site = site_of(fetch_url)
            if site:
                urls = self.by_site.setdefault(site, {})
                best = urls.get(fetch_url)
                if best is None or rank < best[0]:
                    urls[fetch_url] = (rank, link)

    def probe_site(self, target_keys: set[str], target_url: str) -> str | None:
        """The target's site when finding its link needs a probe of the page's links to that site not
        made yet (no direct link, but links to the site); else None."""
        if any(key in self.best_by_key for key in target_keys):
            return None
        site = site_of(target_url)
        if not site or site not in self.by_site or site in self.probed:
            return None
        return site

    def direct(self, target_keys: set[str]) -> ExtractedLink | None:
        """The most valuable occurrence whose key is one of ``target_keys``; None when there is none."""
        found = [self.best_by_key[key] for key in target_keys if key in self.best_by_key]
        return min(found)[1] if found else None


class BacklinkVerifier:
    """Verify tracked backlinks; each source page is fetched once however many backlinks it carries.

    The work is linear in pages, links and backlinks: each source page is fetched and parsed once, its
    links are indexed by key once and its external links counted once (:class:`_PageIndex`), and each
    backlink on it is then a lookup of its target's keys.
    """

    def __init__(
        self,
        fetcher: PageFetcher,
        extractor: LinkExtractor,
        robots: RobotsCache,
        checker: LinkChecker,
    ) -> None:
        self._fetcher = fetcher
        self._extractor = extractor
        self._robots = robots
        self._checker = checker

    async def verify(
        self,
        backlinks: Iterable[TrackedBacklink],
        *,
        aliases: dict[str, set[str]] | None = None,
        on_done: Callable[[InboundResult], None] | None = None,
    ) -> list[InboundResult]:
        """Verify ``backlinks``; one :class:`InboundResult` each, in the input order.

        ``aliases`` maps a target key to further keys that count as the same target (e.g. the final URL
        our target redirects to). ``on_done`` is called with each result when it is ready. Raises
        :class:`ValueError` when a backlink's target URL cannot be parsed (targets are validated when
        tracked).

        Pages are fetched concurrently, but their CPU work (parsing, indexing, matching) takes turns: one
        page's slice of at most :data:`YIELD_EVERY_BACKLINKS` backlinks at a time, the event loop free
        between two slices. Otherwise every page whose answer arrived together would run its slice in
        the same turn of the loop, and Slack would wait for all of them.
        """
        items = list(backlinks)
        by_source: dict[str, list[int]] = defaultdict(list)
        for index, backlink in enumerate(items):
            by_source[strip_fragment(backlink.source_url)].append(index)
        results: list[InboundResult | None] = [None] * len(items)
        probes = _Probes(self._checker)
        keys_of: dict[str, set[str]] = {}  # target URL -> its key and the aliases': a few targets, many links

        def target_keys(target_url: str) -> set[str]:
            keys = keys_of.get(target_url)
            if keys is None:
                keys = {link_key(target_url)}
                for key in list(keys):
                    keys |= (aliases or {}).get(key, set())
                keys_of[target_url] = keys
            return keys

        # One page's CPU slice per turn of the loop (first come, first served). A slice keeps the turn until
        # the loop has run once more (it sleeps before releasing), so pages woken in the same turn (e.g.
        # all waiting for one probe) queue for later turns instead of each running a slice in this one.
        cpu_turn = asyncio.Lock()

        async def in_slices(indexes: list[int], work: Callable[[TrackedBacklink, int], None]) -> None:
            """``work(backlink, index)`` for each index, in slices each run holding the CPU turn."""
            for start in range(0, len(indexes), YIELD_EVERY_BACKLINKS):
                async with cpu_turn:
                    for index in indexes[start : start + YIELD_EVERY_BACKLINKS]:
                        work(items[index], index)
                    await asyncio.sleep(0)  # the turn ends with the loop's turn: see cpu_turn

        async def verify_source(source_url: str, indexes: list[int]) -> None:
            page_result = await self._fetcher.fetch(source_url)
            robots_allowed = None
            readable = page_result.error is None or page_result.truncated
            if readable and page_result.status == 200:
                robots_allowed = await self._robots.allowed(page_result.final_url)
            async with cpu_turn:
                page = await self._extractor.extract(page_result)
                index_of_page = _PageIndex(page, page_result.final_url) if page is not None else None
                await asyncio.sleep(0)
            sites: set[str] = set()

            def note_probe(backlink: TrackedBacklink, _: int) -> None:
                assert index_of_page is not None
                site = index_of_page.probe_site(target_keys(backlink.target_url), backlink.target_url)
                if site is not None:
                    sites.add(site)

            def evaluate(backlink: TrackedBacklink, index: int) -> None:
                result = self._evaluate(
                    backlink,
                    target_keys(backlink.target_url),
                    page_result,
                    page,
                    index_of_page,
                    robots_allowed,
                )
                results[index] = result
                if on_done is not None:
                    on_done(result)

            if index_of_page is not None and _links_count(page_result):
                # Missing targets are looked for behind redirects: probe first (network, no turn held).
                await in_slices(indexes, note_probe)
                for site in sorted(sites):
                    candidates = list(index_of_page.by_site[site])[:MAX_REDIRECT_CANDIDATES]
                    index_of_page.probed[site] = await probes.redirects(candidates)
            await in_slices(indexes, evaluate)

        await asyncio.gather(*(verify_source(src, idx) for src, idx in by_source.items()))
        return [r for r in results if r is not None]

    def _evaluate(
        self,
        backlink: TrackedBacklink,
        target_keys: set[str],
        result: FetchResult,
        page: ExtractedPage | None,
        index: _PageIndex | None,
        robots_allowed: bool | None,
    ) -> InboundResult:
        def outcome(verdict: InboundVerdict, reason: str, match: _Match | None = None) -> InboundResult:
            return InboundResult(
                source_url=backlink.source_url,
                target_url=backlink.target_url,
                verdict=verdict,
                reason=reason,
                anchor=match.link.anchor if match else None,
                rel=match.link.rel if match else frozenset(),
                placement=match.link.placement if match else None,
                via_redirect=match.via_redirect if match else False,
                status=result.status,
                external_links=index.external_links if index is not None else None,
            )

        if _links_count(result) and page is not None and index is not None:
            return self._on_page(backlink, target_keys, result, page, index, robots_allowed, outcome)
        if result.error is not None and result.error.kind is FetchErrorKind.DNS_NOT_FOUND:
            # The name does not exist (NXDOMAIN): a definite answer, unlike a DNS server that failed.
            return outcome(InboundVerdict.LOST, "unreachable")
        if (result.error is not None and not result.truncated) or result.status is None:
            reason = result.error.kind.value if result.error else "unreachable"
            if reason not in ("blocked_address", "body_too_large"):
                reason = "unreachable"
            return outcome(InboundVerdict.UNKNOWN, reason)
        if result.status != 200:
            verdict, reason = classify(result)
            if verdict is Verdict.UNKNOWN:  # bot wall, 429, 401, 503: the page may well be there
                return outcome(InboundVerdict.UNKNOWN, reason)
            if result.status in GONE_STATUSES:
                return outcome(InboundVerdict.LOST, "page_gone")
            if result.status >= 400:
                return outcome(InboundVerdict.UNKNOWN, f"http_{result.status}")
            return outcome(InboundVerdict.UNKNOWN, f"status_{result.status}")
        return outcome(InboundVerdict.UNKNOWN, "body_too_large" if result.truncated else "not_html")

    def _on_page(
        self,
        backlink: TrackedBacklink,
        target_keys: set[str],
        result: FetchResult,
        page: ExtractedPage,
        index: _PageIndex,
        robots_allowed: bool | None,
        outcome: Callable[..., InboundResult],
    ) -> InboundResult:
        """The verdict from a page read with status 200: whether the link is there and counts."""
        match = self._find_link(index, target_keys, backlink.target_url)
        if match is None:
            if not page.complete:  # the link may be in the part that was not parsed
                return outcome(InboundVerdict.UNKNOWN, "page_incomplete")
            return outcome(InboundVerdict.LOST, "link_removed")
        if page.facts.noindex:
            return outcome(InboundVerdict.LOST, "noindex", match)
        if canonicalized_away(result.final_url, page.facts.canonical):
            return outcome(InboundVerdict.LOST, "canonicalized_away", match)
        if robots_allowed is False:
            return outcome(InboundVerdict.LOST, "robots_blocked", match)
        return outcome(InboundVerdict.LIVE, "via_redirect" if match.via_redirect else "link_present", match)

    def _find_link(self, index: _PageIndex, target_keys: set[str], target_url: str) -> _Match | None:
        """The target's link on the page: a link to one of ``target_keys``, else a link to the target's
        site that redirects there (among the first :data:`MAX_REDIRECT_CANDIDATES` distinct such URLs on
        the page, probed beforehand: ``index.probed``)."""
        direct = index.direct(target_keys)
        if direct is not None:
            return _Match(direct, via_redirect=False)
        # No link on the page has a target key, so every link to the target's site is a candidate.
        site = site_of(target_url)
        candidates = index.by_site.get(site) if site else None
        if not candidates:
            return None
        probed = index.probed.get(site, [])
        redirected = [candidates[url] for url, final_key in probed if final_key in target_keys]
        if redirected:
            return _Match(min(redirected)[1], via_redirect=True)
        return None


class _Probes:
    """The redirect probes of one verification: each URL is checked at most once however many pages link
    to it (pages of one partner often share their links to our site), concurrent askers share the check.
    """

    def __init__(self, checker: LinkChecker) -> None:
        self._checker = checker
        self._checks: dict[str, asyncio.Future[dict[str, LinkCheck]]] = {}

    async def redirects(self, urls: list[str]) -> list[tuple[str, str]]:
        """``(url, key of its final URL)`` for each of ``urls`` that redirects somewhere parsable."""
        todo = [url for url in urls if url not in self._checks]
        if todo:
            batch = asyncio.ensure_future(self._checker.check_many(todo))
            for url in todo:
                self._checks[url] = batch
        redirects = []
        for url in urls:
            check = (await self._checks[url])[url]
            if not check.redirects or check.final_url is None:
                continue
            try:
                redirects.append((url, link_key(check.final_url)))
            except ValueError:
                continue
        return redirects


def _links_count(result: FetchResult) -> bool:
    """Whether a fetch result gets as far as looking for the link: the page was read (in full, or cut at
    the body cap) with status 200. Any other result has its verdict from the fetch alone."""
    if result.error is not None and (
        result.error.kind is FetchErrorKind.DNS_NOT_FOUND or not result.truncated
    ):
        return False
    return result.status == 200


def best_occurrence(links: list[ExtractedLink]) -> ExtractedLink:
    """The occurrence that gives the most value: followed before unfollowed, main content first,
    then document order."""
    return min(
        links,
        key=lambda link: (
            bool(link.rel & UNFOLLOWED_RELS),
            link.placement is not Placement.MAIN,
            link.position,
        ),
    )


def count_external_links(page: ExtractedPage, page_url: str) -> int:
    """Distinct external http(s) link targets on a page (another registrable domain than the page).

    A link is internal when :func:`bot.urls.same_site` says so; the page's own domain is looked up once.
    """
    page_site = site_of(page_url)
    targets = set()
    for link in page.links:
        if link.url is None or scheme_of(link.url) not in FETCHABLE_SCHEMES:
            continue
        site = site_of(link.url)
        if not (site and site == page_site):
            targets.add(strip_fragment(link.url))
    return len(targets)
