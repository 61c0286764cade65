"""``audit_site``: crawl our site, cross-reference it with what Linkpact knows links to us, and flag the
red flags of a reciprocal-link profile (issue 6; seeds 001 and 002)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.agreements.qualify import PageText, relevance_score
from bot.audit.crawl import Clock, CrawlResult, Sleep, crawl_site
from bot.audit.flags import AuditContext, all_findings, brand_terms_for
from bot.audit.graph import build_graph, effective_links, reciprocal_pairs, three_way_cycles
from bot.audit.knowledge import load_knowledge
from bot.audit.models import PartnerPage
from bot.audit.partners import by_source, pages_to_read, read_partner_pages
from bot.audit.report import AuditReport, Profile
from bot.audit.settings import DEFAULT_MAX_PAGES, DEFAULT_TIME_LIMIT_S, AuditSettings
from bot.backlinks.registry import validate_user_url
from bot.engine import Engine, Progress
from bot.errors import InputError
from bot.models import FetchErrorKind
from bot.urls import link_key, url_registrable_domain


def parse_site(text: str) -> str:
    """The site URL in what a user typed: ``ours.example``, ``https://ours.example/`` or Slack's
    ``<https://ours.example|ours.example>``; a bare host gets ``https://``. Raises InputError."""
    from bot.linkcheck.report import parse_user_url

    url = parse_user_url(text)
    if "://" not in url:
        url = "https://" + url
    return url


async def audit_site(
    engine: Engine,
    site_url: str,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    settings: AuditSettings | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> AuditReport:
    """Audit our site at ``site_url`` (its home page) and return the report.

    Steps: read what Linkpact knows (tracked/imported backlinks, agreements, change log); crawl our site
    (at most ``max_pages`` fetches and ``time_limit_s`` seconds, robots.txt obeyed for ``linkpact``);
    read at most ``settings.max_partner_pages`` partner pages; build the domain-level link graph; list
    reciprocal pairs and three-way cycles; apply the red-flag rules (:mod:`bot.audit.flags`).

    Raises :class:`InputError` when ``site_url`` is not an http(s) URL, the address policy refuses it,
    or ``max_pages``/``time_limit_s`` are not positive. Network trouble never raises: it is in the
    report (failed pages, unreadable partner pages, notes). Nothing is written to the store; turning
    findings into prune proposals is a separate step (:func:`bot.audit.prune.propose_prunes`).
    """
    settings = settings or AuditSettings()
    if max_pages < 1:
        raise InputError("--pages must be at least 1")
    if time_limit_s <= 0:
        raise InputError("the time limit must be positive")
    site_url = validate_user_url(site_url, engine.policy, what="site URL")
    domain = url_registrable_domain(site_url)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = clock()
    now = engine.now()
    notes: list[str] = []

    knowledge = await load_knowledge(engine.store, domain, now.date())
    want_text = {_key(link.target_url) for link in knowledge.inbound}
    crawl = await crawl_site(
        engine,
        site_url,
        max_pages=max_pages,
        time_limit_s=time_limit_s,
        settings=settings,
        want_text=want_text,
        clock=clock,
        sleep=sleep,
        on_progress=on_progress,
    )
    _crawl_notes(crawl, notes)
    if crawl.pages and crawl.pages[0].error == FetchErrorKind.BLOCKED_ADDRESS.value:
        raise InputError(f"{site_url} was refused: its address is not allowed")

    our_targets = {link.domain for link in crawl.outbound}
    urls, left_out = pages_to_read(knowledge, our_targets, settings.max_partner_pages)
    pages, texts = await read_partner_pages(engine, urls, domain, settings, on_progress)
    if left_out:
        notes.append(
            f"{left_out} partner pages were not read (cap of {settings.max_partner_pages}); their links "
            "between partners are missing from the cycles."
        )
    unreadable = [p for p in pages if not p.readable and p.indexable is None]
    if unreadable:
        notes.append(f"{len(unreadable)} partner pages could not be read (timeout, bot wall, ...): unknown.")
    pages = await asyncio.to_thread(_with_relevance, pages, texts, crawl)
    if crawl.html_pages and not crawl.texts:
        notes.append("relevance unknown: none of our pages could be read as text")

    links = effective_links(knowledge, by_source(pages))
    known_domains = {k.source_domain for k in links} | {k.target_domain for k in links}
    known_domains |= knowledge.partner_domains | {p.domain for p in pages} | {domain}
    graph = build_graph(domain, crawl.outbound, links, pages, known_domains)
    pairs = reciprocal_pairs(graph, crawl.outbound, links, knowledge)
    cycles = three_way_cycles(graph)

    ctx = AuditContext(
        domain=domain,
        settings=settings,
        crawl=crawl,
        knowledge=knowledge,
        links=links,
        pages=pages,
        pairs=pairs,
        now=now,
        brand_terms=brand_terms_for(domain, settings.brand_terms),
    )
    findings = all_findings(ctx)
    referring = ctx.referring_domains
    reciprocal = {p.domain for p in pairs} & referring
    profile = Profile(
        referring_domains=len(referring),
        reciprocal_domains=len(reciprocal),
        share=len(reciprocal) / len(referring) if referring else None,
        threshold=settings.max_reciprocal_share,
    )
    return AuditReport(
        site_url=site_url,
        domain=domain,
        started_at=started_at,
        duration_s=round(clock() - started, 3),
        max_pages=max_pages,
        time_limit_s=time_limit_s,
        settings=settings,
        crawl=crawl,
        partner_pages=tuple(pages),
        pages_left_out=left_out,
        profile=profile,
        pairs=tuple(pairs),
        cycles=tuple(cycles),
        findings=tuple(findings),
        notes=tuple(notes),
    )


def _key(url: str) -> str:
    try:
        return link_key(url)
    except ValueError:
        return url


def _crawl_notes(crawl: CrawlResult, notes: list[str]) -> None:
    for robots in crawl.robots:
        if robots.status == "unavailable":
            status = f"HTTP {robots.http_status}" if robots.http_status else "unreachable"
            notes.append(
                f"robots.txt of {robots.origin} could not be read ({status}): RFC 9309 says to assume "
                "everything is disallowed, so nothing there was crawled"
            )
    if not crawl.html_pages:
        notes.append("none of our pages could be crawled: outbound links, pairs and cycles are empty")


def _with_relevance(
    pages: list[PartnerPage], texts: dict[str, PageText], crawl: CrawlResult
) -> list[PartnerPage]:
    """Each readable partner page that links to us, scored against the page of ours it links to and
    against our home page (the higher counts): runs in a worker thread (TF-IDF is CPU-bound)."""
    home = crawl.texts.get(_key(crawl.start_url))
    if home is None and crawl.html_pages:
        home = crawl.texts.get(_key(crawl.html_pages[0].final_url))
    out = []
    for page in pages:
        text = texts.get(_key(page.url))
        if text is None or page.to_us is None:
            out.append(page)
            continue
        ours = [t for t in (crawl.texts.get(_key(page.to_us.url)), home) if t is not None]
        if not ours:
            out.append(page)
            continue
        score = max(relevance_score(text.text, our.text) for our in ours)
        out.append(replace(page, relevance=round(score, 3)))
    return out
