"""A polite crawl of our own site that collects every outbound (external) link with its page.

Which pages: the home page, then the pages our sitemap lists (robots.txt ``Sitemap:`` lines first, else
``/sitemap.xml``; sitemap index files and gzip sitemaps followed under caps, :mod:`bot.audit.sitemap`),
or, when there is no usable sitemap, the pages reached by following links from the home page breadth
first. Only our registrable domain (subdomains included) is crawled.

Politeness: robots.txt is obeyed for our crawler token (``linkpact``), per origin (RFC 9309): a 4xx
robots.txt allows everything (section 2.3.1.3), a 5xx or unreachable one disallows everything
(section 2.3.1.4). ``Crawl-delay`` is honoured (one page at a time, capped). Every request goes through
the engine's one :class:`bot.net.client.HttpClient`, so its per-host limits and 429 pauses apply.

Caps: ``max_pages`` fetches and ``time_limit_s`` seconds; the result says which one stopped the crawl
early (only when pages were left to fetch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urljoin, urlsplit, urlunsplit

from protego import Protego

from bot.agreements.qualify import PageText, page_text
from bot.audit.settings import AuditSettings
from bot.audit.sitemap import SitemapKind, parse_sitemap
from bot.engine import Engine, Progress
from bot.linkcheck.pipeline import is_html
from bot.linkcheck.robots import ROBOTS_MAX_BODY_BYTES
from bot.models import ExtractedPage, FetchErrorKind, FetchResult, Placement
from bot.urls import FETCHABLE_SCHEMES, link_key, scheme_of, strip_fragment, url_registrable_domain

logger = logging.getLogger(__name__)

# Links to files that are not pages cost a request and a page-cap slot for nothing.
NON_PAGE_EXTENSIONS = (
    ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico", ".zip", ".gz", ".tar", ".mp3",
    ".mp4", ".mov", ".avi", ".webm", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".css", ".js",
    ".xml", ".json", ".rss", ".atom", ".woff", ".woff2", ".ttf", ".exe", ".dmg",
)  # fmt: skip
# URLs waiting in the breadth-first queue, as a multiple of the page cap: enough to never run dry
# before the cap, bounded so a site with endless faceted URLs cannot fill memory.
FRONTIER_FACTOR = 4
# Disallowed and failed URLs listed in the report (the counts are always complete).
MAX_LISTED_URLS = 20


class StopReason(StrEnum):
    PAGE_CAP = "page_cap"
    TIME_CAP = "time_cap"


class Discovery(StrEnum):
    SITEMAP = "sitemap"
    LINKS = "links"  # breadth first from the home page


@dataclass(frozen=True, slots=True)
class OutboundLink:
    """One external link occurrence on one of our pages. ``domain``: the target's registrable domain;
    ``rel``: sorted lower-case tokens (a page-level robots nofollow included)."""

    page_url: str
    url: str
    domain: str
    anchor: str
    rel: tuple[str, ...]
    placement: Placement

    @property
    def followed(self) -> bool:
        return not set(self.rel) & {"nofollow", "sponsored", "ugc"}


@dataclass(frozen=True, slots=True)
class CrawledPage:
    """One fetched URL of ours. ``error``: the fetch error kind or ``http_<status>`` when it did not
    answer 200 with HTML; ``external_links``: distinct external link targets on it."""

    url: str
    final_url: str
    status: int | None
    html: bool
    external_links: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RobotsState:
    """robots.txt of one origin for our crawler: ``status`` ``ok`` (parsed), ``missing`` (4xx: all
    allowed) or ``unavailable`` (5xx, network error: all disallowed, RFC 9309 section 2.3.1.4)."""

    origin: str
    status: str
    http_status: int | None
    rules: Protego | None = None

    def allowed(self, url: str, token: str) -> bool:
        if self.status == "missing":
            return True
        if self.rules is None:
            return False
        return bool(self.rules.can_fetch(url, token))

    def crawl_delay_s(self, token: str) -> float | None:
        if self.rules is None:
            return None
        delay = self.rules.crawl_delay(token)
        return float(delay) if delay else None

    def sitemaps(self) -> list[str]:
        if self.rules is None:
            return []
        return [urljoin(self.origin + "/", s.strip()) for s in self.rules.sitemaps if s.strip()]


@dataclass
class CrawlResult:
    """What the crawl saw. ``pages``: every URL fetched, in crawl order; ``outbound``: every external
    link occurrence on them; ``texts``: main-content text of the pages asked for (by :func:`link_key`);
    ``stopped_early``: the cap that ended the crawl with pages left, else None."""

    start_url: str
    domain: str
    discovery: Discovery = Discovery.LINKS
    sitemaps_read: list[str] = field(default_factory=list)
    sitemap_urls: int = 0
    pages: list[CrawledPage] = field(default_factory=list)
    outbound: list[OutboundLink] = field(default_factory=list)
    stopped_early: StopReason | None = None
    robots: list[RobotsState] = field(default_factory=list)
    robots_disallowed: list[str] = field(default_factory=list)
    robots_disallowed_count: int = 0
    crawl_delay_s: float | None = None
    texts: dict[str, PageText] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def html_pages(self) -> list[CrawledPage]:
        return [p for p in self.pages if p.html]

    @property
    def failed(self) -> list[CrawledPage]:
        return [p for p in self.pages if p.error is not None and p.error != "duplicate"]


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]
ProgressCallback = Callable[[Progress], None]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))


def is_external(url: str, domain: str) -> bool:
    return scheme_of(url) in FETCHABLE_SCHEMES and url_registrable_domain(url) != domain


def _page_candidate(url: str | None, domain: str) -> str | None:
    """The fetchable form of an internal link worth crawling, else None."""
    if url is None or scheme_of(url) not in FETCHABLE_SCHEMES:
        return None
    url = strip_fragment(url)
    if url_registrable_domain(url) != domain:
        return None
    if urlsplit(url).path.lower().endswith(NON_PAGE_EXTENSIONS):
        return None
    return url


class SiteCrawler:
    """One crawl of our site. Use :func:`crawl_site`."""

    def __init__(
        self,
        engine: Engine,
        start_url: str,
        *,
        max_pages: int,
        time_limit_s: float,
        settings: AuditSettings,
        want_text: set[str],
        clock: Clock,
        sleep: Sleep,
        on_progress: ProgressCallback | None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._max_pages = max_pages
        self._time_limit_s = time_limit_s
        self._want_text = want_text
        self._clock = clock
        self._sleep = sleep
        self._notify = on_progress or (lambda progress: None)
        self._robots: dict[str, RobotsState] = {}
        self._seen: set[str] = set()  # link_key of every URL queued or fetched
        self._crawled: set[str] = set()  # link_key of every final URL read
        self._queue: deque[str] = deque()
        self._dropped = False  # links were left out of a full queue: more pages existed
        self.result = CrawlResult(start_url=start_url, domain=url_registrable_domain(start_url))

    # -- robots.txt ---------------------------------------------------------------------------------
    async def robots_for(self, url: str) -> RobotsState:
        origin = origin_of(url)
        state = self._robots.get(origin)
        if state is None:
            state = await self._fetch_robots(origin)
            self._robots[origin] = state
            self.result.robots.append(state)
        return state

    async def _fetch_robots(self, origin: str) -> RobotsState:
        result = await self._engine.client.request(
            "GET", origin + "/robots.txt", read_body=True, max_body_bytes=ROBOTS_MAX_BODY_BYTES
        )
        too_large = result.error is not None and result.error.kind is FetchErrorKind.BODY_TOO_LARGE
        if (result.error is not None and not too_large) or result.status is None:
            return RobotsState(origin, "unavailable", result.status)
        if 400 <= result.status < 500:
            return RobotsState(origin, "missing", result.status)
        if not 200 <= result.status < 300:
            return RobotsState(origin, "unavailable", result.status)
        try:
            rules = Protego.parse(result.body.decode("utf-8", errors="replace"))
        except Exception:  # protego is lenient; never let it end the audit
            logger.exception("could not parse robots.txt of %s", origin)
            return RobotsState(origin, "unavailable", result.status)
        return RobotsState(origin, "ok", result.status, rules)

    async def allowed(self, url: str) -> bool:
        state = await self.robots_for(url)
        if state.allowed(url, self._settings.crawler_token):
            return True
        self.result.robots_disallowed_count += 1
        if len(self.result.robots_disallowed) < MAX_LISTED_URLS:
            self.result.robots_disallowed.append(url)
        return False

    # -- sitemaps -----------------------------------------------------------------------------------
    async def sitemap_urls(self, origin: str) -> list[str]:
        """Page URLs of our domain listed by the origin's sitemaps, in order, at most the page cap."""
        robots = await self.robots_for(origin)
        todo = deque(robots.sitemaps() or [origin + "/sitemap.xml"])
        read: set[str] = set()
        pages: list[str] = []
        settings = self._settings
        while todo and len(read) < settings.max_sitemap_files and len(pages) < self._max_pages:
            url = todo.popleft()
            if url in read or scheme_of(url) not in FETCHABLE_SCHEMES:
                continue
            read.add(url)
            result = await self._engine.client.request(
                "GET", url, read_body=True, max_body_bytes=settings.max_sitemap_bytes
            )
            too_large = result.error is not None and result.error.kind is FetchErrorKind.BODY_TOO_LARGE
            if (result.error is not None and not too_large) or result.status != 200:
                continue
            sitemap = parse_sitemap(
                result.body, max_bytes=settings.max_sitemap_bytes, max_locs=self._max_pages * FRONTIER_FACTOR
            )
            if sitemap.kind is SitemapKind.UNKNOWN:
                continue
            self.result.sitemaps_read.append(url)
            if sitemap.kind is SitemapKind.INDEX:
                todo.extend(urljoin(url, loc) for loc in sitemap.locs)
                continue
            for loc in sitemap.locs:
                page = _page_candidate(urljoin(url, loc), self.result.domain)
                if page is not None:
                    pages.append(page)
        return pages

    # -- the crawl ----------------------------------------------------------------------------------
    def _enqueue(self, url: str) -> None:
        try:
            key = link_key(url)
        except ValueError:
            return
        if key in self._seen:
            return
        if len(self._queue) >= self._max_pages * FRONTIER_FACTOR:
            self._dropped = True
            return
        self._seen.add(key)
        self._queue.append(url)

    async def run(self) -> CrawlResult:
        started = self._clock()
        result = self.result
        home = result.start_url
        self._want_text |= _keys(home)  # the home page's text is the site's topic for relevance
        self._enqueue(home)
        # Robots and sitemaps of the home page's origin are read before any page.
        robots = await self.robots_for(home)
        delay = robots.crawl_delay_s(self._settings.crawler_token)
        if delay is not None:
            result.crawl_delay_s = min(delay, self._settings.max_crawl_delay_s)
        listed = await self.sitemap_urls(origin_of(home))
        if listed:
            result.discovery = Discovery.SITEMAP
            result.sitemap_urls = len(listed)
            for url in listed:
                self._enqueue(url)
        batch_size = 1 if result.crawl_delay_s else max(1, self._settings.crawl_concurrency)
        fetched = 0
        while self._queue:
            if fetched >= self._max_pages:
                result.stopped_early = StopReason.PAGE_CAP
                break
            if self._clock() - started >= self._time_limit_s:
                result.stopped_early = StopReason.TIME_CAP
                break
            batch: list[str] = []
            while self._queue and len(batch) < min(batch_size, self._max_pages - fetched):
                url = self._queue.popleft()
                if await self.allowed(url):
                    batch.append(url)
            if not batch:
                continue
            if result.crawl_delay_s and fetched:
                await self._sleep(result.crawl_delay_s)
            pages = await asyncio.gather(*(self._engine.fetch_page(url) for url in batch))
            for url, (fetch, page) in zip(batch, pages, strict=True):
                await self._take(url, fetch, page, follow=result.discovery is Discovery.LINKS)
            fetched += len(batch)
            total = min(self._max_pages, fetched + len(self._queue))
            self._notify(Progress("crawling our site", fetched, total))
        if result.stopped_early is None and self._dropped and fetched >= self._max_pages:
            result.stopped_early = StopReason.PAGE_CAP
        result.duration_s = round(self._clock() - started, 3)
        return result

    async def _take(self, url: str, fetch: FetchResult, page: ExtractedPage | None, *, follow: bool) -> None:
        result = self.result
        final = fetch.final_url
        self._seen |= _keys(final)
        final_keys = _keys(final)
        if final_keys & self._crawled:
            # Another URL already redirected here (or an alias of it): one page, read once.
            result.pages.append(CrawledPage(url, final, fetch.status, False, error="duplicate"))
            return
        self._crawled |= final_keys
        if fetch.error is not None and fetch.error.kind is not FetchErrorKind.BODY_TOO_LARGE:
            result.pages.append(CrawledPage(url, final, fetch.status, False, error=fetch.error.kind.value))
            return
        if url_registrable_domain(final) != result.domain:
            # Redirected off our site: not one of our pages.
            result.pages.append(CrawledPage(url, final, fetch.status, False, error="redirected_away"))
            return
        if fetch.status != 200 or page is None or not is_html(fetch):
            error = f"http_{fetch.status}" if fetch.status != 200 else "not_html"
            result.pages.append(CrawledPage(url, final, fetch.status, False, error=error))
            return
        external: set[str] = set()
        for link in page.links:
            if link.url is None:
                continue
            if is_external(link.url, result.domain):
                target = strip_fragment(link.url)
                external.add(target)
                result.outbound.append(
                    OutboundLink(
                        page_url=final,
                        url=target,
                        domain=url_registrable_domain(target),
                        anchor=link.anchor,
                        rel=tuple(sorted(link.rel)),
                        placement=link.placement,
                    )
                )
            elif follow:
                candidate = _page_candidate(link.url, result.domain)
                if candidate is not None:
                    self._enqueue(candidate)
        result.pages.append(CrawledPage(url, final, fetch.status, True, external_links=len(external)))
        keys = _keys(url, final)
        if keys & self._want_text or len(external) >= self._settings.links_page_min_external_links:
            text = await asyncio.to_thread(page_text, fetch.body, fetch.charset)
            for key in keys:
                result.texts[key] = text


def _keys(*urls: str) -> set[str]:
    keys = set()
    for url in urls:
        try:
            keys.add(link_key(url))
        except ValueError:
            continue
    return keys


async def crawl_site(
    engine: Engine,
    start_url: str,
    *,
    max_pages: int,
    time_limit_s: float,
    settings: AuditSettings,
    want_text: set[str] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_progress: ProgressCallback | None = None,
) -> CrawlResult:
    """Crawl our site from ``start_url`` (validated by the caller). ``want_text``: :func:`link_key` forms
    of pages whose main-content text is kept (the home page's always is, and so is that of every page
    with enough external links to be a links page). ``clock`` (seconds) and ``sleep`` are injected in
    tests. Network trouble is recorded per page, never raised."""
    crawler = SiteCrawler(
        engine,
        start_url,
        max_pages=max_pages,
        time_limit_s=time_limit_s,
        settings=settings,
        want_text=want_text or set(),
        clock=clock,
        sleep=sleep,
        on_progress=on_progress,
    )
    return await crawler.run()
