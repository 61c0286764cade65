"""Partnership agreements through Slack, in-process: Bolt's real dispatch with requests signed as Slack
signs them, the Slack stand-in for the Web API, a real engine with an injected clock, and local sites on
127.0.0.1 (ours), 127.0.0.2 (the partner) and 127.0.0.3 (a third site) whose pages do or do not carry
the promised links."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.agreements.model import AgreementInput, AgreementState, LinkHealth, LinkInput
from bot.config import FetchSettings, Limits, Settings, SlackSettings, Timeout
from bot.engine import Engine
from bot.errors import InputError
from handlers.app import build_app
from handlers.commands.parsing import (
    ExportPartnerships,
    ListPartnerships,
    LogPartnership,
    ShowPartnership,
    parse_linkcheck_text,
)
from handlers.services import Services
from handlers.shortcuts.log_partnership import LOG_PARTNERSHIP_SHORTCUT
from handlers.views.agreement_blocks import MAX_LISTED_AGREEMENTS, build_agreement_list_blocks
from handlers.views.home_view import (
    MAX_HOME_BLOCKS,
    OPEN_LOG_PARTNERSHIP_ACTION,
    RECHECK_ACTION,
    build_home_view,
)
from handlers.views.partnership_modal import (
    LOG_PARTNERSHIP_CALLBACK,
    ModalOrigin,
    block_errors,
    build_partnership_modal,
    first_url,
    prefill_from_message,
    read_partnership_submission,
)
from tests.support.site import LocalSite
from tests.support.slack_api import (
    ApiCall,
    SlackApiStandIn,
    block_actions_payload,
    event_body,
    interaction_body,
    message_shortcut_payload,
    sign,
    slash_command_body,
    view_state_values,
    view_submission_payload,
)

SECRET = "agreements-signing-secret"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
CHANNEL = "C0PART"
USER = "U0ALICE"
LINKODY_HEADER = (
    "URL FROM,TAGS,NOTES,EXPECTED LANDING PAGE URL,EXPECTED FOLLOW,EXPECTED ANCHOR,ADDED,EXPIRES,COST"
)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float = 0, *, hours: float = 0) -> None:
        self.now += timedelta(days=days, hours=hours)


# -- pages --------------------------------------------------------------------------------------------

BREAD = (
    "Sourdough bread needs a lively starter, flour, water and salt. Feed the starter, let the dough "
    "ferment slowly, shape the loaf and bake it in a hot oven until the crust is dark and crisp."
)


def page(body: str, title: str = "Bakery") -> str:
    return f"<html><head><title>{title}</title></head><body>{body}</body></html>"


def main_link(url: str, anchor: str, rel: str = "") -> str:
    rel_attr = f' rel="{rel}"' if rel else ""
    return f'<main><p>{BREAD}</p><p>See <a href="{url}"{rel_attr}>{anchor}</a>.</p></main>'


# -- the Slack side -------------------------------------------------------------------------------------

_names = count(1)


def signed(body: bytes, *, content_type: str | None = None) -> AsyncBoltRequest:
    headers: dict[str, str | Sequence[str]] = {**sign(SECRET, body, int(time.time()))}
    if content_type:
        headers["Content-Type"] = content_type
    return AsyncBoltRequest(body=body.decode(), headers=headers)


@dataclass
class SlackDriver:
    """Sends what Slack sends to the app, and waits for what the app sends to Slack."""

    app: Any
    services: Services
    api: SlackApiStandIn
    engine: Engine
    last_response: str = ""
    _seen: set[int] = field(default_factory=set)

    async def command(self, text: str, *, channel: str = CHANNEL, user: str = USER) -> BoltResponse:
        self.last_response = f"cmd{next(_names)}"
        body = slash_command_body(
            text, response_url=self.api.response_url(self.last_response), channel_id=channel, user_id=user
        )
        response = await self.app.async_dispatch(signed(body))
        assert response.status == 200, response.body
        return response

    async def interact(self, payload: dict[str, Any]) -> BoltResponse:
        response = await self.app.async_dispatch(signed(interaction_body(payload)))
        assert response.status == 200, response.body
        return response

    async def submit(
        self, view: dict[str, Any], answers: dict[str, str], *, user: str = USER
    ) -> dict[str, Any]:
        """Submit the modal; the ack's JSON body ({} for a plain ack)."""
        response = await self.interact(view_submission_payload(view, answers, user_id=user))
        return json.loads(response.body) if response.body else {}

    async def home_opened(self, user: str = USER) -> None:
        event = {
            "type": "app_home_opened",
            "user": user,
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": "1.2",
        }
        response = await self.app.async_dispatch(signed(event_body(event), content_type="application/json"))
        assert response.status == 200

    def mark(self) -> None:
        """Calls made so far are old: :meth:`next_call` waits for a newer one."""
        self._seen = {id(c) for c in self.api.calls}

    async def next_call(self, method: str, where: Callable[[ApiCall], bool] | None = None) -> ApiCall:
        seen = self._seen

        def match(call: ApiCall) -> bool:
            return id(call) not in seen and call.method == method and (where is None or where(call))

        return await asyncio.to_thread(self.api.wait_for, match, timeout_s=20)

    async def response(self, where: Callable[[ApiCall], bool] | None = None) -> ApiCall:
        """The post to the last command's response_url."""
        return await asyncio.to_thread(self.api.wait_for_response, self.last_response, where)

    async def open_modal(self, *, channel: str = CHANNEL) -> dict[str, Any]:
        """``/linkcheck partner`` and the view Slack opened."""
        self.mark()
        await self.command("partner", channel=channel)
        return view_of(await self.next_call("views.open"))

    async def settle(self) -> None:
        await self.services.tasks.join()

    def calls_in(self, method: str, channel: str) -> list[ApiCall]:
        return [c for c in self.api.calls_to(method) if c.params.get("channel") == channel]


