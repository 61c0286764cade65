"""Cell values as backlink tools write them: flags, counts, authority scores and dates.

Every parser takes the raw cell text and returns ``None`` when it cannot read it (the caller counts a
warning and keeps the row): a backlink is still a backlink when its "first seen" date is odd.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Literal

DateOrder = Literal["mdy", "dmy"]

# Flags: Ahrefs and Semrush write true/false, Moz Yes/No, Majestic 1 or + for a set flag and an empty
# cell or 0 for a clear one.
_TRUE = frozenset({"true", "yes", "y", "1", "+", "x", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "-", "", "f"})

# Thousands separators: "1,240" (en), "1.240" (de, es, it, nl, pt), "1 240" / "1\u202f240" (fr), "1'240"
# (de-CH). Search Console formats counts for the interface language.
_GROUPED = re.compile(r"\d{1,3}(?:([,.'\u00a0\u202f ])\d{3})(?:\1\d{3})*")
_SPACES = "\u00a0\u202f\u2009 "
_DECIMAL_COMMA = re.compile(r"\d+,\d+")

_YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?")
_YEAR_LAST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:[T ,].*)?")
_JAPANESE = re.compile(r"(\d{4})年\s*(\d{1,2})月\s*(\d{1,2})日.*")
# Unix time in seconds (Semrush's API form): 2001-09-09 onwards, 10 digits.
_EPOCH = re.compile(r"\d{10}")
_WORD_OR_NUMBER = re.compile(r"\d+|[^\W\d_]+")
# Words that sit between the parts of a written date: "15 de septiembre de 2026", "the 15th of".
_DATE_FILLERS = frozenset({"de", "del", "of", "the", "st", "nd", "rd", "th", "er", "um"})
# Month names (accents stripped, lower case) in the languages whose Search Console headers we read.
# A cell's month word matches a name it starts (at least 3 letters: "sept", "févr.", "mrt").
_MONTHS: dict[int, tuple[str, ...]] = {
    1: ("january", "enero", "januar", "janvier", "janeiro", "gennaio", "januari", "jan", "gen", "ene"),
    2: ("february", "febrero", "februar", "fevrier", "fevereiro", "febbraio", "februari"),
    3: ("march", "marzo", "marz", "mars", "marco", "maart", "mrt"),
    4: ("april", "abril", "avril", "aprile"),
    5: ("may", "mayo", "mai", "maio", "maggio", "mei"),
    6: ("june", "junio", "juni", "juin", "junho", "giugno"),
    7: ("july", "julio", "juli", "juillet", "julho", "luglio"),
    8: ("august", "agosto", "aout", "augustus"),
    9: ("september", "septiembre", "septembre", "setembro", "settembre"),
    10: ("october", "octubre", "oktober", "octobre", "outubro", "ottobre"),
    11: ("november", "noviembre", "novembre", "novembro"),
    12: ("december", "diciembre", "dezember", "decembre", "dezembro", "dicembre"),
}
_MIN_MONTH_PREFIX = 3


def parse_flag(raw: str) -> bool | None:
    """``true``/``yes``/``1``/``+`` -> True; ``false``/``no``/``0``/empty -> False; anything else None."""
    value = raw.strip().casefold()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def parse_count(raw: str) -> int | None:
    """A whole number that may carry thousands separators (``"1,240"``, ``1.240``, ``1 240``); None when
    the cell is not one. ``"1.5"`` is None: counts of links are whole numbers."""
    value = raw.strip()
    if value.isdigit():
        return int(value)
    if _GROUPED.fullmatch(value):
        return int("".join(ch for ch in value if ch.isdigit()))
    return None


def parse_score(raw: str) -> int | float | None:
    """An authority figure (Domain Rating ``71``, Trust Flow ``12``, a decimal ``71.5`` or ``71,5``);
    whole values come back as ``int``. None for an empty or unreadable cell."""
    value = raw.strip().strip(_SPACES)
    if not value:
        return None
    if _DECIMAL_COMMA.fullmatch(value):
        value = value.replace(",", ".")
    try:
        number = float(value)
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


@lru_cache(maxsize=4096)  # an export repeats the same few hundred dates over its rows
def parse_date(raw: str, order: DateOrder = "mdy") -> str | None:
    """The ISO date (``YYYY-MM-DD``) of a cell, or None.

    Read: ISO 8601 and other year-first forms (``2026-09-15``, ``2026/09/15 10:00``, ``2026-09-15T10:00Z``),
    written dates in English, Spanish, German, French, Portuguese, Italian and Dutch (``Sep 15, 2026``,
    ``15 sept. 2026``, ``15. September 2026``, ``15 de setembro de 2026``), Japanese (``2026年9月15日``),
    Unix time in seconds, and numeric dates with the year last, read in ``order`` (``mdy`` for an
    English-language export, ``dmy`` otherwise) unless one part is above 12.
    """
    value = raw.strip()
    if not value:
        return None
    if match := _YEAR_FIRST.fullmatch(value):
        return _iso(int(match[1]), int(match[2]), int(match[3]))
    if match := _JAPANESE.fullmatch(value):
        return _iso(int(match[1]), int(match[2]), int(match[3]))
    if match := _YEAR_LAST.fullmatch(value):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        day_first = first > 12 or (second <= 12 and order == "dmy")
        return _iso(year, second, first) if day_first else _iso(year, first, second)
    if _EPOCH.fullmatch(value):
        return datetime.fromtimestamp(int(value), UTC).date().isoformat()
    return _written_date(value)


def _written_date(value: str) -> str | None:
    """``Sep 15, 2026`` / ``15 septembre 2026``: one month word, a day and a four-digit year."""
    tokens = [t for t in _WORD_OR_NUMBER.findall(_fold(value)) if t not in _DATE_FILLERS]
    words = [t for t in tokens if not t.isdigit()]
    numbers = [t for t in tokens if t.isdigit()]
    # A trailing time ("Sep 15, 2026 10:30:00") adds numbers after the year; they are ignored.
    year_at = next((i for i, t in enumerate(numbers) if len(t) == 4), None)
    if len(words) != 1 or year_at is None:
        return None
    days = [t for t in numbers[:year_at] if len(t) <= 2]
    if len(days) != 1:
        return None
    month = _month(words[0])
    return None if month is None else _iso(int(numbers[year_at]), month, int(days[0]))


def _month(word: str) -> int | None:
    if len(word) < _MIN_MONTH_PREFIX:
        return None
    found = {month for month, names in _MONTHS.items() for name in names if name.startswith(word)}
    return found.pop() if len(found) == 1 else None


def _fold(text: str) -> str:
    """Lower case without accents: ``Févr.`` -> ``fevr.``, ``März`` -> ``marz``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None
