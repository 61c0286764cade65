"""The buttons of a prune proposal in the weekly digest: **Approve prune**, **Keep**, **Recheck now**.

Every click is acknowledged at once (Slack wants the ack within 3 seconds, "Handling user interaction");
the work runs in a background task. A payload whose workspace (``team.id``) or app (``api_app_id``) is not
this bot's (:meth:`handlers.monitoring.MonitoringState.identity`) is refused and changes nothing.

Approve and Keep go straight to :meth:`bot.monitoring.prune.PruneBook.decide`, which checks who may decide
(the
agreement's owner or an admin from ``LINKPACT_ADMINS``) and makes the transition in one store transaction:
two clicks, or two people at once, cause exactly one transition, and the handler reads nothing it then
writes back. The digest message is then updated in place from the proposals' stored state (under a
per-message lock, so two updates never undo each other), and the owner is told in the digest's thread
which of our pages still carry the link to remove.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InputError
from bot.monitoring.prune import Outcome, ProposalStatus, PruneProposal
from handlers.commands.check_job import Respond, describe_failure, respond_ephemeral
from handlers.services import Services, full_engine, services_from
from handlers.views.digest_blocks import (
    APPROVE_PRUNE_ACTION,
    KEEP_ACTION,
    PROPOSAL_ACTIONS_PREFIX,
    PROPOSAL_SECTION_PREFIX,
    RECHECK_PROPOSAL_ACTION,
    health_note,
    outcome_text,
    proposal_actions,
    proposal_outcome,
    proposal_section,
)
from handlers.views.message_blocks import build_error_blocks, build_notice_blocks
from handlers.views.mrkdwn import escape, fallback, link, mention

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.monitoring.prune import Decision

logger = logging.getLogger(__name__)

PRUNE_ACTIONS = (APPROVE_PRUNE_ACTION, KEEP_ACTION, RECHECK_PROPOSAL_ACTION)
NOT_OURS = "This button does not belong to Linkpact in this workspace, so nothing was changed."
NOT_VERIFIED = (
    "Linkpact could not confirm this workspace with Slack right now, so nothing was changed. Try again."
)
NO_MONITORING = "Prune proposals are not available in this Linkpact process."
_MENTION = re.compile(r"(<@[UW][A-Z0-9]+>)")


@dataclass(frozen=True, slots=True)
class ButtonClick:
    """The parts of a ``block_actions`` payload a button needs (Slack docs: "block_actions payloads").
    ``value``: the button's value (a prune proposal's id; an audit's id for Propose prunes);
    ``channel_id``/``message_ts``: the message holding the button; ``blocks``/``text``: that message as
    Slack sent it with the click."""

    action_id: str
    value: str
    user_id: str
    team_id: str | None
    app_id: str | None
    channel_id: str | None
    message_ts: str | None
    thread_ts: str | None
    is_ephemeral: bool
    blocks: tuple[dict[str, Any], ...]
    text: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ButtonClick:
        action = (body.get("actions") or [{}])[0]
        container = body.get("container") or {}
        message = body.get("message") or {}
        return cls(
            action_id=str(action.get("action_id") or ""),
            value=str(action.get("value") or ""),
            user_id=str((body.get("user") or {}).get("id") or ""),
            team_id=(body.get("team") or {}).get("id"),
            app_id=body.get("api_app_id"),
            channel_id=container.get("channel_id") or (body.get("channel") or {}).get("id"),
            message_ts=container.get("message_ts") or message.get("ts"),
            thread_ts=message.get("thread_ts"),
            is_ephemeral=bool(container.get("is_ephemeral")),
            blocks=tuple(b for b in message.get("blocks") or [] if isinstance(b, dict)),
            text=str(message.get("text") or "Linkpact weekly digest"),
        )


def register(app: AsyncApp) -> None:
    """Register the three prune buttons (action IDs in :mod:`handlers.views.digest_blocks`)."""
    for action_id in PRUNE_ACTIONS:
        app.action(action_id)(handle_prune_button)


async def handle_prune_button(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: Respond, context: Any
) -> None:
    """Ack, then handle the click in a background task held by :class:`handlers.services.BackgroundTasks`."""
    await ack()
    services = services_from(context)
    click = ButtonClick.from_body(body)
    services.tasks.spawn(
        run_prune_button(click, services=services, client=client, respond=respond),
        name=f"{click.action_id} {click.value}",
    )


async def engine_for_click(
    click: ButtonClick, services: Services, client: AsyncWebClient, respond: Respond, *, unavailable: str
) -> Engine | None:
    """The engine to act with, or None after telling the clicker why not: a click from another
    workspace or app is refused, and so is one when the bot runs without the full engine."""
    refusal = await foreign_click_refusal(click, services, client)
    if refusal is not None:
        await respond_ephemeral(respond, text=fallback(refusal), blocks=build_error_blocks(refusal))
        return None
    engine = full_engine(services)
    if engine is None:
        await respond_ephemeral(respond, text=fallback(unavailable), blocks=build_error_blocks(unavailable))
    return engine


async def run_prune_button(
    click: ButtonClick, *, services: Services, client: AsyncWebClient, respond: Respond
) -> None:
    """Handle one click end to end; never raises (failures are logged and told to the clicker)."""
    try:
        engine = await engine_for_click(click, services, client, respond, unavailable=NO_MONITORING)
        if engine is None:
            return
        if click.action_id == RECHECK_PROPOSAL_ACTION:
            await _recheck(click, engine, services, client, respond)
        else:
            admin = await is_admin(client, click.user_id, services.slack.admins)
            decision = await engine.prune.decide(
                click.value,
                approve=click.action_id == APPROVE_PRUNE_ACTION,
                user=click.user_id,
                is_admin=admin,
            )
            await _answer(decision, click, engine, services, client, respond)
    except Exception as exc:
        logger.exception("the %s button on proposal %s failed", click.action_id, click.value)
        message = f"That did not work: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(message), blocks=build_error_blocks(message))


async def foreign_click_refusal(click: ButtonClick, services: Services, client: AsyncWebClient) -> str | None:
    """Why this payload must not act (another workspace or app, or identity unknown), else None. Every
    button that changes something checks this first (prune buttons, the audit's Propose prunes)."""
    try:
        identity = await services.monitoring.identity(client, services.slack)
    except Exception:
        logger.exception("auth.test failed; refusing a button click it could not verify")
        return NOT_VERIFIED
    if identity.team_id is not None and click.team_id != identity.team_id:
        logger.warning("refused a %s click from workspace %s", click.action_id, click.team_id)
        return NOT_OURS
    if identity.app_id is not None and click.app_id != identity.app_id:
        logger.warning("refused a %s click for app %s", click.action_id, click.app_id)
        return NOT_OURS
    return None


async def is_admin(client: AsyncWebClient, user_id: str, admins: tuple[str, ...]) -> bool:
    """Whether ``user_id`` is listed in ``admins`` or is a member of a user group (``S…``) listed there
    (``usergroups.users.list``, scope ``usergroups:read``; Slack docs). A group that cannot be read
    counts as no members (logged), so a missing scope never grants anything."""
    if not user_id:
        return False
    if user_id in admins:
        return True
    for group in (a for a in admins if a.startswith("S")):
        try:
            response = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            logger.warning(
                "could not read the members of user group %s: %s", group, exc.response.get("error")
            )
            continue
        if user_id in (response.get("users") or []):
            return True
    return False


async def _answer(
    decision: Decision,
    click: ButtonClick,
    engine: Engine,
    services: Services,
    client: AsyncWebClient,
    respond: Respond,
) -> None:
    outcome = decision.outcome
    if outcome is Outcome.NOT_ALLOWED:
        text = f"{decision.message} Nothing was changed."
        await respond_ephemeral(
            respond, text=keep_mentions(text), blocks=build_notice_blocks(":no_entry: " + keep_mentions(text))
        )
        return
    if outcome in (Outcome.ALREADY_DECIDED, Outcome.STALE, Outcome.NOT_FOUND):
        text = f"This proposal no longer applies: {decision.message}"
        await respond_ephemeral(
            respond, text=keep_mentions(text), blocks=build_notice_blocks(keep_mentions(text))
        )
        await update_message(click, engine, services, client)
        return
    if not await update_message(click, engine, services, client):
        # The decision stands; only the message could not show it, so the clicker hears it directly.
        text = f"{decision.message} (The digest message could not be updated.)"
        await respond_ephemeral(
            respond, text=keep_mentions(text), blocks=build_notice_blocks(keep_mentions(text))
        )
    if outcome is Outcome.APPROVED:
        await _tell_owner(decision, click, client, respond)


def keep_mentions(text: str) -> str:
    """``text`` escaped for mrkdwn except its user mentions (``<@U…>``), which the core's decision
    messages use to name people."""
    parts = _MENTION.split(text)
    return "".join(part if _MENTION.fullmatch(part) else escape(part) for part in parts)


async def _tell_owner(
    decision: Decision, click: ButtonClick, client: AsyncWebClient, respond: Respond
) -> None:
    """Tell the owner, in the digest's thread (a mention notifies them), which of our pages still carry
    the outbound link to remove; the clicker gets it privately when the thread cannot take it."""
    agreement = decision.agreement
    if agreement is None:
        return
    pages = "\n".join(f"• {link(url)}" for url in decision.our_pages_to_edit)
    what = (
        f"please remove our link to the partner from:\n{pages}\nThe next recheck confirms it is gone "
        "(until then the digest lists it under “Pruned, but our link is still up”)."
        if pages
        else "no page of ours with a link to them is recorded, so there is nothing to remove."
    )
    text = (
        f"{mention(agreement.owner)}: #{escape(agreement.id)} {escape(agreement.partner_name)} was pruned by "
        f"{mention(click.user_id)}; {what}"
    )
    await reply_in_thread(click, client, respond, text)


async def reply_in_thread(click: ButtonClick, client: AsyncWebClient, respond: Respond, text: str) -> None:
    """Answer in the clicked message's thread, so the team sees it; privately when the thread cannot
    take it (an ephemeral message, the bot removed from the channel, ...)."""
    if click.channel_id and click.message_ts and not click.is_ephemeral:
        try:
            await client.chat_postMessage(
                channel=click.channel_id,
                thread_ts=click.thread_ts or click.message_ts,
                text=text,
                blocks=build_notice_blocks(text),
                unfurl_links=False,
                unfurl_media=False,
            )
            return
        except SlackApiError as exc:
            logger.warning("could not answer in the thread: %s", exc.response.get("error"))
    await respond_ephemeral(respond, text=text, blocks=build_notice_blocks(text))


async def _recheck(
    click: ButtonClick, engine: Engine, services: Services, client: AsyncWebClient, respond: Respond
) -> None:
    """**Recheck now**: recheck the proposal's agreement (which reapplies the prune rules), then show its
    links' fresh state in the proposal's section; the proposal may have become stale."""
    proposal = await engine.prune.get(click.value)
    if proposal is None or proposal.status is not ProposalStatus.OPEN:
        state = "no longer exists" if proposal is None else f"is already {proposal.status.value}"
        text = f"This proposal no longer applies: it {state}."
        await respond_ephemeral(respond, text=text, blocks=build_notice_blocks(text))
        await update_message(click, engine, services, client)
        return
    try:
        summary, _ = await engine.recheck(agreement_ref=proposal.agreement_id, by=click.user_id or "slack")
        agreement = await engine.agreements.get(proposal.agreement_id)
    except InputError as exc:
        text = f"This proposal no longer applies: {exc}"
        await respond_ephemeral(respond, text=fallback(text), blocks=build_error_blocks(text))
        return
    fresh = await engine.prune.get(proposal.id) or proposal
    note = health_note(agreement, rechecked_at=summary.started_at, by=click.user_id)
    section = proposal_section(fresh, note=note)
    if not await update_message(click, engine, services, client, sections={proposal.id: section.to_dict()}):
        await respond_ephemeral(
            respond, text=fallback(f"#{agreement.id} {agreement.partner_name}"), blocks=[section]
        )


async def update_message(
    click: ButtonClick,
    engine: Engine,
    services: Services,
    client: AsyncWebClient,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
) -> bool:
    """Rewrite the digest message holding the button: every proposal's buttons (or outcome) from its
    stored state, and the given proposal sections. Nothing is decided here, only shown. Returns False
    when the message could not be updated (logged); never raises for a Slack or store failure."""
    if not click.channel_id or not click.message_ts or click.is_ephemeral:
        return False
    try:
        await _rewrite(click, engine, services, client, sections or {})
    except Exception:
        logger.exception("updating the digest message %s in %s failed", click.message_ts, click.channel_id)
        return False
    return True


async def _rewrite(
    click: ButtonClick,
    engine: Engine,
    services: Services,
    client: AsyncWebClient,
    sections: dict[str, dict[str, Any]],
) -> None:
    assert click.channel_id is not None and click.message_ts is not None
    state = services.monitoring
    async with state.message_lock(click.channel_id, click.message_ts):
        blocks = state.latest_blocks(click.channel_id, click.message_ts) or [dict(b) for b in click.blocks]
        for index, block in enumerate(blocks):
            block_id = str(block.get("block_id") or "")
            if block_id.startswith(PROPOSAL_ACTIONS_PREFIX):
                proposal_id = block_id.removeprefix(PROPOSAL_ACTIONS_PREFIX)
                blocks[index] = _actions_for(proposal_id, await engine.prune.get(proposal_id))
            elif block_id.startswith(PROPOSAL_SECTION_PREFIX):
                replacement = sections.get(block_id.removeprefix(PROPOSAL_SECTION_PREFIX))
                if replacement is not None:
                    blocks[index] = replacement
        await client.chat_update(
            channel=click.channel_id, ts=click.message_ts, text=click.text, blocks=blocks
        )
        state.remember_blocks(click.channel_id, click.message_ts, blocks)


def _actions_for(proposal_id: str, proposal: PruneProposal | None) -> dict[str, Any]:
    if proposal is None:
        return proposal_outcome(proposal_id, "This proposal no longer exists.").to_dict()
    if proposal.status is ProposalStatus.OPEN:
        return proposal_actions(proposal).to_dict()
    return proposal_outcome(proposal_id, outcome_text(proposal)).to_dict()
