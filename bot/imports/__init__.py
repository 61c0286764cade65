"""Importing backlink exports (Search Console, Ahrefs, Semrush, Moz, Majestic, plain lists).

Front ends call :func:`import_backlinks` and show :func:`render_import_summary` or
:meth:`ImportSummary.to_json`. Modules: :mod:`~bot.imports.reading` (bytes to rows),
:mod:`~bot.imports.formats` (each tool's columns, detection), :mod:`~bot.imports.values` (flags, counts,
dates), :mod:`~bot.imports.parsing` (rows to backlink documents), :mod:`~bot.imports.service` (the one
write, the summary). Rules and formats: ``docs/imports.md``.
"""

from bot.imports.formats import FORMATS, FORMATS_BY_NAME
from bot.imports.service import (
    IMPORTS_TABLE,
    LINKING_SITES_TABLE,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_CHARS,
    MAX_IMPORT_FILE_BYTES,
    REASON_LABELS,
    ImportedTable,
    ImportSummary,
    import_backlinks,
    render_import_summary,
)

__all__ = [
    "FORMATS",
    "FORMATS_BY_NAME",
    "IMPORTS_TABLE",
    "LINKING_SITES_TABLE",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_CHARS",
    "MAX_IMPORT_FILE_BYTES",
    "REASON_LABELS",
    "ImportSummary",
    "ImportedTable",
    "import_backlinks",
    "render_import_summary",
]
