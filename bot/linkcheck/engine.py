"""The link engine: runs every check through the pipeline (fetch -> extract -> resolve -> filter -> check
-> report) and keeps the tracked backlinks.

:class:`LinkEngine` owns the single :class:`HttpClient` (one connection pool, one set of per-host limits
shared by every concurrent check), the robots.txt cache and the store. The process-wide object that front
ends use is its subclass :class:`bot.engine.Engine`, which adds agreements, monitoring and pruning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

from bot.backlinks.registry import BacklinkRegistry, TrackedBacklink, validate_user_url
from bot.config import Settings
from bot.errors import InputError
from bot.linkcheck.check import LinkChecker, classify
from bot.linkcheck.inbound import BacklinkVerifier
from bot.linkcheck.pipeline import (
    OFFLOAD_MIN_BYTES,
    LinkExtractor,
    LinkFilter,
    LinkResolver,
    PageFetcher,
    check_from_page,
    mark_truncated,
    outbound_results,
    page_report,
    parsable,
    prepare_links,
)
from bot.linkcheck.robots import RobotsCache
from bot.models import (
    ExtractedPage,
    FetchErrorKind,
    FetchResult,
    InboundResult,
    LinkCheck,
    Report,
    ResolvedLink,
    Verdict,
)
from bot.net.client import HttpClient
from bot.net.policy import AddressPolicy
from bot.offload import Offloader
from bot.store import Store, open_store
from bot.urls import link_key, parse_web_url

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver


__all__ = ["LinkEngine", "Progress", "ProgressCallback"]

logger = logging.getLogger(__name__)

RUNS_TABLE = "runs"
# Non-ok links kept per run summary: enough to show what changed, small enough for TinyDB.
MAX_PROBLEMS_PER_RUN = 500


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a check is. ``phase``: ``fetching page`` | ``checking links`` | ``checking backlinks`` |
    ``done``; ``done``/``total`` count link targets or backlinks in that phase."""

    phase: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


