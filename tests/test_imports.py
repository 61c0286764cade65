"""``linkpact import``: every export format and encoding, broken files, dedupe, self-links, one write.

Sample files are written here (never downloaded); imports run through a real Engine on a real TinyDB
file in tmp_path, and the CLI as a subprocess for a few cases.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.backlinks.registry import BACKLINKS_TABLE
from bot.cli.imports import FORMAT_NAMES, read_export
from bot.cli.imports import MAX_IMPORT_FILE_BYTES as CLI_MAX_IMPORT_FILE_BYTES
from bot.config import Settings
from bot.engine import Engine
from bot.errors import InputError
from bot.imports import (
    FORMATS,
    IMPORTS_TABLE,
    LINKING_SITES_TABLE,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_CHARS,
    MAX_IMPORT_FILE_BYTES,
    ImportSummary,
    import_backlinks,
    render_import_summary,
)
from bot.imports.parsing import _PLAIN_URL, plain_link_key
from bot.imports.values import parse_count, parse_date, parse_flag, parse_score
from bot.net.policy import AddressPolicy
from bot.store.tinydb import TinyStore
from bot.urls import link_key
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.test_cli import run_cli

OURS = "https://ours.example"


@pytest.fixture
async def eng(tmp_path: Path, clock: Clock) -> AsyncIterator[Engine]:
    """An engine with the default address policy (private and loopback addresses refused)."""
    engine = Engine.create(Settings(db_path=tmp_path / "db.json"), now=clock)
    try:
        yield engine
    finally:
        await engine.aclose()


def table(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def utf16le(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def do_import(
    engine: Engine, data: bytes | str, name: str = "export.csv", **options: Any
) -> ImportSummary:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    summary = await import_backlinks(engine, raw, filename=name, added_by="U123", **options)
    # Every row read is accounted for exactly once.
    assert summary.rows_read == (
        summary.new_backlinks
        + summary.linking_sites
        + summary.duplicates_in_file
        + summary.duplicates_tracked
        + summary.skipped_total
    ), summary
    assert json.loads(json.dumps(summary.to_json()))["rows_read"] == summary.rows_read
    return summary


async def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    """Tracked backlinks by source URL."""
    return {doc["source_url"]: doc for doc in await engine.store.find(BACKLINKS_TABLE)}


def write_count(engine: Engine) -> int:
    assert isinstance(engine.store, TinyStore)
    return engine.store.write_count


# -- Google Search Console ----------------------------------------------------------------------------


async def test_gsc_latest_links_need_target_site_and_track_to_the_home_page(eng: Engine) -> None:
    data = table(
        [
            ["Linking page", "Last crawled"],
            ["https://blog.partner.example/a", "2026-09-15"],
            ["https://news.other.example/b", "Sep 15, 2026"],
            ["https://www.ours.example/internal", "2026-09-01"],  # ours: a self-link
            ["https://blog.partner.example/a/", "2026-09-15"],  # the same page again
        ]
    )
    with pytest.raises(InputError, match="--target-site"):
        await do_import(eng, data)
    assert not eng.settings.db_path.exists()  # nothing written

    summary = await do_import(eng, data, target_site=f"{OURS}/any/page")
    assert summary.format == "gsc-latest-links"
    assert (summary.rows_read, summary.new_backlinks, summary.duplicates_in_file) == (4, 2, 1)
    assert summary.skipped == {"self_link": 1} and summary.skipped_rows == {"self_link": ("4",)}
    docs = await stored(eng)
    assert set(docs) == {"https://blog.partner.example/a", "https://news.other.example/b"}
    doc = docs["https://news.other.example/b"]
    assert doc["target_url"] == "https://ours.example/"
    assert doc["last_seen"] == "2026-09-15"  # "Sep 15, 2026"
    assert doc["referring_domain"] == "other.example"
    assert (doc["import_file"], doc["import_format"], doc["added_by"]) == (
        "export.csv",
        "gsc-latest-links",
        "U123",
    )
    assert doc["added_at"] == summary.imported_at
    assert "rel" not in doc  # Search Console does not say whether a link is followed


@pytest.mark.parametrize(
    ("header", "date", "day"),
    [
        (["Linking page", "Last crawled"], "09/15/2026", "2026-09-15"),  # US English: month first
        (["Página que enlaza", "Último rastreo"], "15/09/2026", "2026-09-15"),
        (["Verweisende Seite", "Zuletzt gecrawlt"], "15.09.2026", "2026-09-15"),
        (["Page d'origine du lien", "Dernière exploration"], "15 sept. 2026", "2026-09-15"),
        (["Página com link", "Último rastreamento"], "15 de set. de 2026", "2026-09-15"),
        (["Pagina di collegamento", "Ultima scansione"], "03/04/2026", "2026-04-03"),  # day first
        (["Linkende pagina", "Laatst gecrawld"], "15 mrt 2026", "2026-03-15"),
        (["リンク元ページ", "最終クロール"], "2026/09/15", "2026-09-15"),
        (["דף מקשר", "נסרק לאחרונה"], "01/08/2026", "2026-08-01"),
        (["Link", "Zuletzt gecrawlt"], "2026-09-15", "2026-09-15"),
    ],
)
async def test_gsc_localised_latest_links_headers_and_dates(
    eng: Engine, header: list[str], date: str, day: str
) -> None:
    data = table([header, ["https://blog.partner.example/a", date]])
    summary = await do_import(eng, data, target_site=OURS)
    assert summary.format == "gsc-latest-links" and summary.new_backlinks == 1
    assert not summary.notes  # recognised by name, not by shape
    assert (await stored(eng))["https://blog.partner.example/a"]["last_seen"] == day


async def test_gsc_sample_links_one_column(eng: Engine) -> None:
    data = "\ufeffLinking page\nhttps://a.partner.example/x\nhttps://b.partner.example/y\n"
    summary = await do_import(eng, data, target_site=OURS)
    assert (summary.format, summary.encoding, summary.new_backlinks) == ("gsc-sample-links", "utf-8-sig", 2)


async def test_gsc_header_in_an_unlisted_language_is_read_by_its_shape(eng: Engine) -> None:
    data = table(
        [["Strona linkująca", "Ostatnie indeksowanie"], ["https://blog.partner.example/a", "15.09.2026"]]
    )
    summary = await do_import(eng, data, target_site=OURS)
    assert summary.format == "gsc-latest-links"
    assert "shape of its columns" in summary.notes[0]
    assert (await stored(eng))["https://blog.partner.example/a"]["last_seen"] == "2026-09-15"


async def test_gsc_top_linking_sites_are_stored_as_domains_only(eng: Engine) -> None:
    data = table(
        [
            ["Site", "Linking pages", "Target pages"],
            ["big-blog.example.com", "1,240", "12"],
            ["www.partner.example", "87", "5"],
            ["ours.example", "3", "1"],
            ["not a domain", "1", "1"],
        ]
    )
    summary = await do_import(eng, data, target_site=OURS)
    assert (summary.format, summary.linking_sites, summary.new_backlinks) == ("gsc-linking-sites", 2, 0)
    assert summary.skipped == {"invalid_domain": 1, "self_link": 1}
    assert summary.new_referring_domains == 2
    sites = {doc["id"]: doc for doc in await eng.store.find(LINKING_SITES_TABLE)}
    assert sites["example.com"]["linking_pages"] == 1240  # "big-blog.example.com" counts for example.com
    assert sites["partner.example"]["target_pages"] == 5
    assert await eng.store.find(BACKLINKS_TABLE) == []  # no URLs are invented

    german = table([["Website", "Verweisende Seiten", "Zielseiten"], ["big-blog.example.com", "1.300", "12"]])
    again = await do_import(eng, german)
    assert (again.linking_sites, again.duplicates_tracked, again.new_referring_domains) == (0, 1, 0)
    assert (await eng.store.get(LINKING_SITES_TABLE, "example.com") or {})["linking_pages"] == 1300


async def test_gsc_top_linked_pages_alone_is_refused_with_what_to_export(eng: Engine) -> None:
    data = table([["Target page", "Incoming links", "Linking sites"], [f"{OURS}/", "2,100", "80"]])
    with pytest.raises(InputError, match="Latest links"):
        await do_import(eng, data, target_site=OURS)


async def test_gsc_zip_with_several_tables(eng: Engine) -> None:
    archive = zipped(
        {
            "Latest links.csv": table(
                [
                    ["Linking page", "Last crawled"],
                    ["https://a.partner.example/1", "2026-09-01"],
                    [f"{OURS}/blog", "2026-09-01"],
                ]
            ).encode(),
            "More sample links.csv": table(
                [["Linking page"], ["https://a.partner.example/1"], ["https://b.other.example/2"]]
            ).encode(),
            "Top linking sites.csv": table(
                [["Site", "Linking pages", "Target pages"], ["c.example", "4", "1"]]
            ).encode(),
            "Top linked pages - externally.csv": table(
                [["Target page", "Incoming links", "Linking sites"], [f"{OURS}/", "9", "3"]]
            ).encode(),
            "Top linking text.csv": table([["Linking text", "Links"], ["great guide", "5"]]).encode(),
            "Metadata.csv": b"",
            "__MACOSX/._Latest links.csv": b"\x00\x05\x16\x07",
        }
    )
    summary = await do_import(eng, archive, name="links.zip", target_site=OURS)
    assert summary.format == "zip"
    assert {(t.name, t.format) for t in summary.tables} == {
        ("links.zip/Latest links.csv", "gsc-latest-links"),
        ("links.zip/More sample links.csv", "gsc-sample-links"),
        ("links.zip/Top linking sites.csv", "gsc-linking-sites"),
    }
    assert (summary.new_backlinks, summary.linking_sites, summary.duplicates_in_file) == (2, 1, 1)
    assert summary.skipped_rows == {"self_link": ("Latest links.csv:3",)}
    assert len(summary.notes) == 3 and all(note.startswith("ignored") for note in summary.notes)
    assert "ignored links.zip/Metadata.csv: is empty" in summary.notes
    assert summary.new_referring_domains == 3  # partner.example, other.example, c.example
    docs = await stored(eng)
    assert docs["https://b.other.example/2"]["import_file"] == "links.zip/More sample links.csv"
    text = render_import_summary(summary)
    assert "read Latest links.csv as Search Console" in text


# -- SEO suites ---------------------------------------------------------------------------------------

AHREFS_HEADER = [
    "Referring page title", "Referring page URL", "Domain rating", "UR", "Target URL", "Anchor",
    "Nofollow", "UGC", "Sponsored", "First seen", "Last seen", "Lost",
]  # fmt: skip


def ahrefs_row(source: str, target: str = f"{OURS}/guide", **cells: str) -> list[str]:
    values = {
        "Referring page title": "A post",
        "Referring page URL": source,
        "Domain rating": "71",
        "UR": "12.5",
        "Target URL": target,
        "Anchor": "our guide",
        "Nofollow": "false",
        "UGC": "false",
        "Sponsored": "false",
        "First seen": "2025-03-14 08:10:00",
        "Last seen": "2026-10-30T22:01:00Z",
        "Lost": "",
        **cells,
    }
    return [values[column] for column in AHREFS_HEADER]


async def test_ahrefs_utf16_with_tabs(eng: Engine) -> None:
    text = table(
        [
            AHREFS_HEADER,
            ahrefs_row("https://blog.partner.example/a", Nofollow="true", UGC="true"),
            ahrefs_row(
                "https://news.other.example/b", Anchor='best "tools", compared\tthis year', Sponsored="true"
            ),
            ahrefs_row("https://gone.example/c", Lost="2026-10-01"),
        ],
        delimiter="\t",
    )
    summary = await do_import(eng, utf16le(text), name="ahrefs.csv")
    assert (summary.format, summary.encoding, summary.new_backlinks) == ("ahrefs", "utf-16-le", 2)
    assert summary.skipped == {"lost_in_export": 1}
    docs = await stored(eng)
    a = docs["https://blog.partner.example/a"]
    assert a["rel"] == ["nofollow", "ugc"]
    assert a["authority"] == {"domain_rating": 71, "url_rating": 12.5}
    assert (a["first_seen"], a["last_seen"]) == ("2025-03-14", "2026-10-30")
    assert a["anchor"] == "our guide" and a["target_url"] == f"{OURS}/guide"
    b = docs["https://news.other.example/b"]
    assert b["anchor"] == 'best "tools", compared\tthis year' and b["rel"] == ["sponsored"]


async def test_ahrefs_utf8_comma_variant_with_a_reduced_column_set(eng: Engine) -> None:
    data = table(
        [
            ["Referring page URL", "Target URL", "Anchor"],
            ["https://blog.partner.example/a", f"{OURS}/", "Ours"],
        ]
    )
    summary = await do_import(eng, data)
    assert (summary.format, summary.new_backlinks) == ("ahrefs", 1)
    doc = (await stored(eng))["https://blog.partner.example/a"]
    assert "rel" not in doc and "authority" not in doc and doc["anchor"] == "Ours"


async def test_semrush_backlinks(eng: Engine) -> None:
    header = ["Page ascore", "Source title", "Source url", "Target url", "Anchor", "External links",
              "Internal links", "Nofollow", "Sponsored", "Ugc", "Text", "Frame", "Form", "Image", "Sitewide",
              "First seen", "Last seen", "New link", "Lost link"]  # fmt: skip
    flags = ["true", "false", "false", "false"]  # Text, Frame, Form, Image
    rows = [
        ["34", "T", "https://blog.partner.example/a", f"{OURS}/", "Ours", "12", "40", "true", "false",
         "false", *flags, "false", "2025-01-02", "2026-10-01", "false", "false"],
        ["5", "T", "https://c.example/x", f"{OURS}/p", "x", "1", "1", "false", "false", "false",
         *flags, "true", "1735776000", "2026-10-01", "false", "true"],
    ]  # fmt: skip
    summary = await do_import(eng, table([header, *rows]))
    assert (summary.format, summary.new_backlinks, summary.skipped) == ("semrush", 1, {"lost_in_export": 1})
    doc = (await stored(eng))["https://blog.partner.example/a"]
    assert doc["rel"] == ["nofollow"] and doc["authority"] == {"page_ascore": 34}


async def test_moz_export_with_its_preamble(eng: Engine) -> None:
    preamble = (
        "Moz Link Explorer Export\r\n"
        "Target:,ours.example\r\n"
        "Date:,2026-11-01\r\n"
        "\r\n"
        '"Filters: ""all links"", followed and nofollowed"\r\n'
        "\r\n"
    )
    header = [
        "URL", "Title", "Anchor Text", "Spam Score", "Page Authority", "Domain Authority",
        "Number of Domains Linking to this Page", "Number of Domains Linking to Domain", "Origin",
        "Target URL", "Link Equity", "No Link Equity", "Only rel=nofollow", "Only follow", "301",
    ]  # fmt: skip
    rows = [
        ["https://blog.partner.example/a", "A", "Ours", "1%", "33", "45", "3", "900", "External", f"{OURS}/",
         "Yes", "No", "Yes", "No", "No"],
        ["https://c.example/b", "B", "guide", "2%", "20", "30", "1", "10", "External", f"{OURS}/g",
         "Yes", "No", "No", "Yes", "No"],
    ]  # fmt: skip
    summary = await do_import(eng, preamble + table([header, *rows]))
    assert (summary.format, summary.new_backlinks) == ("moz", 2)
    assert summary.skipped_rows == {}  # the preamble is not counted as rows
    docs = await stored(eng)
    assert docs["https://blog.partner.example/a"]["rel"] == ["nofollow"]
    assert docs["https://c.example/b"]["rel"] == []
    assert docs["https://c.example/b"]["authority"] == {"domain_authority": 30, "page_authority": 20}


@pytest.mark.parametrize(
    "header",
    [
        ["Target URL", "Source URL", "Anchor Text", "Source Crawl Date", "Source First Found Date",
         "FlagNoFollow", "FlagImageLink", "FlagRedirect", "SourceCitationFlow", "SourceTrustFlow"],
        ["TargetURL", "SourceURL", "AnchorText", "LastSeenDate", "FirstIndexedDate", "FlagNoFollow",
         "FlagImageLink", "FlagRedirect", "SourceCitationFlow", "SourceTrustFlow"],
    ],
)  # fmt: skip
async def test_majestic_both_header_spellings(eng: Engine, header: list[str]) -> None:
    rows = [
        [
            f"{OURS}/",
            "https://blog.partner.example/a",
            "Ours",
            "2026-10-02",
            "2024-05-06",
            "+",
            "",
            "",
            "25",
            "18",
        ],
        [f"{OURS}/x", "https://c.example/b", "x", "2026-10-02", "2024-05-06", "", "", "", "9", "3"],
    ]
    summary = await do_import(eng, table([header, *rows]))
    assert (summary.format, summary.new_backlinks) == ("majestic", 2)
    a = (await stored(eng))["https://blog.partner.example/a"]
    assert a["rel"] == ["nofollow"] and a["authority"] == {"trust_flow": 18, "citation_flow": 25}
    assert (a["first_seen"], a["last_seen"]) == ("2024-05-06", "2026-10-02")


# -- plain lists --------------------------------------------------------------------------------------


async def test_plain_list_one_url_per_line(eng: Engine) -> None:
    data = "https://a.partner.example/1\r\n\r\nhttps://b.other.example/2\r\nnot a url\r\n"
    with pytest.raises(InputError, match="--target-site"):
        await do_import(eng, data, name="list.txt")
    summary = await do_import(eng, data, name="list.txt", target_site=OURS)
    assert (summary.format, summary.new_backlinks) == ("list", 2)
    assert summary.skipped == {"blank_row": 1, "invalid_source_url": 1}
    assert summary.skipped_rows["invalid_source_url"] == ("4",)


async def test_plain_list_two_columns_with_and_without_header(eng: Engine) -> None:
    bare = "https://a.partner.example/1,https://ours.example/p\nhttps://b.other.example/2,https://ours.example/q\n"
    first = await do_import(eng, bare)
    assert (first.format, first.new_backlinks) == ("list", 2)
    assert (await stored(eng))["https://a.partner.example/1"]["target_url"] == "https://ours.example/p"
    headed = "source;target\nhttps://c.example/3;https://ours.example/p\n"  # semicolons: sniffed
    second = await do_import(eng, headed)
    assert (second.format, second.new_backlinks) == ("list", 1)


async def test_format_can_be_forced_and_unknown_names_are_refused(eng: Engine) -> None:
    data = table([["Referring page URL", "Target URL"], ["https://a.partner.example/1", f"{OURS}/"]])
    with pytest.raises(InputError, match="does not look like a Semrush"):
        await do_import(eng, data, fmt="semrush")
    with pytest.raises(InputError, match="unknown format 'excel'"):
        await do_import(eng, data, fmt="excel")
    assert (await do_import(eng, data, fmt="ahrefs")).new_backlinks == 1
    assert set(FORMAT_NAMES) == {f.name for f in FORMATS}  # the CLI's list is the core's


# -- reading ------------------------------------------------------------------------------------------


async def test_quoted_commas_and_newlines_in_anchors(eng: Engine) -> None:
    data = table(
        [
            ["Source url", "Target url", "Anchor", "Page ascore"],
            ["https://a.partner.example/1", f"{OURS}/", "tools, tips,\nand more", "3"],
            ["https://b.other.example/2", f"{OURS}/", 'say "hi"', "4"],
            ["https://c.example/3", "", "no target", "5"],
        ]
    )
    summary = await do_import(eng, data)
    assert summary.new_backlinks == 2
    assert summary.skipped_rows == {"missing_target": ("4",)}  # a record with a newline is still one row
    docs = await stored(eng)
    assert docs["https://a.partner.example/1"]["anchor"] == "tools, tips,\nand more"
    assert docs["https://b.other.example/2"]["anchor"] == 'say "hi"'


async def test_formula_looking_cells_are_plain_strings(eng: Engine) -> None:
    data = table(
        [
            ["Source url", "Target url", "Anchor", "Page ascore"],
            ["https://a.partner.example/1", f"{OURS}/", '=HYPERLINK("https://evil.example","click")', "1"],
            ["https://b.other.example/2", f"{OURS}/", "+cmd|' /C calc'!A0", "1"],
            ['=HYPERLINK("https://c.example/3")', f"{OURS}/", "x", "1"],
            ["@SUM(1+1)", f"{OURS}/", "x", "1"],
        ]
    )
    summary = await do_import(eng, data)
    assert summary.new_backlinks == 2 and summary.skipped == {"invalid_source_url": 2}
    docs = await stored(eng)
    assert docs["https://a.partner.example/1"]["anchor"] == '=HYPERLINK("https://evil.example","click")'
    assert docs["https://b.other.example/2"]["anchor"] == "+cmd|' /C calc'!A0"


async def test_old_mac_line_ends_and_excel_sep_line(eng: Engine) -> None:
    data = f"sep=;\rSource url;Target url;Anchor;Page ascore\rhttps://a.partner.example/1;{OURS}/;a, b;1\r"
    summary = await do_import(eng, data)
    assert (summary.format, summary.new_backlinks) == ("semrush", 1)
    assert (await stored(eng))["https://a.partner.example/1"]["anchor"] == "a, b"


async def test_cp1252_and_utf16_without_bom(eng: Engine) -> None:
    text = table(
        [
            ["Source url", "Target url", "Anchor", "Page ascore"],
            ["https://a.partner.example/1", f"{OURS}/", "café", "1"],
        ]
    )
    summary = await do_import(eng, text.encode("cp1252"))
    assert summary.encoding == "cp1252"
    assert (await stored(eng))["https://a.partner.example/1"]["anchor"] == "café"
    text2 = text.replace("a.partner", "b.partner")
    assert (await do_import(eng, text2.encode("utf-16-le"))).encoding == "utf-16-le"


async def test_malformed_rows_are_skipped_with_counts(eng: Engine) -> None:
    data = (
        "Source url,Target url,Anchor,Page ascore\r\n"
        f"https://a.partner.example/1,{OURS}/,ok,1\r\n"
        f"https://b.other.example/2,{OURS}/,shifted, by a comma,1\r\n"  # a cell too many
        f"https://c.example/3,{OURS}/\r\n"  # cells missing
        f"https://d.example/4,{OURS}/,trailing delimiter,1,\r\n"  # an empty extra cell: fine
        ",,,\r\n"  # blank
        f"ftp://e.example/5,{OURS}/,x,1\r\n"
        f"https://f.example/6,mailto:us@ours.example,x,1\r\n"
    )
    summary = await do_import(eng, data)
    assert summary.new_backlinks == 2
    assert summary.skipped == {
        "blank_row": 1, "invalid_source_url": 1, "invalid_target_url": 1, "malformed_row": 2,
    }  # fmt: skip
    assert summary.skipped_rows["malformed_row"][:2] == ("3", "4")
    assert "malformed rows" in render_import_summary(summary)


# A quoted cell that is never closed: the csv module reads every later line into that one cell, so the
# rows after it would vanish while the rows before were stored. Every format fails whole instead.
BROKEN_QUOTE_TABLES: dict[str, tuple[list[str], list[str]]] = {
    # format: (header, a data row; {n} numbers its linking page)
    "ahrefs": (["Referring page URL", "Target URL", "Anchor"], ["https://p{n}.example/a", f"{OURS}/", "a"]),
    "semrush": (
        ["Source url", "Target url", "Anchor", "Page ascore"],
        ["https://p{n}.example/a", f"{OURS}/", "a", "1"],
    ),
    "moz": (
        ["URL", "Title", "Anchor Text", "Spam Score", "Target URL"],
        ["https://p{n}.example/a", "T", "a", "1%", f"{OURS}/"],
    ),
    "majestic": (
        ["Source URL", "Target URL", "Anchor Text", "FlagNoFollow"],
        ["https://p{n}.example/a", f"{OURS}/", "a", "-"],
    ),
    "gsc-latest-links": (["Linking page", "Last crawled"], ["https://p{n}.example/a", "2026-09-15"]),
    "gsc-sample-links": (["Linking page"], ["https://p{n}.example/a"]),
    "gsc-linking-sites": (["Site", "Linking pages", "Target pages"], ["p{n}.example", "4", "1"]),
    "list": ([], ["https://p{n}.example/a"]),  # no header: the first line is already a URL
}


def broken_quote_export(fmt: str, *, delimiter: str = ",", closed_later: bool = False) -> str:
    """Five data rows; the third (row 4 with a header) opens a quote in its last cell and never closes
    it, or (``closed_later``) closes it with a stray quote at the end of the fifth."""
    header, template = BROKEN_QUOTE_TABLES[fmt]
    lines = [delimiter.join(header)] if header else []
    for n in range(1, 6):
        cells = [cell.format(n=n) for cell in template]
        if n == 3:
            cells[-1] = '"' + cells[-1]
        if n == 5 and closed_later:
            cells[-1] += '"'
        lines.append(delimiter.join(cells))
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("fmt", list(BROKEN_QUOTE_TABLES))
async def test_an_unclosed_quote_fails_the_whole_import_with_its_row(eng: Engine, fmt: str) -> None:
    data = broken_quote_export(fmt)
    row = 4 if fmt != "list" else 3
    with pytest.raises(
        InputError, match=rf"export\.csv: row {row}: line {row} opens a quoted cell .* never closed"
    ):
        await import_backlinks(eng, data.encode(), filename="export.csv", added_by="U1", target_site=OURS)
    # Nothing stored: neither the rows before the broken one nor a record of the import.
    assert await eng.store.find(BACKLINKS_TABLE) == []
    assert await eng.store.find(LINKING_SITES_TABLE) == []
    assert await eng.store.find(IMPORTS_TABLE) == []
    assert write_count(eng) == 0
    # The same file with the quote closed imports all five rows.
    fixed = data.replace('"', "")
    summary = await do_import(eng, fixed, target_site=OURS)
    assert summary.imported == 5 and summary.rows_read == 5


@pytest.mark.parametrize("fmt", [f for f, (header, _) in BROKEN_QUOTE_TABLES.items() if len(header) > 1])
async def test_a_quote_closed_rows_later_by_a_stray_quote_fails_too(eng: Engine, fmt: str) -> None:
    data = broken_quote_export(fmt, closed_later=True)
    with pytest.raises(InputError, match=r"row 4: line 4 opens a quoted cell .* runs on to line 6"):
        await import_backlinks(eng, data.encode(), filename="export.csv", added_by="U1", target_site=OURS)
    assert await eng.store.find(BACKLINKS_TABLE) == [] and write_count(eng) == 0


async def test_an_unclosed_quote_in_utf16_tabs_and_in_a_zip_member(eng: Engine) -> None:
    ahrefs = broken_quote_export("ahrefs", delimiter="\t")
    with pytest.raises(InputError, match=r"ahrefs\.csv: row 4: .*never closed"):
        await import_backlinks(eng, utf16le(ahrefs), filename="ahrefs.csv", added_by="U1")
    archive = zipped(
        {
            "Top linking sites.csv": broken_quote_export("gsc-linking-sites").replace('"', "").encode(),
            "Latest links.csv": broken_quote_export("gsc-latest-links").encode(),
        }
    )
    with pytest.raises(InputError, match=r"links\.zip/Latest links\.csv: row 4: .*never closed"):
        await import_backlinks(eng, archive, filename="links.zip", added_by="U1", target_site=OURS)
    assert await eng.store.find(LINKING_SITES_TABLE) == []  # the good table of the zip is not stored either
    assert write_count(eng) == 0


async def test_a_cell_over_the_csv_modules_limit_fails_the_import(eng: Engine) -> None:
    data = (
        "Source url,Target url,Anchor,Page ascore\r\n"
        f"https://a.partner.example/1,{OURS}/,ok,1\r\n"
        f'https://b.partner.example/2,{OURS}/,"{"x" * 200_000}",1\r\n'
        f"https://c.partner.example/3,{OURS}/,ok,1\r\n"
    )
    with pytest.raises(
        InputError, match=r"row 3: line 3 cannot be read as CSV \(field larger than field limit"
    ):
        await import_backlinks(eng, data.encode(), filename="export.csv", added_by="U1")
    assert write_count(eng) == 0


async def test_line_breaks_inside_quoted_cells_are_still_read(eng: Engine) -> None:
    data = (
        "Source url,Target url,Anchor,Page ascore\r\n"
        f'https://a.partner.example/1,{OURS}/,"two\r\nlines, one comma",1\r\n'
        f'https://b.partner.example/2,{OURS}/,"""quoted"" and\nmore",1\r\n'
        f"https://c.partner.example/3,{OURS}/,ok,1\r\n"
    )
    summary = await do_import(eng, data)
    assert summary.new_backlinks == 3 and summary.skipped == {}
    docs = await stored(eng)
    assert docs["https://b.partner.example/2"]["anchor"] == '"quoted" and\nmore'


