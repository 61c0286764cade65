"""Sitemap files (sitemaps.org protocol 0.9): XML ``<urlset>`` and ``<sitemapindex>``, plain-text lists,
and gzip-compressed forms of either, parsed without trusting the input.

- XML is read with ``defusedxml`` (no entity expansion, no external entities or DTD fetches), so a
  "billion laughs" file costs nothing;
- gzip is inflated with zlib under a cap on the *output* size, so a small bomb cannot fill memory;
- a file cut off at the cap (or otherwise malformed) still yields the ``<loc>`` entries before the break.
"""

from __future__ import annotations

import io
import logging
import zlib
from dataclasses import dataclass
from enum import StrEnum
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"


class SitemapKind(StrEnum):
    URLSET = "urlset"  # a list of pages
    INDEX = "sitemapindex"  # a list of sitemap files
    TEXT = "text"  # one URL per line (sitemaps.org "Text file")
    UNKNOWN = "unknown"  # not a sitemap we can read


@dataclass(frozen=True, slots=True)
class Sitemap:
    """The URLs a sitemap file lists, in file order. ``truncated``: the file was cut short (size cap or
    a parse error part-way); the URLs read before the break are kept."""

    kind: SitemapKind
    locs: tuple[str, ...]
    truncated: bool = False


def gunzip_capped(data: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """Inflate a gzip body to at most ``max_bytes`` bytes. Returns ``(bytes, truncated)``; a corrupt
    stream gives what was inflated before the damage and ``truncated=True``. Never raises."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        # max_length bounds the output of this one call: the bomb stops here whatever its ratio.
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error:
        logger.warning("a gzip sitemap is corrupt; reading nothing from it")
        return b"", True
    if len(out) > max_bytes:
        return out[:max_bytes], True
    return out, False


def parse_sitemap(body: bytes, *, max_bytes: int, max_locs: int) -> Sitemap:
    """Parse one sitemap body (gzip detected by its magic bytes, not by name or media type).

    At most ``max_locs`` URLs are returned. Never raises: unreadable input is ``SitemapKind.UNKNOWN``.
    """
    truncated = False
    if body.startswith(GZIP_MAGIC):
        body, truncated = gunzip_capped(body, max_bytes)
    elif len(body) > max_bytes:
        body, truncated = body[:max_bytes], True
    head = body.lstrip()[:1]
    if head == b"<":
        sitemap = _parse_xml(body, max_locs)
    elif head:
        sitemap = _parse_text(body, max_locs)
    else:
        sitemap = Sitemap(SitemapKind.UNKNOWN, ())
    return Sitemap(sitemap.kind, sitemap.locs, sitemap.truncated or truncated)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(body: bytes, max_locs: int) -> Sitemap:
    kind = SitemapKind.UNKNOWN
    locs: list[str] = []
    truncated = False
    try:
        for event, element in iterparse(io.BytesIO(body), events=("start", "end")):
            name = _local(element.tag)
            if event == "start":
                if kind is SitemapKind.UNKNOWN and name in ("urlset", "sitemapindex"):
                    kind = SitemapKind(name)
                continue
            if name == "loc" and element.text and element.text.strip():
                locs.append(element.text.strip())
                if len(locs) >= max_locs:
                    truncated = True
                    break
            elif name in ("url", "sitemap"):
                element.clear()  # keep memory flat on big files
    except (ParseError, DefusedXmlException, ValueError) as exc:
        # Cut off at the size cap, or malformed: keep what came before the break.
        logger.info("sitemap parse stopped: %s", exc)
        truncated = True
    return Sitemap(kind, tuple(locs), truncated)


def _parse_text(body: bytes, max_locs: int) -> Sitemap:
    text = body.decode("utf-8", errors="replace")
    locs = [line.strip() for line in text.splitlines() if line.strip().startswith(("http://", "https://"))]
    if not locs:
        return Sitemap(SitemapKind.UNKNOWN, ())
    return Sitemap(SitemapKind.TEXT, tuple(locs[:max_locs]), len(locs) > max_locs)
