"""The agreements CSV: export, Linkody files, encodings, delimiters, and all-or-nothing imports.

Parsed agreements go through the real :class:`AgreementService` of a real engine (TinyStore file in a
tmp dir, real address policy); no network is used: validation does not fetch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.agreements.csvfile import (
    COLUMNS,
    LINKODY_COLUMNS,
    CsvImportError,
    export_cell,
    export_csv,
    export_csv_bytes,
    import_csv,
    parse_csv,
    read_csv,
    unneutralise_cell,
    validate_import,
)
from bot.agreements.model import (
    Agreement,
    AgreementInput,
    AgreementKind,
    Direction,
    ExpectedRel,
    LinkHealth,
    LinkInput,
    Priority,
)
from bot.config import Settings
from bot.engine import Engine
from bot.errors import InputError
from bot.models import Placement

NOW = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
OWNER = "U0OWNER1"
HYPERLINK = '=HYPERLINK("https://evil.example/steal","click me")'
NOTES = 'Met at "SEO Day", agreed: two links, one each;\nsecond line, with a comma'


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine.create(Settings(db_path=tmp_path / "db.json"), now=lambda: NOW)
    try:
        yield eng
    finally:
        await eng.aclose()


def inputs() -> list[AgreementInput]:
    """An exchange (two links), a three-way (three), a paid link, an editorial one with defaults."""
    exchange = AgreementInput(
        partner_name="@Partner A",
        partner_site="https://partner-a.example",
        owner=OWNER,
        kind="exchange",
        deadline="2030-01-20",
        links=(
            LinkInput(
                "https://ours.example/partners",
                "https://partner-a.example/tools",
                direction="ours",
                anchor="Partner A tools",
            ),
            LinkInput(
                "https://blog.partner-a.example/resources",
                "https://ours.example/guide",
                direction="theirs",
                anchor=HYPERLINK,
                placement="main",
            ),
        ),
        contact_name="+1 Ana",
        contact_email="ana@partner-a.example",
        contact_slack="<@U0ANA123>",
        notes=NOTES,
        qualification={
            "relevance": ("same niche, tools", "5"),
            "authority": ("@x mentions us", "4"),
            "content_quality": ("-x: thin pages", ""),
            "traffic": ("", "2"),
        },
        tags=("-x", "q1", "exchange"),
    )
    three_way = AgreementInput(
        partner_name="Partner B",
        partner_site="https://partner-b.example",
        owner=OWNER,
        kind="three_way",
        deadline="2030-02-01",
        links=(
            LinkInput("https://ours.example/a", "https://partner-b.example/b", direction="ours"),
            LinkInput("https://partner-b.example/b", "https://third-c.example/c", direction="theirs"),
            LinkInput(
                "https://third-c.example/c", "https://ours.example/a", direction="theirs", rel="nofollow"
            ),
        ),
    )
    paid = AgreementInput(
        partner_name="Paid Partner",
        partner_site="https://paid.example",
        owner=OWNER,
        kind="paid",
        deadline="2030-03-01",
        links=(LinkInput("https://paid.example/review", "https://ours.example/", anchor="Ours"),),
        notes="'=already quoted by someone",
        cost="150.00",
        qualification={"traffic": ("12k visits a month", "3")},
    )
    editorial = AgreementInput(
        partner_name="Press",
        partner_site="https://press.example",
        owner=OWNER,
        kind="editorial",
        links=(LinkInput("https://press.example/story", "https://ours.example/", placement="aside"),),
    )
    return [exchange, three_way, paid, editorial]


def comparable(agreement: Agreement) -> Agreement:
    """The agreement without what an import does not carry: ids, timestamps and check results."""
    return replace(
        agreement,
        id="",
        created_at="",
        updated_at="",
        links=tuple(
            replace(
                link,
                health=LinkHealth.NOT_CHECKED,
                reason="",
                checked_at=None,
                ever_healthy=False,
                seen_anchor=None,
                seen_rel=(),
                seen_placement=None,
            )
            for link in agreement.links
        ),
    )


def table(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(COLUMNS)
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def linkody(*rows: str, header: str = ",".join(LINKODY_COLUMNS)) -> str:
    return "\r\n".join((header, *rows)) + "\r\n"


# -- export and round trip --------------------------------------------------------------------------


async def test_export_then_import_gives_the_same_agreements(engine: Engine) -> None:
    stored = [await engine.agreements.add(item) for item in inputs()]
    # A checked link: the export shows its health and the derived state.
    checked = replace(
        stored[0],
        links=(
            replace(stored[0].links[0], health=LinkHealth.HEALTHY, reason="link_present",
                    checked_at="2030-01-14T08:00:00+00:00", ever_healthy=True),
            stored[0].links[1],
        ),
    )  # fmt: skip
    agreements = [checked, *stored[1:]]

    text = export_csv(agreements, today=TODAY)
    rows = table(text)
    assert len(rows) == 2 + 3 + 1 + 1  # one row per promised link
    assert [r["AGREEMENT ID"] for r in rows] == ["1", "1", "2", "2", "2", "3", "4"]
    first, second = rows[0], rows[1]
    assert first["URL FROM"] == "https://ours.example/partners"
    assert first["EXPECTED LANDING PAGE URL"] == "https://partner-a.example/tools"
    assert (first["DIRECTION"], first["EXPECTED FOLLOW"], first["EXPECTED REL"]) == ("ours", "yes", "follow")
    assert (first["LINK HEALTH"], first["LINK REASON"]) == ("healthy", "link_present")
    assert first["LAST CHECKED"] == "2030-01-14T08:00:00+00:00"
    assert (first["STATE"], first["KIND"], first["OWNER"]) == ("pending", "exchange", OWNER)
    assert first["ADDED"] == "2030-01-15" and first["EXPIRES"] == first["DEADLINE"] == "2030-01-20"
    assert first["CONTACT SLACK"] == "U0ANA123" and first["CONTACT EMAIL"] == "ana@partner-a.example"
    assert (first["RELEVANCE"], first["RELEVANCE SCORE"]) == ("same niche, tools", "5")
    assert first["NOTES"] == NOTES  # commas, quotes and a newline survive the csv module's quoting
    # Formula-looking cells are neutralised in the file ...
    assert second["EXPECTED ANCHOR"] == "'" + HYPERLINK
    assert first["CONTACT NAME"] == "'+1 Ana"
    assert first["PARTNER"] == "'@Partner A"
    assert first["TAGS"] == "'-x,q1,exchange"
    assert first["AUTHORITY"] == "'@x mentions us"
    assert first["CONTENT QUALITY"] == "'-x: thin pages"
    assert rows[5]["NOTES"] == "''=already quoted by someone"  # kept apart from our own neutralising
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())
    # ... a paid link is expected sponsored, so not followed; other unfollowed rels say "no" too.
    paid = rows[5]
    assert (paid["EXPECTED FOLLOW"], paid["EXPECTED REL"], paid["COST"]) == ("no", "sponsored", "150.00")
    assert (rows[4]["EXPECTED FOLLOW"], rows[4]["EXPECTED REL"]) == ("no", "nofollow")
    assert rows[6]["EXPECTED PLACEMENT"] == "aside" and rows[6]["EXPECTED ANCHOR"] == ""

    # ... and come back un-neutralised: the round trip is lossless.
    parsed = parse_csv(text, owner=OWNER, today=TODAY)
    again = [engine.agreements.validate(item) for item in parsed]
    assert [comparable(a) for a in again] == [comparable(a) for a in stored]
    assert again[0].links[1].expected_anchor == HYPERLINK
    assert again[0].contact.name == "+1 Ana" and again[0].tags == ("-x", "q1", "exchange")
    assert again[2].notes == "'=already quoted by someone"
    assert again[2].links[0].expected_rel is ExpectedRel.SPONSORED
    assert again[3].links[0].expected_placement is Placement.ASIDE


async def test_the_bytes_export_has_a_bom_and_reads_back(engine: Engine) -> None:
    stored = [await engine.agreements.add(item) for item in inputs()]
    data = export_csv_bytes(stored, today=TODAY)
    assert data.startswith(b"\xef\xbb\xbfURL FROM,TAGS,NOTES,")
    again = [engine.agreements.validate(item) for item in parse_csv(data, owner=OWNER, today=TODAY)]
    assert [comparable(a) for a in again] == [comparable(a) for a in stored]


def test_an_agreement_without_links_still_gets_a_row() -> None:
    bare = Agreement(
        id="9", partner_name="P", partner_site="https://p.example", owner=OWNER,
        kind=AgreementKind.EDITORIAL, deadline=date(2030, 2, 1), links=(),
    )  # fmt: skip
    [row] = table(export_csv([bare], today=TODAY))
    assert (row["AGREEMENT ID"], row["URL FROM"], row["STATE"]) == ("9", "", "pending")


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-x", "@x", "\tx", "'=x", "''@x", "'plain", "plain", "", "a=b", "'", "'-"],
)
def test_cells_round_trip_and_never_start_a_formula(value: str) -> None:
    cell = export_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unneutralise_cell(cell) == value


# -- Linkody files ----------------------------------------------------------------------------------


async def test_a_linkody_file_gives_one_agreement_per_row(engine: Engine) -> None:
    text = linkody(
        'https://blog.partner.co.uk/post,"seo, q1",Agreed by mail,https://ours.example/guide,yes,'
        "Our guide,2029-12-01,2030-03-01,",
        "https://links.example/list,,,https://ours.example/,no,,2029-01-01,2029-06-30,49.90",
    )
    first, second = parse_csv(text, owner=OWNER, today=TODAY)
    assert (first.partner_site, first.partner_name) == ("https://blog.partner.co.uk", "partner.co.uk")
    assert (second.partner_site, second.partner_name) == ("https://links.example", "links.example")

    a, b = (engine.agreements.validate(item) for item in (first, second))
    assert a.kind is AgreementKind.EDITORIAL and b.kind is AgreementKind.PAID  # a cost means paid
    [link] = a.links
    assert (link.direction, link.expected_rel) == (Direction.THEIRS, ExpectedRel.FOLLOW)
    assert a.links[0].source_url == "https://blog.partner.co.uk/post"
    assert a.links[0].target_url == "https://ours.example/guide"
    assert a.links[0].expected_anchor == "Our guide"
    assert a.tags == ("seo", "q1") and a.notes == "Agreed by mail"
    assert a.deadline == date(2030, 3, 1)  # EXPIRES in the future is the deadline
    assert b.deadline == TODAY + timedelta(days=7)  # EXPIRES passed: the default deadline
    assert b.links[0].expected_rel is ExpectedRel.SPONSORED  # not followed, and paid
    assert b.cost == "49.90"


def test_linkody_follow_no_on_an_unpaid_link_expects_nofollow() -> None:
    [item] = parse_csv(
        linkody("https://a.example/x,,,https://ours.example/,no,,,,"), owner=OWNER, today=TODAY
    )
    assert (item.kind, item.links[0].rel) == ("editorial", "nofollow")


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_delimited_files(delimiter: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["url_from", "Expected_Landing_Page_URL", "notes", "Domain Authority"])
    writer.writerow(["https://a.example/x", "https://ours.example/", "one; two,\tthree\nfour", "57"])
    writer.writerow(["https://b.example/y", "https://ours.example/z", "", ""])
    first, second = parse_csv(buffer.getvalue(), owner=OWNER, today=TODAY)
    assert first.notes == "one; two,\tthree\nfour"  # quoted delimiters and newlines stay in the cell
    assert first.links[0].target_url == "https://ours.example/"
    assert second.links[0].source_url == "https://b.example/y"


def test_headers_are_matched_loosely_and_unknown_columns_ignored() -> None:
    text = "Status, expected landing page url ,URL_FROM,  Expected   Anchor\r\nOK,https://ours.example/,https://a.example/x,Hi\r\n"
    [item] = parse_csv(text, owner=OWNER, today=TODAY)
    assert item.links[0] == LinkInput("https://a.example/x", "https://ours.example/", "theirs", "Hi", "", "")


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8-sig"),
        lambda text: text.encode("utf-16"),  # with a BOM, in the machine's byte order
        lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
        lambda text: text.encode("cp1252"),  # no marker, not UTF-8: Excel's "CSV (Windows)"
    ],
    ids=["utf-8-bom", "utf-16", "utf-16-be", "cp1252"],
)
def test_encodings(encode: object) -> None:
    text = linkody("https://café.example/x,,Crème brûlée – 5€,https://ours.example/,,,,,")
    [item] = parse_csv(encode(text), owner=OWNER, today=TODAY)  # type: ignore[operator]
    assert item.notes == "Crème brûlée – 5€"
    assert item.links[0].source_url == "https://café.example/x"
    assert item.partner_site == "https://xn--caf-dma.example"


def test_utf16_without_a_bom_is_refused_with_a_hint() -> None:
    data = linkody("https://a.example/x,,,https://ours.example/,,,,,").encode("utf-16-le")
    with pytest.raises(InputError, match="UTF-16 without a byte-order mark"):
        parse_csv(data, owner=OWNER, today=TODAY)


# -- bad files --------------------------------------------------------------------------------------


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(InputError, match="no EXPECTED LANDING PAGE URL column") as caught:
        parse_csv("URL FROM,NOTES\r\nhttps://a.example/,x\r\n", owner=OWNER, today=TODAY)
    assert "URL FROM column" not in str(caught.value)
    with pytest.raises(InputError, match="no URL FROM and no EXPECTED LANDING PAGE URL column"):
        parse_csv("LINK,NOTES\r\nhttps://a.example/,x\r\n", owner=OWNER, today=TODAY)
    with pytest.raises(InputError, match="empty"):
        parse_csv(b"\xef\xbb\xbf\r\n\r\n", owner=OWNER, today=TODAY)


async def test_bad_rows_are_all_reported_and_nothing_is_stored(engine: Engine) -> None:
    text = (
        "URL FROM,EXPECTED LANDING PAGE URL,NOTES,DEADLINE,KIND,EXPECTED FOLLOW,RELEVANCE SCORE\r\n"
        "ftp://a.example/x,https://ours.example/,,,,,\r\n"  # row 2: not http(s)
        'https://b.example/x,https://ours.example/,"two\nlines",31/01/2030,,,\r\n'  # row 3: ambiguous date
        "https://c.example/x,https://ours.example/,,2030-02-30,,,\r\n"  # row 4: no such day
        "https://d.example/x,https://ours.example/,,,swap,,\r\n"  # row 5: unknown kind
        "https://e.example/x,https://ours.example/,,,,maybe,7\r\n"  # row 6: follow and score
        "https://f.example/x,https://ours.example/,,,,,\r\n"  # row 7: fine
        "https://g.example/x,not a url,,,,,\r\n"  # row 8: no scheme
    )
    with pytest.raises(CsvImportError) as caught:
        await import_csv(engine.agreements, text, owner=OWNER)
    problems = caught.value.problems
    assert [p.rows for p in problems] == [(2,), (3,), (4,), (5,), (6,), (6,), (8,)]
    assert [p.column for p in problems] == [
        "URL FROM", "DEADLINE", "DEADLINE", "KIND", "EXPECTED FOLLOW", "RELEVANCE SCORE",
        "EXPECTED LANDING PAGE URL",
    ]  # fmt: skip
    message = str(caught.value)
    assert message.startswith("nothing was imported: the file has 7 problems")
    assert "row 2, URL FROM: 'ftp://a.example/x' is not an http(s) URL" in message
    assert "row 3, DEADLINE: '31/01/2030' is ambiguous" in message
    assert "row 5, KIND: 'swap' is not a kind" in message
    assert "row 7" not in message
    assert await engine.agreements.all() == []


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
async def test_an_unclosed_quote_fails_the_whole_file_with_its_row(engine: Engine, delimiter: str) -> None:
    header = ["URL FROM", "EXPECTED LANDING PAGE URL", "NOTES"]
    rows = [[f"https://p{n}.example/x", "https://ours.example/", f"note {n}"] for n in range(1, 6)]
    rows[2][2] = '"note 3 opens a quote'  # row 4 (the header is row 1)
    text = "\r\n".join(delimiter.join(cells) for cells in [header, *rows]) + "\r\n"
    with pytest.raises(CsvImportError) as caught:
        await import_csv(engine.agreements, text.encode(), owner=OWNER)
    [problem] = caught.value.problems
    assert problem.rows == (4,)
    assert "line 4 opens a quoted cell" in problem.message and "never closed" in problem.message
    assert await engine.agreements.all() == []  # not even the rows before it

    # A stray quote further down closes it: the rows in between would be one note.
    rows[4][2] = 'note 5"'
    text = "\r\n".join(delimiter.join(cells) for cells in [header, *rows]) + "\r\n"
    with pytest.raises(CsvImportError, match=r"row 4: line 4 opens a quoted cell .* runs on to line 6"):
        parse_csv(text, owner=OWNER, today=TODAY)

    # A note with line breaks and delimiters, quoted properly, is one row as before.
    rows[2][2], rows[4][2] = f'"two{delimiter} lines\nof a note"', "note 5"
    text = "\r\n".join(delimiter.join(cells) for cells in [header, *rows]) + "\r\n"
    parsed = parse_csv(text, owner=OWNER, today=TODAY)
    assert [item.notes for item in parsed][2] == f"two{delimiter} lines\nof a note"
    assert len(parsed) == 5


def test_a_cell_over_the_csv_modules_limit_is_a_problem_on_its_row() -> None:
    text = (
        "URL FROM,EXPECTED LANDING PAGE URL,NOTES\r\n"
        "https://a.example/x,https://ours.example/,ok\r\n"
        f'https://b.example/x,https://ours.example/,"{"n" * 200_000}"\r\n'
    )
    with pytest.raises(CsvImportError, match=r"row 3: line 3 cannot be read as CSV"):
        parse_csv(text, owner=OWNER, today=TODAY)


def test_rows_of_one_agreement_must_agree() -> None:
    text = (
        "AGREEMENT ID,URL FROM,EXPECTED LANDING PAGE URL,PARTNER,KIND\r\n"
        "7,https://ours.example/a,https://p.example/,Partner,exchange\r\n"
        "7,https://p.example/b,https://ours.example/,,\r\n"  # empty: takes the first row's values
        "7,https://p.example/c,https://ours.example/c,Someone Else,\r\n"
    )
    with pytest.raises(CsvImportError) as caught:
        parse_csv(text, owner=OWNER, today=TODAY)
    [problem] = caught.value.problems
    assert (problem.rows, problem.column) == ((4,), "PARTNER")
    assert "differs from 'Partner' on row 2" in problem.message


def test_expected_rel_and_expected_follow_must_not_contradict() -> None:
    text = (
        "URL FROM,EXPECTED LANDING PAGE URL,EXPECTED REL,EXPECTED FOLLOW\r\n"
        "https://a.example/x,https://ours.example/,sponsored,yes\r\n"
    )
    with pytest.raises(CsvImportError, match="EXPECTED REL says sponsored but EXPECTED FOLLOW says yes"):
        parse_csv(text, owner=OWNER, today=TODAY)


async def test_service_errors_are_placed_on_their_rows(engine: Engine) -> None:
    text = (
        "AGREEMENT ID,URL FROM,EXPECTED LANDING PAGE URL,DIRECTION,DEADLINE,CONTACT EMAIL\r\n"
        "1,https://ours.example/a,https://p.example/,ours,2030-02-01,\r\n"
        "1,http://127.0.0.1/admin,https://ours.example/,theirs,,\r\n"  # refused address
        # a past deadline is accepted on import (restoring an export of overdue agreements)
        "2,https://q.example/x,https://q.example/y,theirs,2029-12-31,not-an-email\r\n"
    )
    parsed = read_csv(text, owner=OWNER, today=TODAY)
    assert [item.rows for item in parsed] == [(2, 3), (4,)]
    with pytest.raises(CsvImportError) as caught:
        validate_import(engine.agreements, parsed)
    where = {(p.rows, p.column) for p in caught.value.problems}
    assert where == {
        ((3,), "URL FROM"),  # 127.0.0.1 is refused by the address policy ...
        ((2, 3), "PARTNER SITE"),  # ... and so is the partner site taken from it
        ((4,), "EXPECTED LANDING PAGE URL"),  # a link from q.example to itself
        ((4,), "CONTACT EMAIL"),
    }


# -- grouping, dates, storing -----------------------------------------------------------------------


async def test_import_groups_rows_by_agreement_id_and_stores_them(engine: Engine) -> None:
    text = (
        "agreement_id;url_from;expected_landing_page_url;direction;deadline;kind;partner\r\n"
        "41;https://ours.example/a;https://p.example/;ours;2030/02/01;;\r\n"
        "42;https://r.example/x;https://ours.example/r;;2030-02-03T10:00:00Z;;Rita\r\n"
        "41;https://blog.p.example/b;https://ours.example/;theirs;;;\r\n"
    )
    stored = await import_csv(engine.agreements, text.encode(), owner="U0IMPORTER")
    assert [(a.id, a.partner_name, len(a.links)) for a in stored] == [("1", "p.example", 2), ("2", "Rita", 1)]
    first, second = stored
    assert first.kind is AgreementKind.EXCHANGE  # links both ways, no cost: an exchange
    assert first.partner_site == "https://blog.p.example"  # where their link sits
    assert first.deadline == date(2030, 2, 1) and second.deadline == date(2030, 2, 3)
    assert first.owner == second.owner == "U0IMPORTER"
    assert second.kind is AgreementKind.EDITORIAL
    assert len(await engine.agreements.all()) == 2
    # The partner-side links are tracked backlinks, as for agreements logged by hand.
    tracked = await engine.tracked("https://ours.example/")
    assert [b.source_url for b in tracked] == ["https://blog.p.example/b"]


async def test_an_agreement_already_stored_or_given_twice_is_refused(engine: Engine) -> None:
    text = (
        "AGREEMENT ID,URL FROM,EXPECTED LANDING PAGE URL,DIRECTION\r\n"
        "7,https://p.example/links,https://ours.example/,theirs\r\n"
        "7,https://ours.example/friends,https://p.example/,ours\r\n"
        "9,https://q.example/a,https://ours.example/,theirs\r\n"
    )
    await import_csv(engine.agreements, text, owner=OWNER)
    # Compared by link_key: the case of the host and a trailing slash do not make another agreement.
    again = text.replace("https://p.example/links", "https://P.example/links/") + (
        "10,https://r.example/a,https://ours.example/,theirs\r\n"
        "11,https://r.example/a,https://ours.example,theirs\r\n"
    )
    with pytest.raises(CsvImportError) as caught:
        await import_csv(engine.agreements, again, owner=OWNER)
    assert [(p.rows, p.message.split(";")[0]) for p in caught.value.problems] == [
        ((2, 3), "this agreement is already stored as #1 (p.example: the same partner and promised links)"),
        ((4,), "this agreement is already stored as #2 (q.example: the same partner and promised links)"),
        ((6,), "the same agreement (partner and promised links) as row 5"),
    ]
    assert len(await engine.agreements.all()) == 2  # nothing more was stored


def test_a_header_only_file_has_no_agreements() -> None:
    assert parse_csv(",".join(COLUMNS) + "\r\n", owner=OWNER, today=TODAY) == []


async def test_priority_is_exported_last_and_read_back_and_may_be_absent(engine: Engine) -> None:
    first, *_ = inputs()
    stored = await engine.agreements.add(replace(first, priority="high"))
    assert COLUMNS[-1] == "PRIORITY"
    rows = table(export_csv([stored], today=TODAY))
    assert {row["PRIORITY"] for row in rows} == {"high"}

    [again] = [
        engine.agreements.validate(item)
        for item in parse_csv(export_csv([stored], today=TODAY), owner=OWNER, today=TODAY)
    ]
    assert again.priority is Priority.HIGH
    # A file without the column (Linkody's own, or an export from before priorities): normal.
    [plain] = parse_csv(linkody("https://p.example/post,,,https://ours.example/,yes,,,,"), owner=OWNER)
    assert engine.agreements.validate(plain).priority is Priority.NORMAL
    text = (
        "URL FROM,EXPECTED LANDING PAGE URL,AGREEMENT ID,PRIORITY\r\n"
        "https://a.example/x,https://ours.example/,1,Low\r\n"
        "https://a.example/y,https://ours.example/,1,\r\n"  # empty on a later row: the agreement's value
        "https://b.example/x,https://ours.example/,2,urgent\r\n"
    )
    with pytest.raises(CsvImportError) as caught:
        parse_csv(text, owner=OWNER, today=TODAY)
    [problem] = caught.value.problems
    assert (problem.rows, problem.column) == ((4,), "PRIORITY")
    assert "'urgent' is not a priority (use high, normal, low)" in str(caught.value)
    [low] = parse_csv(text.rsplit("\r\n", 2)[0] + "\r\n", owner=OWNER, today=TODAY)
    assert engine.agreements.validate(low).priority is Priority.LOW
