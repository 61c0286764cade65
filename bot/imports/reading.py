"""From bytes to a table: archives, text encodings, the header row and the data rows.

- :func:`unpack` opens a zip (Search Console's CSV download holds several tables) and returns its CSV
  members, within the size cap (a zip bomb is refused, not inflated).
- :func:`decode` reads the text (byte-order mark, UTF-16 with or without one, UTF-8, cp1252) and refuses
  binary data.
- :func:`locate` finds the header row (after a preamble such as Moz's), its delimiter and its format, by
  name or, for a Search Console table in a language we do not know, by the shape of its columns.
- :func:`records` yields the data rows with their row numbers (quoted cells may hold delimiters and
  newlines); a quote never closed, or a row the csv module cannot read, fails the whole file.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from bot.agreements.csvfile import (
    CsvImportError,
    CsvRecordError,
    CsvRecords,
    decode_csv_bytes,
    header_key,
    sniff_delimiter,
)
from bot.errors import InputError
from bot.imports.formats import (
    GSC_LATEST_LINKS,
    GSC_LINKED_PAGES,
    GSC_LINKING_SITES,
    PLAIN_LIST,
    ExportFormat,
    detect,
    gsc_date_order,
)
from bot.imports.values import DateOrder, parse_count, parse_date

# Rows before the header that are searched for it: Moz writes about six lines of preamble.
MAX_PREAMBLE_LINES = 20
# Data rows looked at to tell a table's kind by its shape when its header is in an unknown language.
SHAPE_SAMPLE_ROWS = 20
# A zip from Search Console holds four or five tables; more members than this is not an export.
MAX_ZIP_MEMBERS = 50
MEMBER_SUFFIXES = (".csv", ".tsv", ".txt")
# Share of control characters (other than tab, CR, LF) above which the "text" is binary data.
MAX_CONTROL_SHARE = 0.01
# Bytes looked at to guess UTF-16 without a byte-order mark (every other byte NUL in ASCII-heavy text).
UTF16_PROBE_BYTES = 4096

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_EXCEL_SEP_LINE = re.compile(r"sep=(.)")
_URL_START = re.compile(r"https?://", re.IGNORECASE)
_DOMAIN_LIKE = re.compile(r"(?:www\.)?[^\s/:@]+\.[^\s/:@]+")


@dataclass(frozen=True, slots=True)
class Member:
    """One table to read: its name (the file, or ``archive.zip/member.csv``) and bytes."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Layout:
    """Where and how a table's data sits.

    ``offset``: index in the text where the header row (or, ``headerless``, the first data row) starts;
    ``first_row``: its row number (1 = the file's first line); ``positions``: field -> column index;
    ``width``: header cells; ``by_shape``: the header was not recognised by name.
    """

    format: ExportFormat
    delimiter: str
    offset: int
    first_row: int
    positions: dict[str, int]
    width: int
    date_order: DateOrder
    headerless: bool = False
    by_shape: bool = False
    header: tuple[str, ...] = ()


def unpack(data: bytes, name: str, *, max_bytes: int) -> tuple[list[Member], bool]:
    """The tables in ``data``: the CSV members of a zip, or the file itself. Returns ``(members,
    is_zip)``. Raises :class:`InputError` for a damaged, encrypted or oversized archive, an Excel
    workbook, or a zip without CSV files."""
    if not data.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return [Member(name, data)], False
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{name} is a damaged or truncated zip archive ({exc}); download it again") from exc
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        names = {info.filename for info in infos}
        if "[Content_Types].xml" in names or any(n.startswith("xl/") for n in names):
            raise InputError(f"{name} is an Excel workbook; export the table as CSV instead")
        tables = [
            info
            for info in infos
            if info.filename.lower().endswith(MEMBER_SUFFIXES)
            and not info.filename.startswith("__MACOSX/")
            and not PurePosixPath(info.filename).name.startswith(".")
        ]
        if not tables:
            raise InputError(f"{name} is a zip archive without a CSV file in it")
        if len(tables) > MAX_ZIP_MEMBERS:
            raise InputError(
                f"{name} holds {len(tables)} files; an export has a handful (limit {MAX_ZIP_MEMBERS})"
            )
        members = []
        total = 0
        for info in tables:
            if info.flag_bits & 0x1:
                raise InputError(f"{name}: {info.filename} is encrypted; export it again without a password")
            # file_size is what the archive claims; the read is bounded anyway, in case it lies.
            if total + info.file_size > max_bytes:
                raise _too_big(name, max_bytes, "unpacked")
            try:
                with archive.open(info) as handle:
                    content = handle.read(max_bytes - total + 1)
            # zlib.error: corrupt deflate data; RuntimeError: encrypted; NotImplementedError: a method
            # such as Deflate64 that Python cannot unpack.
            except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, RuntimeError,
                    NotImplementedError) as exc:  # fmt: skip
                raise InputError(
                    f"{name}: {info.filename} cannot be unpacked ({exc}); the archive is damaged or truncated"
                ) from exc
            total += len(content)
            if total > max_bytes:
                raise _too_big(name, max_bytes, "unpacked")
            members.append(Member(f"{name}/{info.filename}", content))
    return members, True


