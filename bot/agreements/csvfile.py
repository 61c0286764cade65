"""Agreements as CSV: one row per promised link, Linkody's import columns first, then Linkpact's.

``linkpact agreement export FILE.csv``, ``/linkcheck partners export`` and ``linkpact agreement import
FILE.csv`` share this one layout (documented in ``docs/agreements-csv.md``):

- :func:`export_csv` writes it. Every cell goes through :func:`bot.linkcheck.report.neutralise_cell`, so a
  cell
  that a spreadsheet would run as a formula (``= + - @``, OWASP "CSV Injection") starts with ``'``.
- :func:`parse_csv` / :func:`read_csv` read it back, and also read a plain Linkody file (only Linkody's
  columns: each row becomes an agreement with one ``theirs`` link). Rows sharing an ``AGREEMENT ID``
  form one agreement. Problems are collected for the whole file and raised at once as a
  :class:`CsvImportError` naming each bad row: an import is all or nothing.
- :func:`validate_import` runs every parsed agreement through :meth:`AgreementService.validate` and
  reports its field errors by row too; :func:`import_csv` parses, validates and stores.

Linkody's columns, their order and value formats follow Linkody's help centre page "Importing links via
CSV" (``EXPECTED FOLLOW`` is ``yes``/``no``, ``EXPIRES`` is ``YYYY-MM-DD``, ``COST`` is ``999999.99``).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

from bot.agreements.model import (
    QUALIFICATION_FIELDS,
    Agreement,
    AgreementInput,
    AgreementInputError,
    AgreementKind,
    Direction,
    ExpectedRel,
    LinkInput,
    Priority,
    PromisedLink,
    Score,
    parse_priority,
    parse_score,
)
from bot.agreements.service import AgreementService
from bot.errors import InputError
from bot.linkcheck.report import FORMULA_PREFIXES, neutralise_cell
from bot.models import Placement
from bot.urls import FETCHABLE_SCHEMES, host_to_ascii, link_key, scheme_of, url_registrable_domain

# -- the layout ---------------------------------------------------------------------------------------

# Linkody's import columns, names and order exactly as its CSV import documentation gives them.
URL_FROM = "URL FROM"
TAGS = "TAGS"
NOTES = "NOTES"
EXPECTED_LANDING_PAGE_URL = "EXPECTED LANDING PAGE URL"
EXPECTED_FOLLOW = "EXPECTED FOLLOW"
EXPECTED_ANCHOR = "EXPECTED ANCHOR"
ADDED = "ADDED"
EXPIRES = "EXPIRES"
COST = "COST"
LINKODY_COLUMNS = (
    URL_FROM, TAGS, NOTES, EXPECTED_LANDING_PAGE_URL, EXPECTED_FOLLOW, EXPECTED_ANCHOR, ADDED, EXPIRES, COST,
)  # fmt: skip

# Linkpact's columns, after Linkody's (Linkody ignores columns it does not know).
AGREEMENT_ID = "AGREEMENT ID"
PARTNER = "PARTNER"
PARTNER_SITE = "PARTNER SITE"
KIND = "KIND"
STATE = "STATE"
DIRECTION = "DIRECTION"
EXPECTED_REL = "EXPECTED REL"
EXPECTED_PLACEMENT = "EXPECTED PLACEMENT"
DEADLINE = "DEADLINE"
OWNER = "OWNER"
CONTACT_NAME = "CONTACT NAME"
CONTACT_EMAIL = "CONTACT EMAIL"
CONTACT_SLACK = "CONTACT SLACK"
LINK_HEALTH = "LINK HEALTH"
LINK_REASON = "LINK REASON"
LAST_CHECKED = "LAST CHECKED"
PRIORITY = "PRIORITY"
# Each qualification criterion has a note column and a score column: RELEVANCE, RELEVANCE SCORE, ...
QUALIFICATION_COLUMNS = {
    name: (name.replace("_", " ").upper(), name.replace("_", " ").upper() + " SCORE")
    for name in QUALIFICATION_FIELDS
}
LINKPACT_COLUMNS = (
    AGREEMENT_ID, PARTNER, PARTNER_SITE, KIND, STATE, DIRECTION, EXPECTED_REL, EXPECTED_PLACEMENT,
    DEADLINE, OWNER, CONTACT_NAME, CONTACT_EMAIL, CONTACT_SLACK, LINK_HEALTH, LINK_REASON, LAST_CHECKED,
    *(column for pair in QUALIFICATION_COLUMNS.values() for column in pair), PRIORITY,
)  # fmt: skip
COLUMNS = LINKODY_COLUMNS + LINKPACT_COLUMNS
# A promised link needs both ends; Linkody itself requires only URL FROM, but a link without a target
# cannot be verified against anything.
REQUIRED_COLUMNS = (URL_FROM, EXPECTED_LANDING_PAGE_URL)
# Columns that describe the whole agreement: repeated on each of its rows, and they must agree.
AGREEMENT_COLUMNS = (
    PARTNER, PARTNER_SITE, KIND, DEADLINE, EXPIRES, COST, TAGS, NOTES, CONTACT_NAME, CONTACT_EMAIL,
    CONTACT_SLACK, *(column for pair in QUALIFICATION_COLUMNS.values() for column in pair), PRIORITY,
)  # fmt: skip

# Linkody's EXPECTED FOLLOW values ("Use 'yes' if the link must have [a follow rel]"); a few common
# spellings are accepted on import as well.
FOLLOW_YES, FOLLOW_NO = "yes", "no"
_FOLLOW_VALUES = {
    **dict.fromkeys(("yes", "y", "true", "1", "follow", "dofollow"), True),
    **dict.fromkeys(("no", "n", "false", "0", "nofollow"), False),
}
_REL_ALIASES = {"dofollow": ExpectedRel.FOLLOW.value}
TAG_SEPARATOR = ","  # Linkody: "Comma-separated list of tags"

# An agreement import is validated whole before anything is stored; this bounds the work one upload
# can cause. Real partnership programmes run to hundreds of agreements, not tens of thousands.
MAX_IMPORT_ROWS = 10_000
# The error message lists this many problems, then "and N more" (all are kept in ``problems``).
MAX_PROBLEMS_LISTED = 50
# The delimiter is sniffed from the header row among these (comma: RFC 4180; semicolon: spreadsheets in
# locales whose decimal mark is a comma; tab: copy-paste from a spreadsheet).
DELIMITERS = ",;\t"
DEFAULT_DELIMITER = ","
# UTF-8 by default; Excel's "CSV (Windows)" writes cp1252 without a marker, its "Unicode text" UTF-16.
FALLBACK_ENCODING = "cp1252"
# Bytes that start the file when it is saved as UTF-16 (either byte order).
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# Year-first dates, with - / or . between the parts, optionally followed by a time (kept: the date).
_YEAR_FIRST_DATE = re.compile(
    r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
# Day-first or month-first dates (31/12/2026, 12/31/2026): refused, 01/02/2026 is both.
_DAY_OR_MONTH_FIRST_DATE = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_LINK_ERROR_KEY = re.compile(r"link_(\d+)_(\w+)")
# A non-zero digit anywhere in COST ("150", "49.90 EUR", "$1,200") means the link was paid for.
_NON_ZERO_DIGIT = re.compile(r"[1-9]")

# AgreementService.validate's error keys, as the column a person fixes in the file.
_FIELD_COLUMNS = {
    "partner_name": PARTNER,
    "partner_site": PARTNER_SITE,
    "kind": KIND,
    "deadline": DEADLINE,
    "contact_email": CONTACT_EMAIL,
    "contact_slack": CONTACT_SLACK,
    "priority": PRIORITY,
    "links": URL_FROM,
    "source": URL_FROM,
    "target": EXPECTED_LANDING_PAGE_URL,
    "direction": DIRECTION,
    "rel": EXPECTED_REL,
    "placement": EXPECTED_PLACEMENT,
    **{f"{name}_score": score_column for name, (_, score_column) in QUALIFICATION_COLUMNS.items()},
}


# -- cells --------------------------------------------------------------------------------------------


def export_cell(value: object) -> str:
    """A cell as written: :func:`neutralise_cell`, and one more ``'`` in front of a value that already
    starts with ``'`` before a formula character, so :func:`unneutralise_cell` gives back exactly the
    value (``'=x`` is written ``''=x``)."""
    text = "" if value is None else str(value)
    cell = neutralise_cell(text)
    if cell == text and text.startswith("'") and text.lstrip("'").startswith(FORMULA_PREFIXES):
        return "'" + text
    return cell


def unneutralise_cell(cell: str) -> str:
    """The value of a cell written by :func:`export_cell`: one leading ``'`` before ``'*`` and a formula
    character (``= + - @``, tab, carriage return) is dropped; anything else is returned unchanged."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_PREFIXES):
        return cell[1:]
    return cell


def header_key(name: str) -> str:
    """How header names are compared: trimmed, case-folded, ``_`` as a space, runs of spaces as one."""
    return " ".join(name.replace("_", " ").split()).casefold()


# -- export -------------------------------------------------------------------------------------------


def export_csv(agreements: Iterable[Agreement], *, today: date) -> str:
    """The agreements as CSV text: a header row (:data:`COLUMNS`), then one row per promised link.

    ``today`` is the date the ``STATE`` column is derived for (:func:`bot.agreements.model.derive_state`).
    Dates are ISO 8601 (``YYYY-MM-DD``; ``LAST CHECKED`` is the stored UTC timestamp), quoting is the
    csv module's minimal quoting (RFC 4180), rows end in CRLF. An agreement without links still gets one
    row, with empty link cells, so no agreement is left out of an export. Every cell goes through
    :func:`export_cell` (formula injection, OWASP "CSV Injection").
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for agreement in agreements:
        shared = _agreement_cells(agreement, today)
        links: Sequence[PromisedLink | None] = agreement.links or (None,)
        for link in links:
            row = {**shared, **(_link_cells(link) if link is not None else {})}
            writer.writerow([export_cell(row.get(column, "")) for column in COLUMNS])
    return buffer.getvalue()


def export_csv_bytes(agreements: Iterable[Agreement], *, today: date) -> bytes:
    """:func:`export_csv` as UTF-8 with a byte-order mark: without the mark Excel opens UTF-8 CSV as
    cp1252 and garbles every non-ASCII character. :func:`parse_csv` strips the mark."""
    return export_csv(agreements, today=today).encode("utf-8-sig")


def _agreement_cells(agreement: Agreement, today: date) -> dict[str, object]:
    cells: dict[str, object] = {
        TAGS: TAG_SEPARATOR.join(agreement.tags),
        NOTES: agreement.notes,
        ADDED: _date_part(agreement.created_at),
        EXPIRES: agreement.deadline.isoformat(),
        COST: agreement.cost,
        AGREEMENT_ID: agreement.id,
        PARTNER: agreement.partner_name,
        PARTNER_SITE: agreement.partner_site,
        KIND: agreement.kind.value,
        STATE: agreement.state(today).value,
        DEADLINE: agreement.deadline.isoformat(),
        OWNER: agreement.owner,
        CONTACT_NAME: agreement.contact.name,
        CONTACT_EMAIL: agreement.contact.email,
        CONTACT_SLACK: agreement.contact.slack_user,
        PRIORITY: agreement.priority.value,
    }
    for name, (note_column, score_column) in QUALIFICATION_COLUMNS.items():
        score: Score = getattr(agreement.qualification, name)
        cells[note_column] = score.note
        cells[score_column] = "" if score.score is None else score.score
    return cells


def _link_cells(link: PromisedLink) -> dict[str, object]:
    return {
        URL_FROM: link.source_url,
        EXPECTED_LANDING_PAGE_URL: link.target_url,
        EXPECTED_FOLLOW: FOLLOW_YES if link.expected_rel is ExpectedRel.FOLLOW else FOLLOW_NO,
        EXPECTED_ANCHOR: link.expected_anchor or "",
        DIRECTION: link.direction.value,
        EXPECTED_REL: link.expected_rel.value,
        EXPECTED_PLACEMENT: link.expected_placement.value if link.expected_placement else "",
        LINK_HEALTH: link.health.value,
        LINK_REASON: link.reason,
        LAST_CHECKED: link.checked_at or "",
    }


def _date_part(timestamp: str) -> str:
    """``YYYY-MM-DD`` of a stored ISO timestamp; the text itself when it is not one."""
    try:
        return datetime.fromisoformat(timestamp).date().isoformat()
    except ValueError:
        return timestamp


# -- import -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvProblem:
    """One thing wrong in an imported file: the rows it concerns (header = row 1, data from row 2, as a
    spreadsheet numbers them), the column when known, and a message for a person."""

    rows: tuple[int, ...]
    message: str
    column: str = ""

    def __str__(self) -> str:
        where = ("row " if len(self.rows) == 1 else "rows ") + ", ".join(map(str, self.rows))
        if self.column:
            where += f", {self.column}"
        return f"{where}: {self.message}"


class CsvImportError(InputError):
    """The file cannot be imported; ``problems`` lists every bad row (nothing was imported)."""

    def __init__(self, problems: Sequence[CsvProblem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.rows))
        listed = [f"- {problem}" for problem in self.problems[:MAX_PROBLEMS_LISTED]]
        if len(self.problems) > MAX_PROBLEMS_LISTED:
            listed.append(f"- and {len(self.problems) - MAX_PROBLEMS_LISTED} more")
        count = len(self.problems)
        super().__init__(
            f"nothing was imported: the file has {count} problem{'s' if count != 1 else ''} "
            "(fix them and import it again):\n" + "\n".join(listed)
        )


@dataclass(frozen=True, slots=True)
class CsvAgreement:
    """An agreement read from the file and where it came from: ``rows[i]`` is the row number of the
    ``i``-th promised link (header = row 1)."""

    input: AgreementInput
    rows: tuple[int, ...]


def parse_csv(data: bytes | str, *, owner: str, today: date | None = None) -> list[AgreementInput]:
    """The agreements in an export of :func:`export_csv` or a plain Linkody import/export file.

    ``owner`` (a Slack user id or a CLI user name) owns every imported agreement: ``OWNER`` cells are
    informational and ignored. ``today`` (default: the UTC date) decides whether an ``EXPIRES`` date
    can serve as the deadline. Raises :class:`CsvImportError` (an :class:`InputError`) listing every bad
    row; see :func:`read_csv` for the rules and ``docs/agreements-csv.md`` for the layout.
    """
    return [item.input for item in read_csv(data, owner=owner, today=today)]


def read_csv(data: bytes | str, *, owner: str, today: date | None = None) -> list[CsvAgreement]:
    """:func:`parse_csv`, keeping each link's row number (for :func:`validate_import`'s messages).

    - Text: a UTF-8 byte-order mark is dropped; UTF-16 is read when its byte-order mark says so, else
      UTF-8, else cp1252. The delimiter (``,`` ``;`` or tab) is sniffed from the header row with
      :class:`csv.Sniffer`, comma when it cannot tell. Quoted cells may hold delimiters and newlines.
    - Header: names compared trimmed, case-insensitively, ``_`` as a space; unknown columns ignored;
      ``URL FROM`` and ``EXPECTED LANDING PAGE URL`` required. Blank rows are skipped.
    - Cells: the ``'`` that :func:`export_csv` put before a formula character is removed, then the cell
      is trimmed.
    - Grouping: rows with the same ``AGREEMENT ID`` are one agreement (its links in row order); a row
      without an id is an agreement of its own. Agreement columns (:data:`AGREEMENT_COLUMNS`) may be
      left empty on an agreement's later rows but must not differ.
    - Defaults for empty cells: ``DIRECTION`` theirs; ``PARTNER SITE`` the origin of the first
      ``theirs`` link's source page (else of the first ``ours`` link's target); ``PARTNER`` that site's
      registrable domain; ``KIND`` paid when ``COST`` has a non-zero digit, exchange when there are
      links in both directions, else editorial; ``DEADLINE`` the ``EXPIRES`` date when that is today or
      later, else empty (the service's default, 7 days); ``EXPECTED REL`` from ``EXPECTED FOLLOW``
      (yes: follow; no: sponsored for paid agreements, else nofollow), else empty (the service's
      default: sponsored for paid, else follow).
    - Dates: ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY.MM.DD``, optionally followed by a time (ISO 8601
      ``T`` or a space); day-first and month-first dates are refused as ambiguous.

    Checked here, each reported with its row: URLs (http(s), a host, parsable), dates, ``KIND``,
    ``DIRECTION``, ``EXPECTED REL``, ``EXPECTED FOLLOW``, ``EXPECTED PLACEMENT``, scores (1-5), and
    agreement columns that differ between an agreement's rows. Everything else (address policy, links
    to oneself, past deadlines, emails, Slack users) is :meth:`AgreementService.validate`'s: run
    :func:`validate_import` for it. Raises :class:`CsvImportError`.
    """
    today = today or datetime.now(UTC).date()
    header, records = _read_table(_decode(data))
    columns, problems = _column_index(header)
    if problems:
        raise CsvImportError(problems)
    groups: dict[str, list[_Row]] = {}
    for number, cells in records:
        row = _Row(number, cells, columns)
        agreement_id = row.get(AGREEMENT_ID)
        groups.setdefault(f"id:{agreement_id}" if agreement_id else f"row:{number}", []).append(row)
    parsed = [_agreement(rows, owner, today, problems) for rows in groups.values()]
    if problems:
        raise CsvImportError(problems)
    return [item for item in parsed if item is not None]


def validate_import(service: AgreementService, parsed: Sequence[CsvAgreement]) -> list[Agreement]:
    """Run :meth:`AgreementService.validate` on every parsed agreement; return the drafts (no ids yet),
    or raise :class:`CsvImportError` with each field error placed on its row and column."""
    drafts: list[Agreement] = []
    problems: list[CsvProblem] = []
    for item in parsed:
        try:
            drafts.append(service.validate(item.input, allow_past_deadline=True))
        except AgreementInputError as exc:
            problems.extend(_field_problem(item, key, message) for key, message in exc.errors.items())
    if problems:
        raise CsvImportError(problems)
    return drafts


async def import_csv(service: AgreementService, data: bytes | str, *, owner: str) -> list[Agreement]:
    """Parse, validate every agreement, then store them (in file order) and return them with their ids.

    All or nothing: nothing is stored when any row is bad (:class:`CsvImportError`), and the whole file
    is stored in one transaction. Deadlines already past are accepted (restoring an export of overdue
    agreements must work). An agreement that is already stored (:func:`agreement_key`: the same partner
    and the same promised links), or that the file gives twice, is refused with its rows and the stored
    agreement's id: re-importing an export into the database it came from would otherwise double every
    agreement without a word.
    """
    parsed = read_csv(data, owner=owner, today=service.today())
    drafts = validate_import(service, parsed)
    refuse_duplicates(parsed, drafts, await service.all())
    return await service.add_many(
        [item.input for item in parsed], action="imported", allow_past_deadline=True
    )


AgreementKey = tuple[str, frozenset[tuple[str, str, str]]]


def agreement_key(agreement: Agreement) -> AgreementKey:
    """What makes two agreements the same one, whatever their ids (ids are per database: ``12`` in one
    database is another agreement in the next): the partner's registrable domain and the set of promised
    links, each as (direction, source, target) compared by :func:`bot.urls.link_key`. So an export read
    back into the database it came from matches every agreement, even after its ids were cleared."""
    partner = url_registrable_domain(agreement.partner_site) or agreement.partner_site.strip().lower()
    return partner, frozenset(
        (link.direction.value, _comparable(link.source_url), _comparable(link.target_url))
        for link in agreement.links
    )


def _comparable(url: str) -> str:
    try:
        return link_key(url)
    except ValueError:
        return url.strip()


def refuse_duplicates(
    parsed: Sequence[CsvAgreement], drafts: Sequence[Agreement], stored: Iterable[Agreement]
) -> None:
    """Raise :class:`CsvImportError` naming the rows of each agreement in ``drafts`` (validated from
    ``parsed``, in the same order) that is already among ``stored`` or repeats an earlier one of the
    file (:func:`agreement_key`)."""
    known: dict[AgreementKey, Agreement] = {}
    for agreement in stored:
        known.setdefault(agreement_key(agreement), agreement)
    in_file: dict[AgreementKey, CsvAgreement] = {}
    problems: list[CsvProblem] = []
    for item, draft in zip(parsed, drafts, strict=True):
        key = agreement_key(draft)
        existing = known.get(key)
        if existing is not None:
            problems.append(
                CsvProblem(
                    item.rows,
                    f"this agreement is already stored as #{existing.id} ({existing.partner_name}: the same "
                    "partner and promised links); delete these rows, or change the stored agreement "
                    "instead of importing it again",
                )
            )
        elif key in in_file:
            first = in_file[key]
            problems.append(
                CsvProblem(
                    item.rows,
                    f"the same agreement (partner and promised links) as row"
                    f"{'s' if len(first.rows) > 1 else ''} {', '.join(map(str, first.rows))}; keep one",
                )
            )
        else:
            in_file[key] = item
    if problems:
        raise CsvImportError(problems)


def _field_problem(item: CsvAgreement, key: str, message: str) -> CsvProblem:
    match = _LINK_ERROR_KEY.fullmatch(key)
    if match and 1 <= int(match.group(1)) <= len(item.rows):
        return CsvProblem(
            (item.rows[int(match.group(1)) - 1],), message, _FIELD_COLUMNS.get(match.group(2), "")
        )
    return CsvProblem(item.rows, message, _FIELD_COLUMNS.get(key, ""))


# -- reading the table --------------------------------------------------------------------------------


def decode_csv_bytes(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read in (``utf-8-sig``, ``utf-16-le``, ``utf-16-be``,
    ``utf-8`` or ``cp1252``), the byte-order mark dropped.

    A byte-order mark decides (UTF-8 or UTF-16, either byte order); without one the bytes are UTF-8 when
    they decode as UTF-8, else cp1252 (Excel's "CSV (Windows)"). Also used by :mod:`bot.imports`.
    Raises :class:`CsvImportError` when the bytes are not text in the encoding chosen.
    """
    if data.startswith(codecs.BOM_UTF8):
        return _decode_as(data[len(codecs.BOM_UTF8) :], "utf-8"), "utf-8-sig"
    if data.startswith(_UTF16_BOMS):
        # The codec reads the byte order from the mark and drops it.
        order = "utf-16-le" if data.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"
        return _decode_as(data, "utf-16"), order
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode_as(data, FALLBACK_ENCODING), FALLBACK_ENCODING


def _decode(data: bytes | str) -> str:
    text = data.removeprefix("\ufeff") if isinstance(data, str) else decode_csv_bytes(data)[0]
    if "\x00" in text:
        raise CsvImportError(
            [CsvProblem((1,), "the file holds NUL characters: is it UTF-16 without a byte-order mark? "
                        "Save it as CSV UTF-8")]
        )  # fmt: skip
    return text


def _decode_as(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CsvImportError(
            [CsvProblem((1,), f"the file is not {encoding} text ({exc.reason} at byte {exc.start}); "
                        "save it as CSV UTF-8")]
        ) from exc  # fmt: skip


def _sniff_delimiter(text: str) -> str:
    """The delimiter of the header row. Only the header is sniffed: its cells are plain names, while
    data cells (notes with commas, anchors with quotes, neutralised ``'`` cells) mislead the sniffer."""
    header_line = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    return sniff_delimiter(header_line)


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of one header row among :data:`DELIMITERS` (:class:`csv.Sniffer`), comma when it
    cannot tell (a one-column header has none). Also used by :mod:`bot.imports`."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return DEFAULT_DELIMITER


def _read_table(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header row and the non-blank data rows with their row numbers, counted as a spreadsheet
    shows them: one per record (a quoted cell's newlines do not add rows), blank records included.
    A quote that is never closed, or a row the csv module cannot read, fails the whole file with its
    row (:class:`CsvRecords`): the rows after it would otherwise be lost without a word."""
    records_read = CsvRecords(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for cells in records_read:
            number += 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = cells
                records_read.width = len(cells)
                continue
            if len(records) >= MAX_IMPORT_ROWS:
                raise CsvImportError(
                    [CsvProblem((number,), f"the file has more than {MAX_IMPORT_ROWS} rows: split it")]
                )
            records.append((number, cells))
    except CsvRecordError as exc:
        raise CsvImportError([CsvProblem((number + 1,), exc.describe())]) from exc
    if header is None:
        raise CsvImportError([CsvProblem((1,), "the file is empty: it needs a header row")])
    return header, records


# Handed to the csv reader after the last line. Text with a NUL in it is refused before it is read, so
# a NUL in a cell means the sentinel was swallowed: a quoted cell was still open at the end of the file.
_END_OF_TEXT = "\x00\n"
_END_CELL = "\x00"


class CsvRecordError(ValueError):
    """A record the csv module cannot give back whole, so no row after it can be trusted.

    ``line``: the 1-based line of the file where the record starts; ``last_line``: where reading it
    stopped; ``kind``: :data:`UNCLOSED_QUOTE` (a quoted cell opens there and is never closed: the csv
    module would read every later line into that one cell), :data:`SWALLOWED_ROWS` (a quoted cell runs
    on over lines that are whole rows of the table, up to a later stray quote) or :data:`UNREADABLE`
    (the csv module's own error, in ``detail``).
    """

    UNCLOSED_QUOTE = "unclosed_quote"
    SWALLOWED_ROWS = "swallowed_rows"
    UNREADABLE = "unreadable"

    def __init__(self, kind: str, line: int, last_line: int, detail: str = "") -> None:
        self.kind = kind
        self.line = line
        self.last_line = last_line
        self.detail = detail
        super().__init__(self.describe())

    def describe(self) -> str:
        """What is wrong, for a person, with the line but not the row number (the caller counts rows)."""
        if self.kind == self.UNREADABLE:
            return f"line {self.line} cannot be read as CSV ({self.detail})"
        fix = 'close the quote, or write a quote inside a cell as two ("")'
        if self.kind == self.UNCLOSED_QUOTE:
            return (
                f'line {self.line} opens a quoted cell (") that is never closed, so lines {self.line}-'
                f"{self.last_line} (the rest of the file) would be read as one cell: {fix}"
            )
        return (
            f'line {self.line} opens a quoted cell (") that runs on to line {self.last_line}, over lines '
            f"that are whole rows of the table: a quote is not closed; {fix}"
        )


class CsvRecords:
    """The records of a CSV text, read with :func:`csv.reader` but never losing rows silently.

    The csv module reads a quoted cell that is never closed up to the end of the file (or to the next
    stray quote) as one cell, and the rows inside it vanish. So iterating raises
    :class:`CsvRecordError` (nothing may then be imported) for:

    - a quoted cell still open at the end of the text (detected exactly: see ``_END_OF_TEXT``);
    - once :attr:`width` (the header's cell count, 2 or more) is set, a cell spanning lines of which one
      holds ``width - 1`` delimiters: a whole row of the table inside a cell, swallowed by a stray quote;
    - anything the csv module refuses (a cell over its 131,072-character limit).

    ``lines``: the text's lines with their line ends (the text must hold no NUL character); the first is
    line ``first_line`` of the file. :attr:`line` is the line where the last record returned starts.
    """

    __slots__ = ("_base", "_delimiter", "_reader", "line", "width")

    def __init__(self, lines: Iterable[str], *, delimiter: str, first_line: int = 1, width: int = 0) -> None:
        self._reader = csv.reader(itertools.chain(lines, (_END_OF_TEXT,)), delimiter=delimiter)
        self._delimiter = delimiter
        self._base = first_line
        self.width = width
        self.line = first_line

    def __iter__(self) -> Iterator[list[str]]:
        reader = self._reader
        base = self._base
        while True:
            start = reader.line_num
            self.line = base + start
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last = base + reader.line_num - 1
                raise CsvRecordError(CsvRecordError.UNREADABLE, self.line, last, str(exc)) from exc
            if reader.line_num - start == 1:
                if len(cells) == 1 and cells[0] == _END_CELL:
                    return
                yield cells
                continue
            # The record spans lines: a quoted cell holds line breaks, legitimately or not.
            last = base + reader.line_num - 1
            if _END_CELL in cells[-1]:
                raise CsvRecordError(CsvRecordError.UNCLOSED_QUOTE, self.line, last - 1)
            if self.width > 1 and self._holds_a_row(cells):
                raise CsvRecordError(CsvRecordError.SWALLOWED_ROWS, self.line, last)
            yield cells

    def _holds_a_row(self, cells: list[str]) -> bool:
        needed = self.width - 1
        delimiter = self._delimiter
        return any(
            any(part.count(delimiter) >= needed for part in cell.splitlines()[1:])
            for cell in cells
            if "\n" in cell or "\r" in cell
        )


def _column_index(header: Sequence[str]) -> tuple[dict[str, int], list[CsvProblem]]:
    """Known column name -> cell index, and problems with the header (duplicates, required missing)."""
    known = {header_key(column): column for column in COLUMNS}
    index: dict[str, int] = {}
    problems: list[CsvProblem] = []
    for position, name in enumerate(header):
        column = known.get(header_key(name.removeprefix("\ufeff")))
        if column is None:
            continue  # unknown columns are ignored (other tools' exports carry many)
        if column in index:
            problems.append(CsvProblem((1,), f"the column {column} appears twice"))
        index.setdefault(column, position)
    missing = [column for column in REQUIRED_COLUMNS if column not in index]
    if missing:
        problems.append(
            CsvProblem(
                (1,),
                f"the header row has no {' and no '.join(missing)} column "
                f"(required: {', '.join(REQUIRED_COLUMNS)}; the first row must name the columns)",
            )
        )
    return index, problems


class _Row:
    """One data row: cells by column name, un-neutralised and trimmed."""

    __slots__ = ("_cells", "_columns", "number")

    def __init__(self, number: int, cells: list[str], columns: dict[str, int]) -> None:
        self.number = number
        self._cells = cells
        self._columns = columns

    def get(self, column: str) -> str:
        position = self._columns.get(column)
        if position is None or position >= len(self._cells):
            return ""
        return unneutralise_cell(self._cells[position]).strip()


# -- rows to agreements -------------------------------------------------------------------------------


def _agreement(rows: list[_Row], owner: str, today: date, problems: list[CsvProblem]) -> CsvAgreement | None:
    """The agreement of one group of rows; problems are appended (then the result is not used)."""
    before = len(problems)

    def report(row: _Row, column: str, message: str) -> None:
        problems.append(CsvProblem((row.number,), message, column))

    shared = _shared_cells(rows, report)
    cost = shared[COST]
    kind = ""
    if shared[KIND]:
        kind = re.sub(r"[\s-]+", "_", shared[KIND].lower())
        if kind not in {k.value for k in AgreementKind}:
            report(rows[0], KIND, f"{shared[KIND]!r} is not a kind (use {_choices(AgreementKind)})")
    links = [_link(row, report) for row in rows]
    if not kind:
        directions = {link[0].direction for link in links}
        if _NON_ZERO_DIGIT.search(cost):
            kind = AgreementKind.PAID.value
        elif {Direction.OURS.value, Direction.THEIRS.value} <= directions:
            kind = AgreementKind.EXCHANGE.value
        else:
            kind = AgreementKind.EDITORIAL.value
    link_inputs = tuple(
        LinkInput(
            source_url=item.source_url,
            target_url=item.target_url,
            direction=item.direction,
            anchor=item.anchor,
            rel=_rel(row, kind, report),
            placement=item.placement,
        )
        for row, (item, _) in zip(rows, links, strict=True)
    )
    deadline = ""
    if shared[DEADLINE]:
        deadline = _date(shared[DEADLINE], rows[0], DEADLINE, report)
    elif shared[EXPIRES]:
        expires = _date(shared[EXPIRES], rows[0], EXPIRES, report)
        # Linkody's EXPIRES ends a (paid) link's term; one already past cannot be a deadline.
        if expires and date.fromisoformat(expires) >= today:
            deadline = expires
    partner_site = shared[PARTNER_SITE]
    if partner_site:
        problem = _url_problem(partner_site)
        if problem:
            report(rows[0], PARTNER_SITE, problem)
    else:
        partner_site = _partner_site(link_inputs, [valid for _, valid in links])
    partner_name = shared[PARTNER] or (url_registrable_domain(partner_site) if partner_site else "")
    qualification: dict[str, tuple[str, str]] = {}
    for name, (note_column, score_column) in QUALIFICATION_COLUMNS.items():
        score_errors: dict[str, str] = {}
        parse_score(name, shared[score_column], score_errors)  # the service's own 1-5 rule
        for message in score_errors.values():
            report(rows[0], score_column, message)
        qualification[name] = (shared[note_column], shared[score_column])
    if parse_priority(shared[PRIORITY]) is None:
        report(rows[0], PRIORITY, f"{shared[PRIORITY]!r} is not a priority (use {_choices(Priority)})")
    if len(problems) > before:
        return None
    return CsvAgreement(
        AgreementInput(
            partner_name=partner_name,
            partner_site=partner_site,
            owner=owner,
            links=link_inputs,
            kind=kind,
            deadline=deadline,
            contact_name=shared[CONTACT_NAME],
            contact_email=shared[CONTACT_EMAIL],
            contact_slack=shared[CONTACT_SLACK],
            notes=shared[NOTES],
            qualification=qualification,
            tags=_tags(shared[TAGS]),
            cost=cost,
            priority=shared[PRIORITY],
        ),
        tuple(row.number for row in rows),
    )


_Reporter = Callable[[_Row, str, str], None]


def _shared_cells(rows: list[_Row], report: _Reporter) -> dict[str, str]:
    """Each agreement column's value: the first non-empty one; a different non-empty one is a problem."""
    values: dict[str, str] = {}
    for column in AGREEMENT_COLUMNS:
        first: tuple[_Row, str] | None = None
        for row in rows:
            value = row.get(column)
            if not value:
                continue
            if first is None:
                first = (row, value)
            elif _same_value(column, value, first[1]) is False:
                report(
                    row,
                    column,
                    f"{value!r} differs from {first[1]!r} on row {first[0].number}: the rows of one "
                    "AGREEMENT ID share the agreement's columns (leave the cell empty or make it equal)",
                )
        values[column] = first[1] if first else ""
    return values


def _same_value(column: str, a: str, b: str) -> bool:
    if column == TAGS:
        return _tags(a) == _tags(b)
    return a == b


@dataclass(frozen=True, slots=True)
class _LinkCells:
    source_url: str
    target_url: str
    direction: str
    anchor: str
    placement: str


def _link(row: _Row, report: _Reporter) -> tuple[_LinkCells, bool]:
    """A row's link cells and whether both URLs are usable (for deriving the partner site)."""
    valid = True
    for column in (URL_FROM, EXPECTED_LANDING_PAGE_URL):
        problem = _url_problem(row.get(column))
        if problem:
            report(row, column, problem)
            valid = False
    direction = row.get(DIRECTION).lower() or Direction.THEIRS.value
    if direction not in {d.value for d in Direction}:
        report(row, DIRECTION, f"{row.get(DIRECTION)!r} is not a direction (use {_choices(Direction)})")
    placement = row.get(EXPECTED_PLACEMENT).lower()
    if placement and placement not in {p.value for p in Placement}:
        report(
            row,
            EXPECTED_PLACEMENT,
            f"{row.get(EXPECTED_PLACEMENT)!r} is not a placement (use {_choices(Placement)})",
        )
    cells = _LinkCells(
        source_url=row.get(URL_FROM),
        target_url=row.get(EXPECTED_LANDING_PAGE_URL),
        direction=direction,
        anchor=row.get(EXPECTED_ANCHOR),
        placement=placement,
    )
    return cells, valid


def _rel(row: _Row, kind: str, report: _Reporter) -> str:
    """The expected rel from ``EXPECTED REL``, else from Linkody's ``EXPECTED FOLLOW``, else empty."""
    raw_follow = row.get(EXPECTED_FOLLOW)
    follow = _FOLLOW_VALUES.get(raw_follow.lower()) if raw_follow else None
    if raw_follow and follow is None:
        report(row, EXPECTED_FOLLOW, f"{raw_follow!r} is not yes or no")
    raw_rel = row.get(EXPECTED_REL)
    if raw_rel:
        rel = _REL_ALIASES.get(raw_rel.lower(), raw_rel.lower())
        if rel not in {r.value for r in ExpectedRel}:
            report(row, EXPECTED_REL, f"{raw_rel!r} is not a rel (use {_choices(ExpectedRel)})")
        elif follow is not None and (rel == ExpectedRel.FOLLOW.value) != follow:
            report(
                row,
                EXPECTED_REL,
                f"EXPECTED REL says {rel} but EXPECTED FOLLOW says {raw_follow}: make them agree",
            )
        return rel
    if follow is None:
        return ""
    if follow:
        return ExpectedRel.FOLLOW.value
    # Not followed: a paid link should say so with rel="sponsored" (Google Search Central, "Qualify your
    # outbound links to Google"); any other unfollowed link is expected to carry nofollow.
    return ExpectedRel.SPONSORED.value if kind == AgreementKind.PAID.value else ExpectedRel.NOFOLLOW.value


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL, or None. Address rules are the service's."""
    if not url:
        return "the cell is empty: give an http(s) URL"
    if scheme_of(url) not in FETCHABLE_SCHEMES:
        return f"{url!r} is not an http(s) URL"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
        if not parts.hostname:
            return f"{url!r} has no host"
        link_key(url)
    except ValueError as exc:
        return f"{url!r} is not a valid URL ({exc})"
    return None


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL already checked by :func:`_url_problem`."""
    parts = urlsplit(url)
    host = host_to_ascii(parts.hostname or "")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def _partner_site(links: Sequence[LinkInput], valid: Sequence[bool]) -> str:
    """The partner's site when the file does not give it: where their link sits (a ``theirs`` link's
    source page), else where our link points (an ``ours`` link's target)."""
    for link, ok in zip(links, valid, strict=True):
        if ok and link.direction == Direction.THEIRS.value:
            return _origin(link.source_url)
    for link, ok in zip(links, valid, strict=True):
        if ok and link.direction == Direction.OURS.value:
            return _origin(link.target_url)
    return ""


def _date(raw: str, row: _Row, column: str, report: _Reporter) -> str:
    """``raw`` as ``YYYY-MM-DD``, or ``""`` after reporting why it is not a date."""
    match = _YEAR_FIRST_DATE.fullmatch(raw)
    if match:
        try:
            return date(int(match.group(1)), int(match.group(3)), int(match.group(4))).isoformat()
        except ValueError as exc:
            report(row, column, f"{raw!r} is not a date ({exc})")
            return ""
    if _DAY_OR_MONTH_FIRST_DATE.fullmatch(raw):
        report(row, column, f"{raw!r} is ambiguous (day or month first?): write the date as YYYY-MM-DD")
    else:
        report(row, column, f"{raw!r} is not a date: write it as YYYY-MM-DD")
    return ""


def _tags(raw: str) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in raw.split(TAG_SEPARATOR) if tag.strip())


def _choices(values: Iterable[object]) -> str:
    return ", ".join(str(value) for value in values)
