"""The digest's prune buttons and the monitoring commands, driven as Slack drives them: signed
``block_actions`` and slash-command requests into the Bolt app in-process (so the engine's clock is
injected), a real engine on local sites, and the Slack stand-in recording every Web API call.

Every button path: owner, admin (by user ID and by user group), stranger, foreign workspace or app, double
click, stale proposal, Keep, Recheck now; and `/linkcheck digest` and `/linkcheck recheck`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from bot.agreements.model import AgreementState, LinkInput
from bot.config import SlackSettings
from bot.engine import Engine
from bot.errors import InputError
from bot.monitoring.digest import DigestLedger, build_digest
from bot.monitoring.prune import ProposalStatus, PruneProposal
from handlers.app import build_app
from handlers.commands.parsing import PreviewDigest, RecheckNow, parse_linkcheck_text
from handlers.digest import post_digest
from handlers.services import Services
from handlers.views.digest_blocks import APPROVE_PRUNE_ACTION, KEEP_ACTION, RECHECK_PROPOSAL_ACTION
from tests.support.clock import Clock
from tests.support.site import LocalSite
from tests.support.slack_api import TEAM_ID, ApiCall, slash_command_fields
from tests.support.slack_monitoring import (
    APP_ID,
    MonitoringSlackStandIn,
    button_payload,
    command_request,
    signed_request,
)
from tests.test_agreements import exchange, main_link, page
from tests.test_prune import one_sided_agreement

SECRET = "monitoring-signing-secret"
CHANNEL = "C0DIGEST"
OWNER, ADMIN, GROUPIE, STRANGER = "U0OWNER", "U0ADMIN", "U0GROUPIE", "U0STRANGER"
_names = itertools.count(1)


@pytest.fixture
def slack_api() -> Iterator[MonitoringSlackStandIn]:
    with MonitoringSlackStandIn(usergroups={"S0ADMINS": [GROUPIE]}) as api:
        yield api


@dataclass
class Bot:
    app: AsyncApp
    services: Services
    api: MonitoringSlackStandIn
    engine: Engine

    async def click(
        self,
        message: ApiCall,
        action_id: str,
        proposal_id: str,
        *,
        user: str,
        team: str = TEAM_ID,
        app_id: str = APP_ID,
        wait: bool = True,
    ) -> str:
        """Press a button on ``message`` as ``user``; returns the name of the click's response_url."""
        name = f"click{next(_names)}"
        payload = button_payload(
            message, action_id, proposal_id, user_id=user, response_url=self.api.response_url(name),
            team_id=team, app_id=app_id, blocks=self.current_blocks(message),
        )  # fmt: skip
        response = await self.app.async_dispatch(signed_request(SECRET, payload))
        assert response.status == 200 and not response.body  # acked at once, nothing in the ack
        if wait:
            await self.services.tasks.join()
        return name

    async def command(self, text: str) -> str:
        name = f"cmd{next(_names)}"
        fields = slash_command_fields(text, response_url=self.api.response_url(name), user_id=OWNER)
        response = await self.app.async_dispatch(command_request(SECRET, fields))
        assert response.status == 200
        await self.services.tasks.join()
        return name

    def current_blocks(self, message: ApiCall) -> list[dict[str, Any]]:
        """The message as Slack would show it now: the latest chat.update of it, else as posted."""
        updates = [u for u in self.api.calls_to("chat.update") if u.params.get("ts") == message.answer["ts"]]
        return updates[-1].blocks if updates else message.blocks

    def updates(self, message: ApiCall) -> list[ApiCall]:
        return [u for u in self.api.calls_to("chat.update") if u.params.get("ts") == message.answer["ts"]]

    def reply(self, name: str) -> str:
        [answer] = self.api.responses(name)
        assert (
            answer.params["response_type"] == "ephemeral" and answer.params.get("replace_original") is False
        )
        return answer.blocks_text()


@pytest.fixture
async def bot(engine: Engine, slack_api: MonitoringSlackStandIn) -> AsyncIterator[Bot]:
    slack = SlackSettings(
        bot_token="xoxb-test", signing_secret=SECRET, api_url=slack_api.api_url, admins=(ADMIN, "S0ADMINS")
    )
    services = Services.create(engine, slack)
    try:
        yield Bot(build_app(engine, slack, services=services), services, slack_api, engine)
    finally:
        await services.tasks.aclose()


async def post_digest_message(bot: Bot, clock: Clock) -> ApiCall:
    engine = bot.engine
    digest = await build_digest(engine.store, engine.agreements, engine.prune, until=clock())
    client = bot.app.client
    await post_digest(client, digest, [CHANNEL], DigestLedger(engine.store, clock=clock))
    [message] = [c for c in bot.api.calls_to("chat.postMessage") if not c.params.get("thread_ts")]
    return message


