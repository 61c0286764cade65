"""Importing backlink exports from Slack (issue 5, "Where"), driven as Slack drives it: signed slash
commands and Events API requests into the Bolt app in-process, a real engine on a TinyDB file, the pages
of the backlinks served by local sites, and the Slack stand-in playing files.list, files.info and the
file host (it hands the bytes over only with the bot token).

Covered: an Ahrefs UTF-16 tab file and a Search Console CSV imported with ``/linkcheck import`` (summary
in the channel, backlinks stored, then verified in the background with the result in the thread); no
file; a declared size over the cap (no byte downloaded) and a body that overflows a small cap while
streaming; a file hosted elsewhere; a file that is no export; a file sent to the bot in a DM; the bot
not in the channel; a missing scope; one import at a time.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.backlinks.registry import BACKLINKS_TABLE
from bot.config import SlackSettings
from bot.engine import Engine
from bot.errors import InputError
from bot.imports import MAX_IMPORT_BYTES, ImportedTable, ImportSummary
from handlers.app import build_app
from handlers.commands.parsing import ImportFile, parse_import_options, parse_linkcheck_text
from handlers.monitoring import MonitoringState, recheck_when_free
from handlers.services import Services
from handlers.slack_files import DownloadLimits, allowed_download_origins
from handlers.views.import_blocks import build_import_blocks, import_text
from tests.support.site import LocalSite
from tests.support.slack_api import (
    DOWNLOAD_METHOD,
    TEAM_ID,
    ApiCall,
    SlackApiStandIn,
    event_body,
    file_share_event,
    sign,
    slash_command_fields,
)
from tests.support.slack_monitoring import command_request
from tests.test_slack_blocks import all_text, assert_within_slack_limits

SECRET = "imports-signing-secret"
TOKEN = "xoxb-imports-token"
CHANNEL = "C0TEST"  # the stand-in's default channel for shared files
DM = "D0ALICE"
ALICE, BOB = "U0ALICE", "U0BOB"
_names = itertools.count(1)


def page(*links: str) -> str:
    return (
        "<html><body><main><p>Sourdough notes.</p>"
        + "".join(f"<p>{a}</p>" for a in links)
        + "</main></body></html>"
    )


def a(url: str, anchor: str) -> str:
    return f'<a href="{url}">{anchor}</a>'


def table(rows: Sequence[Sequence[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


AHREFS_HEADER = [
    "Referring page title", "Referring page URL", "Domain rating", "UR", "Target URL", "Anchor", "Nofollow",
    "UGC", "Sponsored", "First seen", "Last seen", "Lost",
]  # fmt: skip


def ahrefs_export(rows: Sequence[tuple[str, str, str]]) -> bytes:
    """Ahrefs' backlinks export: UTF-16 LE with a BOM, tab-separated; rows are (source, target, anchor)."""
    body = [AHREFS_HEADER] + [
        [
            "A page",
            source,
            "41",
            "12",
            target,
            anchor,
            "false",
            "false",
            "false",
            "2026-10-01",
            "2026-11-01",
            "",
        ]
        for source, target, anchor in rows
    ]
    return codecs.BOM_UTF16_LE + table(body, "\t").encode("utf-16-le")


@dataclass
class Bot:
    app: AsyncApp
    services: Services
    api: SlackApiStandIn
    engine: Engine

    async def command(self, text: str, *, user: str = ALICE, channel: str = CHANNEL) -> tuple[str, str]:
        """Run ``/linkcheck <text>`` and wait for everything it started; (response_url name, ack text)."""
        name = f"cmd{next(_names)}"
        fields = slash_command_fields(
            text, response_url=self.api.response_url(name), user_id=user, channel_id=channel
        )
        response = await self.app.async_dispatch(command_request(SECRET, fields))
        assert response.status == 200
        await self.services.tasks.join()
        ack = json.loads(response.body).get("text", "") if response.body else ""
        return name, ack

    async def dm(self, files: list[dict[str, Any]], *, text: str = "") -> None:
        """Send a file_share message in the DM with the bot; wait for the answer and what follows it."""
        before = len(self.posts(DM))
        body = event_body(file_share_event(files, user_id=ALICE, channel_id=DM, text=text))
        headers: dict[str, str | Sequence[str]] = {
            **sign(SECRET, body, int(time.time())), "Content-Type": "application/json"
        }  # fmt: skip
        response = await self.app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        assert response.status == 200
        # Bolt acks an event first and runs the listener after; wait (in a thread, the loop keeps going)
        # for the first answer in the DM, then for the jobs.
        await asyncio.to_thread(
            self.api.wait_for, lambda c: c.method == "chat.postMessage" and c.params.get("channel") == DM
            and len(self.posts(DM)) > before,
        )  # fmt: skip
        await self.services.tasks.join()

    def posts(self, channel: str) -> list[ApiCall]:
        return [c for c in self.api.calls_to("chat.postMessage") if c.params.get("channel") == channel]

    def private(self, name: str) -> str:
        [answer] = self.api.responses(name)
        assert answer.params["response_type"] == "ephemeral"
        return answer.blocks_text()


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn(bot_token=TOKEN) as api:
        yield api


