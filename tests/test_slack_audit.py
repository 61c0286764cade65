"""``/linkcheck audit`` and its **Propose prunes** button (issue 6), driven as Slack drives them: signed
slash commands and block actions into the Bolt app in-process, a real engine, our small site and its
partners served by local sites, and the Slack stand-in recording every Web API call.

The world: our site (127.0.0.1) links to two partners from its home page. The mill (127.0.0.2) links
back from a clean page (a reciprocal pair); the blog (127.0.0.3) links back from a ``noindex`` page, so
the audit flags it (``partner_not_indexable``) and its agreement (#2, owned by U0OWNER) is the one to
propose for pruning.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_bolt.async_app import AsyncApp

from bot.agreements.model import AgreementInput, LinkInput
from bot.audit import AuditReport
from bot.config import SlackSettings
from bot.engine import Engine
from bot.errors import InputError
from bot.monitoring.digest import build_digest
from bot.monitoring.prune import ProposalStatus
from handlers import audit_jobs
from handlers.app import build_app
from handlers.audit_jobs import AUDITS_TABLE
from handlers.commands.parsing import RunAudit, parse_linkcheck_text
from handlers.services import Services
from handlers.views.audit_blocks import PROPOSE_PRUNES_ACTION, build_audit_blocks
from handlers.views.digest_blocks import APPROVE_PRUNE_ACTION, plan_digest
from tests import test_audit
from tests.conftest import loopback_settings
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.support.slack_api import TEAM_ID, UPLOAD_METHOD, ApiCall, slash_command_fields
from tests.support.slack_monitoring import (
    MonitoringSlackStandIn,
    button_payload,
    command_request,
    signed_request,
)
from tests.test_audit import OUR_TOPIC, RELATED, a, html, main_text
from tests.test_slack_blocks import all_text, assert_within_slack_limits

SECRET = "audit-signing-secret"
CHANNEL = "C0AUDIT"
OWNER, ADMIN, STRANGER = "U0OWNER", "U0ADMIN", "U0STRANGER"
_names = itertools.count(1)


class Ticking:
    """A monotonic clock that moves 3 s every time it is read: every progress callback may update."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 3.0
        return self.now


@dataclass
class Bot:
    app: AsyncApp
    services: Services
    api: MonitoringSlackStandIn
    engine: Engine

    async def command(self, text: str, *, user: str = OWNER) -> tuple[str, bytes]:
        name = f"cmd{next(_names)}"
        fields = slash_command_fields(
            text, response_url=self.api.response_url(name), user_id=user, channel_id=CHANNEL
        )
        response = await self.app.async_dispatch(command_request(SECRET, fields))
        assert response.status == 200
        await self.services.tasks.join()
        return name, (response.body or "").encode()

    async def click(self, message: ApiCall, blocks: list[dict[str, object]], value: str, *, user: str) -> str:
        name = f"click{next(_names)}"
        payload = button_payload(
            message, PROPOSE_PRUNES_ACTION, value, user_id=user, response_url=self.api.response_url(name),
            blocks=blocks,
        )  # fmt: skip
        response = await self.app.async_dispatch(signed_request(SECRET, payload))
        assert response.status == 200 and not response.body
        await self.services.tasks.join()
        return name

    def posts(self, *, thread: bool) -> list[ApiCall]:
        return [
            c
            for c in self.api.calls_to("chat.postMessage")
            if c.params.get("channel") == CHANNEL and bool(c.params.get("thread_ts")) == thread
        ]

    def private(self, name: str) -> str:
        return "\n".join(c.blocks_text() for c in self.api.responses(name))


def make_bot(engine: Engine, api: MonitoringSlackStandIn) -> Bot:
    slack = SlackSettings(bot_token="xoxb-t", signing_secret=SECRET, api_url=api.api_url, admins=(ADMIN,))
    services = Services.create(engine, slack, clock=Ticking())
    return Bot(build_app(engine, slack, services=services), services, api, engine)


@pytest.fixture
def slack_api() -> Iterator[MonitoringSlackStandIn]:
    api = MonitoringSlackStandIn()
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
async def bot(engine: Engine, slack_api: MonitoringSlackStandIn) -> AsyncIterator[Bot]:
    made = make_bot(engine, slack_api)
    try:
        yield made
    finally:
        await made.services.tasks.aclose()


