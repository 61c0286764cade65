"""The extract stage: a fetched HTML page -> :class:`~bot.models.ExtractedPage`.

Parses with selectolax's lexbor backend (an HTML Living Standard tree builder, so the tree matches what
browsers build) and reads every ``<a href>`` and ``<area href>`` occurrence in document order, with its
raw href, absolute URL, anchor text, rel tokens and placement, plus the page's own facts (title, base
URL, canonical, robots directives).

See docs/extraction.md for the rules and the measured placement quality.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterable, Mapping

from selectolax.lexbor import LexborHTMLParser, LexborNode

from bot.linkcheck.placement import PlacementClassifier
from bot.models import ExtractedLink, ExtractedPage, PageFacts
from bot.urls import resolve_url

logger = logging.getLogger(__name__)

# The HTML standard's encoding prescan looks at the first 1024 bytes; real pages put long comments and
# scripts before <meta charset>, so we look a little further. Bounded so the scan stays O(1).
META_CHARSET_SCAN_BYTES = 4096

# The default when nothing declares an encoding. The HTML standard's default is locale-dependent
# (windows-1252 in the West); today's web is overwhelmingly UTF-8 and decoding is lossless-or-replace.
DEFAULT_ENCODING = "utf-8"

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# WHATWG Encoding Standard, "Encodings" table: labels whose decoder is a superset codec. Browsers decode
# "iso-8859-1"/"ascii" as windows-1252, "gb2312" as GBK/gb18030, "shift_jis" as windows-31J, and so on;
# Python's strict codecs would turn the superset's extra bytes into U+FFFD.
_WHATWG_SUPERSETS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ascii",
            "us-ascii",
            "iso-8859-1",
            "iso8859-1",
            "iso_8859-1",
            "latin1",
            "latin-1",
            "l1",
            "cp819",
            "ibm819",
            "x-cp1252",
            "windows-1252",
        ),
        "cp1252",
    ),
    **dict.fromkeys(("iso-8859-9", "iso8859-9", "latin5", "l5", "windows-1254"), "cp1254"),
    **dict.fromkeys(("tis-620", "iso-8859-11", "windows-874"), "cp874"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "chinese", "gb18030"), "gb18030"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "ms_kanji", "x-sjis", "windows-31j"), "cp932"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "korean", "windows-949"), "cp949"),
    **dict.fromkeys(("big5", "big5-hkscs", "x-x-big5"), "big5hkscs"),
    # UTF-7 is not a web encoding (WHATWG lists no label for it); treating it as unknown avoids its
    # well-known script-smuggling tricks.
    **dict.fromkeys(("utf-7", "unicode-1-1-utf-7"), DEFAULT_ENCODING),
}

# Work budget for the tree builder's nesting checks (sum over block start tags of the nesting depth,
# see nesting_cut): about 35 ms of lexbor time on a slow core. The most demanding of the 78 corpus pages
# needs 21,776 (0.4% of it), so real pages never come near.
MAX_NESTING_WORK = 5_000_000
# ExtractedPage.incomplete_reason when the text was cut to stay within MAX_NESTING_WORK.
NESTING_TOO_DEEP = "nesting_too_deep"
# Start tags that close an open <p> (HTML Living Standard, "in body" insertion mode) and nest.
_BLOCK_TAG_RE = re.compile(
    rb"<(/?)(?:a(?:ddress|rticle|side)|blockquote|center|d(?:etails|ialog|ir|iv|l)"
    rb"|f(?:ieldset|igcaption|igure|ooter|orm)|h(?:eader|group)|m(?:ain|enu)|nav|ol"
    rb"|s(?:earch|ection|ummary)|ul)(?=[\s/>])"
)

_META_TAG_RE = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)
_META_CHARSET_RE = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_META_HTTP_EQUIV_RE = re.compile(rb"""http-equiv\s*=\s*["']?\s*content-type""", re.IGNORECASE)
_META_CHARSET_ATTR_RE = re.compile(rb"""[\s"'/]charset\s*=""", re.IGNORECASE)

# A scheme at the start of a resolved URL (the document base must have one).
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")

_REL_SPLIT_RE = re.compile(r"[\s,]+")

