"""Reading other sites' pages for the audit, bounded: the source pages of links to us and of links
between partners, to learn their external links (partner-to-partner edges), where their link to us
sits, whether they are indexable and links pages, and their text (topic).

At most ``settings.max_partner_pages`` pages are fetched, partners' pages first (domains we have an
agreement with or link to), through the engine (one client, per-host limits). Pages that cannot be
read are kept with the reason: their facts are unknown, never guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from bot.agreements.qualify import PageText, page_text
from bot.audit.knowledge import Knowledge, KnownLink, LinkStatus
from bot.audit.models import PartnerPage, SeenLink
from bot.audit.settings import AuditSettings
from bot.engine import Engine, Progress
from bot.linkcheck.check import classify
from bot.linkcheck.inbound import best_occurrence
from bot.linkcheck.pipeline import is_html, not_indexable_reasons
from bot.models import ExtractedLink, ExtractedPage, FetchResult, Verdict
from bot.urls import FETCHABLE_SCHEMES, link_key, scheme_of, strip_fragment, url_registrable_domain

# Statuses of a known link whose source page is worth reading: it links (or is said to link) somewhere.
_READ_STATUSES = frozenset({LinkStatus.LIVE, LinkStatus.UNVERIFIED, LinkStatus.PENDING})


def pages_to_read(knowledge: Knowledge, our_targets: set[str], limit: int) -> tuple[list[str], int]:
    """Source URLs to fetch, in priority order, and how many were left out by ``limit``.

    Priority: pages on partner domains (an agreement, or a domain we link to: ``our_targets``) before
    other referring pages, and links to us before links between others; then by URL for a stable order.
    """
    partners = knowledge.partner_domains | our_targets
    ranked: dict[str, tuple[bool, bool, str]] = {}
    for link in knowledge.links:
        if link.source_domain == knowledge.domain or link.status not in _READ_STATUSES:
            continue
        url = strip_fragment(link.source_url)
        rank = (link.source_domain not in partners, link.target_domain != knowledge.domain)
        current = ranked.get(url)
        if current is None or rank < current[:2]:
            ranked[url] = (*rank, url)
    order = sorted(ranked, key=lambda u: ranked[u])
    return order[:limit], max(0, len(order) - limit)


def _seen(link: ExtractedLink, url: str) -> SeenLink:
    return SeenLink(
        url=url,
        domain=url_registrable_domain(url),
        anchor=link.anchor,
        rel=tuple(sorted(link.rel)),
        placement=link.placement.value,
    )


def _links(
    page: ExtractedPage, page_url: str, our_domain: str
) -> tuple[SeenLink | None, list[SeenLink], int]:
    """The best link to our domain, one occurrence per distinct external target that is not ours, and
    the count of distinct external targets (ours included, compared by :func:`link_key`)."""
    page_domain = url_registrable_domain(page_url)
    to_us: list[ExtractedLink] = []
    external: dict[str, SeenLink] = {}
    keys: set[str] = set()
    for link in page.links:
        if link.url is None or scheme_of(link.url) not in FETCHABLE_SCHEMES:
            continue
        target = strip_fragment(link.url)
        domain = url_registrable_domain(target)
        if domain == page_domain:
            continue
        try:
            key = link_key(target)
        except ValueError:
            continue
        keys.add(key)
        if domain == our_domain:
            to_us.append(link)
        else:
            external.setdefault(key, _seen(link, target))
    best = best_occurrence(to_us) if to_us else None
    seen_best = _seen(best, strip_fragment(best.url or "")) if best else None
    return seen_best, list(external.values()), len(keys)


async def read_partner_page(
    engine: Engine, url: str, our_domain: str, settings: AuditSettings
) -> tuple[PartnerPage, PageText | None]:
    """Fetch one page of another site and read its facts. Never raises for network trouble."""
    result, page = await engine.fetch_page(url)
    domain = url_registrable_domain(result.final_url or url)
    verdict, reason = classify(result)
    if result.error is not None or result.status is None or verdict is Verdict.UNKNOWN:
        why = result.error.kind.value if result.error is not None else reason
        unread = PartnerPage(url, result.final_url, domain, result.status, False, None, unreadable_reason=why)
        return unread, None
    robots_allowed = await engine.robots_allowed(result.final_url) if result.status == 200 else None
    reasons = tuple(not_indexable_reasons(result, page, robots_allowed))
    if result.status != 200 or page is None or not is_html(result):
        return (
            PartnerPage(url, result.final_url, domain, result.status, False, not reasons, reasons),
            None,
        )
    to_us, external, count = _links(page, result.final_url, our_domain)
    text = await asyncio.to_thread(_text, result)
    links_page = (
        count >= settings.links_page_min_external_links
        and text.link_text_share >= settings.links_page_min_link_text_share
    )
    return (
        PartnerPage(
            url=url,
            final_url=result.final_url,
            domain=domain,
            status=result.status,
            readable=True,
            indexable=not reasons,
            not_indexable_reasons=reasons,
            external_links=count,
            link_text_share=round(text.link_text_share, 3),
            links_page=links_page,
            to_us=to_us,
            external=tuple(external),
        ),
        text,
    )


def _text(result: FetchResult) -> PageText:
    return page_text(result.body, result.charset)


async def read_partner_pages(
    engine: Engine,
    urls: Iterable[str],
    our_domain: str,
    settings: AuditSettings,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[list[PartnerPage], dict[str, PageText]]:
    """Read every page of ``urls`` concurrently (the client's limits pace them). Returns the pages in
    the given order and their texts by :func:`link_key` of the requested URL."""
    todo = list(urls)
    notify = on_progress or (lambda progress: None)
    done = 0

    async def one(url: str) -> tuple[PartnerPage, PageText | None]:
        nonlocal done
        read = await read_partner_page(engine, url, our_domain, settings)
        done += 1
        notify(Progress("reading partner pages", done, len(todo)))
        return read

    results = await asyncio.gather(*(one(url) for url in todo))
    texts = {link_key(url): text for url, (_, text) in zip(todo, results, strict=True) if text is not None}
    return [page for page, _ in results], texts


def by_source(pages: Iterable[PartnerPage]) -> dict[str, PartnerPage]:
    """Pages by the :func:`link_key` of the URL asked for."""
    return {link_key(page.url): page for page in pages}


def observed_status(link: KnownLink, page: PartnerPage | None, our_domain: str) -> LinkStatus:
    """A never-verified link (``unverified``) is settled by the audit's own read of its source page:
    ``live`` when the page links to the target's registrable domain, ``missing`` when it was read and
    does not. Every other status is the monitor's, which confirms losses over two checks
    (bot.backlinks.confirm), and is kept."""
    if link.status is not LinkStatus.UNVERIFIED or page is None or not page.readable:
        return link.status
    if link.target_domain == our_domain:
        found = page.to_us is not None
    else:
        found = any(seen.domain == link.target_domain for seen in page.external)
    return LinkStatus.LIVE if found else LinkStatus.MISSING