def _too_big(name: str, max_bytes: int, what: str) -> InputError:
    return InputError(f"{name} is over {max_bytes:,} bytes {what}; split the export into smaller files")


def decode(data: bytes, name: str) -> tuple[str, str]:
    """The text of a table and its encoding. Raises :class:`InputError` for an empty file or binary data."""
    if not data.strip(b" \t\r\n\x00"):
        raise InputError(f"{name} is empty")
    text, encoding = _decode_text(data, name)
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InputError(f"{name} is empty")
    if "\n" not in text and "\r" in text:
        text = text.replace("\r", "\n")  # old Mac line ends: every reader below splits at LF
    control = sum(1 for ch in text[:UTF16_PROBE_BYTES] if ch < " " and ch not in "\t\r\n")
    if "\x00" in text or control > MAX_CONTROL_SHARE * min(len(text), UTF16_PROBE_BYTES):
        raise InputError(f"{name} is not a text export (it holds binary data); export the table as CSV")
    return text, encoding


def _decode_text(data: bytes, name: str) -> tuple[str, str]:
    """:func:`bot.agreements.csvfile.decode_csv_bytes`, plus UTF-16 without a byte-order mark, which some
    tools write: in mostly-ASCII text every other byte is NUL."""
    probe = data[:UTF16_PROBE_BYTES]
    if len(probe) >= 2 and not probe.startswith((b"\xff\xfe", b"\xfe\xff")):
        even_nul = probe[0::2].count(0)
        odd_nul = probe[1::2].count(0)
        half = len(probe) // 2
        for nul, encoding in ((odd_nul, "utf-16-le"), (even_nul, "utf-16-be")):
            if nul > half * 0.6 and (even_nul if encoding == "utf-16-le" else odd_nul) < half * 0.1:
                try:
                    return data.decode(encoding), encoding
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"{name} is not {encoding} text ({exc.reason} at byte {exc.start})"
                    ) from exc
    try:
        return decode_csv_bytes(data)
    except CsvImportError as exc:
        raise InputError(f"{name}: {exc.problems[0].message if exc.problems else exc}") from exc


def locate(text: str, name: str, forced: ExportFormat | None = None) -> Layout:
    """Find the header row among the first :data:`MAX_PREAMBLE_LINES` lines and tell the format.

    With ``forced`` (``--format``) only that format is tried. A file whose first line is already an
    http(s) URL is a headerless list. A header no format names is read by its shape when it is a
    Search Console table (see :func:`_by_shape`). Raises :class:`InputError` naming the header seen.
    """
    offset = 0
    row = 0
    delimiter_hint: str | None = None
    seen: list[list[str]] = []
    for line in _first_lines(text):
        row += 1
        start, offset = offset, offset + len(line)
        stripped = line.strip("\r\n")
        if not stripped.strip():
            continue
        if row == 1 and (sep := _EXCEL_SEP_LINE.fullmatch(stripped.strip())):
            delimiter_hint = sep.group(1)  # Excel's "sep=;" line names the delimiter
            continue
        delimiter = delimiter_hint or sniff_delimiter(stripped)
        cells = _split(stripped, delimiter)
        seen.append(cells)
        keys = [header_key(cell.removeprefix("\ufeff")) for cell in cells]
        if len(seen) == 1 and _URL_START.match(cells[0].strip()) and forced in (None, PLAIN_LIST):
            # The first line is already data: a list of URLs without a header.
            positions = {"source": 0, "target": 1} if len(cells) > 1 else {"source": 0}
            return Layout(PLAIN_LIST, delimiter, start, row, positions, 0, "mdy", headerless=True)
        layout = _named(keys, forced)
        if layout is not None:
            fmt, positions = layout
            order = gsc_date_order(keys) if fmt.name.startswith("gsc-") else "mdy"
            return Layout(fmt, delimiter, offset, row, positions, len(cells), order, header=tuple(cells))
        if len(seen) == 1 and forced is None:
            shaped = _by_shape(text, offset, delimiter, cells, row)
            if shaped is not None:
                return shaped
    shown = " | ".join(seen[0][:12]) if seen else ""
    if forced is not None:
        raise InputError(
            f"{name} does not look like a {forced.label} export: no header row with the columns it needs "
            f"({', '.join(forced.required)}) was found in its first {MAX_PREAMBLE_LINES} lines"
            + (f"; the first row is: {shown}" if shown else "")
        )
    raise InputError(
        f"{name}: the format is not recognised (first row: {shown}). Linkpact reads Search Console, "
        "Ahrefs, Semrush, Moz and Majestic backlink exports and plain lists of URLs; name the format "
        "with --format if it is one of them"
    )


