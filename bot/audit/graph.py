"""The link graph at the referring-domain level, its reciprocal pairs and its three-way cycles.

Nodes are registrable domains: ours and every domain Linkpact knows of (referring domains, agreement
partners, domains in agreements' links, and the domains of pages the audit read). An edge A -> B means
a page of A links to a page of B, as shown by:

- our crawl (us -> anyone we link to);
- tracked backlinks and promised links that are ``live`` or ``unverified`` (anyone -> us, and partner ->
  partner links recorded by three-way agreements or tracked by hand);
- partner pages read by this audit (their links to us, and to other known domains).

A **reciprocal pair** is a domain D with us -> D and D -> us. A **three-way cycle** is A -> B -> C -> A
with three distinct domains; cycles through us are listed first, each rotated to start with us.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from bot.audit.crawl import OutboundLink
from bot.audit.knowledge import LINKING, Knowledge, KnownLink, LinkStatus
from bot.audit.models import Cycle, Edge, PartnerPage, ReciprocalPair
from bot.audit.partners import observed_status
from bot.urls import link_key

# Evidence pages kept per domain-level edge (the count of pages stays complete in the report's text).
MAX_PAGES_PER_EDGE = 20
# Cycles enumerated at most: a dense graph of a link network could otherwise hold millions.
MAX_CYCLES = 1000


def _key(url: str) -> str | None:
    try:
        return link_key(url)
    except ValueError:
        return None


def effective_links(knowledge: Knowledge, pages: dict[str, PartnerPage]) -> list[KnownLink]:
    """``knowledge.links`` as the audit sees them: never-verified links settled by the audit's read of
    their source page (:func:`bot.audit.partners.observed_status`), anchor/rel/placement of links to us
    refreshed from that read, and links to us found on read pages that Linkpact did not track yet."""
    out = []
    known_sources_to_us = set()
    for link in knowledge.links:
        page = pages.get(_key(link.source_url) or "")
        status = observed_status(link, page, knowledge.domain)
        if status is not link.status:
            link = replace(link, status=status, origins=(*link.origins, "audit"))
        if link.target_domain == knowledge.domain and page is not None and page.to_us is not None:
            seen = page.to_us
            link = replace(link, anchor=seen.anchor, rel=seen.rel, placement=seen.placement)
        if link.target_domain == knowledge.domain:
            known_sources_to_us.add(_key(link.source_url))
        out.append(link)
    for key, page in pages.items():
        if page.to_us is None or key in known_sources_to_us or page.domain == knowledge.domain:
            continue
        out.append(
            KnownLink(
                source_url=page.url,
                target_url=page.to_us.url,
                source_domain=page.domain,
                target_domain=knowledge.domain,
                status=LinkStatus.LIVE,
                origins=("audit",),
                anchor=page.to_us.anchor,
                rel=page.to_us.rel,
                placement=page.to_us.placement,
            )
        )
    return out


@dataclass
class LinkGraph:
    """Domain-level edges with the pages that show them."""

    us: str
    edges: dict[tuple[str, str], list[tuple[str, str, str]]] = field(default_factory=dict)
    _out: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, source_domain: str, target_domain: str, source_url: str, target_url: str, how: str) -> None:
        if not source_domain or not target_domain or source_domain == target_domain:
            return
        pages = self.edges.setdefault((source_domain, target_domain), [])
        self._out[source_domain].add(target_domain)
        if len(pages) < MAX_PAGES_PER_EDGE and (source_url, target_url, how) not in pages:
            pages.append((source_url, target_url, how))

    def out(self, domain: str) -> set[str]:
        return self._out.get(domain, set())

    def has(self, source_domain: str, target_domain: str) -> bool:
        return (source_domain, target_domain) in self.edges

    def edge(self, source_domain: str, target_domain: str) -> Edge:
        return Edge(source_domain, target_domain, tuple(self.edges.get((source_domain, target_domain), ())))

    @property
    def nodes(self) -> set[str]:
        return {d for pair in self.edges for d in pair}


def _how(link: KnownLink) -> str:
    origin = ", ".join(
        "tracked backlink" if o == "backlink" else "seen by this audit" if o == "audit" else o
        for o in link.origins
    )
    ids = f" #{', #'.join(link.agreement_ids)}" if link.agreement_ids and "agreement" in link.origins else ""
    return f"{origin}{ids} ({link.status.value})"


def build_graph(
    domain: str,
    outbound: Iterable[OutboundLink],
    links: Iterable[KnownLink],
    pages: Iterable[PartnerPage],
    known_domains: set[str],
) -> LinkGraph:
    """The graph from our crawl's ``outbound`` links, the effective known ``links`` and the partner
    ``pages`` read. A read page's links to us are in ``links`` already (with the monitor's verdict on
    them, :func:`effective_links`); its other links count only toward domains in ``known_domains``."""
    graph = LinkGraph(domain)
    for link in outbound:
        graph.add(domain, link.domain, link.page_url, link.url, "our page")
    for known in links:
        if known.status in LINKING and known.source_domain != domain:
            how = _how(known)
            graph.add(known.source_domain, known.target_domain, known.source_url, known.target_url, how)
    for page in pages:
        if not page.readable:
            continue
        for seen in page.external:
            if seen.domain in known_domains:
                graph.add(page.domain, seen.domain, page.final_url, seen.url, "seen by this audit")
    return graph


def reciprocal_pairs(
    graph: LinkGraph, outbound: Iterable[OutboundLink], links: Iterable[KnownLink], knowledge: Knowledge
) -> list[ReciprocalPair]:
    """Domains we link to that link to us, sorted by domain, each with the pages on both sides."""
    us = graph.us
    ours: dict[str, list[OutboundLink]] = defaultdict(list)
    for link in outbound:
        ours[link.domain].append(link)
    theirs: dict[str, list[KnownLink]] = defaultdict(list)
    for known in links:
        if known.target_domain == us and known.status in LINKING:
            theirs[known.source_domain].append(known)
    pairs = []
    for domain in sorted(graph.out(us)):
        if not graph.has(domain, us):
            continue
        ids = tuple(a.id for a in knowledge.agreements_with(domain))
        pairs.append(ReciprocalPair(domain, tuple(ours[domain]), tuple(theirs[domain]), ids))
    return pairs


def three_way_cycles(graph: LinkGraph, limit: int = MAX_CYCLES) -> list[Cycle]:
    """Every directed cycle A -> B -> C -> A of three distinct domains, once each (rotated to start with
    our domain when it is in the cycle, else with the smallest domain), ours first, then sorted."""
    found: dict[tuple[str, str, str], Cycle] = {}
    for a, b, c in _triangles(graph):
        rotations = [(a, b, c), (b, c, a), (c, a, b)]
        with_us = [r for r in rotations if r[0] == graph.us]
        start = with_us[0] if with_us else min(rotations)
        if start in found:
            continue
        x, y, z = start
        edges = (graph.edge(x, y), graph.edge(y, z), graph.edge(z, x))
        found[start] = Cycle((x, y, z), edges, graph.us in start)
        if len(found) >= limit:
            break
    return sorted(found.values(), key=lambda cycle: (not cycle.involves_us, cycle.domains))


def _triangles(graph: LinkGraph) -> Iterator[tuple[str, str, str]]:
    for a in sorted(graph.nodes):
        for b in sorted(graph.out(a)):
            for c in sorted(graph.out(b)):
                if c not in (a, b) and graph.has(c, a):
                    yield a, b, c
