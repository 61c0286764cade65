"""The export formats Linkpact reads, the header names each tool writes, and how a file's format is told.

A format maps *fields* (``source``, ``target``, ``anchor``, ``nofollow``, ...) to the header names a tool
uses for them, compared with :func:`bot.agreements.csvfile.header_key` (trimmed, case-folded, ``_`` as a
space). :func:`detect` picks the format whose required fields are all present, preferring the one with
the most of its *signature* columns (names only that tool writes). ``docs/imports.md`` lists where each
name comes from and which were verified against real exports.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.agreements.csvfile import header_key
from bot.imports.values import DateOrder


class Kind(enum.Enum):
    """What one row of a format describes."""

    PAGES = "pages"  # a linking page (a backlink): importable
    SITES = "sites"  # a referring domain with counts, no pages (GSC "Top linking sites")
    TARGETS = "targets"  # one of our own pages with counts (GSC "Top linked pages"): nothing to import


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """One tool's export layout.

    ``columns``: field -> accepted header names; ``required``: fields that must be present;
    ``signature``: header names that single this tool out (one is needed for automatic detection, so a
    generic ``URL`` column never makes a file "Moz"); ``authority``: authority figure name -> header
    names; ``needs_target``: rows carry no target, so ``--target-site`` supplies it.
    """

    name: str
    label: str
    kind: Kind
    columns: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...]
    signature: frozenset[str] = frozenset()
    authority: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    needs_target: bool = False

    def resolve(self, keys: Sequence[str]) -> dict[str, int] | None:
        """Field -> column index for a header (already :func:`header_key`-ed); None when a required
        field has no column. The first column with an accepted name wins."""
        positions: dict[str, int] = {}
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        for name, aliases in (*self.columns.items(), *self.authority.items()):
            for alias in aliases:
                if alias in first:
                    positions[name] = first[alias]
                    break
        if any(name not in positions for name in self.required):
            return None
        return positions

    def authority_fields(self) -> tuple[str, ...]:
        return tuple(self.authority)


def _keys(*names: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(header_key(name) for name in names))


# -- Google Search Console ----------------------------------------------------------------------------
# Search Console writes its headers in the account's interface language. English names are the ones the
# issue quotes and several independent importers use; the others are listed per language in
# docs/imports.md with how sure we are of each. A header in an unknown language is still read by the
# shape of its columns (bot.imports.reading), so a wrong guess here costs nothing but that fallback.
GSC_HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "linking_page": {
        "en": ("Linking page",),
        "es": ("Página que enlaza", "Página de enlace", "Página enlazante"),
        "de": ("Verweisende Seite", "Verlinkende Seite", "Link"),
        "fr": ("Page d'origine du lien", "Page contenant le lien", "Page de provenance du lien"),
        "pt": ("Página com link", "Página que contém o link", "Página de origem do link"),
        "it": ("Pagina di collegamento", "Pagina che contiene il link", "Pagina con link"),
        "nl": ("Linkende pagina", "Verwijzende pagina"),
        "ja": ("リンク元ページ",),
        "he": ("דף מקשר",),
    },
    "last_crawled": {
        "en": ("Last crawled",),
        "es": ("Último rastreo", "Fecha del último rastreo", "Rastreada por última vez"),
        "de": ("Zuletzt gecrawlt", "Letzter Crawl"),
        "fr": ("Dernière exploration", "Date de la dernière exploration"),
        "pt": ("Último rastreamento", "Data do último rastreamento"),
        "it": ("Ultima scansione", "Data dell'ultima scansione"),
        "nl": ("Laatst gecrawld", "Laatste crawl"),
        "ja": ("最終クロール", "最終クロール日"),
        "he": ("נסרק לאחרונה",),
    },
    "site": {
        "en": ("Site", "Linking site"),
        "es": ("Sitio", "Sitio web"),
        "de": ("Website",),
        "fr": ("Site",),
        "pt": ("Site",),
        "it": ("Sito",),
        "nl": ("Site", "Website"),
        "ja": ("サイト",),
        "he": ("אתר",),
    },
    "linking_pages": {
        "en": ("Linking pages",),
        "es": ("Páginas que enlazan", "Páginas de enlace"),
        "de": ("Verweisende Seiten", "Verlinkende Seiten"),
        "fr": ("Pages d'origine des liens", "Pages contenant des liens", "Pages de provenance"),
        "pt": ("Páginas com links", "Páginas de origem"),
        "it": ("Pagine di collegamento", "Pagine con link"),
        "nl": ("Linkende pagina's", "Verwijzende pagina's"),
        "ja": ("リンク元ページ数", "リンク元ページ"),
        "he": ("דפים מקשרים",),
    },
    "target_pages": {
        "en": ("Target pages",),
        "es": ("Páginas de destino",),
        "de": ("Zielseiten",),
        "fr": ("Pages cibles", "Pages de destination"),
        "pt": ("Páginas de destino",),
        "it": ("Pagine di destinazione",),
        "nl": ("Doelpagina's", "Bestemmingspagina's"),
        "ja": ("ターゲット ページ", "ターゲットページ", "リンク先ページ"),
        "he": ("דפי יעד",),
    },
    "target_page": {
        "en": ("Target page",),
        "es": ("Página de destino",),
        "de": ("Zielseite", "Seite"),
        "fr": ("Page cible", "Page de destination"),
        "pt": ("Página de destino",),
        "it": ("Pagina di destinazione",),
        "nl": ("Doelpagina", "Bestemmingspagina"),
        "ja": ("ターゲット ページ", "ターゲットページ", "リンク先ページ"),
        "he": ("דף יעד",),
    },
    "incoming_links": {
        "en": ("Incoming links",),
        "es": ("Enlaces entrantes",),
        "de": ("Eingehende Links",),
        "fr": ("Liens entrants",),
        "pt": ("Links recebidos", "Links de entrada"),
        "it": ("Link in entrata",),
        "nl": ("Inkomende links",),
        "ja": ("受信リンク", "被リンク"),
        "he": ("קישורים נכנסים",),
    },
    "linking_sites": {
        "en": ("Linking sites",),
        "es": ("Sitios que enlazan", "Sitios de enlace"),
        "de": ("Verweisende Websites", "Verlinkende Websites"),
        "fr": ("Sites d'origine des liens", "Sites contenant des liens", "Sites de provenance"),
        "pt": ("Sites com links", "Sites de origem"),
        "it": ("Siti di collegamento", "Siti con link"),
        "nl": ("Linkende sites", "Verwijzende sites"),
        "ja": ("リンク元サイト",),
        "he": ("אתרים מקשרים",),
    },
}

# Header name -> the interface language it belongs to (decides how 01/02/2026 is read).
GSC_LANGUAGE: dict[str, str] = {
    header_key(name): language
    for by_language in GSC_HEADERS.values()
    for language, names in by_language.items()
    for name in names
}


def _gsc(field_name: str) -> tuple[str, ...]:
    return _keys(*(name for names in GSC_HEADERS[field_name].values() for name in names))


def gsc_date_order(keys: Sequence[str]) -> DateOrder:
    """Month first for an English header (Search Console's US English writes 9/15/2026), else day first."""
    languages = {GSC_LANGUAGE[key] for key in keys if key in GSC_LANGUAGE}
    return "mdy" if not languages or languages == {"en"} else "dmy"


GSC_LATEST_LINKS = ExportFormat(
    name="gsc-latest-links",
    label='Search Console "Latest links"',
    kind=Kind.PAGES,
    columns={"source": _gsc("linking_page"), "last_seen": _gsc("last_crawled")},
    required=("source", "last_seen"),
    signature=frozenset(_gsc("last_crawled")),
    needs_target=True,
)
GSC_SAMPLE_LINKS = ExportFormat(
    name="gsc-sample-links",
    label='Search Console "More sample links"',
    kind=Kind.PAGES,
    columns={"source": _gsc("linking_page")},
    required=("source",),
    signature=frozenset(_gsc("linking_page")),
    needs_target=True,
)
GSC_LINKING_SITES = ExportFormat(
    name="gsc-linking-sites",
    label='Search Console "Top linking sites"',
    kind=Kind.SITES,
    columns={
        "site": _gsc("site"),
        "linking_pages": _gsc("linking_pages"),
        "target_pages": _gsc("target_pages"),
    },
    required=("site", "linking_pages"),
    signature=frozenset(_gsc("linking_pages")),
)
GSC_LINKED_PAGES = ExportFormat(
    name="gsc-linked-pages",
    label='Search Console "Top linked pages"',
    kind=Kind.TARGETS,
    columns={
        "target": _gsc("target_page"),
        "incoming_links": _gsc("incoming_links"),
        "linking_sites": _gsc("linking_sites"),
    },
    required=("target", "incoming_links"),
    signature=frozenset(_gsc("incoming_links")),
)

# -- SEO suites -----------------------------------------------------------------------------------------
AHREFS = ExportFormat(
    name="ahrefs",
    label="Ahrefs backlinks",
    kind=Kind.PAGES,
    columns={
        "source": _keys("Referring page URL", "Referring Page URL", "Referring page"),
        "target": _keys("Target URL", "Link URL"),
        "anchor": _keys("Anchor", "Link Anchor", "Anchor text"),
        "nofollow": _keys("Nofollow", "NoFollow"),
        "ugc": _keys("UGC"),
        "sponsored": _keys("Sponsored"),
        "first_seen": _keys("First seen"),
        "last_seen": _keys("Last seen", "Last check", "Last visited"),
        "lost": _keys("Lost", "Lost date"),
    },
    required=("source", "target"),
    signature=frozenset(
        _keys("Referring page URL", "Referring page title", "Domain rating", "UR", "Left context")
    ),
    authority={"domain_rating": _keys("Domain rating", "DR"), "url_rating": _keys("UR", "URL rating")},
)
SEMRUSH = ExportFormat(
    name="semrush",
    label="Semrush backlinks",
    kind=Kind.PAGES,
    columns={
        "source": _keys("Source url"),
        "target": _keys("Target url"),
        "anchor": _keys("Anchor"),
        "nofollow": _keys("Nofollow"),
        "ugc": _keys("Ugc"),
        "sponsored": _keys("Sponsored"),
        "first_seen": _keys("First seen"),
        "last_seen": _keys("Last seen"),
        "lost": _keys("Lost link"),
    },
    required=("source", "target"),
    signature=frozenset(
        _keys("Page ascore", "Page score", "Source title", "Sitewide", "Ugc", "New link", "Lost link")
    ),
    authority={"page_ascore": _keys("Page ascore", "Page score")},
)
MOZ = ExportFormat(
    name="moz",
    label="Moz Link Explorer inbound links",
    kind=Kind.PAGES,
    columns={
        "source": _keys("URL"),
        "target": _keys("Target URL"),
        "anchor": _keys("Anchor Text"),
        "nofollow": _keys("Only rel=nofollow", "Nofollow"),
        "followable": _keys("Followable"),
        "first_seen": _keys("Date First Seen", "First Seen"),
        "last_seen": _keys("Date Last Seen", "Last Seen"),
        "lost": _keys("Date Lost"),
    },
    required=("source", "target"),
    signature=frozenset(
        _keys("Spam Score", "Page Authority", "Domain Authority", "Only rel=nofollow", "Link Equity")
    ),
    authority={"domain_authority": _keys("Domain Authority"), "page_authority": _keys("Page Authority")},
)
MAJESTIC = ExportFormat(
    name="majestic",
    label="Majestic backlinks",
    kind=Kind.PAGES,
    columns={
        "source": _keys("Source URL", "SourceURL"),
        "target": _keys("Target URL", "TargetURL"),
        "anchor": _keys("Anchor Text", "AnchorText"),
        "nofollow": _keys("FlagNoFollow", "Flag NoFollow"),
        "first_seen": _keys("FirstIndexedDate", "First Indexed Date", "Source First Found Date"),
        "last_seen": _keys("LastSeenDate", "Last Seen Date", "Source Crawl Date"),
        "lost": _keys("DateLost", "Date Lost", "FlagDeleted"),
    },
    required=("source", "target"),
    signature=frozenset(
        _keys(
            "SourceURL",
            "FlagNoFollow",
            "SourceTrustFlow",
            "Source Trust Flow",
            "SourceCitationFlow",
            "FlagRedirect",
            "FlagImageLink",
            "FlagDeleted",
        )
    ),
    authority={
        "trust_flow": _keys("SourceTrustFlow", "Source Trust Flow"),
        "citation_flow": _keys("SourceCitationFlow", "Source Citation Flow"),
    },
)
# A list made by hand: one source URL per line (then --target-site), or source and target columns.
PLAIN_LIST = ExportFormat(
    name="list",
    label="list of linking pages",
    kind=Kind.PAGES,
    columns={
        "source": _keys(
            "source", "source url", "source page", "url from", "from", "referring page", "referring url",
            "backlink", "backlink url", "linking page", "url", "page", "link",
        ),
        "target": _keys("target", "target url", "url to", "to", "destination", "landing page", "target page"),
        "anchor": _keys("anchor", "anchor text"),
    },
    required=("source",),
)  # fmt: skip

# Most specific first: detect() breaks ties by this order.
FORMATS: tuple[ExportFormat, ...] = (
    AHREFS, SEMRUSH, MAJESTIC, MOZ, GSC_LATEST_LINKS, GSC_LINKING_SITES, GSC_LINKED_PAGES, GSC_SAMPLE_LINKS,
    PLAIN_LIST,
)  # fmt: skip
FORMATS_BY_NAME: dict[str, ExportFormat] = {f.name: f for f in FORMATS}


def format_named(name: str) -> ExportFormat | None:
    return FORMATS_BY_NAME.get(name.strip().lower())


def detect(keys: Sequence[str]) -> tuple[ExportFormat, dict[str, int]] | None:
    """The format of a header row (cells already :func:`header_key`-ed) and its field positions, or None.

    A format qualifies when its required fields are present and (if it has signature columns) at least
    one signature column is; among those the most signature columns win, then the order of
    :data:`FORMATS`. GSC "More sample links" and the plain list also need the header to hold nothing
    else, so that an unknown tool's export is not mistaken for a one-column list.
    """
    present = set(keys)
    best: tuple[int, int, ExportFormat, dict[str, int]] | None = None
    for rank, fmt in enumerate(FORMATS):
        positions = fmt.resolve(keys)
        if positions is None:
            continue
        hits = len(fmt.signature & present)
        if fmt.signature and not hits:
            continue
        if fmt in (GSC_SAMPLE_LINKS, PLAIN_LIST) and len([k for k in keys if k]) > len(positions):
            continue
        score = (hits, -rank)
        if best is None or score > (best[0], best[1]):
            best = (hits, -rank, fmt, positions)
    return None if best is None else (best[2], best[3])
