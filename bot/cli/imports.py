"""``linkpact import FILE``: track the backlinks in a Search Console, Ahrefs, Semrush, Moz or Majestic
export (or a plain list of URLs), and print what was imported, skipped and why (``docs/imports.md``)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.files import STDIN_NAME, read_input_file

if TYPE_CHECKING:
    from bot.engine import Engine

from bot.cli.names import COMMAND_HELP
from bot.cli.output import EXIT_OK, SubParsers

# Kept here, not imported from bot.imports, so that `linkpact --help` does not load the import machinery;
# an unknown name is refused by bot.imports with the full list (exit 2).
FORMAT_NAMES = (
    "gsc-latest-links", "gsc-sample-links", "gsc-linking-sites", "gsc-linked-pages", "ahrefs", "semrush",
    "moz", "majestic", "list",
)  # fmt: skip
# Same value as bot.imports.service.MAX_IMPORT_FILE_BYTES (checked by tests/test_imports.py); the import
# itself holds the decoded text to bot.imports.MAX_IMPORT_CHARS (docs/imports.md, "Reading rules").
MAX_IMPORT_FILE_BYTES = 100_000_000


def add_import_parser(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "import",
        help=COMMAND_HELP["import"],
        description="Import a backlink export in one write. The format is detected; --format names it.",
    )
    parser.add_argument(
        "file", help="the export: a CSV/TSV file, or Search Console's zip ('-' to read standard input)"
    )
    parser.add_argument(
        "--target-site",
        metavar="URL",
        help="your site (e.g. https://ours.example): the target of exports without one (Search Console's "
        "Latest links and sample links, one-column lists); rows pointing elsewhere are skipped",
    )
    parser.add_argument(
        "--format", metavar="FORMAT", help=f"skip detection, read as: {', '.join(FORMAT_NAMES)}"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def read_export(name: str, *, max_bytes: int = MAX_IMPORT_FILE_BYTES) -> bytes:
    """The bytes of the export ``name`` (``-``: standard input), at most ``max_bytes``, enforced while
    reading; only a regular file or standard input is read (:func:`bot.cli.files.read_input_file`).
    Raises :class:`InputError`."""
    return read_input_file(name, max_bytes=max_bytes)


async def run_import_command(engine: Engine, args: argparse.Namespace) -> int:
    from bot.imports.service import import_backlinks, render_import_summary

    data = read_export(args.file)
    summary = await import_backlinks(
        engine,
        data,
        filename="stdin" if args.file == STDIN_NAME else Path(args.file).name,
        target_site=args.target_site,
        fmt=args.format,
        added_by=_cli_user(),
    )
    if args.json:
        json.dump(summary.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_import_summary(summary))
    return EXIT_OK
