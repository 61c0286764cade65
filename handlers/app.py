"""The composition root of the Slack bot: builds the Bolt ``AsyncApp`` and runs ``linkpact serve``.

One asyncio event loop per process holds Bolt's listeners, the engine (and its one HTTP client) and
the monitoring scheduler (:mod:`handlers.scheduler`). Socket Mode is used when ``SLACK_APP_TOKEN`` is
set, else HTTP at ``/slack/events`` with every request's signature verified with
``SLACK_SIGNING_SECRET`` (Slack docs: "Verifying requests from Slack", "Using Socket Mode").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from dotenv import load_dotenv
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError, Settings, SlackSettings, slack_settings_from_env
from bot.offload import default_workers
from handlers import actions, commands, events, shortcuts, views
from handlers.event_ledger import drop_repeated_events
from handlers.http_gate import build_web_app
from handlers.services import LinkEngine, Services, services_middleware
from handlers.socket_mode import Backoff, ReconnectingSocketModeHandler

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Liveness for a container's HEALTHCHECK or a load balancer: 200 "ok", no signature (Slack never calls it).
HEALTH_PATH = "/healthz"
# Every interface: in a container the port is published by Docker; behind a proxy, bind it privately.
DEFAULT_HOST = "0.0.0.0"
# A 429 from Slack is retried after its Retry-After this many times before the call fails.
SLACK_RATE_LIMIT_RETRIES = 2
# Slack error codes that mean the token itself is wrong (Slack docs, "auth.test": errors).
TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)
EXIT_OK = 0
EXIT_CONFIG = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_app(engine: LinkEngine, slack: SlackSettings, *, services: Services | None = None) -> AsyncApp:
    """The Bolt app with every handler registered and ``services`` attached to each request's context.

    The Web API client uses ``slack.api_url`` (a stand-in can play Slack in tests) and retries rate-limited
    calls after Slack's ``Retry-After``. Request signature verification is on (HTTP mode).
    ``services`` defaults to ``Services.create(engine, slack)``; tests pass their own clock there.
    """
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[
            *async_default_handlers(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES),
        ],
    )
    _quiet_token_warning()
    app = AsyncApp(
        name="linkpact",
        client=client,
        signing_secret=slack.signing_secret,
        request_verification_enabled=True,
    )
    services = services or Services.create(engine, slack)
    app.use(services_middleware(services))
    app.use(drop_repeated_events(services.events, services.wall_clock))
    for module in (commands, shortcuts, actions, views, events):
        module.register(app)
    return app


class _DropMessage(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def _quiet_token_warning() -> None:
    """Bolt warns that the ``SLACK_BOT_TOKEN`` it finds in the environment is unused because a client is
    given; the client holds that very token, so the warning would only mislead operators."""
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    message = warning_client_prioritized_and_token_skipped()
    if not any(isinstance(f, _DropMessage) and f.message == message for f in bolt_logger.filters):
        bolt_logger.addFilter(_DropMessage(message))


def run_server(*, port: int, host: str = DEFAULT_HOST) -> int:
    """``linkpact serve``: run the Slack bot until SIGTERM/SIGINT; returns the process exit code.

    Reads ``.env`` in the working directory (the real environment wins), then the settings; a missing
    or malformed setting or an unreadable store is one line on stderr and exit code 2.
    """
    load_dotenv(Path.cwd() / ".env", override=False)
    _configure_logging()
    try:
        settings = Settings.from_env()
        slack = slack_settings_from_env()
    except ConfigError as exc:
        print(f"linkpact serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(_serve(settings, slack, host=host, port=port))


async def _serve(settings: Settings, slack: SlackSettings, *, host: str, port: int) -> int:
    from bot.engine import Engine  # the engine pulls in the HTTP stack; keep `linkpact --help` light
    from bot.store import StorageError
    from handlers.scheduler import MonitoringScheduler

    if settings.cpu_workers is None:
        # A server answers Slack while it checks: large pages are parsed in worker processes.
        settings = dataclasses.replace(settings, cpu_workers=default_workers())
    try:
        engine = Engine.create(settings)
    except StorageError as exc:
        print(f"linkpact serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    await engine.offload.warm_up("bot.linkcheck.pipeline")
    services = Services.create(engine, slack)
    app = build_app(engine, slack, services=services)
    stop = _stop_event()
    scheduler = MonitoringScheduler(engine, app.client, settings, services.monitoring)
    try:
        await _verify_tokens(app.client, slack)
        # Rechecks and the weekly digest (in this loop) start once the bot listens: a digest posted while
        # its buttons cannot be answered, or rechecks running while Slack is unreachable, help nobody.
        if slack.app_token:
            await _run_socket_mode(app, slack.app_token, stop, on_listening=scheduler.start)
        else:
            await _run_http(app, slack, host=host, port=port, stop=stop, on_listening=scheduler.start)
    except StartupError as exc:
        print(f"linkpact serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await scheduler.aclose()
        await services.tasks.aclose()
        await _close_engine(engine)
        logger.info("stopped")
    return EXIT_OK


class StartupError(RuntimeError):
    """The bot could not start listening (port taken, Slack refused a token, ...)."""


async def _verify_tokens(client: AsyncWebClient, slack: SlackSettings) -> None:
    """Fail fast on a token Slack refuses (``auth.test``; ``apps.connections.open`` for the app token),
    instead of failing on every request or, in Socket Mode, retrying for ever. Network trouble is only
    logged: Slack may be back by the time the first command arrives."""
    checks: list[tuple[str, Callable[[], Awaitable[Any]]]] = [("SLACK_BOT_TOKEN", client.auth_test)]
    if slack.app_token:
        app_token = slack.app_token
        checks.append(("SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=app_token)))
    for name, call in checks:
        try:
            await call()
        except SlackApiError as exc:
            error = exc.response.get("error", "an error")
            if error in TOKEN_ERRORS:
                raise StartupError(f"Slack refused {name}: {error}") from exc
            logger.warning("could not verify %s: Slack answered %s", name, error)
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            logger.warning("could not verify %s: %s", name, exc)


async def _run_http(
    app: AsyncApp,
    slack: SlackSettings,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_listening: Callable[[], Awaitable[None]],
) -> None:
    # Our own front door rather than app.web_app(): signature first, then parsing, and a 4xx for every
    # malformed request (handlers.http_gate).
    web_app = build_web_app(app, signing_secret=slack.signing_secret, path=EVENTS_PATH)
    web_app.router.add_get(HEALTH_PATH, _healthz)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = runner.addresses[0][1] if runner.addresses else port  # the real port when asked for port 0
    logger.info("listening on http://%s:%s%s (HTTP mode)", host, bound, EVENTS_PATH)
    try:
        await on_listening()
        await stop.wait()
    finally:
        await runner.cleanup()


async def _healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is up and its event loop answers (it says nothing about Slack)."""
    return web.Response(text="ok")