async def proposal_and_message(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> tuple[PruneProposal, ApiCall]:
    await one_sided_agreement(bot.engine, ours, partner, clock)
    [proposal] = await bot.engine.prune.open_proposals()
    return proposal, await post_digest_message(bot, clock)


def block(blocks: list[dict[str, Any]], block_id: str) -> dict[str, Any]:
    [found] = [b for b in blocks if b.get("block_id") == block_id]
    return found


def block_text(b: dict[str, Any]) -> str:
    return ApiCall("x", {"blocks": [b]}, {}, "").blocks_text()


# -- Approve -------------------------------------------------------------------------------------------


async def test_the_owner_approves_the_message_shows_it_and_the_owner_is_told_what_to_remove(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)

    await bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=OWNER)

    agreement = await bot.engine.agreements.get(proposal.agreement_id)
    assert agreement.state(clock().date()) is AgreementState.PRUNED and agreement.pruned_by == OWNER
    [update] = bot.updates(message)
    assert update.params["channel"] == CHANNEL
    outcome = block(update.blocks, f"prune_actions:{proposal.id}")
    assert outcome["type"] == "context" and "*Pruned* by <@U0OWNER>" in block_text(outcome)
    assert "<!date^" in block_text(outcome)
    assert len(update.blocks) == len(message.blocks)  # the rest of the digest is untouched
    [told] = [c for c in bot.api.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert told.params["thread_ts"] == message.answer["ts"] and told.params["channel"] == CHANNEL
    assert told.blocks_text().startswith("<@U0OWNER>: #1 Partner Bakery was pruned by <@U0OWNER>")
    assert f"<{ours.url('/partners')}|" in told.blocks_text()
    assert not [c for c in bot.api.calls if c.method == "response_url"]


async def test_when_the_message_cannot_be_updated_the_clicker_still_hears_the_outcome(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    bot.api.fail("chat.update", "message_not_found", channel=CHANNEL)
    name = await bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=OWNER)
    assert (await bot.engine.agreements.get(proposal.agreement_id)).pruned_by == OWNER
    answer = bot.reply(name)
    assert "Pruned #1 Partner Bakery (approved by <@U0OWNER>)" in answer
    assert "(The digest message could not be updated.)" in answer
    assert len([c for c in bot.api.calls_to("chat.postMessage") if c.params.get("thread_ts")]) == 1


@pytest.mark.parametrize("admin", [ADMIN, GROUPIE], ids=["listed-user", "member-of-listed-group"])
async def test_an_admin_approves(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock, admin: str
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    await bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=admin)
    agreement = await bot.engine.agreements.get(proposal.agreement_id)
    assert agreement.pruned_by == admin
    assert f"*Pruned* by <@{admin}>" in block_text(
        block(bot.updates(message)[-1].blocks, f"prune_actions:{proposal.id}")
    )
    [told] = [c for c in bot.api.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert told.blocks_text().startswith(f"<@U0OWNER>: #1 Partner Bakery was pruned by <@{admin}>")
    groups = bot.api.calls_to("usergroups.users.list")
    assert [g.params["usergroup"] for g in groups] == ([] if admin == ADMIN else ["S0ADMINS"])


async def test_a_stranger_is_refused_and_nothing_changes(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    for action in (APPROVE_PRUNE_ACTION, KEEP_ACTION):
        name = await bot.click(message, action, proposal.id, user=STRANGER)
        text = bot.reply(name)
        assert (
            "Only the agreement's owner (<@U0OWNER>) or an admin can decide this. Nothing was changed."
            in text
        )
    assert (await bot.engine.prune.get(proposal.id)).status is ProposalStatus.OPEN  # type: ignore[union-attr]
    assert (await bot.engine.agreements.get(proposal.agreement_id)).pruned_at is None
    assert bot.updates(message) == []
    assert not [c for c in bot.api.calls_to("chat.postMessage") if c.params.get("thread_ts")]


@pytest.mark.parametrize(
    ("team", "app_id"), [("T0ELSEWHERE", APP_ID), (TEAM_ID, "A0OTHERAPP")], ids=["workspace", "app"]
)
async def test_a_payload_from_another_workspace_or_app_is_refused(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock, team: str, app_id: str
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    for action in (APPROVE_PRUNE_ACTION, KEEP_ACTION, RECHECK_PROPOSAL_ACTION):
        name = await bot.click(message, action, proposal.id, user=OWNER, team=team, app_id=app_id)
        assert "does not belong to Linkpact in this workspace, so nothing was changed" in bot.reply(name)
    assert (await bot.engine.prune.get(proposal.id)).status is ProposalStatus.OPEN  # type: ignore[union-attr]
    assert (await bot.engine.agreements.get(proposal.agreement_id)).pruned_at is None
    assert bot.updates(message) == []
    assert bot.api.calls_to("usergroups.users.list") == []


async def test_the_app_id_can_come_from_the_settings(
    engine: Engine, slack_api: MonitoringSlackStandIn, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    slack_api.app_id = None  # auth.test does not say which app this is
    slack = SlackSettings(
        bot_token="xoxb-t", signing_secret=SECRET, api_url=slack_api.api_url, app_id="A0MINE"
    )
    services = Services.create(engine, slack)
    bot = Bot(build_app(engine, slack, services=services), services, slack_api, engine)
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    refused = await bot.click(message, KEEP_ACTION, proposal.id, user=OWNER, app_id=APP_ID)
    assert "nothing was changed" in bot.reply(refused)
    await bot.click(message, KEEP_ACTION, proposal.id, user=OWNER, app_id="A0MINE")
    assert (await engine.prune.get(proposal.id)).status is ProposalStatus.KEPT  # type: ignore[union-attr]


async def test_two_clicks_at_once_make_exactly_one_transition(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    names = await asyncio.gather(
        bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=OWNER, wait=False),
        bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=ADMIN, wait=False),
    )
    await bot.services.tasks.join()
    history = await bot.engine.agreements.history(proposal.agreement_id)
    assert [e["action"] for e in history].count("pruned") == 1
    answers = [bot.api.responses(name) for name in names]
    assert sorted(len(a) for a in answers) == [0, 1]  # the winner gets no ephemeral, the other one does
    late = next(a for a in answers if a)[0]
    assert "This proposal no longer applies: Already approved by <@" in late.blocks_text()
    final = block(bot.current_blocks(message), f"prune_actions:{proposal.id}")
    winner = (await bot.engine.agreements.get(proposal.agreement_id)).pruned_by
    assert f"*Pruned* by <@{winner}>" in block_text(final)
    assert len([c for c in bot.api.calls_to("chat.postMessage") if c.params.get("thread_ts")]) == 1


async def test_clicks_on_two_proposals_of_one_message_both_show(
    bot: Bot, ours: LocalSite, partner: LocalSite, third: LocalSite, clock: Clock
) -> None:
    ours.html("/friends", page(main_link(third.url("/guide"), "Third guide")))
    third.html("/resources", page("<main>nothing yet</main>"))
    links = (
        LinkInput(ours.url("/friends"), third.url("/guide"), direction="ours", anchor="Third guide"),
        LinkInput(third.url("/resources"), ours.url("/product"), direction="theirs"),
    )
    await bot.engine.agreements.add(
        exchange(ours, third, partner_name="Third Mill", partner_site=third.url("/"), links=links)
    )
    await one_sided_agreement(bot.engine, ours, partner, clock)
    first_proposal, second_proposal = await bot.engine.prune.open_proposals()
    message = await post_digest_message(bot, clock)
    await asyncio.gather(
        bot.click(message, KEEP_ACTION, first_proposal.id, user=OWNER, wait=False),
        bot.click(message, APPROVE_PRUNE_ACTION, second_proposal.id, user=OWNER, wait=False),
    )
    await bot.services.tasks.join()
    final = bot.current_blocks(message)
    assert "*Kept* by <@U0OWNER>" in block_text(block(final, f"prune_actions:{first_proposal.id}"))
    assert "*Pruned* by <@U0OWNER>" in block_text(block(final, f"prune_actions:{second_proposal.id}"))


# -- no longer applies, Keep, Recheck now -----------------------------------------------------------------


async def test_a_stale_proposal_says_it_no_longer_applies(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))  # they deliver
    await bot.engine.agreements.check()

    name = await bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=OWNER)

    assert "This proposal no longer applies" in bot.reply(name) and "nothing was pruned" in bot.reply(name)
    assert (await bot.engine.agreements.get(proposal.agreement_id)).pruned_at is None
    outcome = block(bot.updates(message)[-1].blocks, f"prune_actions:{proposal.id}")
    assert outcome["type"] == "context" and "No longer applies" in block_text(outcome)


async def test_keep_snoozes_and_shows_until_when(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    await bot.click(message, KEEP_ACTION, proposal.id, user=OWNER)
    kept = await bot.engine.prune.get(proposal.id)
    assert kept is not None and kept.status is ProposalStatus.KEPT and kept.decided_by == OWNER
    outcome = block_text(block(bot.updates(message)[-1].blocks, f"prune_actions:{proposal.id}"))
    assert "*Kept* by <@U0OWNER>" in outcome and "asked again after <!date^" in outcome
    assert (await bot.engine.agreements.get(proposal.agreement_id)).pruned_at is None
    await bot.engine.recheck()
    assert await bot.engine.prune.open_proposals() == []  # snoozed

    again = await bot.click(message, APPROVE_PRUNE_ACTION, proposal.id, user=OWNER)  # an old button
    assert "no longer applies: Already kept by <@U0OWNER>" in bot.reply(again)


async def test_recheck_now_shows_the_fresh_state_and_keeps_the_buttons_while_it_applies(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    proposal, message = await proposal_and_message(bot, ours, partner, clock)
    before = len(partner.hits_for("/resources"))
    clock.advance(hours=2)

    await bot.click(message, RECHECK_PROPOSAL_ACTION, proposal.id, user=STRANGER)  # anyone may recheck

    assert len(partner.hits_for("/resources")) == before + 1
    blocks = bot.updates(message)[-1].blocks
    section = block_text(block(blocks, f"prune_proposal:{proposal.id}"))
    assert "_Rechecked <!date^" in section and "by <@U0STRANGER>" in section
    assert f"their link on <{partner.url('/resources')}|" in section and ": failing (link_removed)" in section
    assert f"our link on <{ours.url('/partners')}|" in section and ": healthy" in section
    actions = block(blocks, f"prune_actions:{proposal.id}")
    assert actions["type"] == "actions" and len(actions["elements"]) == 3

    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))  # they deliver
    await bot.click(message, RECHECK_PROPOSAL_ACTION, proposal.id, user=OWNER)
    blocks = bot.updates(message)[-1].blocks
    assert ": healthy" in block_text(block(blocks, f"prune_proposal:{proposal.id}")).split("their link on")[1]
    outcome = block(blocks, f"prune_actions:{proposal.id}")
    assert outcome["type"] == "context" and "No longer applies" in block_text(outcome)
    assert (await bot.engine.prune.get(proposal.id)).status is ProposalStatus.STALE  # type: ignore[union-attr]


# -- commands -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digest", PreviewDigest()),
        ("DIGEST", PreviewDigest()),
        ("recheck", RecheckNow(None)),
        ("recheck #12", RecheckNow("#12")),
        ("recheck <http://partner.example|partner.example>", RecheckNow("http://partner.example")),
    ],
)
def test_parse_the_monitoring_commands(text: str, expected: object) -> None:
    assert parse_linkcheck_text(text) == expected