# Google honours these two meta names and X-Robots-Tag scopes for Google Search (Google Search Central,
# "Robots meta tag, data-nosnippet, and X-Robots-Tag specifications").
_ROBOTS_META_NAMES = frozenset(("robots", "googlebot"))
_OUR_ROBOTS_SCOPE = "googlebot"
# Directives that themselves carry "name: value", so "max-snippet: 20" is not a user-agent scope.
_VALUED_DIRECTIVES = frozenset(("max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"))
_SCOPE_RE = re.compile(r"^\s*([a-z0-9_.\-]+)\s*:\s*(.*)$")

_LINK_PARAM_RE = re.compile(r';\s*([^;=\s,]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*)))?')


def extract_page(
    body: bytes | str, page_url: str, *, headers: Mapping[str, str] | None = None
) -> ExtractedPage:
    """Extract the links and page facts of one HTML page.

    ``body`` is the raw response body (bytes, decoded here) or already-decoded text. ``page_url`` is the
    page's final URL (after redirects): relative links resolve against it unless the page has a
    ``<base href>``. ``headers`` are the response headers with lower-case keys (``content-type`` for
    the charset, ``x-robots-tag`` and ``link`` for page facts); repeated headers joined with ``", "``.

    Returns the :class:`~bot.models.ExtractedPage`: one :class:`~bot.models.ExtractedLink` per
    ``<a href>``/``<area href>`` occurrence in document order (``position`` = index) and the page's
    :class:`~bot.models.PageFacts`. Never raises on bad input: undecodable bytes become U+FFFD, unknown
    charsets fall back to UTF-8, hrefs that do not resolve get ``url=None``, garbage HTML yields what a
    browser would build from it (often no links).
    """
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    text = body if isinstance(body, str) else decode_html(body, _content_type_charset(hdrs))
    tree, cut = _parse(text)

    base_url = _effective_base(tree, page_url)
    resolver = HrefResolver(base_url)
    robots = robots_directives(_meta_robots_contents(tree), hdrs.get("x-robots-tag", ""))
    facts = PageFacts(
        title=_title(tree),
        base_url=base_url,
        canonical=_canonical(tree, base_url, page_url, hdrs.get("link", "")),
        robots=robots,
    )
    page_nofollow = facts.nofollow

    # Script and style text would count as page text when placement weighs regions by their text.
    tree.strip_tags(["script", "style"])
    classifier = PlacementClassifier(tree.body)
    links: list[ExtractedLink] = []
    for position, node in enumerate(tree.css("a[href], area[href]")):
        attrs = node.attributes
        href = attrs.get("href") or ""
        rel = rel_tokens(attrs.get("rel"))
        if page_nofollow:
            rel = rel | {"nofollow"}
        tag = node.tag or "a"
        links.append(
            ExtractedLink(
                href=href,
                url=resolver.resolve(href),
                anchor=anchor_text(node, attrs),
                rel=rel,
                placement=classifier.classify(node),
                tag=tag,
                position=position,
            )
        )
    if cut:  # a link missing from the parsed part may be in the rest: never evidence of a removal
        return ExtractedPage(facts, tuple(links), complete=False, incomplete_reason=NESTING_TOO_DEEP)
    return ExtractedPage(facts=facts, links=tuple(links))


def _parse(text: str) -> tuple[LexborHTMLParser, bool]:
    """The parsed tree, and whether the text was cut first (:func:`nesting_cut`)."""
    cut = nesting_cut(text)
    if cut is not None:
        logger.warning(
            "page nests block elements too deeply to parse in bounded time; "
            "extracting from its first %d of %d characters",
            cut,
            len(text),
        )
        text = text[:cut]
    try:
        return LexborHTMLParser(text), cut is not None
    except UnicodeEncodeError:
        # Lone surrogates in a caller's str cannot be handed to the C parser as UTF-8.
        return LexborHTMLParser(text.encode("utf-8", "replace").decode("utf-8")), cut is not None