@pytest.fixture
async def bot(engine: Engine, slack_api: SlackApiStandIn) -> AsyncIterator[Bot]:
    slack = SlackSettings(bot_token=TOKEN, signing_secret=SECRET, api_url=slack_api.api_url)
    services = Services.create(engine, slack)
    try:
        yield Bot(build_app(engine, slack, services=services), services, slack_api, engine)
    finally:
        await services.tasks.aclose()


def sources(tracked: Sequence[Any]) -> set[str]:
    return {b.source_url for b in tracked}


# -- /linkcheck import ---------------------------------------------------------------------------------------


async def test_an_ahrefs_utf16_export_is_imported_summarised_and_verified(
    bot: Bot, ours: LocalSite, partner: LocalSite, third: LocalSite
) -> None:
    partner.html("/blog", page(a(ours.url("/product"), "Sourdough kit")))
    third.html("/list", page("no link to us"))
    data = ahrefs_export(
        [
            (partner.url("/blog"), ours.url("/product"), "Sourdough kit"),
            (third.url("/list"), ours.url("/product"), "kit"),
            (ours.url("/about"), ours.url("/product"), "self"),  # a self-link: skipped
            (partner.url("/blog"), ours.url("/product"), "again"),  # repeated in the file
        ]
    )
    bot.api.share_file("ahrefs-backlinks.tsv", data, user=ALICE, channel=CHANNEL, filetype="text")
    bot.api.share_file("later.csv", b"Linking page\nhttp://x.example/\n", user=BOB, channel=CHANNEL)

    name, ack = await bot.command("import")

    assert "Looking for the newest file you shared here" in ack
    [listing] = bot.api.calls_to("files.list")
    assert (listing.params["channel"], listing.params["user"]) == (CHANNEL, ALICE)
    assert abs(int(listing.params["ts_from"]) - (time.time() - 3600)) < 60
    [download] = bot.api.calls_to(DOWNLOAD_METHOD)
    assert download.headers["Authorization"] == f"Bearer {TOKEN}"
    summary, followup = bot.posts(CHANNEL)
    text = summary.blocks_text()
    assert "<@U0ALICE> imported *ahrefs-backlinks.tsv*: Ahrefs backlinks, utf-16-le. 4 rows read." in text
    assert "*Imported*\n2 (2 new backlinks)" in text
    assert "*New referring domains*\n2 (of 2 in the file)" in text
    assert "*Duplicates*\n0 already tracked, 1 repeated in the file" in text
    assert "*Skipped*\n1 row" in text and "skipped 1 self-links" in text
    assert f"new referring domains: {partner.host}, {third.host}" in text
    assert "verifying the 2 new backlinks now" in text
    tracked = await bot.engine.tracked()
    assert sources(tracked) == {partner.url("/blog"), third.url("/list")}
    assert {b.added_by for b in tracked} == {ALICE}

    # The background verification fetched both source pages and answered in the summary's thread.
    assert partner.hits_for("/blog") and third.hits_for("/list")
    assert followup.params["thread_ts"] == summary.answer["ts"]
    verified = followup.blocks_text()
    assert "Verified the 2 new backlinks from *ahrefs-backlinks.tsv*: *1* live, *1* not found." in verified
    assert "`link_removed` 1" in verified
    states = {d["source_url"]: d.get("state") for d in await bot.engine.store.find(BACKLINKS_TABLE)}
    assert states[partner.url("/blog")] == "live"  # counted as a referring domain by the next digest
    assert bot.api.responses(name) == []  # nothing went wrong, so nothing private
    assert not bot.services.import_slots.running(TEAM_ID)