class LinkEngine:
    """Checks pages and tracked backlinks; see the module docstring. One per process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        # The client's policy when it is the same one: one memo of decisions for the filter stage and
        # every hop the client makes (each link is vetted in both).
        same = client.policy.allow_networks == tuple(settings.fetch.allow_networks)
        self.policy = client.policy if same else AddressPolicy(settings.fetch.allow_networks)
        self._clock = clock
        limits = settings.fetch.limits
        self._fetcher = PageFetcher(client, limits)
        self._extractor = LinkExtractor(Offloader(settings.cpu_workers or 0))
        self._resolver = LinkResolver()
        self._filter = LinkFilter(self.policy)
        self._checker = LinkChecker(client, limits)
        self._robots = RobotsCache(client, clock=clock)
        self.backlinks = BacklinkRegistry(store, self.policy)
        self._verifier = BacklinkVerifier(self._fetcher, self._extractor, self._robots, self._checker)
        self.now = now
        # Writes that a report does not wait for (run summaries); awaited by flush() and aclose().
        self._pending_writes: set[asyncio.Task[None]] = set()

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        resolver: AbstractResolver | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> Self:
        """Open the store (raises :class:`bot.store.StorageError` on a corrupt file, an unreachable database
        or a schema to upgrade) and build the one HTTP client of the process. Call from inside the running
        event loop."""
        store = open_store(settings.db_path, database_url=settings.database_url)
        client = HttpClient(settings.fetch, resolver=resolver)
        if now is None:
            return cls(settings, store, client)
        return cls(settings, store, client, now=now)

    async def flush(self) -> None:
        """Wait for the background writes (run summaries) started by earlier checks."""
        while self._pending_writes:
            await asyncio.gather(*list(self._pending_writes))

    @property
    def offload(self) -> Offloader:
        """Where CPU-heavy calls run (worker processes in ``linkpact serve``, else a thread)."""
        return self._extractor.offload

    async def aclose(self) -> None:
        await self.flush()
        await self.offload.aclose()
        await self.client.aclose()
        await self.store.aclose()

    # -- pages ----------------------------------------------------------------------------------------
    async def fetch_page(self, url: str) -> tuple[FetchResult, ExtractedPage | None]:
        """Fetch and extract one page (fetch and extract stages); ``None`` when it is not HTML or failed.
        Network trouble is in ``FetchResult.error``; nothing is raised."""
        result = await self._fetcher.fetch(url)
        return result, await self._extractor.extract(result)

    async def robots_allowed(self, url: str) -> bool | None:
        """May Googlebot fetch ``url`` per its site's robots.txt (RFC 9309)? None when unreadable."""
        return await self._robots.allowed(url)

    # -- checking -----------------------------------------------------------------------------------
    async def check(self, url: str, *, on_progress: ProgressCallback | None = None) -> Report:
        """Check the page at ``url``: its outbound links and the tracked backlinks pointing to it.

        Raises :class:`InputError` when ``url`` is not an http(s) URL or the address policy refuses it
        (including a host name that resolves to a refused address). Network trouble on the page is
        reported in ``Report.page.error``, not raised.
        """
        url = validate_user_url(url, self.policy)
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        started = self._clock()
        notify = on_progress or (lambda progress: None)

        notify(Progress("fetching page", 0, 1))
        result = await self._fetcher.fetch(url)
        if result.error is not None and result.error.kind is FetchErrorKind.BLOCKED_ADDRESS:
            raise InputError(f"{url} was refused: {result.error.message}")
        # robots.txt (for indexability) is read while the links are checked: one round trip less.
        robots: asyncio.Task[bool | None] | None = None
        if result.error is None and result.status == 200:
            robots = asyncio.create_task(self.robots_allowed(result.final_url))
        try:
            page, links = await self._prepare(result)
            checks = await self._check_links(links, result, notify)
            robots_allowed = await robots if robots is not None else None
        finally:
            if robots is not None and not robots.done():
                robots.cancel()
        page_summary = page_report(url, result, page, robots_allowed)

        backlinks = await self.backlinks.for_targets([url, result.final_url])
        inbound = await self._verify_backlinks(backlinks, url, result.final_url, notify)

        report = Report(
            page=page_summary,
            outbound=outbound_results(links, checks),
            inbound=tuple(inbound),
            started_at=started_at,
            duration_s=round(self._clock() - started, 3),
        )
        notify(Progress("done", len(checks), len(checks)))
        # The summary is history, not part of the answer: a /linkcheck must not wait for it behind a long
        # write (a 100,000-row import holds the store's writer for seconds).
        task = asyncio.create_task(self._save_run(report))
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)
        return report

    async def _prepare(self, result: FetchResult) -> tuple[ExtractedPage | None, list[ResolvedLink]]:
        """extract -> resolve -> filter. A large page with worker processes at hand goes through all three
        in one of them (:func:`prepare_links`), so the loop spends no time on its links."""
        offload = self.offload
        if offload.workers and parsable(result) and len(result.body) >= OFFLOAD_MIN_BYTES:
            prepared, links = await offload.run(
                prepare_links, result.body, result.final_url, result.headers, self.policy.allow_networks
            )
            return mark_truncated(prepared, result), links
        page = await self._extractor.extract(result)
        return page, self._filter.apply(self._resolver.resolve(result.final_url, page.links if page else ()))

    async def _check_links(
        self, links: list[ResolvedLink], page: FetchResult, notify: ProgressCallback
    ) -> dict[str, LinkCheck]:
        unique = list(
            dict.fromkeys(item.fetch_url for item in links if item.skip_reason is None and item.fetch_url)
        )
        checks: dict[str, LinkCheck] = {}
        # Links to the page itself (``#top``, ``href=""``) reuse the page's fetch. Links are requested in
        # their URL Standard serialisation; the page URL may be as typed (``https://Ours.example/café``).
        for candidate in (page.url, page.final_url):
            try:
                candidate = parse_web_url(candidate).href
            except ValueError:
                continue
            if candidate in unique and page.error is None:
                verdict, reason = classify(page)
                checks[candidate] = check_from_page(page, verdict, reason)
        todo = [u for u in unique if u not in checks]
        total = len(unique)
        done = len(checks)
        notify(Progress("checking links", done, total))

        def on_done(_: LinkCheck) -> None:
            nonlocal done
            done += 1
            notify(Progress("checking links", done, total))

        checks.update(await self._checker.check_many(todo, on_done=on_done))
        return checks

    async def _verify_backlinks(
        self, backlinks: list[TrackedBacklink], url: str, final_url: str, notify: ProgressCallback
    ) -> list[InboundResult]:
        if not backlinks:
            return []
        # A link to the URL we were asked about, or to where it redirects, counts for either.
        keys = {link_key(url), link_key(final_url)}
        aliases = {key: keys for key in keys}
        done = 0
        notify(Progress("checking backlinks", 0, len(backlinks)))

        def on_done(_: InboundResult) -> None:
            nonlocal done
            done += 1
            notify(Progress("checking backlinks", done, len(backlinks)))

        results = await self._verifier.verify(backlinks, aliases=aliases, on_done=on_done)
        await self.backlinks.record(
            list(zip(backlinks, results, strict=True)), now=self.now(), loss=self.settings.monitor.loss
        )
        return results

    async def _save_run(self, report: Report) -> None:
        """Keep a summary and the non-ok links of each run (not every ok link: the file stays small)."""
        problems = [
            {
                "url": r.check.url,
                "verdict": r.check.verdict.value,
                "reason": r.check.reason,
                "status": r.check.status,
                "anchor": r.link.anchor,
                "placement": r.link.placement.value,
            }
            for r in report.outbound
            if r.check.verdict in (Verdict.BROKEN, Verdict.UNKNOWN)
        ]
        doc = {
            "url": report.page.url,
            "final_url": report.page.final_url,
            "status": report.page.status,
            "indexable": report.page.indexable,
            "started_at": report.started_at,
            "duration_s": report.duration_s,
            "outbound": report.verdict_counts(),
            "inbound": report.inbound_counts(),
            "problems": problems[:MAX_PROBLEMS_PER_RUN],
            "problems_total": len(problems),
        }
        try:
            await self.store.insert(RUNS_TABLE, doc)
        except Exception:
            # The report is still correct and delivered; losing its history entry must not fail it.
            logger.exception("could not save the run summary for %s", report.page.url)

    # -- tracked backlinks --------------------------------------------------------------------------
    async def track(self, source_url: str, target_url: str, *, added_by: str | None = None) -> bool:
        """Track a backlink (True if new). Raises :class:`InputError` on a bad or refused URL."""
        return await self.backlinks.track(source_url, target_url, added_by=added_by)

    async def untrack(self, source_url: str, target_url: str) -> bool:
        return await self.backlinks.untrack(source_url, target_url)

    async def tracked(self, target_url: str | None = None) -> list[TrackedBacklink]:
        return await self.backlinks.tracked(target_url)