async def plant(engine: Engine, ours: LocalSite, mill: LocalSite, blog: LocalSite) -> None:
    ours.html(
        "/",
        html(main_text(OUR_TOPIC, a(mill.url("/flour"), "stone-ground flour"), a("/recipes", "Recipes"),
                       a(blog.url("/feeding"), "feeding a starter")), title="Crumb Club"),
    )  # fmt: skip
    ours.html("/recipes", html(main_text("Sourdough recipes: a country loaf. " + OUR_TOPIC), title="Recipes"))
    mill.html("/flour", html(main_text(RELATED["mill"], a(ours.url("/"), "Crumb Club")), title="Mill"))
    noindex = '<meta name="robots" content="noindex">'
    blog.html(
        "/feeding", html(main_text(RELATED["blog"], a(ours.url("/recipes"), "this guide")), head=noindex)
    )
    for partner, name, page, target in (
        (mill, "Mill", "/flour", "/"),
        (blog, "Blog", "/feeding", "/recipes"),
    ):
        links = (
            LinkInput(ours.url("/"), partner.url(page), "ours"),
            LinkInput(partner.url(page), ours.url(target)),
        )
        await engine.agreements.add(AgreementInput(name, partner.url("/"), OWNER, links))
    await engine.recheck()


async def audited(bot: Bot, ours: LocalSite, partner: LocalSite, third: LocalSite) -> tuple[ApiCall, ApiCall]:
    """Run the audit; (the posted progress message, its final update)."""
    await plant(bot.engine, ours, partner, third)
    await bot.command(f"audit <{ours.url('/')}|{ours.host}> --pages 20")
    [posted] = bot.posts(thread=False)
    final = bot.api.calls_to("chat.update")[-1]
    return posted, final


# -- the audit ---------------------------------------------------------------------------------------------