async def _run_socket_mode(
    app: AsyncApp,
    app_token: str,
    stop: asyncio.Event,
    *,
    on_listening: Callable[[], Awaitable[None]],
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Connect to Slack over Socket Mode (retrying with backoff, handlers.socket_mode), then run
    ``on_listening`` and serve until ``stop`` is set. ``backoff`` and ``sleep``: tests inject them."""
    handler = ReconnectingSocketModeHandler(app, app_token, backoff=backoff, sleep=sleep)
    # The connect loop retries until Slack takes the connection, so a stop signal must interrupt it.
    connecting = asyncio.ensure_future(handler.connect_async())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done():
            connecting.result()
            logger.info("listening on Slack Socket Mode")
            await on_listening()
            await stopping
    finally:
        for task in (connecting, stopping):
            task.cancel()
        await handler.close_async()


def _stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (where the platform lets asyncio handle signals)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not available on Windows, nor outside the main thread: stop with Ctrl-C there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _close_engine(engine: LinkEngine) -> None:
    try:
        await engine.aclose()
    except Exception:
        logger.exception("closing the engine failed")


def _configure_logging() -> None:
    """Log to stderr. Our loggers say INFO ("listening on …") even when the CLI set WARNING for the rest.

    slack_sdk stays at WARNING: its DEBUG lines carry request bodies with response URLs.
    """
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)
    level = os.environ.get("LINKPACT_LOG_LEVEL", "").upper()
    known = logging.getLevelNamesMapping()
    logging.getLogger("handlers").setLevel(known.get(level, logging.INFO))
    logging.getLogger("slack_sdk").setLevel(logging.WARNING)