def view_of(call: ApiCall) -> dict[str, Any]:
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def opened_view(call: ApiCall) -> dict[str, Any]:
    """The view as Slack stored it (with its id), from a views.open answer."""
    return dict(call.answer["view"])


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ours() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.1") as s:
        s.html("/product", page(f"<main><h1>Sourdough kit</h1><p>{BREAD}</p></main>", "Sourdough kit"))
        yield s


@pytest.fixture
def partner() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.2") as s:
        s.html("/guide", page(f"<main><p>{BREAD}</p></main>", "Partner guide"))
        yield s


@pytest.fixture
def third() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.3") as s:
        yield s


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    with SlackApiStandIn() as api:
        yield api


@pytest.fixture
async def slack(tmp_path: Path, clock: Clock, slack_api: SlackApiStandIn) -> AsyncIterator[SlackDriver]:
    settings = Settings(
        fetch=FetchSettings(
            timeout=Timeout(connect_s=2, read_s=2, total_s=3),
            limits=Limits(retries=0),
            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        ),
        db_path=tmp_path / "linkpact.json",
    )
    engine = Engine.create(settings, now=clock)
    slack_settings = SlackSettings(bot_token="xoxb-t", signing_secret=SECRET, api_url=slack_api.api_url)
    services = Services.create(engine, slack_settings)
    app = build_app(engine, slack_settings, services=services)
    try:
        yield SlackDriver(app, services, slack_api, engine)
    finally:
        await services.tasks.aclose()
        await engine.aclose()


def exchange_answers(ours: LocalSite, partner: LocalSite, **overrides: str) -> dict[str, str]:
    answers = {
        "partner_name": "Partner Bakery",
        "partner_site": partner.url("/"),
        "contact_name": "Pat",
        "contact_email": "pat@partner.example",
        "contact_slack": "U0PAT",
        "link_1_source": ours.url("/partners"),
        "link_1_target": partner.url("/guide"),
        "link_1_anchor": "Partner guide",
        "link_2_source": partner.url("/resources"),
        "link_2_target": ours.url("/product"),
        "link_2_anchor": "Our sourdough kit",
        "link_2_placement": "main",
        "relevance_note": "both write about bread",
        "relevance_score": "4",
        "notes": "Agreed by email with Pat.",
    }
    answers.update(overrides)
    return answers


# -- opening the modal ----------------------------------------------------------------------------------