def test_cli_import_of_an_unclosed_quote_exits_2_and_stores_nothing(tmp_path: Path) -> None:
    export = tmp_path / "semrush.csv"
    export.write_text(broken_quote_export("semrush"))
    db = tmp_path / "db.json"
    proc = run_cli("import", str(export), db=db)
    assert proc.returncode == 2, proc.stderr
    assert "semrush.csv: row 4: line 4 opens a quoted cell" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == "" and not db.exists()


async def test_private_and_local_sources_are_skipped_not_fatal(eng: Engine) -> None:
    data = table(
        [
            ["Source url", "Target url", "Anchor", "Page ascore"],
            ["http://10.0.0.5/admin", f"{OURS}/", "x", "1"],
            ["http://127.0.0.1:8080/", f"{OURS}/", "x", "1"],
            ["http://[::1]/", f"{OURS}/", "x", "1"],
            ["http://169.254.169.254/latest/meta-data", f"{OURS}/", "x", "1"],
            ["https://user:pw@a.partner.example/", f"{OURS}/", "x", "1"],
            ["https://b.partner.example/ok", "http://192.168.1.1/", "x", "1"],
            ["https://c.partner.example/ok", f"{OURS}/", "x", "1"],
        ]
    )
    summary = await do_import(eng, data)
    assert summary.new_backlinks == 1
    assert summary.skipped == {
        "invalid_source_url": 1, "refused_source_address": 4, "refused_target_address": 1,
    }  # fmt: skip