async def test_a_search_console_csv_with_a_target_site_prefers_the_export_over_a_later_image(
    bot: Bot, ours: LocalSite, partner: LocalSite
) -> None:
    partner.html("/post", page(a(ours.url("/"), "Crumb Club")))
    gsc = table([["Linking page", "Last crawled"], [partner.url("/post"), "2026-11-01"], ["not a url", "x"]])
    now = int(time.time())
    bot.api.share_file("Latest links.csv", gsc.encode(), created=now - 60)
    bot.api.share_file(
        "screenshot.png", b"\x89PNG\r\n", created=now - 10, mimetype="image/png", filetype="png"
    )
    bot.api.share_file("old.csv", b"Linking page\nhttp://old.example/\n", created=now - 2 * 3600)

    await bot.command(f"import --target-site <{ours.url('/')}|{ours.host}>")

    [download] = bot.api.calls_to(DOWNLOAD_METHOD)
    assert download.path.endswith("-F0000001/download/Latest links.csv")  # the CSV, not the later image
    text = bot.posts(CHANNEL)[0].blocks_text()
    assert 'imported *Latest links.csv*: Search Console "Latest links", utf-8. 2 rows read.' in text
    assert "2 rows read" in text and "skipped 1 linking pages that are not http(s) URLs (rows 3)" in text
    [backlink] = await bot.engine.tracked()
    assert (backlink.source_url, backlink.target_url) == (partner.url("/post"), ours.url("/"))
    assert "*1* live" in bot.posts(CHANNEL)[1].blocks_text()


async def test_no_file_shared_gets_a_clear_private_message(bot: Bot) -> None:
    bot.api.share_file("old.csv", b"Linking page\nhttp://old.example/\n", created=int(time.time()) - 2 * 3600)
    bot.api.share_file("elsewhere.csv", b"Linking page\nhttp://x.example/\n", channel="C0OTHER")
    name, _ = await bot.command("import")
    text = bot.private(name)
    assert "found no file you shared in this conversation in the last hour" in text
    assert "invite Linkpact first" in text and "then run `/linkcheck import` within the hour" in text
    assert bot.api.calls_to(DOWNLOAD_METHOD) == [] and bot.posts(CHANNEL) == []


async def test_a_declared_size_over_the_cap_is_refused_before_downloading(bot: Bot) -> None:
    bot.api.share_file("huge.csv", b"Linking page\nhttp://x.example/\n", size=60_000_000)
    name, _ = await bot.command("import")
    text = bot.private(name)
    assert "huge.csv is 60.0 MB; Linkpact imports files up to 50.0 MB" in text
    assert bot.api.calls_to(DOWNLOAD_METHOD) == []
    assert await bot.engine.tracked() == []


async def test_a_body_larger_than_declared_is_cut_off_while_streaming(bot: Bot, partner: LocalSite) -> None:
    bot.services.import_limits = DownloadLimits(max_bytes=2_000)
    rows = [["Linking page"]] + [[partner.url(f"/p{i}")] for i in range(400)]  # about 12 kB
    bot.api.share_file("links.csv", table(rows).encode(), size=500)  # Slack claims 500 bytes
    name, _ = await bot.command(f"import --target-site {partner.url('/')}")
    text = bot.private(name)
    assert "links.csv is larger than 2 kB, the most Linkpact imports; the download was stopped" in text
    assert len(bot.api.calls_to(DOWNLOAD_METHOD)) == 1
    assert await bot.engine.tracked() == []


async def test_a_file_not_on_slacks_host_is_never_fetched(bot: Bot, partner: LocalSite) -> None:
    partner.html("/export.csv", "Linking page\nhttp://x.example/\n")
    bot.api.share_file("export.csv", b"", url=partner.url("/export.csv"), size=40)
    name, _ = await bot.command("import")
    assert "export.csv is not hosted by Slack, so Linkpact did not download it" in bot.private(name)
    assert partner.hits_for("/export.csv") == []