def _named(keys: list[str], forced: ExportFormat | None) -> tuple[ExportFormat, dict[str, int]] | None:
    if forced is None:
        return detect(keys)
    positions = forced.resolve(keys)
    return None if positions is None else (forced, positions)


def _first_lines(text: str) -> Iterator[str]:
    """The first lines of ``text`` with their line ends (so offsets add up), without splitting it all."""
    start = 0
    for _ in range(MAX_PREAMBLE_LINES):
        if start >= len(text):
            return
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [""])
    except csv.Error:
        return line.split(delimiter)


def _by_shape(text: str, offset: int, delimiter: str, header: list[str], row: int) -> Layout | None:
    """A Search Console table whose header is in a language we do not list, told by its data:

    - two columns, a URL then a date: "Latest links";
    - one column of URLs: "More sample links" (read as a list of linking pages);
    - three columns, a domain then two counts: "Top linking sites";
    - three columns, a URL then two counts: "Top linked pages".
    """
    width = len(header)
    if width not in (1, 2, 3) or any(_URL_START.match(cell.strip()) for cell in header):
        return None
    sample = []
    reader = csv.reader(io.StringIO(text[offset : offset + 64 * 1024], newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                sample.append([cell.strip() for cell in cells])
            if len(sample) >= SHAPE_SAMPLE_ROWS:
                break
    except csv.Error:
        pass
    if not sample or any(len(cells) != width for cells in sample[:-1]):
        return None
    rows = sample[:-1] if len(sample) > 1 else sample  # the last sampled row may be cut short

    def all_of(test: Callable[[str], bool], column: int) -> bool:
        return all(test(cells[column]) for cells in rows)

    def is_url(cell: str) -> bool:
        return bool(_URL_START.match(cell))

    def is_count(cell: str) -> bool:
        return parse_count(cell) is not None

    def is_date(cell: str) -> bool:
        return parse_date(cell, "dmy") is not None

    def is_domain(cell: str) -> bool:
        return bool(_DOMAIN_LIKE.fullmatch(cell))

    def layout(fmt: ExportFormat, positions: dict[str, int]) -> Layout:
        return Layout(
            fmt, delimiter, offset, row, positions, width, "dmy", by_shape=True, header=tuple(header)
        )

    if width == 1 and all_of(is_url, 0):
        return layout(PLAIN_LIST, {"source": 0})
    if width == 2 and all_of(is_url, 0) and all_of(is_date, 1):
        return layout(GSC_LATEST_LINKS, {"source": 0, "last_seen": 1})
    if width == 3 and all_of(is_count, 1) and all_of(is_count, 2):
        if all_of(is_domain, 0):
            return layout(GSC_LINKING_SITES, {"site": 0, "linking_pages": 1, "target_pages": 2})
        if all_of(is_url, 0):
            return layout(GSC_LINKED_PAGES, {"target": 0, "incoming_links": 1, "linking_sites": 2})
    return None


def records(text: str, layout: Layout, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells)`` for each data row after the header. Row numbers count records as a
    spreadsheet shows them, the file's first line being row 1.

    Raises :class:`InputError` naming the row and line (and nothing may be imported then) for a quoted
    cell that is never closed, one that runs on over whole rows of the table, or a row the csv module
    cannot read (:class:`bot.agreements.csvfile.CsvRecords`): the rows after it would otherwise be lost
    or misread without a word.
    """
    first_line = layout.first_row + (0 if layout.headerless else 1)
    reader = CsvRecords(
        _lines(text, layout.offset), delimiter=layout.delimiter, first_line=first_line, width=layout.width
    )
    number = layout.first_row - (1 if layout.headerless else 0)
    try:
        for cells in reader:
            number += 1
            yield number, cells
    except CsvRecordError as exc:
        raise InputError(f"{name}: row {number + 1}: {exc.describe()}. Nothing was imported") from exc


def _lines(text: str, start: int) -> Iterator[str]:
    """The lines of ``text`` from ``start``, with their ends, split at LF only (a quoted cell may hold
    other line breaks). Cheaper than ``io.StringIO``, which copies the text into a 4-byte-per-character
    buffer (90 MB for a 100,000-row export)."""
    find = text.find
    end_of_text = len(text)
    while start < end_of_text:
        end = find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1