async def test_linkcheck_partner_opens_the_modal_with_a_deadline_a_week_out(slack: SlackDriver) -> None:
    slack.mark()
    response = await slack.command("partner")
    assert response.body == ""  # a plain ack: the modal is the answer
    call = await slack.next_call("views.open")
    assert call.params["trigger_id"] == "1.2.3"  # the command's trigger_id
    view = view_of(call)
    assert view["type"] == "modal" and view["callback_id"] == LOG_PARTNERSHIP_CALLBACK
    assert json.loads(view["private_metadata"]) == {"channel": CHANNEL, "surface": "command"}
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert len(view["blocks"]) <= 100
    assert blocks["deadline"]["element"] == {"type": "datepicker", "action_id": "deadline",
                                             "initial_date": "2026-11-09"}  # fmt: skip
    assert blocks["contact_slack"]["element"]["type"] == "users_select"
    assert blocks["kind"]["element"]["initial_option"]["value"] == "exchange"
    rel_values = [o["value"] for o in blocks["link_1_rel"]["element"]["options"]]
    assert rel_values == ["follow", "nofollow", "sponsored", "ugc"]
    assert blocks["link_3_direction"]["element"]["initial_option"]["value"] == "theirs"
    assert {"relevance_score", "authority_note", "content_quality_score", "traffic_note"} <= set(blocks)
    assert blocks["link_2_source"]["optional"] is False and blocks["link_1_source"]["optional"] is True
    assert await slack.engine.agreements.all() == []


async def test_a_failed_views_open_is_told_privately_and_logged(
    slack: SlackDriver, caplog: pytest.LogCaptureFixture
) -> None:
    slack.api.fail("views.open", "expired_trigger_id")
    with caplog.at_level(logging.ERROR):
        await slack.command("partner")
        answer = await slack.response()
    assert answer.params["response_type"] == "ephemeral"
    assert "The form could not be opened: Slack answered `expired_trigger_id`" in answer.blocks_text()
    assert any(r.exc_info and "partnership modal" in r.getMessage() for r in caplog.records)


async def test_the_message_shortcut_opens_a_modal_prefilled_with_the_messages_first_url(
    slack: SlackDriver,
) -> None:
    slack.mark()
    text = "Deal agreed! They will link from <https://partner.example/resources?a=1&amp;b=2|their page>."
    response = await slack.interact(message_shortcut_payload("log_partnership", text, channel_id="C0MSG"))
    assert response.body == ""
    call = await slack.next_call("views.open")
    assert call.params["trigger_id"] == "4.5.6"
    view = view_of(call)
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["link_2_source"]["element"]["initial_value"] == "https://partner.example/resources?a=1&b=2"
    assert blocks["partner_site"]["element"]["initial_value"] == "https://partner.example/"
    assert json.loads(view["private_metadata"]) == {"channel": "C0MSG", "surface": "shortcut"}


# -- submitting -----------------------------------------------------------------------------------------