def nesting_cut(text: str) -> int | None:
    """Where to cut ``text`` so the HTML tree builder's work stays bounded, or ``None`` (no cut).

    Each block start tag (``<div>``, ``<section>``, ``<ul>``, ...) makes the HTML tree builder look
    through the stack of open elements for a ``<p>`` to close (HTML Living Standard, "in body" insertion
    mode, "has a p element in button scope"), so its cost is the current nesting depth, and a page of
    nested ``<div>`` s costs depth squared: 50,000 of them (250 kB) kept lexbor busy for two minutes.
    We estimate that work from the tag sequence (close tags lower the depth) and cut the text before the
    tag that would exceed :data:`MAX_NESTING_WORK`. Real pages stay far below the budget.
    """
    tags = text.count("<")
    if tags * tags // 2 <= MAX_NESTING_WORK:
        return None  # even if every tag nested, the work would be within budget
    # ASCII case folding on UTF-8 bytes is several times faster than str.lower() and a case-sensitive
    # regex; mixed-case tags (<DiV>) are still counted, so the guard cannot be sidestepped that way.
    folded = text.encode("utf-8", "surrogatepass").lower()
    marks = _BLOCK_TAG_RE.findall(folded)
    if len(marks) * len(marks) // 2 <= MAX_NESTING_WORK:
        return None
    work = depth = 0
    for index, closing in enumerate(marks):
        if closing:
            depth = max(0, depth - 1)
            continue
        work += depth
        depth += 1
        if work > MAX_NESTING_WORK:
            for position, match in enumerate(_BLOCK_TAG_RE.finditer(folded)):
                if position == index:
                    return len(folded[: match.start()].decode("utf-8", "surrogatepass"))
    return None


# --- decoding ---------------------------------------------------------------------------------------


def _content_type_charset(headers: Mapping[str, str]) -> str | None:
    for param in headers.get("content-type", "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip("\"'"):
            return value.strip().strip("\"'").strip()
    return None


def _codec_for(label: str | None, *, from_meta: bool = False) -> str | None:
    """The Python codec for an encoding label (WHATWG supersets applied), or ``None`` when unknown."""
    if not label:
        return None
    name = label.strip().lower()
    if from_meta and name.startswith("utf-16"):
        # HTML standard, prescan: a <meta> cannot truthfully declare UTF-16 (it was read as ASCII).
        return "utf-8"
    name = _WHATWG_SUPERSETS.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # codecs.lookup also knows bytes-to-bytes codecs ("base64", "zlib"); those are not charsets.
    try:
        b"".decode(info.name)
    except LookupError:
        return None
    return info.name


def sniff_meta_charset(head: bytes) -> str | None:
    """The charset a ``<meta charset>`` or ``<meta http-equiv="Content-Type" content="...; charset=">``
    declares in ``head`` (the first bytes of the page), or ``None``."""
    for match in _META_TAG_RE.finditer(head):
        tag = match.group(0)
        if _META_CHARSET_ATTR_RE.search(tag) or _META_HTTP_EQUIV_RE.search(tag):
            charset = _META_CHARSET_RE.search(tag)
            if charset:
                return charset.group(1).decode("ascii", "replace")
    return None


def decode_html(body: bytes, header_charset: str | None = None) -> str:
    """Decode an HTML body to text; never raises.

    Order (HTML Living Standard, "Determining the character encoding"): a byte order mark wins, then the
    HTTP ``Content-Type`` charset, then a ``<meta>`` charset in the first
    :data:`META_CHARSET_SCAN_BYTES` bytes, else UTF-8. Unknown or non-text charset names count as
    absent. Bytes that do not decode become U+FFFD.
    """
    for bom, bom_codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_codec, "replace")
    codec = _codec_for(header_charset)
    if codec is None:
        codec = _codec_for(sniff_meta_charset(body[:META_CHARSET_SCAN_BYTES]), from_meta=True)
    try:
        return body.decode(codec or DEFAULT_ENCODING, "replace")
    except (LookupError, UnicodeError):  # pragma: no cover - codecs vetted by _codec_for
        logger.exception("decoding with %s failed; falling back to %s", codec, DEFAULT_ENCODING)
        return body.decode(DEFAULT_ENCODING, "replace")


# --- URLs -------------------------------------------------------------------------------------------


