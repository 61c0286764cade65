"""``/linkcheck audit <site>`` after the ack, and the **Propose prunes** button of its result (issue 6).

The audit (:func:`bot.audit.audit_site`) crawls our site, reads partner pages and applies the red-flag
rules. In Slack: "Auditing <site>…" is posted at once and updated with the phase and a count at most once
every ``progress_interval_s`` (as for a check), then replaced by the result (summary, top findings, the
button); the full CSV (:func:`bot.audit.findings_csv`) goes into the message's thread. When the bot may
not post in the channel, the result goes to the requester privately (without the CSV). One audit at a
time per workspace (:attr:`handlers.services.Services.audit_slots`).

**The button after a restart.** What the button needs is kept in the store, not in memory: when the
result is posted, the audit's prune reasons (:func:`bot.audit.prune_reasons`: agreement id -> the
findings' reason codes and summaries) are stored in the :data:`AUDITS_TABLE` table under a new id, and
that id is the button's value. A click reads them back and opens the proposals with
:meth:`bot.monitoring.prune.PruneBook.propose_pinned`, which is exactly what :func:`bot.audit.propose_prunes`
does
with a report in hand. So a click works after a restart, costs no second crawl, and proposes what the
people in the channel saw (not what a re-run would find today). The last :data:`MAX_STORED_AUDITS`
audits are kept; an older button says to run the audit again.

Who may press it: an admin (``LINKPACT_ADMINS``, the same check as the prune buttons) proposes for every
agreement concerned; an agreement's owner for the agreements they own; anyone else is refused and
nothing is opened. Proposals are only proposals: they appear in the next weekly digest with **Approve
prune** / **Keep**, and nothing is pruned until the owner or an admin approves.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit import AuditReport, audit_site, findings_csv, prune_reasons
from bot.backlinks.registry import validate_user_url
from bot.errors import InputError
from bot.monitoring.prune import Reason
from bot.store import Tx, new_doc_id
from bot.urls import url_registrable_domain
from handlers.actions.prune_buttons import ButtonClick, engine_for_click, is_admin, reply_in_thread
from handlers.commands.check_job import (
    Respond,
    Throttle,
    attach_csv_in_thread,
    dated_csv_filename,
    respond_ephemeral,
)
from handlers.commands.parsing import HELP_HINT
from handlers.services import Services
from handlers.slack_errors import NOT_IN_CHANNEL_ERRORS, describe_failure
from handlers.views.audit_blocks import (
    audit_progress_text,
    audit_text,
    build_audit_blocks,
    build_audit_progress_blocks,
    build_proposals_text,
)
from handlers.views.message_blocks import (
    build_error_blocks,
    build_not_in_channel_blocks,
    build_notice_blocks,
)
from handlers.views.mrkdwn import fallback, link, mention

if TYPE_CHECKING:
    from bot.engine import Engine, Progress

logger = logging.getLogger(__name__)

# One document per audit posted from Slack: what its Propose prunes button needs after a restart.
AUDITS_TABLE = "slack_audits"
# Audits kept for their buttons: a workspace auditing daily keeps half a year of buttons working, and
# the table stays a few hundred small documents.
MAX_STORED_AUDITS = 200
# A stopped audit gets this long to say so in its message before the process exits.
STOP_NOTE_TIMEOUT_S = 2.0
NO_AUDIT = "The link-profile audit is not available in this Linkpact process."
GONE = (
    "This audit is no longer kept (Linkpact keeps the buttons of its last {n} audits). Run "
    "`/linkcheck audit` again to propose prunes from a fresh one."
)


@dataclass(frozen=True, slots=True)
class AuditJob:
    """One requested audit: our site (a URL with a scheme), the page cap, where to answer, who asked."""

    site_url: str
    max_pages: int
    channel_id: str
    user_id: str
    workspace: str


class AuditMessage:
    """The channel message of one audit: posted at the start, updated with throttled progress (the
    engine's callback is synchronous, so updates run as tasks; :meth:`settle` waits for them), then
    replaced by the result."""

    def __init__(
        self, client: AsyncWebClient, respond: Respond, job: AuditJob, domain: str, throttle: Throttle
    ) -> None:
        self._client = client
        self._respond = respond
        self._job = job
        self._domain = domain
        self._throttle = throttle
        self._update: asyncio.Task[None] | None = None
        self.channel = job.channel_id
        self.ts: str | None = None
        self.not_in_channel = False

    async def post(self) -> None:
        """Post "Auditing <site>…"; privately (and marked so) when the bot may not post here."""
        blocks = build_audit_progress_blocks(self._job.site_url, self._domain, requested_by=self._job.user_id)
        text = audit_progress_text(self._domain)
        try:
            response = await self._client.chat_postMessage(
                channel=self._job.channel_id, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in NOT_IN_CHANNEL_ERRORS:
                raise
            self.not_in_channel = True
            await respond_ephemeral(self._respond, text=text, blocks=blocks + build_not_in_channel_blocks())
            return
        self.ts = str(response.get("ts") or "") or None
        self.channel = str(response.get("channel") or self._job.channel_id)
        self._throttle.mark()

    def on_progress(self, progress: Progress) -> None:
        """Audit callback: update the message when the throttle allows and no update is in flight."""
        if self.ts is None or (self._update is not None and not self._update.done()):
            return
        if self._throttle.ready():
            self._update = asyncio.get_running_loop().create_task(self._progress(progress))

    async def _progress(self, progress: Progress) -> None:
        blocks = build_audit_progress_blocks(
            self._job.site_url, self._domain, progress, requested_by=self._job.user_id
        )
        try:
            await self.update(text=audit_progress_text(self._domain), blocks=blocks)
        except SlackApiError as exc:
            # A missed progress update is harmless; the result replaces the message anyway.
            logger.warning("audit progress update failed: %s", exc.response.get("error"))

    async def settle(self) -> None:
        if self._update is not None:
            await asyncio.gather(self._update, return_exceptions=True)

    async def update(self, *, text: str, blocks: list[Block]) -> None:
        assert self.ts is not None
        await self._client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)

    async def delete(self) -> None:
        """Remove the message (a refused site leaves nothing in the channel); best effort."""
        if self.ts is None:
            return
        try:
            await self._client.chat_delete(channel=self.channel, ts=self.ts)
        except SlackApiError as exc:
            logger.warning("could not delete the audit's progress message: %s", exc.response.get("error"))


async def run_audit_job(
    job: AuditJob, *, engine: Engine, services: Services, client: AsyncWebClient, respond: Respond
) -> None:
    """Run one audit end to end and answer in Slack; never raises (errors become a private message and
    a log entry). Releases the workspace's audit slot when done. Slack docs: chat.postMessage,
    chat.update, chat.delete, files.uploadV2, "Implementing slash commands" (response_url)."""
    message: AuditMessage | None = None
    try:
        # Refuse a bad or forbidden address before anything appears in the channel.
        site_url = validate_user_url(job.site_url, engine.policy, what="site URL")
        domain = url_registrable_domain(site_url)
        message = AuditMessage(
            client, respond, job, domain, Throttle(services.clock, services.progress_interval_s)
        )
        await message.post()
        report = await audit_site(engine, site_url, max_pages=job.max_pages, on_progress=message.on_progress)
        await message.settle()
        reasons = prune_reasons(report)
        audit_id = await remember_audit(engine, report, job, reasons)
        await _deliver(report, audit_id, len(reasons), job, message, client, respond)
    except InputError as exc:
        await _discard(message)
        await respond_ephemeral(
            respond, text=fallback(str(exc)), blocks=build_error_blocks(str(exc), hint=HELP_HINT)
        )
    except asyncio.CancelledError:
        await _note_stopped(message, job)
        raise
    except Exception as exc:
        logger.exception("the audit of %s failed", job.site_url)
        await _discard(message)
        text = f"The audit failed: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(text), blocks=build_error_blocks(text))
    finally:
        services.audit_slots.release(job.workspace)


async def _discard(message: AuditMessage | None) -> None:
    if message is not None:
        await message.settle()
        await message.delete()


async def remember_audit(
    engine: Engine, report: AuditReport, job: AuditJob, reasons: dict[str, list[Reason]]
) -> str:
    """Store what the Propose prunes button needs (module docstring) and drop audits beyond
    :data:`MAX_STORED_AUDITS`, oldest first, in one write. Returns the new audit's id."""
    audit_id = new_doc_id()
    doc: dict[str, Any] = {
        "id": audit_id,
        "site_url": report.site_url,
        "domain": report.domain,
        "started_at": report.started_at,
        "requested_by": job.user_id,
        "channel_id": job.channel_id,
        "findings": len(report.findings),
        "reasons": {aid: [{"code": r.code, "text": r.text} for r in found] for aid, found in reasons.items()},
    }

    def write(tx: Tx) -> str:
        tx.insert(AUDITS_TABLE, doc)
        stored = tx.find(AUDITS_TABLE)  # oldest first
        for old in stored[: max(len(stored) - MAX_STORED_AUDITS, 0)]:
            tx.remove(AUDITS_TABLE, id=old["id"])
        return audit_id

    return await engine.store.transact(write)


async def _deliver(
    report: AuditReport,
    audit_id: str,
    candidates: int,
    job: AuditJob,
    message: AuditMessage,
    client: AsyncWebClient,
    respond: Respond,
) -> None:
    text = audit_text(report)
    if message.not_in_channel or message.ts is None:
        blocks = build_audit_blocks(
            report,
            audit_id=audit_id,
            requested_by=job.user_id,
            csv_attached=False,
            prune_candidates=candidates,
        )
        await respond_ephemeral(respond, text=text, blocks=blocks, replace_original=True)
        return
    blocks = build_audit_blocks(
        report, audit_id=audit_id, requested_by=job.user_id, csv_attached=True, prune_candidates=candidates
    )
    await message.update(text=text, blocks=blocks)
    await attach_csv_in_thread(
        client,
        respond,
        channel=message.channel,
        thread_ts=message.ts,
        filename=audit_csv_filename(report),
        title=f"Link-profile audit of {report.domain}: findings, pairs, cycles",
        content=findings_csv(report),
        comment="Every finding, reciprocal pair and three-way cycle of this audit, as CSV.",
        what="audit",
    )


def audit_csv_filename(report: AuditReport) -> str:
    """``linkpact-audit-<domain>-<YYYY-MM-DD>.csv`` (the day the audit started)."""
    return dated_csv_filename("linkpact-audit", report.domain or "site", report.started_at)


async def _note_stopped(message: AuditMessage | None, job: AuditJob) -> None:
    """On shutdown, say in the channel message that the audit stopped (best effort, bounded)."""
    if message is None or message.ts is None:
        return
    text = fallback(
        f"Linkpact stopped before the audit of {job.site_url} finished; run `/linkcheck audit` again."
    )
    blocks = build_notice_blocks(
        f":octagonal_sign: Linkpact stopped before the audit of {link(job.site_url)} finished; "
        "run `/linkcheck audit` again."
    )
    try:
        async with asyncio.timeout(STOP_NOTE_TIMEOUT_S):
            await message.settle()
            await message.update(text=text, blocks=blocks)
    except (Exception, asyncio.CancelledError):
        logger.warning("could not mark the audit of %s as stopped", job.site_url)


# -- the Propose prunes button -----------------------------------------------------------------------------


async def run_propose_prunes(
    click: ButtonClick, *, services: Services, client: AsyncWebClient, respond: Respond
) -> None:
    """Handle one click on **Propose prunes** (value: the audit's id); never raises."""
    try:
        engine = await engine_for_click(click, services, client, respond, unavailable=NO_AUDIT)
        if engine is None:
            return
        await _propose(click, engine, services, client, respond)
    except Exception as exc:
        logger.exception("Propose prunes on audit %s failed", click.value)
        text = f"That did not work: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(text), blocks=build_error_blocks(text))


async def _propose(
    click: ButtonClick, engine: Engine, services: Services, client: AsyncWebClient, respond: Respond
) -> None:
    record = await engine.store.get(AUDITS_TABLE, click.value) if click.value else None
    if record is None:
        text = GONE.format(n=MAX_STORED_AUDITS)
        await respond_ephemeral(respond, text=fallback(text), blocks=build_notice_blocks(text))
        return
    reasons = {
        str(aid): [Reason(str(r["code"]), str(r["text"])) for r in found]
        for aid, found in (record.get("reasons") or {}).items()
    }
    owners: dict[str, str] = {}
    for agreement_id in reasons:
        try:
            owners[agreement_id] = (await engine.agreements.get(agreement_id)).owner
        except InputError:  # deleted since the audit: nothing to propose
            continue
    admin = await is_admin(client, click.user_id, services.slack.admins)
    allowed = [aid for aid in owners if admin or owners[aid] == click.user_id]
    if not allowed:
        names = ", ".join(dict.fromkeys(mention(o) for o in owners.values())) or "nobody"
        text = (
            f"Only the owners of the agreements this audit questions ({names}) or an admin can propose "
            "prunes from it. Nothing was opened."
        )
        await respond_ephemeral(respond, text=text, blocks=build_notice_blocks(":no_entry: " + text))
        return
    before = {p.agreement_id for p in await engine.prune.open_proposals()}
    touched = await engine.prune.propose_pinned({aid: reasons[aid] for aid in allowed})
    opened = [(p.agreement_id, p.partner) for p in touched if p.agreement_id not in before]
    updated = [(p.agreement_id, p.partner) for p in touched if p.agreement_id in before]
    logger.info("%s opened %d prune proposals from audit %s", click.user_id, len(opened), click.value)
    text = build_proposals_text(
        user_id=click.user_id,
        domain=str(record.get("domain") or ""),
        opened=opened,
        updated=updated,
        skipped=len(allowed) - len(touched),
        left_to_others=len(owners) - len(allowed),
    )
    await reply_in_thread(click, client, respond, text)