def test_only_slacks_file_host_and_the_configured_api_receive_the_token() -> None:
    assert allowed_download_origins("https://slack.com/api/") == {
        ("https", "slack.com", 443),
        ("https", "files.slack.com", 443),
    }
    assert allowed_download_origins("http://127.0.0.1:8080/api/") == {("http", "127.0.0.1", 8080)}
    assert DownloadLimits().max_bytes == MAX_IMPORT_BYTES == 50_000_000


async def test_a_file_that_is_not_an_export_gets_the_reason_and_no_traceback(bot: Bot) -> None:
    bot.api.share_file("links.csv", bytes(range(256)) * 8)
    name, _ = await bot.command("import")
    text = bot.private(name)
    assert ":warning: links.csv: the file is not" in text and "save it as CSV UTF-8" in text
    assert "Traceback" not in text and bot.posts(CHANNEL) == []
    assert await bot.engine.tracked() == []


async def test_a_bad_format_option_is_refused_in_the_ack(bot: Bot) -> None:
    name, ack = await bot.command("import --format excel")
    assert "unknown format 'excel'" in ack
    assert bot.api.calls_to("files.list") == [] and bot.api.responses(name) == []


async def test_when_the_bot_is_not_in_the_channel_the_summary_is_private(
    bot: Bot, partner: LocalSite
) -> None:
    partner.html("/a", page())
    bot.api.share_file("list.txt", f"{partner.url('/a')}\n".encode(), filetype="text")
    bot.api.fail("chat.postMessage", "not_in_channel", channel=CHANNEL, times=5)
    name, _ = await bot.command("import --target-site http://127.0.0.1:9/")
    summary, followup = bot.api.responses(name)
    assert "imported *list.txt*" in summary.blocks_text() and summary.params["response_type"] == "ephemeral"
    assert "Verified the 1 new backlink" in followup.blocks_text()


async def test_a_missing_files_read_scope_is_explained(bot: Bot) -> None:
    bot.api.fail("files.list", "missing_scope")
    name, _ = await bot.command("import")
    assert "Slack answered `missing_scope`" in bot.private(name)
    assert "needs the `files:read` scope" in bot.private(name)


async def test_one_import_at_a_time_per_workspace(bot: Bot) -> None:
    assert bot.services.import_slots.try_acquire(TEAM_ID)
    _, ack = await bot.command("import")
    assert "already importing a file for this workspace" in ack
    assert bot.api.calls_to("files.list") == []
    bot.services.import_slots.release(TEAM_ID)


async def test_verifications_wait_for_the_running_recheck_and_share_one_run(
    engine: Engine, ours: LocalSite, partner: LocalSite
) -> None:
    partner.html("/blog", page(a(ours.url("/"), "Crumb Club")))
    await engine.track(partner.url("/blog"), ours.url("/"))
    state = MonitoringState()
    async with state.recheck_lock:  # the schedule's recheck is running
        waiting = [asyncio.ensure_future(recheck_when_free(engine, state, by=ALICE)) for _ in range(3)]
        await asyncio.sleep(0)  # let them queue (a yield, no time passes)
        assert state.queued_recheck is not None and not any(w.done() for w in waiting)
        assert partner.hits_for("/blog") == []
    results = await asyncio.gather(*waiting)
    assert len(partner.hits_for("/blog")) == 1  # three requests, one recheck after the running one
    assert all(r is results[0] for r in results) and results[0][0].verdicts == {"live": 1}
    assert state.queued_recheck is None
    await recheck_when_free(engine, state, by=ALICE)  # nothing running: runs at once
    assert len(partner.hits_for("/blog")) == 2


# -- a file sent in a DM ------------------------------------------------------------------------------------


async def test_a_file_sent_to_the_bot_in_a_dm_is_imported_and_answered_there(
    bot: Bot, ours: LocalSite, partner: LocalSite
) -> None:
    partner.html("/links", page(a(ours.url("/"), "Crumb Club")))
    sample = table([["Linking page"], [partner.url("/links")]])
    shared = bot.api.share_file("More sample links.csv", sample.encode(), channel=DM, in_listing=False)

    await bot.dm([bot.api.file_object(shared)], text=f"our export —target-site {ours.url('/')} thanks")

    [info] = bot.api.calls_to("files.info")  # the event's file object had no url or size
    assert info.params["file"] == shared.id
    summary, followup = bot.posts(DM)
    assert "imported *More sample links.csv*: Search Console" in summary.blocks_text()
    assert followup.params["thread_ts"] == summary.answer["ts"] and "*1* live" in followup.blocks_text()
    [backlink] = await bot.engine.tracked()
    assert (backlink.source_url, backlink.target_url, backlink.added_by) == (
        partner.url("/links"),
        ours.url("/"),
        ALICE,
    )
    assert bot.posts(CHANNEL) == []


