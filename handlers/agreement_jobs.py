"""What the Slack surface does with partnership agreements, shared by commands, shortcuts, buttons and the
modal: open the "Log a partnership" modal, log and verify a submitted agreement, re-check one, publish
the Home dashboard.

The jobs that run after an ack never raise: failures are logged with their traceback and the person is
told what went wrong (Slack docs: "Handling user interaction in modals", chat.postMessage, views.open,
views.publish). Results go to the channel the modal was opened from; when there is none, or the bot is
not a member there (``not_in_channel``, ``channel_not_found``), they go to the owner by DM
(``chat.postMessage`` with ``channel`` set to the user ID, which posts to the app's Messages tab).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.agreements.model import Agreement, AgreementInput, Direction
from bot.agreements.qualify import QualificationHints, qualification_hints
from bot.errors import InputError
from bot.urls import url_registrable_domain
from handlers.slack_errors import NOT_IN_CHANNEL_ERRORS, describe_failure
from handlers.views.agreement_blocks import (
    build_agreement_result_blocks,
    build_logged_blocks,
    logged_text,
    result_text,
)
from handlers.views.home_view import build_home_view
from handlers.views.message_blocks import build_error_blocks
from handlers.views.mrkdwn import fallback
from handlers.views.partnership_modal import ModalOrigin, PartnershipPrefill, build_partnership_modal

if TYPE_CHECKING:
    from bot.engine import Engine

logger = logging.getLogger(__name__)

HOME_SURFACE = "home"


async def open_log_partnership_modal(
    client: AsyncWebClient,
    engine: Engine,
    *,
    trigger_id: str,
    origin: ModalOrigin,
    prefill: PartnershipPrefill | None = None,
) -> None:
    """``views.open`` the modal. Call right after the ack: a trigger_id expires 3 s after the user's
    action (Slack docs, "views.open"). Raises :class:`SlackApiError` when Slack refuses."""
    view = build_partnership_modal(today=engine.agreements.today(), origin=origin, prefill=prefill)
    await client.views_open(trigger_id=trigger_id, view=view)


# -- delivering ------------------------------------------------------------------------------------------


class Delivery:
    """One message about an agreement: posted to the origin channel, or to the owner by DM when there is
    no channel or the bot may not post there; later updates go where the post landed."""

    def __init__(self, client: AsyncWebClient, *, channel_id: str, user_id: str) -> None:
        self._client = client
        self._channel_id = channel_id
        self._user_id = user_id
        self.channel: str | None = None
        self.ts: str | None = None

    async def post(self, *, text: str, blocks: Sequence[Block]) -> None:
        if self._channel_id:
            try:
                await self._post(self._channel_id, text, blocks)
                return
            except SlackApiError as exc:
                if exc.response.get("error") not in NOT_IN_CHANNEL_ERRORS:
                    raise
                logger.info("not a member of %s: sending the result by DM", self._channel_id)
        await self._post(self._user_id, text, blocks)

    async def _post(self, channel: str, text: str, blocks: Sequence[Block]) -> None:
        response = await self._client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        # Updates go to the channel Slack answered with (a DM posted to a user ID lands in a D… channel).
        answered = response.get("channel")
        self.channel = answered if isinstance(answered, str) and answered else channel
        self.ts = response.get("ts")

    async def update(self, *, text: str, blocks: Sequence[Block]) -> None:
        """Replace the posted message; post a new one when nothing was posted yet."""
        if self.channel is None or self.ts is None:
            await self.post(text=text, blocks=blocks)
            return
        await self._client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)


async def tell_user(client: AsyncWebClient, *, user_id: str, channel_id: str = "", text: str) -> None:
    """A private note: ephemeral in ``channel_id`` when there is one, else (or when that fails) a DM.
    Best effort: a failure is logged."""
    blocks = build_error_blocks(text)
    if channel_id:
        try:
            await client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=fallback(text), blocks=blocks
            )
            return
        except SlackApiError as exc:
            logger.info(
                "ephemeral note in %s failed (%s): sending a DM", channel_id, exc.response.get("error")
            )
    try:
        await client.chat_postMessage(channel=user_id, text=fallback(text), blocks=blocks)
    except Exception:
        logger.exception("could not tell %s: %s", user_id, text)


# -- logging and verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogPartnershipJob:
    """A validated modal submission: what to store, who logged it, where to answer."""

    data: AgreementInput
    user_id: str
    origin: ModalOrigin


async def run_log_partnership_job(job: LogPartnershipJob, *, engine: Engine, client: AsyncWebClient) -> None:
    """Store the agreement, say so, verify every promised link and compute the qualification hints of the
    partner page (concurrently), then replace the message with the result. Never raises."""
    try:
        agreement = await engine.agreements.add(job.data)
    except InputError as exc:  # validated before the ack; only a race (e.g. midnight) gets here
        await tell_user(
            client, user_id=job.user_id, channel_id=job.origin.channel_id,
            text=f"The partnership was not logged: {exc}",
        )  # fmt: skip
        return
    except Exception as exc:
        logger.exception("storing a partnership failed")
        await tell_user(
            client, user_id=job.user_id, channel_id=job.origin.channel_id,
            text=f"The partnership was not logged: {describe_failure(exc)}",
        )  # fmt: skip
        return

    delivery = Delivery(client, channel_id=job.origin.channel_id, user_id=job.user_id)
    try:
        await delivery.post(
            text=logged_text(agreement), blocks=build_logged_blocks(agreement, logged_by=job.user_id)
        )
    except Exception:
        logger.exception("posting that partnership #%s was logged failed", agreement.id)

    checked, check_error = agreement, None
    hints, hints_error = None, None
    check_outcome, hints_outcome = await asyncio.gather(
        engine.agreements.check([agreement.id], by=job.user_id),
        partner_page_hints(engine, agreement),
        return_exceptions=True,
    )
    if isinstance(check_outcome, BaseException):
        _reraise_cancel(check_outcome)
        logger.error("verifying partnership #%s failed", agreement.id, exc_info=check_outcome)
        check_error = describe_failure(check_outcome)
    elif check_outcome:
        checked = check_outcome[0]
    if isinstance(hints_outcome, BaseException):
        _reraise_cancel(hints_outcome)
        if isinstance(hints_outcome, InputError):
            hints_error = str(hints_outcome)
        else:
            logger.error(
                "qualification hints for partnership #%s failed", agreement.id, exc_info=hints_outcome
            )
            hints_error = describe_failure(hints_outcome)
    else:
        hints, hints_error = hints_outcome

    today = engine.agreements.today()
    blocks = build_agreement_result_blocks(
        checked, today, logged_by=job.user_id, hints=hints, hints_error=hints_error, check_error=check_error
    )
    try:
        await delivery.update(text=result_text(checked, today), blocks=blocks)
    except Exception as exc:
        logger.exception("posting the result of partnership #%s failed", agreement.id)
        await tell_user(
            client, user_id=job.user_id, channel_id=job.origin.channel_id,
            text=f"Partnership #{agreement.id} is logged, but its result could not be posted: "
            f"{describe_failure(exc)}",
        )  # fmt: skip
    if job.origin.surface == HOME_SURFACE:
        await publish_home(client, engine, user_id=job.user_id)


def _reraise_cancel(outcome: BaseException) -> None:
    if isinstance(outcome, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        raise outcome


def hint_pages(agreement: Agreement) -> tuple[str, str] | None:
    """(partner page, our page) for the qualification hints: the partner-side (``theirs``) link whose
    target is on our site, our site being where our (``ours``) links sit; without links of ours, the first
    partner-side link. None when the agreement has no partner-side link."""
    theirs = [p for p in agreement.links if p.direction is Direction.THEIRS]
    if not theirs:
        return None
    our_sites = {
        url_registrable_domain(p.source_url) for p in agreement.links if p.direction is Direction.OURS
    }
    chosen = next((p for p in theirs if url_registrable_domain(p.target_url) in our_sites), theirs[0])
    return chosen.source_url, chosen.target_url


async def partner_page_hints(
    engine: Engine, agreement: Agreement
) -> tuple[QualificationHints | None, str | None]:
    """The hints of :func:`hint_pages`, or (None, why not). Raises :class:`InputError` for a refused URL."""
    pages = hint_pages(agreement)
    if pages is None:
        return None, "no link on the partner's side to look at"
    return await qualification_hints(engine, pages[0], pages[1]), None


# -- re-checking and the Home tab -----------------------------------------------------------------------


async def run_recheck_job(agreement_id: str, *, user_id: str, engine: Engine, client: AsyncWebClient) -> None:
    """Show "Re-checking…" on the Home tab, verify the agreement now, publish the Home tab again.
    Never raises; a failure is logged and told to the user by DM."""
    await publish_home(client, engine, user_id=user_id, rechecking=(agreement_id,))
    try:
        await engine.agreements.check([agreement_id], by=user_id)
    except InputError as exc:
        await tell_user(client, user_id=user_id, text=f"Re-check of #{agreement_id}: {exc}")
    except Exception as exc:
        logger.exception("re-checking partnership #%s failed", agreement_id)
        await tell_user(
            client, user_id=user_id, text=f"The re-check of #{agreement_id} failed: {describe_failure(exc)}"
        )
    await publish_home(client, engine, user_id=user_id)


async def publish_home(
    client: AsyncWebClient, engine: Engine | None, *, user_id: str, rechecking: Sequence[str] = ()
) -> None:
    """``views.publish`` the Home tab for ``user_id``: the dashboard when ``engine`` is given, the usage
    always. A store that cannot be read shows a note instead of the dashboard. Never raises."""
    view: Any
    if engine is None:
        view = build_home_view()
    else:
        try:
            agreements = await engine.agreements.all()
            view = build_home_view(agreements, today=engine.agreements.today(), rechecking=rechecking)
        except Exception as exc:
            logger.exception("reading agreements for the Home tab failed")
            view = build_home_view(note=f"The partnerships could not be read: {describe_failure(exc)}")
    try:
        await client.views_publish(user_id=user_id, view=view)
    except Exception:
        logger.exception("could not publish the Home view")