class HrefResolver:
    """Resolves raw hrefs against one base URL the way a browser fills ``a.href``; cached per href.

    ``resolve(href)`` returns the URL Standard's serialisation of ``href`` parsed with the base URL
    (WHATWG URL Standard, "URL parser", through :func:`bot.urls.resolve_url`), fragment kept, or ``None``
    when the Standard says failure (no host for http(s), an invalid port or host, a relative href
    against a base that cannot take one). So tabs and newlines are dropped, ``\\`` is ``/`` in http(s)
    URLs, ``http:page`` is relative on an http page and ``http:host/page`` absolute on an https one,
    dot segments (also ``%2e``) are removed, hosts are lower-case punycode and raw Unicode is
    percent-encoded as UTF-8. Other schemes (``mailto:``, ``javascript:``, ``tel:``, ``data:``) come back
    as the Standard serialises them (scheme lower-cased, the rest as written).

    The query of a page in a legacy encoding is encoded in UTF-8 here, where a browser would use the
    page's encoding (the Standard's "encoding" parameter); links with non-ASCII query text on such pages
    may differ from what a browser requests.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        try:
            self._base: str | None = resolve_url(base_url)
        except ValueError:
            self._base = None  # only absolute hrefs resolve
        self._cache: dict[str, str | None] = {}

    def resolve(self, href: str) -> str | None:
        try:
            return self._cache[href]
        except KeyError:
            url = self._cache[href] = self._resolve(href)
            return url

    def _resolve(self, href: str) -> str | None:
        try:
            return resolve_url(href, self._base)
        except ValueError:
            return None


def resolve_href(href: str, base_url: str) -> str | None:
    """Resolve one raw ``href`` against ``base_url``; see :class:`HrefResolver` (use it for many hrefs)."""
    return HrefResolver(base_url).resolve(href)


def _effective_base(tree: LexborHTMLParser, page_url: str) -> str:
    """The document base URL: the first ``<base href>`` (resolved against the page URL), else the page
    URL (HTML Living Standard, "Document base URL": only the first base element with href counts)."""
    base = tree.css_first("base[href]")
    if base is not None:
        resolved = resolve_href(base.attributes.get("href") or "", page_url)
        if (
            resolved
            and _SCHEME_RE.match(resolved)
            and not resolved.lower().startswith(("javascript:", "data:"))
        ):
            return resolved
    return page_url


# --- anchor text and rel ----------------------------------------------------------------------------


def normalise_space(text: str) -> str:
    """Collapse runs of whitespace (incl. no-break space) to one space and trim."""
    return " ".join(text.split())


def anchor_text(node: LexborNode, attrs: Mapping[str, str | None] | None = None) -> str:
    """The anchor text of a link element.

    ``<a>``: its whitespace-normalised text content (``textContent``: ``<svg><title>`` counts); when
    that is empty (an image link), the distinct alt texts of its images joined by a space; then
    ``aria-label``; then ``title``; else ``""``. Visible text comes first because it is what readers
    and search engines take as the anchor (Google Search Central, "Link best practices": anchor text,
    and alt text for image links). ``<area>``: its ``alt``, then ``aria-label``, then ``title``.
    """
    attrs = node.attributes if attrs is None else attrs
    if node.tag != "area":
        text = normalise_space(node.text(deep=True))
        if text:
            return text
        # A lazy-loading image is often repeated in <noscript>: count each alt text once.
        alts = dict.fromkeys(normalise_space(img.attributes.get("alt") or "") for img in node.css("img"))
        text = " ".join(alt for alt in alts if alt)
        if text:
            return text
    for name in ("alt", "aria-label", "title"):
        value = normalise_space(attrs.get(name) or "")
        if value:
            return value
    return ""


def rel_tokens(value: str | None) -> frozenset[str]:
    """Lower-case rel tokens, split on whitespace and commas (``"Nofollow,sponsored"`` is two tokens)."""
    if not value:
        return frozenset()
    return frozenset(t for t in _REL_SPLIT_RE.split(value.lower()) if t)


# --- page facts -------------------------------------------------------------------------------------


def _title(tree: LexborHTMLParser) -> str:
    node = tree.css_first("head > title") or tree.css_first("title")
    return normalise_space(node.text(deep=True)) if node is not None else ""


def _meta_robots_contents(tree: LexborHTMLParser) -> list[str]:
    """``content`` of every ``<meta name="robots|googlebot">``, anywhere in the document.

    Google documents the tag for ``<head>``; we also read a stray one in ``<body>`` so a noindex is
    surfaced rather than hidden.
    """
    contents: list[str] = []
    for meta in tree.css("meta[name][content]"):
        attrs = meta.attributes
        if (attrs.get("name") or "").strip().lower() in _ROBOTS_META_NAMES:
            contents.append(attrs.get("content") or "")
    return contents


def robots_directives(meta_contents: Iterable[str], x_robots_tag: str = "") -> frozenset[str]:
    """The robots directives that apply to Google Search, lower-case.

    Source: Google Search Central, "Robots meta tag, data-nosnippet, and X-Robots-Tag specifications"
    (developers.google.com/search/docs/crawling-indexing/robots-meta-tag). ``meta_contents`` are the
    ``content`` values of ``<meta name="robots">``/``<meta name="googlebot">``; ``x_robots_tag`` the
    ``X-Robots-Tag`` header value(s), joined with ``", "``. In the header, ``googlebot: noindex`` scopes
    the directives that follow to Googlebot and applies; ``otherbot: noindex`` scopes them to another
    crawler and is ignored; a scope lasts until the next one. ``none`` also adds ``noindex`` and
    ``nofollow``. Valued directives keep their value (``max-snippet:20``).
    """
    found: set[str] = set()
    for content in meta_contents:
        found |= _directives(content, scoped=False)
    if x_robots_tag:
        found |= _directives(x_robots_tag, scoped=True)
    if "none" in found:
        found |= {"noindex", "nofollow"}
    return frozenset(found)


def _directives(value: str, *, scoped: bool) -> set[str]:
    found: set[str] = set()
    applies = True
    for raw in value.lower().split(","):
        token = raw.strip()
        match = _SCOPE_RE.match(token)
        if match and match.group(1) not in _VALUED_DIRECTIVES:
            if not scoped:
                continue  # a "name: x" token in a meta tag is not a directive we know
            applies = match.group(1) == _OUR_ROBOTS_SCOPE
            token = match.group(2).strip()
        elif match:
            token = f"{match.group(1)}:{match.group(2).strip()}"
        if token and applies:
            found.add(token)
    return found


def _canonical(tree: LexborHTMLParser, base_url: str, page_url: str, link_header: str) -> str | None:
    """The canonical URL: the first ``<link rel="canonical" href>`` in ``<head>`` (resolved against the
    document base; Google ignores one in ``<body>``), else an HTTP ``Link: <url>; rel="canonical"``
    (RFC 8288, resolved against the page URL). ``None`` when neither is present or resolvable."""
    head = tree.head
    if head is not None:
        for link in head.css("link[rel][href]"):
            attrs = link.attributes
            if "canonical" in rel_tokens(attrs.get("rel")):
                url = resolve_href(attrs.get("href") or "", base_url)
                if url:
                    return url
    for target, rels in parse_link_header(link_header):
        if "canonical" in rels:
            url = resolve_href(target, page_url)
            if url:
                return url
    return None


def parse_link_header(value: str) -> list[tuple[str, frozenset[str]]]:
    """``(target, rel tokens)`` for each link-value of an HTTP ``Link`` header (RFC 8288 section 3).

    Link-values are separated by commas outside quoted strings; only the first ``rel`` parameter of a
    link-value counts (RFC 8288 section 3.3). A malformed tail is ignored, never an error.
    """
    links: list[tuple[str, frozenset[str]]] = []
    position = 0
    while True:
        start = value.find("<", position)
        end = value.find(">", start + 1) if start >= 0 else -1
        if end < 0:
            return links
        cursor, in_quotes = end + 1, False
        while cursor < len(value):
            char = value[cursor]
            if char == "\\" and in_quotes:
                cursor += 1  # quoted-pair: skip the escaped character
            elif char == '"':
                in_quotes = not in_quotes
            elif char == "," and not in_quotes:
                break
            cursor += 1
        rels: frozenset[str] = frozenset()
        for param in _LINK_PARAM_RE.finditer(value, end + 1, cursor):
            if param.group(1).lower() == "rel":
                rels = rel_tokens(param.group(2) if param.group(2) is not None else param.group(3))
                break
        links.append((value[start + 1 : end].strip(), rels))
        position = cursor + 1


__all__ = [
    "anchor_text",
    "decode_html",
    "extract_page",
    "normalise_space",
    "parse_link_header",
    "rel_tokens",
    "resolve_href",
    "robots_directives",
    "sniff_meta_charset",
]