async def test_a_dm_file_that_cannot_be_imported_is_answered_in_the_dm(bot: Bot) -> None:
    shared = bot.api.share_file("huge.zip", b"PK", channel=DM, size=60_000_000, filetype="zip")
    await bot.dm([bot.api.file_object(shared)])
    [answer] = bot.posts(DM)
    assert "huge.zip is 60.0 MB; Linkpact imports files up to 50.0 MB" in answer.blocks_text()
    assert bot.api.calls_to(DOWNLOAD_METHOD) == []


# -- Block Kit ---------------------------------------------------------------------------------------------


def test_a_summary_with_every_kind_of_problem_stays_within_limits_and_escapes_the_file() -> None:
    reasons = {f"reason_{i:02d}": 1000 + i for i in range(20)}
    summary = ImportSummary(
        import_id="i1", filename="<!channel> links.csv", format="zip", encoding="utf-16-le, utf-8",
        imported_at="2026-11-02T09:00:00+00:00", added_by=ALICE, target_site=None, rows_read=123_456,
        new_backlinks=100_000, linking_sites=12, duplicates_in_file=3, duplicates_tracked=4,
        skipped=reasons, skipped_rows={r: tuple(f"big.csv:{n}" for n in range(5)) for r in reasons},
        warnings={"unreadable_date": 7}, referring_domains=5000, new_referring_domains=4000,
        tables=tuple(ImportedTable(f"z.zip/{i}.csv", "gsc-latest-links", "utf-8", "pages") for i in range(9)),
        notes=tuple("<@U0EVIL> note " * 40 for _ in range(9)), written=True,
        new_domains_sample=tuple(f"site{i}.example" for i in range(20)),
    )  # fmt: skip
    blocks = build_import_blocks(summary, user_id=ALICE, verifying=True)
    assert_within_slack_limits(blocks)
    text = all_text(blocks)
    assert "&lt;!channel&gt; links.csv" in text and "<!channel>" not in text and "<@U0EVIL>" not in text
    assert "…and 8 more reasons" in text and "and 3,990 more" in text and "…and 4 more notes" in text
    assert "*Imported*\n100,012 (100,000 new backlinks, 12 linking sites without pages)" in text
    assert 'a zip of 9 tables: 0.csv (Search Console "Latest links"), 1.csv' in text and "and 4 more" in text
    # The top-level text is mrkdwn too: the file name is escaped there as in the blocks.
    assert "Imported &lt;!channel&gt; links.csv: 123,456 rows read, 100,000 new backlinks" in import_text(
        summary
    )


# -- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("import", ImportFile()),
        ("IMPORT --format AHREFS", ImportFile(fmt="ahrefs")),
        ("import --target-site=ours.example", ImportFile(target_site="https://ours.example")),
        ("import --target-site <https://ours.example|ours.example> --format gsc-latest-links",
         ImportFile("https://ours.example", "gsc-latest-links")),
        ("import —format list", ImportFile(fmt="list")),  # a "--" a keyboard turned into a dash
    ],
)  # fmt: skip
def test_parse_import(text: str, expected: ImportFile) -> None:
    assert parse_linkcheck_text(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import links.csv", "takes no file name"),
        ("import --format", "needs a value"),
        ("import --target ours.example", "not '--target'"),
        ("import --format list --format list", "given twice"),
    ],
)
def test_malformed_import_commands_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_linkcheck_text(text)


def test_options_in_a_dm_text_are_read_and_other_words_ignored() -> None:
    assert parse_import_options("here you go --format semrush cheers") == ImportFile(fmt="semrush")
    assert parse_import_options("thanks!") == ImportFile()
    with pytest.raises(InputError, match="unknown format 'excel'"):
        parse_import_options("--format excel")