async def test_self_links_and_off_site_targets(eng: Engine) -> None:
    rows = [
        ["Referring page URL", "Target URL"],
        ["https://blog.ours.example/post", f"{OURS}/"],  # same registrable domain: internal
        ["https://me.github.io/a", "https://me.github.io/b"],  # same private-suffix site
        ["https://you.github.io/a", "https://me.github.io/b"],  # different github.io sites: a backlink
        ["https://partner.example/a", "https://competitor.example/"],  # not our site
    ]
    summary = await do_import(eng, table(rows))
    assert summary.new_backlinks == 2 and summary.skipped == {"self_link": 2}
    again = await do_import(eng, table(rows), target_site=OURS)
    assert again.skipped == {"self_link": 2, "target_off_site": 2}


async def test_dedupe_against_tracked_backlinks(eng: Engine) -> None:
    assert await eng.track("https://Blog.Partner.example/a/", f"{OURS}/guide")
    data = table(
        [
            ["Referring page URL", "Target URL"],
            ["https://blog.partner.example/a?utm_source=x", f"{OURS}/guide/"],  # the same backlink
            ["https://www.partner.example/b", f"{OURS}/guide"],  # new page, known referring domain
            ["https://new.example/c", f"{OURS}/guide"],
        ]
    )
    summary = await do_import(eng, data)
    assert (summary.new_backlinks, summary.duplicates_tracked) == (2, 1)
    assert summary.referring_domains == 2 and summary.new_referring_domains == 1
    assert summary.new_domains_sample == ("new.example",)
    assert len(await eng.tracked()) == 3  # imported backlinks are ordinary tracked backlinks
    writes = write_count(eng)
    repeat = await do_import(eng, data)
    assert (repeat.new_backlinks, repeat.duplicates_tracked, repeat.written) == (0, 3, False)
    assert write_count(eng) == writes  # nothing new, nothing written


