"""``/linkcheck``: parse, ack at once, hand the work to a background task, answer from there.

Slack wants the ack within 3 seconds ("Implementing slash commands", docs.slack.dev). Only pure work
(parsing, the per-workspace slot) happens before the ack; anything that touches the network or the store
runs in a task held by :class:`handlers.services.BackgroundTasks`. Usage, bad input and "busy" answers
ride on the ack itself as ephemeral messages; later answers go through ``respond`` (the response_url).
``/linkcheck partner`` opens the partnership modal right after the ack (``views.open`` needs the
command's trigger_id within 3 s); the other partnership requests run in :mod:`handlers.commands.partners`.
``/linkcheck import`` runs in :mod:`handlers.import_jobs` and ``/linkcheck audit`` in
:mod:`handlers.audit_jobs`, each at most one at a time per workspace.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InputError
from handlers.agreement_jobs import open_log_partnership_modal
from handlers.audit_jobs import AuditJob, run_audit_job
from handlers.commands.check_job import CheckJob, Respond, describe_failure, respond_ephemeral, run_check_job
from handlers.commands.monitor_commands import run_monitor_request
from handlers.commands.parsing import (
    HELP_HINT,
    CheckPage,
    ExportPartnerships,
    ImportFile,
    LinkcheckRequest,
    ListPartnerships,
    ListTracked,
    LogPartnership,
    PreviewDigest,
    RecheckNow,
    RunAudit,
    ShowHelp,
    ShowPartnership,
    TrackBacklink,
    UntrackBacklink,
    parse_linkcheck_text,
)
from handlers.commands.partners import run_partnership_request
from handlers.import_jobs import CommandAnswers, ImportJob, run_import_job
from handlers.services import Services, full_engine, services_from
from handlers.views.message_blocks import (
    build_error_blocks,
    build_help_blocks,
    build_track_blocks,
    build_tracked_blocks,
    build_untrack_blocks,
    help_text,
)
from handlers.views.mrkdwn import fallback
from handlers.views.partnership_modal import ModalOrigin

if TYPE_CHECKING:
    from bot.engine import Engine

COMMAND = "/linkcheck"
EPHEMERAL = "ephemeral"
NO_AGREEMENTS = "Partnership agreements are not available in this Linkpact process."
NO_IMPORTS = "Importing backlink exports is not available in this Linkpact process."
NO_AUDITS = "The link-profile audit is not available in this Linkpact process."
IMPORT_BUSY = (
    "Linkpact is already importing a file for this workspace; it imports one at a time. Run "
    "`/linkcheck import` again when that one is done (its summary is posted where it was asked)."
)
AUDIT_BUSY = (
    "An audit is already running for this workspace; Linkpact runs one at a time. Its result is posted "
    "where it was asked; run `/linkcheck audit` again after that."
)
LOOKING_FOR_FILE = "Looking for the newest file you shared here in the last hour, to import it…"


async def handle_linkcheck_command(
    ack: AsyncAck,
    command: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
    logger: logging.Logger,
) -> None:
    """Handle one ``/linkcheck`` invocation (payload fields: Slack's slash-command request)."""
    services = services_from(context)
    try:
        request = parse_linkcheck_text(command.get("text") or "")
    except InputError as exc:
        await ack(
            text=fallback(str(exc)),
            blocks=build_error_blocks(str(exc), hint=HELP_HINT),
            response_type=EPHEMERAL,
        )
        return
    if isinstance(request, ShowHelp):
        await ack(text=help_text(), blocks=build_help_blocks(), response_type=EPHEMERAL)
        return

    workspace = workspace_of(command)
    user_id = command.get("user_id") or ""
    if isinstance(request, CheckPage):
        if not services.slots.try_acquire(workspace):
            busy = (
                f"Linkpact is busy: it is already running {services.slots.limit} checks for this "
                "workspace, the most it runs at once. Try again in a minute."
            )
            await ack(text=busy, blocks=build_error_blocks(busy), response_type=EPHEMERAL)
            return
        job = CheckJob(
            url=request.url, channel_id=command.get("channel_id") or "", user_id=user_id, workspace=workspace
        )
        try:  # the slot is held from here; the job gives it back when it ends
            await ack()
            services.tasks.spawn(
                run_check_job(job, services=services, client=client, respond=respond),
                name=f"linkcheck in {workspace}",
            )
        except BaseException:
            services.slots.release(workspace)
            raise
        return

    if isinstance(request, LogPartnership | ShowPartnership | ListPartnerships | ExportPartnerships):
        engine = full_engine(services)
        if engine is None:
            await ack(text=NO_AGREEMENTS, blocks=build_error_blocks(NO_AGREEMENTS), response_type=EPHEMERAL)
            return
        await ack()
        channel_id = command.get("channel_id") or ""
        if isinstance(request, LogPartnership):
            await _open_modal(engine, client, respond, command, logger)
            return
        services.tasks.spawn(
            run_partnership_request(
                request, engine=engine, client=client, respond=respond, channel_id=channel_id, user_id=user_id
            ),
            name=f"linkcheck partners in {workspace}",
        )
        return

    if isinstance(request, ImportFile | RunAudit):
        await _start_import_or_audit(request, ack, command, respond, client, services, workspace)
        return

    if isinstance(request, PreviewDigest | RecheckNow):  # handlers.commands.monitor_commands
        await ack()
        services.tasks.spawn(
            run_monitor_request(request, services=services, respond=respond, user_id=user_id),
            name=f"linkcheck monitoring in {workspace}",
        )
        return

    await ack()
    services.tasks.spawn(
        run_backlink_request(request, services=services, respond=respond, user_id=user_id, logger=logger),
        name=f"linkcheck backlinks in {workspace}",
    )


async def _start_import_or_audit(
    request: ImportFile | RunAudit,
    ack: AsyncAck,
    command: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    services: Services,
    workspace: str,
) -> None:
    """Take the workspace's import or audit slot (one at a time), ack, and start the job; the job gives
    the slot back when it ends."""
    is_import = isinstance(request, ImportFile)
    engine = full_engine(services)
    if engine is None:
        missing = NO_IMPORTS if is_import else NO_AUDITS
        await ack(text=missing, blocks=build_error_blocks(missing), response_type=EPHEMERAL)
        return
    slots = services.import_slots if is_import else services.audit_slots
    if not slots.try_acquire(workspace):
        busy = IMPORT_BUSY if is_import else AUDIT_BUSY
        await ack(text=busy, blocks=build_error_blocks(busy), response_type=EPHEMERAL)
        return
    channel_id = command.get("channel_id") or ""
    user_id = command.get("user_id") or ""
    try:  # the slot is held from here; the job gives it back when it ends
        if isinstance(request, ImportFile):
            await ack(text=LOOKING_FOR_FILE, response_type=EPHEMERAL)
            job = ImportJob(
                user_id=user_id,
                channel_id=channel_id,
                workspace=workspace,
                target_site=request.target_site,
                fmt=request.fmt,
            )
            answers = CommandAnswers(client, respond, channel_id)
            services.tasks.spawn(
                run_import_job(job, engine=engine, services=services, client=client, answers=answers),
                name=f"linkcheck import in {workspace}",
            )
        else:
            await ack()
            audit = AuditJob(request.site_url, request.max_pages, channel_id, user_id, workspace)
            services.tasks.spawn(
                run_audit_job(audit, engine=engine, services=services, client=client, respond=respond),
                name=f"linkcheck audit in {workspace}",
            )
    except BaseException:
        slots.release(workspace)
        raise


async def _open_modal(
    engine: Engine, client: AsyncWebClient, respond: Respond, command: dict[str, Any], logger: logging.Logger
) -> None:
    """``/linkcheck partner``: open the modal right away (the trigger_id lives 3 s); the result of the
    submission goes to this channel."""
    try:
        await open_log_partnership_modal(
            client,
            engine,
            trigger_id=command.get("trigger_id") or "",
            origin=ModalOrigin(channel_id=command.get("channel_id") or "", surface="command"),
        )
    except Exception as exc:
        logger.exception("opening the partnership modal failed")
        message = f"The form could not be opened: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(message), blocks=build_error_blocks(message))


def workspace_of(command: dict[str, Any]) -> str:
    """The key the per-workspace cap counts by: the team ID (an Enterprise Grid org counts as a whole)."""
    if command.get("is_enterprise_install") in (True, "true") and command.get("enterprise_id"):
        return str(command["enterprise_id"])
    return str(command.get("team_id") or "unknown-workspace")


async def run_backlink_request(
    request: LinkcheckRequest,
    *,
    services: Services,
    respond: Respond,
    user_id: str,
    logger: logging.Logger,
) -> None:
    """``track``, ``untrack`` and ``tracked``: call the engine, answer ephemerally; never raises."""
    engine = services.engine
    try:
        if isinstance(request, TrackBacklink):
            created = await engine.track(request.source_url, request.target_url, added_by=user_id or None)
            blocks = build_track_blocks(request.source_url, request.target_url, newly_tracked=created)
            verb = "Now tracking" if created else "Already tracking"
            text = f"{verb} {request.source_url} -> {request.target_url}"
        elif isinstance(request, UntrackBacklink):
            removed = await engine.untrack(request.source_url, request.target_url)
            blocks = build_untrack_blocks(request.source_url, request.target_url, removed=removed)
            verb = "Stopped tracking" if removed else "Was not tracking"
            text = f"{verb} {request.source_url} -> {request.target_url}"
        elif isinstance(request, ListTracked):
            backlinks = await engine.tracked(request.target_url)
            blocks = build_tracked_blocks(backlinks, target_url=request.target_url)
            text = f"{len(backlinks)} tracked backlinks"
        else:  # pragma: no cover - the handler routes only these three here
            raise TypeError(f"not a backlink request: {request!r}")
    except InputError as exc:
        await respond_ephemeral(
            respond, text=fallback(str(exc)), blocks=build_error_blocks(str(exc), hint=HELP_HINT)
        )
        return
    except Exception as exc:
        logger.exception("%s %s failed", COMMAND, type(request).__name__)
        message = f"The command failed: {describe_failure(exc)}"
        await respond_ephemeral(respond, text=fallback(message), blocks=build_error_blocks(message))
        return
    await respond_ephemeral(respond, text=fallback(text), blocks=blocks)