async def test_bad_input_is_answered_in_the_modal_on_the_right_blocks_and_nothing_is_stored(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    view = opened_view(await _open(slack))
    answers = exchange_answers(
        ours,
        partner,
        partner_site="partner dot example",  # not a URL
        deadline="2026-10-01",  # in the past
        link_2_source=ours.url("/blog"),  # our page linking to our own page
        traffic_score="9",  # Slack would not offer it; the core still refuses it
    )
    answer = await slack.submit(view, answers)
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert set(errors) == {"partner_site", "deadline", "link_2_target", "traffic_score"}
    assert "is not an http(s) URL" in errors["partner_site"]
    assert "in the past" in errors["deadline"]
    assert "link 2 points from 127.0.0.1 to itself" in errors["link_2_target"]

    # Row 1 left empty: the core numbers the links 1 and 2, the errors name the modal's rows 2 and 3.
    answers = exchange_answers(
        ours, partner, link_1_source="", link_1_target="", link_1_anchor="",
        link_3_source=partner.url("/friends"), link_3_target="http://169.254.169.254/latest",
    )  # fmt: skip
    answer = await slack.submit(view, answers)
    assert set(answer["errors"]) == {"link_3_target"}
    assert answer["errors"]["link_3_target"].startswith("http://169.254.169.254/latest is refused")

    await slack.settle()
    assert await slack.engine.agreements.all() == []
    assert await slack.engine.tracked() == []
    assert not slack.api.calls_to("chat.postMessage")


async def test_an_exchange_is_logged_verified_and_its_per_link_verdicts_posted_to_the_channel(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    # Our link is in place; the partner has not added theirs yet.
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(f"<main><p>{BREAD}</p><p>Links coming soon.</p></main>", "Resources"))
    view = opened_view(await _open(slack))
    answer = await slack.submit(view, exchange_answers(ours, partner))
    assert answer == {"response_action": "clear"}
    await slack.settle()

    [stored] = await slack.engine.agreements.all()
    assert (stored.id, stored.owner, stored.kind.value) == ("1", USER, "exchange")
    assert stored.deadline == date(2026, 11, 9)  # the picker's default reached the store
    assert stored.contact.slack_user == "U0PAT" and stored.contact.email == "pat@partner.example"
    assert stored.qualification.relevance.score == 4 and stored.notes == "Agreed by email with Pat."
    assert stored.priority.value == "normal"  # the select's initial option reached the store
    assert [(link.direction.value, link.health) for link in stored.links] == [
        ("ours", LinkHealth.HEALTHY),
        ("theirs", LinkHealth.FAILING),
    ]
    assert stored.links[1].reason == "link_removed"
    assert stored.state(START.date()) is AgreementState.PENDING  # the partner has until the deadline

    [posted] = slack.calls_in("chat.postMessage", CHANNEL)
    assert "logged partnership *#1 Partner Bakery*" in posted.blocks_text()
    [result] = slack.calls_in("chat.update", CHANNEL)
    assert result.params["ts"] == posted.answer["ts"]
    text = result.blocks_text()
    assert result.params["text"] == "Partnership #1 with Partner Bakery: pending, 1/2 links healthy"
    assert "Partnership #1: Partner Bakery" in text
    assert ":white_check_mark: *L1* we link" in text and "*healthy* · `link_present`" in text
    assert ":x: *L2* they link" in text
    assert "*failing* · `link_removed`: the page does not link to the target" in text
    assert "expects follow, anchor “Our sourdough kit”, main" in text
    assert "*Deadline*\n2026-11-09 (in 7 days)" in text
    # Qualification hints of the partner page, never a veto.
    assert f"Partner page: {partner.url('/resources')}" in text
    assert "Indexable: yes" in text and "Relevance to our page:" in text
    assert "never block" in text
    assert "<@U0PAT>" in text and "Logged by <@U0ALICE>" in text


async def test_a_paid_link_is_expected_sponsored_and_live_when_it_is(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    partner.html("/review", page(main_link(ours.url("/product"), "Our kit", "sponsored"), "Review"))
    view = opened_view(await _open(slack))
    answers = {
        "partner_name": "Paid Review",
        "partner_site": partner.url("/"),
        "kind": "paid",
        "link_2_source": partner.url("/review"),
        "link_2_target": ours.url("/product"),
    }
    assert await slack.submit(view, answers) == {"response_action": "clear"}
    await slack.settle()

    [stored] = await slack.engine.agreements.all()
    [promised] = stored.links
    assert promised.expected_rel.value == "sponsored"  # the rel left empty: paid means sponsored
    assert (promised.health, promised.seen_rel) == (LinkHealth.HEALTHY, ("sponsored",))
    assert stored.state(START.date()) is AgreementState.LIVE
    [result] = slack.calls_in("chat.update", CHANNEL)
    assert result.params["text"] == "Partnership #1 with Paid Review: live, 1/1 links healthy"
    assert "expects sponsored · *healthy*" in result.blocks_text()


async def test_a_paid_link_that_is_followed_is_not_as_agreed(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    partner.html("/review", page(main_link(ours.url("/product"), "Our kit"), "Review"))
    view = opened_view(await _open(slack))
    answers = {"partner_name": "Paid Review", "partner_site": partner.url("/"), "kind": "paid",
               "link_2_source": partner.url("/review"), "link_2_target": ours.url("/product")}  # fmt: skip
    await slack.submit(view, answers)
    await slack.settle()
    [result] = slack.calls_in("chat.update", CHANNEL)
    assert '*failing* · `not_sponsored`: a paid link must carry rel="sponsored"' in result.blocks_text()


async def test_a_three_way_exchange_is_one_record_with_three_verified_links(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, third: LocalSite
) -> None:
    # A (ours) -> B (partner), B -> C (third), C -> A.
    ours.html("/partners", page(main_link(partner.url("/"), "Partner B")))
    partner.html("/friends", page(main_link(third.url("/"), "Site C")))
    third.html("/links", page(main_link(ours.url("/product"), "Our kit"), "Site C links"))
    view = opened_view(await _open(slack))
    answers = {
        "partner_name": "B and C",
        "partner_site": partner.url("/"),
        "kind": "three_way",
        "link_1_source": ours.url("/partners"),
        "link_1_target": partner.url("/"),
        "link_2_source": third.url("/links"),
        "link_2_target": ours.url("/product"),
        "link_3_source": partner.url("/friends"),
        "link_3_target": third.url("/"),
        # link_3_direction keeps its default: on a partner's site
    }
    assert await slack.submit(view, answers) == {"response_action": "clear"}
    await slack.settle()

    [stored] = await slack.engine.agreements.all()
    assert [(link.source_url, link.direction.value) for link in stored.links] == [
        (ours.url("/partners"), "ours"),
        (third.url("/links"), "theirs"),
        (partner.url("/friends"), "theirs"),
    ]
    assert all(link.health is LinkHealth.HEALTHY for link in stored.links)
    assert stored.state(START.date()) is AgreementState.LIVE
    [result] = slack.calls_in("chat.update", CHANNEL)
    text = result.blocks_text()
    assert "three_way" in text and "3/3 links healthy" in text
    # The hints look at the partner-side page that links to us: C's page.
    assert f"Partner page: {third.url('/links')}" in text
    assert "Our link: to our page, in the main content, followed" in text


async def test_when_the_bot_is_not_in_the_channel_the_result_goes_to_the_owner_by_dm(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    slack.api.fail("chat.postMessage", "not_in_channel", channel="C0PRIVATE")
    view = opened_view(await _open(slack, channel="C0PRIVATE"))
    await slack.submit(view, exchange_answers(ours, partner))
    await slack.settle()
    [dm] = slack.calls_in("chat.postMessage", USER)  # channel=<user id>: the app's DM with the owner
    [result] = slack.calls_in("chat.update", USER)
    assert result.params["ts"] == dm.answer["ts"]
    assert result.params["text"] == "Partnership #1 with Partner Bakery: live, 2/2 links healthy"
    assert not slack.calls_in("chat.update", "C0PRIVATE")


# -- listing, showing, exporting ------------------------------------------------------------------------


async def _log_two(slack: SlackDriver, ours: LocalSite, partner: LocalSite, clock: Clock) -> None:
    """#1 pending (the partner's link missing), #2 a day later and live."""
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page("<main>nothing yet</main>"))
    partner.html("/review", page(main_link(ours.url("/product"), "Our kit", "sponsored")))
    service = slack.engine.agreements
    await service.add(
        AgreementInput(
            partner_name="Partner Bakery",
            partner_site=partner.url("/"),
            owner=USER,
            links=(
                LinkInput(ours.url("/partners"), partner.url("/guide"), direction="ours"),
                LinkInput(partner.url("/resources"), ours.url("/product"), direction="theirs"),
            ),
            notes='=HYPERLINK("http://evil.example")',  # a formula, if a spreadsheet ran it
        )
    )
    clock.advance(1)
    await service.add(
        AgreementInput(
            partner_name="Paid Review",
            partner_site=partner.url("/"),
            owner="U0BOB",
            kind="paid",
            links=(LinkInput(partner.url("/review"), ours.url("/product"), direction="theirs"),),
        )
    )
    await service.check()


async def test_partners_lists_newest_first_grouped_by_state_and_filters_by_state(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await _log_two(slack, ours, partner, clock)
    await slack.command("partners")
    answer = await slack.response()
    assert answer.params["response_type"] == "ephemeral"
    text = answer.blocks_text()
    assert answer.params["text"] == "2 partnerships: 1 pending, 1 live"
    assert text.index("*pending* (1)") < text.index("#1 Partner Bakery") < text.index("*live* (1)")
    assert text.index("*live* (1)") < text.index("#2 Paid Review")
    assert "0/2 links healthy" not in text and "1/2 links healthy" in text

    await slack.command("partners live")
    live = (await slack.response()).blocks_text()
    assert "#2 Paid Review" in live and "#1 Partner Bakery" not in live

    await slack.command("partners one-sided")
    assert "No one_sided partnerships yet" in (await slack.response()).blocks_text()

    response = await slack.command("partners bogus")
    data = json.loads(response.body)
    assert data["response_type"] == "ephemeral" and "takes a state" in data["text"]


async def test_partner_shows_one_agreement_with_verdicts_reasons_and_history(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await _log_two(slack, ours, partner, clock)
    await slack.command("partner 1")
    answer = await slack.response()
    assert answer.params["response_type"] == "ephemeral"
    text = answer.blocks_text()
    assert "Partnership #1: Partner Bakery" in text
    assert ":white_check_mark: *L1* we link" in text
    assert "*failing* · `link_removed`: the page does not link to the target" in text
    assert "*History*" in text and "· <@U0ALICE> · created" in text and "link_checked" in text
    # The partner's track record over both agreements with them follows.
    assert "*Track record of 127.0.0.2* (2 agreements)" in text
    assert "• Days to deliver: delivered on 1 of 2 agreements, median 0 days after the start" in text
    assert "• Their links: live in 1 of 2 checks (50%)" in text and "• 0 losses, 0 reclaims" in text
    assert "• #2 Paid Review, live: delivered in 0 days; live in 1 of 1 check (100%)" in text
    assert "• #1 Partner Bakery, pending: not delivered yet (1 day since the start)" in text
    assert len(answer.blocks) <= 50

    await slack.command("partner 42")
    unknown = await slack.response()
    assert unknown.params["response_type"] == "ephemeral"
    assert "no agreement with id or partner domain '42'" in unknown.blocks_text()

    # By the partner's domain (Slack's link markup around it): the newest agreement with it.
    await slack.command(f"partner <{partner.url('/')}|{partner.url('/')}>")
    assert "Partnership #2: Paid Review" in (await slack.response()).blocks_text()


async def test_partners_export_uploads_the_csv_in_linkodys_layout_to_the_channel(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await _log_two(slack, ours, partner, clock)
    slack.mark()
    await slack.command("partners export")
    done = await slack.next_call(
        "files.completeUploadExternal", lambda c: c.params.get("channel_id") == CHANNEL
    )
    file_id = json.loads(done.params["files"])[0]["id"]
    url_call = slack.api.wait_for_call(
        "files.getUploadURLExternal", lambda c: c.answer.get("file_id") == file_id
    )
    assert url_call.params["filename"] == "linkpact-partnerships-2026-11-03.csv"
    upload = slack.api.wait_for_call("upload", lambda c: c.params["file_id"] == file_id)
    csv_text = upload.body.decode("utf-8-sig")
    header, *rows = csv_text.splitlines()
    assert header.startswith(LINKODY_HEADER)
    assert len(rows) == 3  # one row per promised link
    assert "'=HYPERLINK" in csv_text and ",=HYPERLINK" not in csv_text  # no formula injection
    assert "<@U0ALICE> exported 2 partnerships" in done.params["initial_comment"]


async def test_partners_export_where_the_bot_is_not_a_member_answers_privately(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await _log_two(slack, ours, partner, clock)
    slack.api.fail("files.completeUploadExternal", "not_in_channel", channel="C0OUT")
    await slack.command("partners export", channel="C0OUT")
    answer = await slack.response()
    assert answer.params["response_type"] == "ephemeral"
    text = answer.blocks_text()
    assert "not a member of this conversation" in text and "```URL FROM,TAGS,NOTES" in text


# -- App Home -------------------------------------------------------------------------------------------


async def test_the_home_dashboard_lists_overdue_first_and_re_check_updates_it(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await _log_two(slack, ours, partner, clock)
    clock.advance(8)  # past #1's deadline, the partner's link still missing
    await slack.engine.agreements.check()

    slack.mark()
    await slack.home_opened()
    home = view_of(await slack.next_call("views.publish"))
    assert home["type"] == "home"
    text = json.dumps(home)
    assert text.index("*Overdue* (1)") < text.index("#1 Partner Bakery") < text.index("#2 Paid Review")
    assert "one_sided" in text and "overdue by 2 days" in text
    buttons = [
        b["accessory"] for b in home["blocks"] if b.get("accessory", {}).get("action_id") == RECHECK_ACTION
    ]
    assert [b["value"] for b in buttons] == ["1", "2"]
    assert any(
        e.get("action_id") == OPEN_LOG_PARTNERSHIP_ACTION
        for b in home["blocks"]
        for e in b.get("elements", [])
    )
    assert "/linkcheck &lt;url&gt;" in text or "/linkcheck <url>" in text  # the usage is still there

    # The partner delivers; the owner presses Re-check on #1.
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    slack.mark()
    response = await slack.interact(
        block_actions_payload(RECHECK_ACTION, "1", block_id="agreement_1", view=home)
    )
    assert response.body == ""
    await slack.settle()
    published = [view_of(c) for c in slack.api.calls_to("views.publish")][-2:]
    assert "Re-checking…" in json.dumps(published[0], ensure_ascii=False)
    final = json.dumps(published[1])
    assert "Overdue" not in final and "Re-checking" not in final
    assert final.index("*live* (2)") < final.index("#1 Partner Bakery")
    [agreement] = [a for a in await slack.engine.agreements.all() if a.id == "1"]
    assert agreement.state(clock().date()) is AgreementState.LIVE
    history = await slack.engine.agreements.history("1")
    assert {"by": USER, "action": "state_changed", "state": "live"}.items() <= history[-1].items()


async def test_the_home_button_opens_the_modal_and_the_result_goes_by_dm(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    slack.mark()
    await slack.interact(block_actions_payload(OPEN_LOG_PARTNERSHIP_ACTION, "home", block_id="home_actions"))
    call = await slack.next_call("views.open")
    assert call.params["trigger_id"] == "3.4.5"
    view = opened_view(call)
    assert json.loads(view["private_metadata"]) == {"channel": "", "surface": "home"}

    slack.mark()
    assert await slack.submit(view, exchange_answers(ours, partner)) == {"response_action": "clear"}
    await slack.settle()
    [result] = slack.calls_in("chat.update", USER)
    assert result.params["text"] == "Partnership #1 with Partner Bakery: live, 2/2 links healthy"
    home = view_of(await slack.next_call("views.publish"))  # the dashboard shows the new agreement
    assert "#1 Partner Bakery" in json.dumps(home)


async def test_a_store_failure_during_logging_is_told_to_the_user_and_the_bot_keeps_serving(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, caplog: pytest.LogCaptureFixture
) -> None:
    view = opened_view(await _open(slack))
    original = slack.engine.agreements.add

    async def broken_add(data: AgreementInput) -> Any:
        raise OSError("disk full")

    slack.engine.agreements.add = broken_add  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        await slack.submit(view, exchange_answers(ours, partner))
        await slack.settle()
    [note] = slack.api.calls_to("chat.postEphemeral")
    assert note.params["user"] == USER and note.params["channel"] == CHANNEL
    assert "The partnership was not logged: OSError: disk full" in note.blocks_text()
    assert any(r.exc_info and "storing a partnership failed" in r.getMessage() for r in caplog.records)

    slack.engine.agreements.add = original  # type: ignore[method-assign]
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    await slack.submit(view, exchange_answers(ours, partner))
    await slack.settle()
    assert [a.id for a in await slack.engine.agreements.all()] == ["1"]


async def _open(slack: SlackDriver, *, channel: str = CHANNEL) -> ApiCall:
    slack.mark()
    await slack.command("partner", channel=channel)
    call = await slack.next_call("views.open")
    slack.mark()
    return call


# -- pure parts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("partner", LogPartnership()),
        ("PARTNER", LogPartnership()),
        ("partner 12", ShowPartnership("12")),
        ("partner #12", ShowPartnership("#12")),
        ("partner <http://partner.example|partner.example>", ShowPartnership("http://partner.example")),
        ("partners", ListPartnerships()),
        ("partners live", ListPartnerships(AgreementState.LIVE)),
        ("partners one_sided", ListPartnerships(AgreementState.ONE_SIDED)),
        ("partners one sided", ListPartnerships(AgreementState.ONE_SIDED)),
        ("partners EXPORT", ExportPartnerships()),
    ],
)
def test_parse_partnership_commands(text: str, expected: object) -> None:
    assert parse_linkcheck_text(text) == expected


def test_parse_refuses_two_refs_and_unknown_states() -> None:
    with pytest.raises(InputError, match="one agreement id"):
        parse_linkcheck_text("partner 1 2")
    with pytest.raises(InputError, match="takes a state"):
        parse_linkcheck_text("partners happy")


def test_the_modal_is_valid_block_kit_and_reads_back_into_core_input() -> None:
    view = build_partnership_modal(today=date(2026, 2, 27), origin=ModalOrigin("C1", "command"))
    view.validate_json()  # slack_sdk's checks: 100 blocks, title and label lengths
    data = view.to_dict()
    assert data["blocks"][4]["element"]["initial_date"] == "2026-03-06"
    values = view_state_values(
        data,
        {"partner_name": " Bakery ", "partner_site": "https://p.example/", "link_2_source": "https://p.example/r",
         "link_2_target": "https://us.example/", "link_3_rel": "ugc", "authority_score": "2"},
    )  # fmt: skip
    submission = read_partnership_submission(values, owner="U1")
    assert submission.link_rows == (
        2,
        3,
    )  # row 1 empty; row 3 has only a rel: kept, so the core asks for URLs
    assert submission.data.links[0].direction == "theirs" and submission.data.links[1].rel == "ugc"
    assert submission.data.deadline == "2026-03-06" and submission.data.kind == "exchange"
    assert submission.data.qualification["authority"] == ("", "2")
    # The priority select: three levels, normal unless changed.
    [priority] = [b for b in data["blocks"] if b.get("block_id") == "priority"]
    assert [o["value"] for o in priority["element"]["options"]] == ["high", "normal", "low"]
    assert submission.data.priority == "normal"
    high = view_state_values(data, {"priority": "high"})
    assert read_partnership_submission(high, owner="U1").data.priority == "high"


def test_block_errors_map_core_fields_to_modal_rows() -> None:
    errors = block_errors(
        {
            "link_1_target": "link 1 points from a.example to itself",
            "link_2_direction": "direction must be 'ours' or 'theirs'",
            "links": "promise at least one link",
            "cost": "odd",
        },
        (2, 3),
    )
    assert errors == {
        "link_2_target": "link 2 points from a.example to itself",
        "link_3_direction": "direction must be 'ours' or 'theirs'",
        "link_2_source": "promise at least one link",
        "partner_name": "cost: odd",
    }
    assert block_errors({"link_1_direction": "bad"}, (1,)) == {"link_1_source": "bad"}


def test_urls_in_slack_messages() -> None:
    assert first_url("see <https://a.example/x|a> and <https://b.example/>") == "https://a.example/x"
    assert first_url("bare https://c.example/p?q=1 here") == "https://c.example/p?q=1"
    assert first_url("<mailto:x@y.example|mail> no web link") == ""
    rich = {"text": "", "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_section",
            "elements": [{"type": "link", "url": "https://d.example/page"}]}]}]}  # fmt: skip
    assert prefill_from_message(rich).partner_page_url == "https://d.example/page"
    assert prefill_from_message({"text": "no links"}).partner_page_url == ""


async def test_lists_and_home_stay_within_block_kit_limits_with_many_agreements(
    tmp_path: Path, clock: Clock
) -> None:
    settings = Settings(db_path=tmp_path / "many.json")
    engine = Engine.create(settings, now=clock)
    try:
        items = [
            AgreementInput(
                partner_name=f"Partner {n} <!channel>",
                partner_site=f"https://p{n}.example/",
                owner=USER,
                links=(LinkInput(f"https://p{n}.example/r", "https://us.example/", direction="theirs"),),
            )
            for n in range(120)
        ]
        agreements = await engine.agreements.add_many(items)
    finally:
        await engine.aclose()
    blocks = build_agreement_list_blocks(agreements, START.date())
    assert len(blocks) <= 50
    text = json.dumps([b.to_dict() for b in blocks])
    assert f"and {120 - MAX_LISTED_AGREEMENTS} more" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # escaped
    home = build_home_view(agreements, today=START.date())
    home.validate_json()
    assert len(home.blocks or []) <= MAX_HOME_BLOCKS
    assert "80 more partnerships" in json.dumps(home.to_dict())


def test_the_manifest_declares_the_shortcut_and_the_messages_tab_the_code_uses() -> None:
    path = Path(__file__).resolve().parents[1] / "manifest.yml"
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    [shortcut] = manifest["features"]["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", LOG_PARTNERSHIP_SHORTCUT)
    # Results are sent by DM (chat.postMessage to a user ID), which lands in the app's Messages tab.
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    assert "partners [state|export]" in manifest["features"]["slash_commands"][0]["usage_hint"]


async def test_a_failed_verification_still_posts_the_stored_agreement_and_says_why(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite, caplog: pytest.LogCaptureFixture
) -> None:
    view = opened_view(await _open(slack))

    async def broken_check(refs: Any = None, *, by: str = "linkpact") -> Any:
        raise RuntimeError("verifier crashed")

    slack.engine.agreements.check = broken_check  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        await slack.submit(view, exchange_answers(ours, partner))
        await slack.settle()
    [result] = slack.calls_in("chat.update", CHANNEL)
    text = result.blocks_text()
    assert "Partnership #1: Partner Bakery" in text and "not checked yet" in text
    assert "stored, but verifying it failed: RuntimeError: verifier crashed" in text
    assert [a.id for a in await slack.engine.agreements.all()] == ["1"]
    assert any(r.exc_info and "verifying partnership #1 failed" in r.getMessage() for r in caplog.records)