@pytest.mark.parametrize(
    ("text", "message"), [("digest now", "`digest` takes nothing"), ("recheck 1 2", "at most one agreement")]
)
def test_malformed_monitoring_commands_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_linkcheck_text(text)


async def test_linkcheck_digest_previews_ephemerally_without_marking_it_posted(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    await one_sided_agreement(bot.engine, ours, partner, clock)
    name = await bot.command("digest")
    [answer] = bot.api.responses(name)
    assert answer.params["response_type"] == "ephemeral"
    text = answer.blocks_text()
    assert "Preview, only visible to you" in text and "set LINKPACT_DIGEST_CHANNEL" in text
    assert "Linkpact weekly digest · 2026-W48" in text and "Partner Bakery" in text
    assert not [e for b in answer.blocks for e in b.get("elements", []) if e.get("type") == "button"]
    assert bot.api.calls_to("chat.postMessage") == []
    assert not await DigestLedger(bot.engine.store, clock=clock).posted("2026-W48", CHANNEL)


async def test_linkcheck_recheck_answers_with_counts_and_changes(
    bot: Bot, ours: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    ours.html("/partners", page(main_link(partner.url("/guide"), "Partner guide")))
    partner.html("/resources", page(main_link(ours.url("/product"), "Our sourdough kit")))
    agreement = await bot.engine.agreements.add(exchange(ours, partner))

    answer = bot.api.responses(await bot.command("recheck"))[0].blocks_text()
    assert "*Recheck done*: 1 tracked backlink and 2 promised links · 3 live" in answer
    assert "new: <" in answer and "Partner Bakery" in answer

    partner.html("/resources", page("<main>the link is gone</main>"))
    answer = bot.api.responses(await bot.command(f"recheck #{agreement.id}"))[0].blocks_text()
    assert f"*Recheck of agreement #{agreement.id} done*: 0 tracked backlinks and 2 promised links" in answer
    assert "No changes since the previous check." in answer  # one failing check is only suspected
    clock.advance(hours=21)
    answer = bot.api.responses(await bot.command(f"recheck #{agreement.id}"))[0].blocks_text()
    assert f"• lost: <{partner.url('/resources')}|" in answer and "`link_removed` · Partner Bakery" in answer

    missing = bot.api.responses(await bot.command("recheck 999"))[0].blocks_text()
    assert "no agreement with id or partner domain '999'" in missing

    async with bot.services.monitoring.recheck_lock:  # the schedule's recheck is running
        busy = bot.api.responses(await bot.command("recheck"))[0].blocks_text()
    assert "A full recheck is already running" in busy
