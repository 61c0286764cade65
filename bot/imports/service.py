"""Import a backlink export: parse it off the event loop, store it in one write, summarise.

:func:`import_backlinks` is the one entry point for every front end (``linkpact import``, and the Slack
file import). All or nothing: a fatal problem raises :class:`InputError` before anything is written, and
everything new is written in one :meth:`Store.transact` (TinyDB rewrites its whole file per write, so
100,000 rows are one write, not 100,000). Imported backlinks are plain tracked backlinks
(:mod:`bot.backlinks.registry`): the next recheck verifies them like any other.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.backlinks.registry import BACKLINKS_TABLE, refresh_link_keys, validate_user_url
from bot.errors import InputError
from bot.imports import parsing
from bot.imports.formats import FORMATS_BY_NAME
from bot.imports.parsing import ImportContext, ParsedExport, parse_export
from bot.store import Tx, new_doc_id
from bot.urls import url_registrable_domain

if TYPE_CHECKING:
    from bot.engine import Engine

# The cap that matters is on the text, not on the bytes that encode it: Ahrefs' default UTF-16 takes two
# bytes a character, so 100,000 backlinks with Ahrefs' full column set are about 58 MB on disk but 29
# million characters. 50 million characters (all tables of a zip together) takes that with room to spare
# and bounds the parse: rows, cells and memory grow with the text.
MAX_IMPORT_CHARS = 50_000_000
# The largest file read (bytes, and the same again unpacked from a zip): a text at the character cap in
# UTF-16 fits. The CLI reads at most this much (docs/imports.md, "Reading rules").
MAX_IMPORT_FILE_BYTES = 100_000_000
# The largest file a front end that downloads it (Slack) fetches, in bytes as sent: a download holds a
# worker and a connection for its whole length, so it keeps the lower cap (docs/slack.md). A larger
# export is imported with `linkpact import`.
MAX_IMPORT_BYTES = 50_000_000
# Referring domains known only from Search Console's "Top linking sites" (no pages): see docs/imports.md.
LINKING_SITES_TABLE = "linking_sites"
# One document per import that wrote something: the summary, for an audit of where backlinks came from.
IMPORTS_TABLE = "imports"

# A phrase per skip reason, for people (the JSON keeps the codes).
REASON_LABELS: dict[str, str] = {
    parsing.BLANK_ROW: "blank rows",
    parsing.MALFORMED_ROW: "malformed rows (wrong number of cells, or unreadable CSV)",
    parsing.MISSING_SOURCE: "rows without a linking page",
    parsing.INVALID_SOURCE_URL: "linking pages that are not http(s) URLs",
    parsing.REFUSED_SOURCE_ADDRESS: "linking pages on private or local addresses",
    parsing.MISSING_TARGET: "rows without a target",
    parsing.INVALID_TARGET_URL: "targets that are not http(s) URLs",
    parsing.REFUSED_TARGET_ADDRESS: "targets on private or local addresses",
    parsing.TARGET_OFF_SITE: "targets not on --target-site",
    parsing.SELF_LINK: "self-links (linking page on the target's own site)",
    parsing.LOST_IN_EXPORT: "links the tool reports as lost",
    parsing.INVALID_DOMAIN: "sites that are not domain names",
}
WARNING_LABELS: dict[str, str] = {
    parsing.UNREADABLE_DATE: "unreadable dates",
    parsing.UNREADABLE_FLAG: "unreadable nofollow/ugc/sponsored flags",
    parsing.UNREADABLE_NUMBER: "unreadable numbers",
    parsing.LONG_ANCHOR: "anchors cut to 500 characters",
}


@dataclass(frozen=True, slots=True)
class ImportedTable:
    """One table read: ``name`` (the file, or ``archive.zip/member.csv``), ``format`` (a
    :data:`bot.imports.formats.FORMATS` name), ``encoding``, ``kind`` (``pages`` or ``sites``)."""

    name: str
    format: str
    encoding: str
    kind: str


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import did. Every row read is counted once:
    ``rows_read == new_backlinks + linking_sites + duplicates_in_file + duplicates_tracked + skipped_total``.

    - ``format``: the table's format, or ``zip`` for an archive (``tables`` has each member's);
      ``encoding``: the text encoding(s) read.
    - ``new_backlinks``: backlinks now tracked; ``linking_sites``: new referring-domain-only records
      (Search Console "Top linking sites"); ``imported`` is their sum.
    - ``duplicates_in_file``: rows repeating an earlier row (same source and target by
      :func:`bot.urls.link_key`); ``duplicates_tracked``: rows already tracked before this import (a linking
      site already known has its counts refreshed and is counted here).
    - ``skipped``: reason code -> rows (:data:`REASON_LABELS`); ``skipped_rows``: the first rows of each
      (``"4"``, or ``"Latest links.csv:4"`` in a zip; the file's first line is row 1); ``warnings``:
      cells left out of rows that were kept.
    - ``referring_domains``: distinct referring domains among the rows kept; ``new_referring_domains``:
      those not seen among tracked backlinks (or linking sites) before the import.
    - ``written``: whether the database was written (False when nothing was new).
    """

    import_id: str
    filename: str
    format: str
    encoding: str
    imported_at: str
    added_by: str
    target_site: str | None
    rows_read: int
    new_backlinks: int
    linking_sites: int
    duplicates_in_file: int
    duplicates_tracked: int
    skipped: Mapping[str, int]
    skipped_rows: Mapping[str, tuple[str, ...]]
    warnings: Mapping[str, int]
    referring_domains: int
    new_referring_domains: int
    tables: tuple[ImportedTable, ...] = ()
    notes: tuple[str, ...] = ()
    written: bool = False
    new_domains_sample: tuple[str, ...] = ()

    @property
    def imported(self) -> int:
        return self.new_backlinks + self.linking_sites

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON values (``docs/imports.md`` shows an example)."""
        return {
            "import_id": self.import_id,
            "filename": self.filename,
            "format": self.format,
            "encoding": self.encoding,
            "imported_at": self.imported_at,
            "added_by": self.added_by,
            "target_site": self.target_site,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "new_backlinks": self.new_backlinks,
            "linking_sites": self.linking_sites,
            "duplicates": {"in_file": self.duplicates_in_file, "already_tracked": self.duplicates_tracked},
            "skipped": dict(self.skipped),
            "skipped_total": self.skipped_total,
            "skipped_rows": {reason: list(rows) for reason, rows in self.skipped_rows.items()},
            "warnings": dict(self.warnings),
            "referring_domains": self.referring_domains,
            "new_referring_domains": self.new_referring_domains,
            "new_referring_domains_sample": list(self.new_domains_sample),
            "tables": [
                {"name": t.name, "format": t.format, "encoding": t.encoding, "kind": t.kind}
                for t in self.tables
            ],
            "notes": list(self.notes),
            "written": self.written,
        }


# New referring domains named in the summary (the count covers them all).
NEW_DOMAINS_SAMPLE = 20


async def import_backlinks(
    engine: Engine,
    data: bytes,
    *,
    filename: str,
    target_site: str | None = None,
    fmt: str | None = None,
    added_by: str,
    max_bytes: int = MAX_IMPORT_FILE_BYTES,
    max_chars: int = MAX_IMPORT_CHARS,
) -> ImportSummary:
    """Import a backlink export (the bytes of a file or a zip of CSV files) and return what happened.

    ``filename`` names the file in messages and in each backlink's ``import_file``; ``target_site`` (an
    http(s) URL, ``--target-site``) is the target of rows that carry none (its home page) and the site
    self-links and off-site targets are judged against; ``fmt`` forces a format (a name from
    ``bot.imports.formats.FORMATS``); ``added_by`` is stored on each backlink (a Slack user id, or
    ``cli:<user>``). Parsing runs in a worker thread so the event loop stays responsive; the store
    write runs on the store's own worker.

    Raises :class:`InputError` (nothing written) when the file is over ``max_bytes`` (bytes, also
    unpacked from a zip) or its text over ``max_chars`` (characters after decoding, all tables of a zip
    together), empty, binary, a damaged zip, of an unknown format, lacks required columns, holds a quote
    that is never closed, needs ``target_site`` and has none, or when ``target_site``/``fmt`` is
    invalid. Raises :class:`bot.store.StorageError` when the database
    cannot be written (nothing written either). Formats and rules: ``docs/imports.md``.
    """
    if len(data) > max_bytes:
        raise InputError(f"{filename} is {len(data):,} bytes; the limit is {max_bytes:,}: split the export")
    home, our_domain = _target_site(engine, target_site)
    ctx = ImportContext(
        policy=engine.policy,
        added_by=added_by,
        added_at=engine.now().isoformat(timespec="seconds"),
        import_id=new_doc_id(),
        target_site=home,
        our_domain=our_domain,
    )
    with _gc_paused():
        parsed = await asyncio.to_thread(
            parse_export, data, filename=filename, ctx=ctx, fmt=fmt, max_bytes=max_bytes, max_chars=max_chars
        )
        return await engine.store.transact(lambda tx: _store(tx, parsed, ctx, filename))


class _GcPause:
    """Automatic garbage collection off while any import runs (a count, so overlapping imports nest).

    An import of 100,000 rows creates about a million container objects; each full collection then
    walks all of them while holding the GIL, 100-200 ms at a time on the benchmark machine, and the
    event loop (answering /linkcheck) stalls for that long, several times per import. Reference
    counting still frees everything that is not in a cycle; cycles wait until the import ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = True

    def enter(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1

    def exit(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._was_enabled:
                gc.enable()


_GC_PAUSE = _GcPause()


@contextmanager
def _gc_paused() -> Iterator[None]:
    _GC_PAUSE.enter()
    try:
        yield
    finally:
        _GC_PAUSE.exit()


def _target_site(engine: Engine, target_site: str | None) -> tuple[str | None, str | None]:
    """Our home page and its registrable domain from ``--target-site`` (any page of the site will do)."""
    if target_site is None or not target_site.strip():
        return None, None
    url = validate_user_url(target_site, engine.policy, what="--target-site URL")
    parts = urlsplit(url)
    home = f"{parts.scheme.lower()}://{parts.netloc.lower()}/"
    return home, url_registrable_domain(home)


def _store(tx: Tx, parsed: ParsedExport, ctx: ImportContext, filename: str) -> ImportSummary:
    """The one write: new backlinks, new or refreshed linking sites, and the import's record.

    Runs inside the transaction, so the check against what is tracked and the insert see the same data
    (two imports of the same file at once store each backlink once).
    """
    refresh_link_keys(tx)  # stored keys made by an older link_key would not match the fresh ones
    tracked = tx.find(BACKLINKS_TABLE)
    keys = {(doc.get("source_key"), doc.get("target_key")) for doc in tracked}
    known_domains = {
        doc.get("referring_domain") or url_registrable_domain(str(doc.get("source_url", "")))
        for doc in tracked
    }
    known_sites = {doc["id"]: doc for doc in tx.find(LINKING_SITES_TABLE)}
    known_domains.update(known_sites)
    del tracked  # the copies are large for a big database; drop them before inserting

    fresh = [doc for doc in parsed.backlinks if (doc["source_key"], doc["target_key"]) not in keys]
    duplicates_tracked = len(parsed.backlinks) - len(fresh)
    new_domains = {doc["referring_domain"] for doc in fresh} - known_domains
    new_sites = refreshed = 0
    for site in parsed.sites:
        old = known_sites.get(site["id"])
        if old is None:
            tx.insert(LINKING_SITES_TABLE, {**site, "first_imported_at": ctx.added_at})
            new_sites += 1
            if site["id"] not in known_domains:
                new_domains.add(site["id"])
            continue
        duplicates_tracked += 1
        changes = {
            name: site[name] for name in ("linking_pages", "target_pages") if site.get(name) != old.get(name)
        }
        if changes:
            tx.update(LINKING_SITES_TABLE, site["id"], {**changes, "import_id": site["import_id"]})
            refreshed += 1
    if fresh:
        tx.insert_many(BACKLINKS_TABLE, fresh)

    tally = parsed.tally
    tables = tuple(ImportedTable(*table) for table in parsed.tables)
    formats = sorted({t.format for t in tables})
    summary = ImportSummary(
        import_id=ctx.import_id,
        filename=filename,
        format="zip" if parsed.is_zip else formats[0],
        encoding=", ".join(sorted({t.encoding for t in tables})),
        imported_at=ctx.added_at,
        added_by=ctx.added_by,
        target_site=ctx.target_site,
        rows_read=tally.rows_read,
        new_backlinks=len(fresh),
        linking_sites=new_sites,
        duplicates_in_file=tally.duplicates_in_file,
        duplicates_tracked=duplicates_tracked,
        skipped=dict(sorted(tally.skipped.items())),
        skipped_rows={reason: tuple(rows) for reason, rows in sorted(tally.skipped_rows.items())},
        warnings=dict(sorted(tally.warnings.items())),
        referring_domains=len(
            {doc["referring_domain"] for doc in parsed.backlinks} | {s["id"] for s in parsed.sites}
        ),
        new_referring_domains=len(new_domains),
        tables=tables,
        notes=tuple(parsed.notes),
        written=bool(fresh or new_sites or refreshed),
        new_domains_sample=tuple(sorted(new_domains)[:NEW_DOMAINS_SAMPLE]),
    )
    if summary.written:
        tx.insert(IMPORTS_TABLE, {"id": ctx.import_id, **summary.to_json()})
    return summary


def format_label(name: str) -> str:
    fmt = FORMATS_BY_NAME.get(name)
    return fmt.label if fmt else "zip archive" if name == "zip" else name


def render_import_summary(summary: ImportSummary) -> str:
    """The summary as plain text lines for a terminal or a Slack message (no markup)."""
    what = f"{format_label(summary.format)} ({summary.encoding})"
    read = "row" if summary.rows_read == 1 else "rows"
    lines = [f"{summary.filename}: {what}, {summary.rows_read:,} {read} read"]
    if summary.format == "zip":
        lines.extend(
            f"  read {t.name.rsplit('/', 1)[-1]} as {format_label(t.format)}" for t in summary.tables
        )
    lines.append(
        f"  new backlinks: {summary.new_backlinks:,}; new referring domains: "
        f"{summary.new_referring_domains:,} (of {summary.referring_domains:,} in the file)"
    )
    if summary.linking_sites or any(t.kind == "sites" for t in summary.tables):
        lines.append(f"  new linking sites (domains only, the table has no pages): {summary.linking_sites:,}")
    if summary.duplicates_tracked or summary.duplicates_in_file:
        lines.append(
            f"  already tracked: {summary.duplicates_tracked:,}; "
            f"repeated in the file: {summary.duplicates_in_file:,}"
        )
    if summary.skipped:
        lines.append(
            f"  skipped: {summary.skipped_total:,} {'row' if summary.skipped_total == 1 else 'rows'}"
        )
        for reason, count in summary.skipped.items():
            rows = summary.skipped_rows.get(reason, ())
            shown = ", ".join(map(str, rows)) + (", ..." if count > len(rows) else "")
            lines.append(f"    {count:,} {REASON_LABELS.get(reason, reason)} (rows {shown})")
    if summary.warnings:
        kept = "; ".join(f"{n:,} {WARNING_LABELS.get(code, code)}" for code, n in summary.warnings.items())
        lines.append(f"  kept, with cells left out: {kept}")
    lines.extend(f"  note: {note}" for note in summary.notes)
    if summary.new_backlinks:
        lines.append("  the next recheck verifies the new backlinks (run it now: linkpact recheck)")
    elif not summary.written:
        lines.append("  nothing new: the database was not written")
    return "\n".join(lines) + "\n"