async def test_one_write_for_the_whole_file(eng: Engine) -> None:
    rows = [["Referring page URL", "Target URL", "Anchor"]]
    rows += [[f"https://site{i % 300}.example/p{i}", f"{OURS}/t{i % 7}", f"a{i}"] for i in range(3000)]
    before = write_count(eng)
    summary = await do_import(eng, table(rows))
    assert summary.new_backlinks == 3000 and summary.new_referring_domains == 300
    assert write_count(eng) == before + 1
    record = await eng.store.get(IMPORTS_TABLE, summary.import_id)
    assert record is not None and record["new_backlinks"] == 3000 and record["filename"] == "export.csv"


# -- broken files: all or nothing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\r\n \r\n", "empty"),
        (bytes(range(256)) * 40, "binary|not cp1252"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "binary"),
        (b"PK\x03\x04" + b"\x14\x00" * 30, "damaged or truncated zip"),
        (b"name,email\r\nann,ann@example.com\r\n", "not recognised"),
    ],
)
async def test_fatal_problems_leave_the_database_unchanged(eng: Engine, data: bytes, message: str) -> None:
    await eng.track("https://blog.partner.example/a", f"{OURS}/")
    path = eng.settings.db_path
    before = path.read_bytes()
    with pytest.raises(InputError, match=message):
        await do_import(eng, data)
    assert path.read_bytes() == before


