"""Rows to backlink documents: validation, self-links, duplicates within the file, skip reasons.

Runs synchronously (``import_backlinks`` runs it in a worker thread). Nothing here touches the store:
the result is a list of documents ready for one batched write, plus a tally of every row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.errors import InputError
from bot.imports.formats import FORMATS, ExportFormat, Kind, format_named
from bot.imports.reading import Layout, decode, locate, records, unpack
from bot.imports.values import parse_count, parse_date, parse_flag, parse_score
from bot.models import FetchErrorKind
from bot.net.policy import AddressPolicy
from bot.urls import FETCHABLE_SCHEMES, host_to_ascii, hostname, link_key, registrable_domain, scheme_of

# Why a row was skipped (docs/imports.md explains each); the summary counts them.
BLANK_ROW = "blank_row"
MALFORMED_ROW = "malformed_row"
MISSING_SOURCE = "missing_source"
INVALID_SOURCE_URL = "invalid_source_url"
REFUSED_SOURCE_ADDRESS = "refused_source_address"
MISSING_TARGET = "missing_target"
INVALID_TARGET_URL = "invalid_target_url"
REFUSED_TARGET_ADDRESS = "refused_target_address"
TARGET_OFF_SITE = "target_off_site"
SELF_LINK = "self_link"
LOST_IN_EXPORT = "lost_in_export"
INVALID_DOMAIN = "invalid_domain"

# Warnings: the row was kept but a cell could not be read (the value is left out).
UNREADABLE_DATE = "unreadable_date"
UNREADABLE_FLAG = "unreadable_flag"
UNREADABLE_NUMBER = "unreadable_number"
LONG_ANCHOR = "anchor_truncated"

# Rows listed per skip reason in the summary ("rows 4, 9, 12, ..."; "Latest links.csv:4" in a zip):
# enough to find them.
MAX_ROWS_LISTED = 10
# Anchor texts beyond this are cut: real anchors are a few words, a longer cell is page text.
MAX_ANCHOR_CHARS = 500
REL_FLAGS = ("nofollow", "sponsored", "ugc")

# A URL this plain passes AddressPolicy.vet_url by construction, so the (slow, about 30 us) full check is
# skipped for it: http(s); a host name of ASCII letters, digits and hyphens whose last label starts with
# a letter, so no URL parser can read it as an IPv4 address (those end in a number) or IPv6 literal; no
# user name or port; after the host only printable ASCII, starting with / ? or #. Host names are judged
# at connection time by the policy's resolver anyway. Every other URL gets the full check.
_PLAIN_URL = re.compile(
    r"(?i:https?)://((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:[/?#][!-~]*)?",
    re.ASCII,
)

# Path characters the URL Standard's parser leaves as they are in an http(s) URL (printable ASCII but
# "%", "\\" and the path percent-encode set: '"', "<", ">", "^", "`", "{", "}").
_PLAIN_PATH_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('%\\"<>^`{}')


@dataclass(slots=True)
class Tally:
    """What happened to each row read."""

    rows_read: int = 0
    duplicates_in_file: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_rows: dict[str, list[str]] = field(default_factory=dict)
    # Prefix of row references: "" for a file, "Latest links.csv:" for a table of a zip.
    table: str = ""
    warnings: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, row: int) -> None:
        self.skipped[reason] += 1
        listed = self.skipped_rows.setdefault(reason, [])
        if len(listed) < MAX_ROWS_LISTED:
            listed.append(f"{self.table}{row}")


@dataclass(frozen=True, slots=True)
class ImportContext:
    """Everything rows are judged and stamped with.

    ``target_site``: our home page (``--target-site``), the target of rows that carry none;
    ``our_domain``: its registrable domain (self-links and off-site targets are judged against it).
    """

    policy: AddressPolicy
    added_by: str
    added_at: str
    import_id: str
    target_site: str | None = None
    our_domain: str | None = None


@dataclass(slots=True)
class ParsedExport:
    """The documents to store (duplicates within the file already dropped) and the tally.

    ``tables``: ``(member name, format name, encoding, kind)`` per table read; ``notes``: sentences for
    the person importing (tables ignored, headers read by shape).
    """

    backlinks: list[dict[str, Any]] = field(default_factory=list)
    sites: list[dict[str, Any]] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    tables: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    is_zip: bool = False


def parse_export(
    data: bytes,
    *,
    filename: str,
    ctx: ImportContext,
    fmt: str | None = None,
    max_bytes: int,
    max_chars: int | None = None,
) -> ParsedExport:
    """Read every table of an export (a file or a zip of them) into documents.

    ``max_bytes`` caps the file (and a zip's members unpacked), ``max_chars`` the decoded text of all
    its tables together (None: no cap on the text). Raises :class:`InputError` for a fatal problem
    (nothing is imported then): an unknown ``fmt``, an unreadable or oversized file or text, a damaged
    zip, a format not recognised, required columns missing, a quote never closed, a table that needs
    ``--target-site`` without it, or a zip with no backlink table in it.
    """
    forced = None
    if fmt:
        forced = format_named(fmt)
        if forced is None:
            raise InputError(f"unknown format {fmt!r}; use one of: {', '.join(format_names())}")
    members, is_zip = unpack(data, filename, max_bytes=max_bytes)
    parsed = ParsedExport(is_zip=is_zip)
    seen_links: set[tuple[str, str]] = set()
    seen_sites: set[str] = set()
    chars = 0
    for member in members:
        try:
            text, encoding = decode(member.data, member.name)
        except InputError as exc:
            if not is_zip:
                raise
            # In Search Console's zip, tables we do not import (linking text, internal links) are
            # expected; an empty or non-text member is not a backlink table either.
            parsed.notes.append(f"ignored {member.name}: {_reason_ignored(exc, member.name)}")
            continue
        chars += len(text)
        if max_chars is not None and chars > max_chars:
            # The text, not the bytes that encode it: UTF-16 takes twice the bytes for the same rows.
            what = f"{filename}'s tables hold" if is_zip else f"{member.name} holds"
            raise InputError(
                f"{what} over {max_chars:,} characters of text; split the export into smaller files"
            )
        try:
            layout = locate(text, member.name, forced)
        except InputError as exc:
            if not is_zip:
                raise
            parsed.notes.append(f"ignored {member.name}: {_reason_ignored(exc, member.name)}")
            continue
        fmt_used = layout.format
        if fmt_used.kind is Kind.TARGETS:
            message = (
                f"{member.name} is {fmt_used.label}: it lists your own pages and how many links each has, "
                'not the pages that link to them; export "Latest links" or "More sample links" instead'
            )
            if not is_zip:
                raise InputError(message)
            parsed.notes.append(f"ignored {message}")
            continue
        if fmt_used.kind is Kind.PAGES and "target" not in layout.positions and ctx.target_site is None:
            raise InputError(
                f"{member.name} ({fmt_used.label}) names no target pages: give --target-site "
                "https://your-site.example so its links are tracked to your home page"
            )
        if layout.by_shape:
            parsed.notes.append(
                f"{member.name}: the header ({' | '.join(layout.header)}) is not one we know by name; "
                f"read as {fmt_used.label} from the shape of its columns"
            )
        parsed.tables.append((member.name, fmt_used.name, encoding, fmt_used.kind.value))
        parsed.tally.table = f"{member.name.rsplit('/', 1)[-1]}:" if is_zip else ""
        # Where each backlink came from; the import time is its added_at, and the imports table keeps the
        # summary under import_id. Flat fields: each nested object costs the store a copy per document.
        origin = {"import_id": ctx.import_id, "import_file": member.name, "import_format": fmt_used.name}
        if fmt_used.kind is Kind.SITES:
            _read_sites(text, layout, ctx, parsed, seen_sites, origin)
        else:
            _read_pages(text, layout, ctx, parsed, seen_links, origin)
    if not parsed.tables:
        raise InputError(
            f"{filename} holds no table of linking pages or linking sites"
            + (f" ({'; '.join(parsed.notes)})" if parsed.notes else "")
        )
    return parsed


def format_names() -> tuple[str, ...]:
    return tuple(f.name for f in FORMATS)


def _reason_ignored(exc: InputError, name: str) -> str:
    text = str(exc)
    if "not recognised" in text:
        return "not a backlink table"
    return text.removeprefix(f"{name}: ").removeprefix(f"{name} ")


# -- rows -----------------------------------------------------------------------------------------------


def _blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


def _row_shape_ok(cells: list[str], width: int) -> bool:
    """A row has the header's number of cells; extra cells are allowed only when empty (a trailing
    delimiter). Anything else means the columns have shifted, so no cell can be trusted."""
    count = len(cells)
    if count == width or not width:
        return True
    return count > width and not any(cell.strip() for cell in cells[width:])


_Vetted = tuple[str | None, str, str]  # (skip reason or None, link key, registrable domain)


def _vetter(policy: AddressPolicy, invalid: str, refused: str) -> Callable[[str], _Vetted]:
    """A URL check with the same rules as :func:`bot.backlinks.registry.validate_user_url` (http(s), the
    address
    policy, parsable), returning a skip reason instead of raising."""

    def vet(url: str) -> _Vetted:
        plain = _PLAIN_URL.fullmatch(url)
        if plain is not None:
            try:
                return None, plain_link_key(url, plain), registrable_domain(plain.group(1).lower())
            except ValueError:  # e.g. a punycode label that does not decode
                return invalid, "", ""
        if scheme_of(url) not in FETCHABLE_SCHEMES:
            return invalid, "", ""
        error = policy.vet_url(url)
        if error is not None:
            return (refused if error.kind is FetchErrorKind.BLOCKED_ADDRESS else invalid), "", ""
        try:
            key = link_key(url)
        except ValueError:
            return invalid, "", ""
        host = hostname(url)
        if not host:
            return invalid, "", ""
        return None, key, registrable_domain(host)

    return vet


def plain_link_key(url: str, plain: re.Match[str]) -> str:
    """:func:`bot.urls.link_key` of a URL matched by :data:`_PLAIN_URL`, without parsing it again (that
    parse is half the cost of an import). Only for the simple case, where the URL Standard's parser
    would change nothing but the case of scheme and host: no query string (whose ``utm_*`` parameters
    link_key drops), no punycode label (which the parser validates), and a path without ``%``, ``\\``,
    dot segments or characters the parser percent-encodes. Then the key is the lower-case scheme and
    host, then the path with the fragment dropped, ``/`` for an empty path, a trailing slash ignored.
    Anything else goes to link_key (so this raises ValueError as it does); tests/test_imports.py checks
    both agree."""
    tail = url[plain.end(1) :]
    path = tail.split("#", 1)[0] or "/"
    if (
        "?" in path
        or "xn--" in plain.group(1).lower()
        or not _PLAIN_PATH_CHARS.issuperset(path)
        or "/." in path
    ):
        return link_key(url)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return f"{url[: url.index(':')].lower()}://{plain.group(1).lower()}{path}"


def _read_pages(
    text: str,
    layout: Layout,
    ctx: ImportContext,
    parsed: ParsedExport,
    seen: set[tuple[str, str]],
    origin: dict[str, str],
) -> None:
    """Backlink documents from the rows of a table of linking pages (the hot loop of an import: it runs
    100,000 times for a big export, hence the locals)."""
    fmt: ExportFormat = layout.format
    positions = layout.positions
    tally = parsed.tally
    out = parsed.backlinks
    source_at = positions["source"]
    target_at = positions.get("target")
    anchor_at = positions.get("anchor")
    lost_at = positions.get("lost")
    dates = [(name, positions[name]) for name in ("first_seen", "last_seen") if name in positions]
    followable_at = positions.get("followable")
    flag_columns = [(flag, positions[flag]) for flag in REL_FLAGS if flag in positions]
    has_rel = bool(flag_columns) or followable_at is not None
    authority_columns = [(name, positions[name]) for name in fmt.authority if name in positions]
    order = layout.date_order
    width = layout.width
    vet_source = _vetter(ctx.policy, INVALID_SOURCE_URL, REFUSED_SOURCE_ADDRESS)
    vet_target = _vetter(ctx.policy, INVALID_TARGET_URL, REFUSED_TARGET_ADDRESS)
    targets: dict[str, _Vetted] = {}  # an export has few targets and many sources: check each target once
    our_domain = ctx.our_domain
    default_target = ctx.target_site or ""
    added_by, added_at = ctx.added_by, ctx.added_at
    skip = tally.skip
    rows_read = duplicates = 0

    for number, cells in records(text, layout, origin["import_file"]):
        rows_read += 1
        if len(cells) != width and not _row_shape_ok(cells, width):
            skip(BLANK_ROW if _blank(cells) else MALFORMED_ROW, number)
            continue
        if not width:  # a list without a header: one or two cells
            cells = [*cells, "", ""]
        source = cells[source_at].strip()
        if not source:
            skip(BLANK_ROW if _blank(cells) else MISSING_SOURCE, number)
            continue
        if lost_at is not None:
            lost = cells[lost_at].strip()
            if lost and parse_flag(lost) is not False:
                skip(LOST_IN_EXPORT, number)
                continue
        reason, source_key, source_domain = vet_source(source)
        if reason is not None:
            skip(reason, number)
            continue
        target = (cells[target_at].strip() if target_at is not None else "") or default_target
        if not target:
            skip(MISSING_TARGET, number)
            continue
        vetted = targets.get(target)
        if vetted is None:
            vetted = targets[target] = vet_target(target)
        reason, target_key, target_domain = vetted
        if reason is not None:
            skip(reason, number)
            continue
        if source_domain in (target_domain, our_domain):
            skip(SELF_LINK, number)
            continue
        if our_domain is not None and target_domain != our_domain:
            skip(TARGET_OFF_SITE, number)
            continue
        pair = (source_key, target_key)
        if pair in seen:
            duplicates += 1
            continue
        seen.add(pair)
        # Flat fields: the store copies and encodes every nested container per document, which is most
        # of the cost of writing 100,000 of them.
        doc: dict[str, Any] = {
            "source_url": source,
            "target_url": target,
            "source_key": source_key,
            "target_key": target_key,
            "added_by": added_by,
            "added_at": added_at,
            "referring_domain": source_domain,
            **origin,
        }
        if anchor_at is not None:
            anchor = cells[anchor_at].strip()
            if len(anchor) > MAX_ANCHOR_CHARS:
                anchor = anchor[:MAX_ANCHOR_CHARS]
                tally.warnings[LONG_ANCHOR] += 1
            doc["anchor"] = anchor
        if has_rel:
            doc["rel"] = _rel(cells, flag_columns, followable_at, tally)
        for name, index in dates:
            raw = cells[index].strip()
            if raw:
                day = parse_date(raw, order)
                if day is None:
                    tally.warnings[UNREADABLE_DATE] += 1
                else:
                    doc[name] = day
        if authority_columns:
            authority = _authority(cells, authority_columns, tally)
            if authority:
                doc["authority"] = authority
        out.append(doc)
    tally.rows_read += rows_read
    tally.duplicates_in_file += duplicates


def _rel(
    cells: list[str], flag_columns: list[tuple[str, int]], followable_at: int | None, tally: Tally
) -> list[str]:
    """The rel tokens the tool reported (sorted); a Moz ``Followable: No`` is ``nofollow``."""
    tokens = set()
    for flag, index in flag_columns:
        value = parse_flag(cells[index])
        if value is None:
            tally.warnings[UNREADABLE_FLAG] += 1
        elif value:
            tokens.add(flag)
    if followable_at is not None:
        value = parse_flag(cells[followable_at])
        if value is None:
            tally.warnings[UNREADABLE_FLAG] += 1
        elif value is False and cells[followable_at].strip():
            tokens.add("nofollow")
    return sorted(tokens)


def _authority(cells: list[str], columns: list[tuple[str, int]], tally: Tally) -> dict[str, int | float]:
    figures: dict[str, int | float] = {}
    for name, index in columns:
        raw = cells[index].strip()
        if not raw:
            continue
        value = parse_score(raw)
        if value is None:
            tally.warnings[UNREADABLE_NUMBER] += 1
        else:
            figures[name] = value
    return figures


# -- referring domains only (Search Console "Top linking sites") -----------------------------------------


def _read_sites(
    text: str,
    layout: Layout,
    ctx: ImportContext,
    parsed: ParsedExport,
    seen: set[str],
    origin: dict[str, str],
) -> None:
    positions = layout.positions
    tally = parsed.tally
    site_at = positions["site"]
    counts = [(name, positions[name]) for name in ("linking_pages", "target_pages") if name in positions]
    for number, cells in records(text, layout, origin["import_file"]):
        tally.rows_read += 1
        if not _row_shape_ok(cells, layout.width):
            tally.skip(BLANK_ROW if _blank(cells) else MALFORMED_ROW, number)
            continue
        raw = cells[site_at].strip() if site_at < len(cells) else ""
        if not raw:
            tally.skip(BLANK_ROW if _blank(cells) else MISSING_SOURCE, number)
            continue
        domain, reason = _site_domain(raw, ctx.policy)
        if reason is not None:
            tally.skip(reason, number)
            continue
        if domain == ctx.our_domain:
            tally.skip(SELF_LINK, number)
            continue
        if domain in seen:
            tally.duplicates_in_file += 1
            continue
        seen.add(domain)
        doc: dict[str, Any] = {"id": domain, "domain": domain, **origin, "imported_by": ctx.added_by}
        for name, index in counts:
            value = parse_count(cells[index]) if index < len(cells) else None
            if value is None and index < len(cells) and cells[index].strip():
                tally.warnings[UNREADABLE_NUMBER] += 1
            doc[name] = value
        parsed.sites.append(doc)


def _site_domain(raw: str, policy: AddressPolicy) -> tuple[str, str | None]:
    """The registrable domain of a "Site" cell (``example.com``, ``www.example.com`` or a URL)."""
    host = hostname(raw) if scheme_of(raw) in FETCHABLE_SCHEMES else raw.strip().rstrip("/").lower()
    try:
        host = host_to_ascii(host)
    except ValueError:
        return "", INVALID_DOMAIN
    if not host or any(ch in host for ch in " /@?#\\\"'<>=") or "." not in host.strip("[]"):
        return "", INVALID_DOMAIN
    error = policy.vet_url(f"http://{host}/")
    if error is not None:
        return "", REFUSED_SOURCE_ADDRESS if error.kind is FetchErrorKind.BLOCKED_ADDRESS else INVALID_DOMAIN
    return registrable_domain(host), None