async def test_the_audit_posts_progress_then_the_summary_findings_button_and_csv(
    bot: Bot, ours: LocalSite, partner: LocalSite, third: LocalSite
) -> None:
    posted, final = await audited(bot, ours, partner, third)

    assert posted.params["channel"] == CHANNEL
    assert f"Auditing the link profile of <{ours.url('/')}|127.0.0.1>…" in posted.blocks_text()
    progress = [u.blocks_text() for u in bot.api.calls_to("chat.update")[:-1]]
    assert any("Crawling our site: " in p for p in progress)
    assert all(u.params["ts"] == posted.answer["ts"] for u in bot.api.calls_to("chat.update"))

    text = final.blocks_text()
    assert "Link-profile audit: 127.0.0.1" in text
    assert "Crawled 2 pages of 127.0.0.1 by following links from the home page" in text
    assert "*Pages crawled*\n2 (following links)" in text
    assert "*Stopped early*\nno: every page found was crawled" in text
    # The blog's page is noindex, so its link does not count: one referring domain, the mill, reciprocal.
    assert "*Reciprocal share*\n100%: 1 of 1 referring domains (flagged above 30%)" in text
    assert "*Reciprocal pairs · three-way cycles*\n1 · 0" in text
    assert "*Red flags*\n0 high · 1 medium · 0 low" in text
    assert "*Reciprocal pairs*: `127.0.0.2` (#1)" in text
    assert "*Top findings* (1 of 1, most severe first)" in text
    assert "*MEDIUM* `partner_not_indexable` (theirs)" in text and f"<{third.url('/feeding')}|" in text
    [button] = [e for b in final.blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == PROPOSE_PRUNES_ACTION
    assert "for the 1 agreement these findings question" in json.dumps(button["confirm"])
    [record] = await bot.engine.store.find(AUDITS_TABLE)
    assert button["value"] == record["id"] and list(record["reasons"]) == ["2"]

    # The full CSV in the message's thread.
    [complete] = bot.api.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == CHANNEL and complete.params["thread_ts"] == posted.answer["ts"]
    assert json.loads(complete.params["files"])[0]["title"].startswith("Link-profile audit of 127.0.0.1")
    [upload] = bot.api.calls_to(UPLOAD_METHOD)
    rows = upload.body.decode().splitlines()
    assert rows[0].startswith("kind,code,severity,subject")
    assert any(r.startswith("finding,partner_not_indexable,medium,") for r in rows)
    assert sum(r.startswith("reciprocal_pair,") for r in rows) == 1
    assert not bot.services.audit_slots.running(TEAM_ID)
    assert await bot.engine.prune.open_proposals() == []  # the audit itself proposes nothing


async def test_propose_prunes_by_a_stranger_is_refused_by_the_owner_opens_and_survives_a_restart(
    bot: Bot,
    ours: LocalSite,
    partner: LocalSite,
    third: LocalSite,
    slack_api: MonitoringSlackStandIn,
    tmp_path: Path,
    clock: Clock,
) -> None:
    posted, final = await audited(bot, ours, partner, third)
    [record] = await bot.engine.store.find(AUDITS_TABLE)

    refused = await bot.click(posted, final.blocks, record["id"], user=STRANGER)
    assert "Only the owners of the agreements this audit questions (<@U0OWNER>) or an admin" in bot.private(
        refused
    )
    assert await bot.engine.prune.open_proposals() == [] and bot.posts(thread=True) == []

    await bot.click(posted, final.blocks, record["id"], user=OWNER)
    [proposal] = await bot.engine.prune.open_proposals()
    assert proposal.agreement_id == "2" and [r.code for r in proposal.reasons] == [
        "audit_partner_not_indexable"
    ]
    [told] = bot.posts(thread=True)
    assert told.params["thread_ts"] == posted.answer["ts"]
    assert "<@U0OWNER> opened 1 prune proposal from the audit of 127.0.0.1: #2 Blog." in told.blocks_text()
    assert "nothing is pruned until the owner or an admin approves" in told.blocks_text()
    assert (await bot.engine.agreements.get("2")).pruned_at is None

    # The proposal is in the next digest, with the approve-prune button.
    digest = await build_digest(bot.engine.store, bot.engine.agreements, bot.engine.prune, until=clock())
    buttons = [
        e for b in plan_digest(digest).main for e in b.to_dict().get("elements", []) if isinstance(e, dict)
    ]
    assert any(e.get("action_id") == APPROVE_PRUNE_ACTION and e.get("value") == proposal.id for e in buttons)

    # A restart: a new engine on the same database and fresh process state; the old button still works.
    await bot.services.tasks.aclose()
    await bot.engine.aclose()
    engine = Engine.create(loopback_settings(tmp_path), now=clock)
    try:
        restarted = make_bot(engine, slack_api)
        await restarted.click(posted, final.blocks, record["id"], user=ADMIN)
        answer = restarted.posts(thread=True)[-1].blocks_text()
        assert "<@U0ADMIN> opened 0 prune proposals" in answer
        assert "Already open, the audit's reasons were added: #2 Blog." in answer
        [same] = await engine.prune.open_proposals()
        assert same.id == proposal.id and same.status is ProposalStatus.OPEN

        gone = await restarted.click(posted, final.blocks, "no-such-audit", user=ADMIN)
        assert "This audit is no longer kept" in restarted.private(gone)
    finally:
        await engine.aclose()


async def test_a_foreign_workspace_cannot_press_the_button(
    bot: Bot, ours: LocalSite, partner: LocalSite, third: LocalSite
) -> None:
    posted, final = await audited(bot, ours, partner, third)
    [record] = await bot.engine.store.find(AUDITS_TABLE)
    name = f"click{next(_names)}"
    payload = button_payload(
        posted, PROPOSE_PRUNES_ACTION, record["id"], user_id=OWNER, response_url=bot.api.response_url(name),
        team_id="T0ELSEWHERE", blocks=final.blocks,
    )  # fmt: skip
    await bot.app.async_dispatch(signed_request(SECRET, payload))
    await bot.services.tasks.join()
    assert "does not belong to Linkpact in this workspace" in bot.private(name)
    assert await bot.engine.prune.open_proposals() == []


async def test_one_audit_at_a_time_per_workspace(bot: Bot) -> None:
    assert bot.services.audit_slots.try_acquire(TEAM_ID)
    name, ack = await bot.command("audit ours.example")
    assert "An audit is already running for this workspace" in ack.decode()
    assert bot.api.calls_to("chat.postMessage") == [] and bot.api.responses(name) == []
    bot.services.audit_slots.release(TEAM_ID)


async def test_a_refused_site_is_answered_privately_and_nothing_is_posted(bot: Bot) -> None:
    name, _ = await bot.command("audit http://169.254.169.254/")
    assert "was refused" in bot.private(name)
    assert bot.api.calls_to("chat.postMessage") == []
    assert not bot.services.audit_slots.running(TEAM_ID)


async def test_when_the_bot_is_not_in_the_channel_the_result_is_private_without_csv(
    bot: Bot, ours: LocalSite, partner: LocalSite, third: LocalSite
) -> None:
    await plant(bot.engine, ours, partner, third)
    bot.api.fail("chat.postMessage", "not_in_channel", channel=CHANNEL)
    name, _ = await bot.command(f"audit {ours.url('/')}")
    progress, result = bot.api.responses(name)
    assert "Auditing the link profile" in progress.blocks_text() and "not a member" in progress.blocks_text()
    assert result.params["replace_original"] is True
    assert (
        "`partner_not_indexable`" in result.blocks_text() and "invite Linkpact here" in result.blocks_text()
    )
    assert bot.api.calls_to(UPLOAD_METHOD) == []


async def test_old_audits_are_dropped_beyond_the_cap_and_a_clean_audit_has_no_button(
    bot: Bot, ours: LocalSite, partner: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_jobs, "MAX_STORED_AUDITS", 1)
    ours.html("/", html(main_text(OUR_TOPIC, a("/more", "More"))))
    partner.html("/", html(main_text(RELATED["mill"])))
    await bot.command(f"audit {ours.url('/')} --pages 1")
    await bot.command(f"audit {partner.url('/')}")
    first, second = [u for u in bot.api.calls_to("chat.update") if "Link-profile audit" in u.blocks_text()]
    [kept] = await bot.engine.store.find(AUDITS_TABLE)
    assert kept["domain"] == partner.host  # the older audit was dropped
    assert "Stopped early at the page cap (1 pages)" in first.blocks_text()
    assert "*Stopped early*\nyes, at the page cap (1 pages)" in first.blocks_text()
    assert "No red flags found." in second.blocks_text()
    assert not [b for b in second.blocks if b["type"] == "actions"]  # nothing to propose: no button


# -- Block Kit limits --------------------------------------------------------------------------------------


# The audit world of tests/test_audit.py (every planted flag), as fixtures here too.
world = test_audit.world
planted = test_audit.planted


async def test_the_result_of_the_planted_audit_stays_within_block_kit_limits(planted: AuditReport) -> None:
    """The full audit world of tests/test_audit.py: every flag at once, still one valid message."""
    blocks = build_audit_blocks(
        planted, audit_id="a1", requested_by=OWNER, csv_attached=True, prune_candidates=2
    )
    assert_within_slack_limits(blocks)
    for block in blocks:
        block.validate_json()
    text = all_text(blocks)
    assert f"*Top findings* ({min(len(planted.findings), 10)} of {len(planted.findings)}" in text
    assert "*HIGH* `link_network`: 3 domains of our link profile" in text
    assert "*Three-way cycles*: `127.0.0.1` → `127.0.0.21` → `127.0.0.22` → `127.0.0.1`" in text
    assert "• …and 2 more (CSV)" in text  # the sitewide link's five pages
    assert "Open prune proposals for the 2 agreements" in json.dumps([b.to_dict() for b in blocks])


# -- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("audit ours.example", RunAudit("https://ours.example", 500)),
        ("AUDIT <https://ours.example|ours.example> --pages 20", RunAudit("https://ours.example", 20)),
        ("audit http://ours.example/ --pages=3", RunAudit("http://ours.example/", 3)),
    ],
)
def test_parse_audit(text: str, expected: RunAudit) -> None:
    assert parse_linkcheck_text(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("audit", "needs our site"),
        ("audit a.example b.example", "needs our site"),
        ("audit a.example --pages 0", "from 1 to 10,000"),
        ("audit a.example --pages lots", "from 1 to 10,000"),
        ("audit a.example --depth 2", "not '--depth'"),
    ],
)
def test_malformed_audit_commands_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_linkcheck_text(text)