async def test_truncated_zip_is_refused(eng: Engine) -> None:
    archive = zipped(
        {
            "Latest links.csv": (
                "Linking page,Last crawled\r\n" + "https://a.example/x,2026-01-01\r\n" * 500
            ).encode()
        }
    )
    with pytest.raises(InputError, match=r"damaged|truncated"):
        await do_import(eng, archive[: len(archive) // 2], name="links.zip", target_site=OURS)
    corrupt = bytearray(archive)
    corrupt[60:70] = b"\x00" * 10  # inside the compressed data: the CRC check fails
    with pytest.raises(InputError, match=r"damaged|truncated"):
        await do_import(eng, bytes(corrupt), name="links.zip", target_site=OURS)
    assert not eng.settings.db_path.exists()


async def test_header_only_file_imports_nothing_and_writes_nothing(eng: Engine) -> None:
    summary = await do_import(eng, "Linking page,Last crawled\r\n", target_site=OURS)
    assert (summary.rows_read, summary.written) == (0, False)
    assert not eng.settings.db_path.exists()


async def test_size_limits_and_zip_bombs(eng: Engine) -> None:
    assert CLI_MAX_IMPORT_FILE_BYTES == MAX_IMPORT_FILE_BYTES
    # A text at the character cap fits the file cap in UTF-16; Slack's download cap stays lower.
    assert MAX_IMPORT_FILE_BYTES >= 2 * MAX_IMPORT_CHARS > MAX_IMPORT_BYTES
    data = table([["Referring page URL", "Target URL"], ["https://a.partner.example/1", f"{OURS}/"]]).encode()
    with pytest.raises(InputError, match="limit"):
        await import_backlinks(eng, data, filename="x.csv", added_by="U1", max_bytes=len(data) - 1)
    bomb = zipped({"Latest links.csv": b"Linking page,Last crawled\r\n" + b" " * 2_000_000})
    assert len(bomb) < 20_000
    with pytest.raises(InputError, match="unpacked"):
        await import_backlinks(
            eng, bomb, filename="b.zip", added_by="U1", target_site=OURS, max_bytes=1_000_000
        )


async def test_excel_workbooks_and_zips_without_tables_are_refused(eng: Engine) -> None:
    workbook = zipped({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
    with pytest.raises(InputError, match="Excel"):
        await do_import(eng, workbook, name="links.xlsx")
    with pytest.raises(InputError, match="without a CSV"):
        await do_import(eng, zipped({"readme.md": b"hello"}), name="x.zip")
    only_text = zipped({"Top linking text.csv": table([["Linking text", "Links"], ["guide", "4"]]).encode()})
    with pytest.raises(InputError, match="no table of linking pages"):
        await do_import(eng, only_text, name="x.zip")


# -- verification of imported backlinks ---------------------------------------------------------------


async def test_imported_backlinks_are_verified_by_the_next_recheck(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    ours.html("/", "<p>home</p>")
    partner.html("/resources", f'<main><p>See <a href="{ours.url("/")}">our guide</a>.</p></main>')
    partner.html("/gone", "<p>nothing here</p>")
    data = table([["Linking page"], [partner.url("/resources")], [partner.url("/gone")]])
    summary = await do_import(engine, data, target_site=ours.url("/"))
    assert summary.new_backlinks == 2
    result, _ = await engine.recheck()
    assert result.verdicts.get("live") == 1
    docs = await stored(engine)
    assert docs[partner.url("/resources")]["state"] == "live"
    assert result.snapshot["referring_domains"] == ["127.0.0.2"]


# -- values and the fast path -------------------------------------------------------------------------


def test_cell_values() -> None:
    assert [parse_count(v) for v in ("1,240", "1.240", "1 240", "1\u202f240", "12", "1,24", "", "x")] == [
        1240, 1240, 1240, 1240, 12, None, None, None,
    ]  # fmt: skip
    assert [parse_flag(v) for v in ("TRUE", "false", "Yes", "+", "", "0", "maybe")] == [
        True, False, True, True, False, False, None,
    ]  # fmt: skip
    assert [parse_score(v) for v in ("71", "71.5", "71,5", "", "n/a")] == [71, 71.5, 71.5, None, None]
    cases = {
        "2026-09-15": "2026-09-15",
        "2026-09-15 10:00:00": "2026-09-15",
        "Sep 15, 2026": "2026-09-15",
        "15 septembre 2026": "2026-09-15",
        "15. März 2026": "2026-03-15",
        "15 de septiembre de 2026": "2026-09-15",
        "2026年9月15日": "2026-09-15",
        "1735776000": "2025-01-02",
        "31/12/2026": "2026-12-31",
        "Feb 30, 2026": None,
        "soon": None,
    }
    for raw, expected in cases.items():
        assert parse_date(raw) == expected, raw
    assert (parse_date("03/04/2026", "mdy"), parse_date("03/04/2026", "dmy")) == ("2026-03-04", "2026-04-03")


@pytest.mark.parametrize(
    "url",
    [
        "https://A.Example.COM", "https://a.example.com/", "https://a.example.com//", "https://a.example.com/x/",
        "HTTPS://a.example.com/X#frag", "https://a.example.com#f", "https://a.example.com/?utm_source=1",
        "https://a.example.com/p?b=2&utm_x=1&a=1", "http://x.example/%7Euser/", "https://x.example/a;b",
        "https://x.example/a/b/../c", "https://x.example/#/", "https://xn--bcher-kva.de/katalog/",
        "https://a-b.c-d.example/~x/@y:z", "http://x.example/a\\b", "https://x.example/caf%c3%a9/",
        "https://x.example/a/%2e%2E/b", "https://x.example/./a/.", "https://x.example/a^b{c}", "https://x.example/a%7e",
        "https://x.example/.well-known/x", "https://x.example/a#?b",
    ],
)  # fmt: skip
def test_fast_link_key_matches_link_key(url: str) -> None:
    match = _PLAIN_URL.fullmatch(url)
    assert match is not None
    assert plain_link_key(url, match) == link_key(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1/", "http://0x7f.1/", "http://2130706433/", "http://1.2.3.4/", "http://10.0.0.1.",
        "http://a.example.0x10/", "http://[::1]/", "http://u@a.example/", "http://a.example:8080/",
        "http://a.example\\@10.0.0.1/", "http://a.example./", "http://bücher.example/", "http://a_b.example/",
        "http://a.example /x", "http://a.example/\tx",
    ],
)  # fmt: skip
def test_fast_path_never_takes_urls_the_policy_must_see(url: str) -> None:
    assert _PLAIN_URL.fullmatch(url) is None


def test_fast_path_urls_pass_the_address_policy() -> None:
    policy = AddressPolicy(())
    for url in ("https://a.example.com/x?y=1", "http://xn--bcher-kva.de/", "https://a-1.b2.example/#f"):
        assert _PLAIN_URL.fullmatch(url) is not None
        assert policy.vet_url(url) is None


# -- the CLI ------------------------------------------------------------------------------------------


def test_cli_import_json_and_exit_codes(tmp_path: Path) -> None:
    export = tmp_path / "ahrefs.csv"
    text = table([AHREFS_HEADER, ahrefs_row("https://blog.partner.example/a")], delimiter="\t")
    export.write_bytes(utf16le(text))
    db = tmp_path / "db.json"
    proc = run_cli("import", str(export), "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["format"], data["encoding"], data["new_backlinks"], data["rows_read"]) == (
        "ahrefs", "utf-16-le", 1, 1,
    )  # fmt: skip
    assert data["added_by"].startswith("cli")
    text_run = run_cli("import", str(export), db=db)
    assert text_run.returncode == 0 and "already tracked: 1" in text_run.stdout

    latest = tmp_path / "latest.csv"
    latest.write_text("Linking page,Last crawled\nhttps://a.partner.example/x,2026-09-15\n")
    missing = run_cli("import", str(latest), db=db)
    assert missing.returncode == 2 and "--target-site" in missing.stderr and not missing.stdout
    bad_format = run_cli("import", str(latest), "--format", "xlsx", db=db)
    assert bad_format.returncode == 2 and "unknown format" in bad_format.stderr


def test_cli_reads_files_within_the_limit(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read .*nope\.csv: No such file"):
        read_export(str(tmp_path / "nope.csv"))
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 11)
    with pytest.raises(InputError, match="limit is 10"):
        read_export(str(big), max_bytes=10)
    assert read_export(str(big), max_bytes=11) == b"x" * 11
    with pytest.raises(InputError, match="is a directory, not a file"):
        read_export(str(tmp_path))


def test_cli_refuses_devices_and_pipes_before_reading(tmp_path: Path) -> None:
    # /dev/zero never ends: reading it "to the end" ran the process out of memory.
    with pytest.raises(InputError, match=r"/dev/zero is a character device, not a file.*pipe it in with -"):
        read_export("/dev/zero")
    fifo = tmp_path / "export.fifo"
    os.mkfifo(fifo)
    # Refused at once, without waiting for a writer to open the other end.
    with pytest.raises(InputError, match="is a pipe \\(FIFO\\), not a file"):
        read_export(str(fifo))


def test_cli_reads_standard_input_within_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-`` reads a real pipe; the cap holds while reading (the writer would never stop)."""
    read_end, write_end = os.pipe()
    stop = threading.Event()

    def endless() -> None:
        with open(write_end, "wb") as out:
            try:
                while not stop.is_set():
                    out.write(b"https://a.partner.example/\n" * 4096)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    with open(read_end, "rb") as pipe:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(pipe))
        with pytest.raises(InputError, match="standard input is over the limit of 1,000,000 bytes"):
            read_export("-", max_bytes=1_000_000)
        stop.set()
    writer.join(timeout=10)
    read_end, write_end = os.pipe()
    os.write(write_end, b"Linking page\nhttps://a.partner.example/\n")
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(pipe))
        assert read_export("-") == b"Linking page\nhttps://a.partner.example/\n"


def test_cli_import_from_standard_input_and_from_a_device(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    export = table([["Referring page URL", "Target URL"], ["https://a.partner.example/1", f"{OURS}/"]])
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "import", "-", "--json"],
        input=export.encode(), capture_output=True, env={**os.environ, "LINKPACT_DB": str(db)},
        cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["filename"], summary["new_backlinks"]) == ("stdin", 1)
    zero = run_cli("import", "/dev/zero", db=db)
    assert zero.returncode == 2 and "character device" in zero.stderr and "Traceback" not in zero.stderr


async def test_the_cap_is_on_the_text_not_on_its_encoding(eng: Engine) -> None:
    """UTF-16 takes two bytes a character: a file twice the text cap in bytes holds a text within it."""
    rows = [["Referring page URL", "Target URL", "Anchor"]] + [
        [f"https://p{i}.partner.example/a", f"{OURS}/", "x" * 40] for i in range(200)
    ]
    text = table(rows, "\t")
    data = utf16le(text)
    assert len(data) > 2 * len(text)  # the bytes are twice the text ...
    summary = await do_import(eng, data, max_chars=len(text) + 1, max_bytes=len(data))
    assert summary.new_backlinks == 200  # ... and the text cap is what counts
    too_long = r"export\.csv holds over 1,000 characters of text; split the export"
    with pytest.raises(InputError, match=too_long):
        await import_backlinks(eng, text.encode(), filename="export.csv", added_by="U1", max_chars=1_000)
    # In a zip, the tables' text counts together.
    archive = zipped({"a.csv": text.encode(), "b.csv": text.replace("p1", "q1").encode()})
    with pytest.raises(InputError, match=r"links\.zip's tables hold over"):
        await import_backlinks(eng, archive, filename="links.zip", added_by="U1", max_chars=len(text) + 10)


def test_cli_imports_a_utf16_export_whole(tmp_path: Path) -> None:
    """The functional half of bench/import_bench.py (which times 100,000 rows, about 58 MB): the CLI
    reads a UTF-16 export, bigger in bytes than its text, and imports every row."""
    rows = [["Referring page URL", "Target URL", "Anchor"]] + [
        [f"https://p{i}.partner.example/a", f"{OURS}/", "anchor text"] for i in range(2000)
    ]
    export = tmp_path / "ahrefs.csv"
    export.write_bytes(utf16le(table(rows, "\t")))
    assert len(read_export(str(export))) == export.stat().st_size
    proc = run_cli("import", str(export), "--json", db=tmp_path / "db.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["new_backlinks"] == 2000
