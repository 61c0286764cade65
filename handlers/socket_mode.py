"""Socket Mode that waits politely when Slack cannot be reached.

slack_sdk's aiohttp Socket Mode client retries a failed connection every ``ping_interval`` seconds for
ever and logs a full traceback each time (about 60 lines every 10 s while Slack or the network is
down), and it asks ``apps.connections.open`` for a new WebSocket URL only in some of those paths.
:class:`ReconnectingSocketModeClient` replaces its connect loop: each attempt asks for a fresh URL
(``apps.connections.open``; Slack docs, "Using Socket Mode": a URL is for one connection) and opens
the WebSocket; a failed attempt is **one WARNING line** (attempt number, reason, next delay) and the
next attempt waits an exponential backoff with jitter (:class:`Backoff`). The same loop serves the
first connection and every reconnection after Slack drops one (``connect_to_new_endpoint``).

:class:`ReconnectingSocketModeHandler` is Bolt's ``AsyncSocketModeHandler`` with that client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient

from handlers.slack_errors import describe_failure

logger = logging.getLogger(__name__)

# The first retry waits about this long; each failure doubles it, up to the cap. One second first: a
# blip (Slack restarting a WebSocket host) is over by then; a minute at most: an outage that long costs
# at most a minute of extra delay once Slack is back, and one log line a minute meanwhile.
RECONNECT_INITIAL_DELAY_S = 1.0
RECONNECT_MAX_DELAY_S = 60.0
RECONNECT_FACTOR = 2.0
# Slack's own Socket Mode clients ping every 10 s; Bolt's handler uses the same.
PING_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": the n-th wait (n from 0) is drawn uniformly from
    ``[d/2, d]`` with ``d = min(max_s, initial_s * factor**n)``, so waits grow, never collapse to zero,
    and many bots restarted together do not reconnect in lockstep. ``fraction`` draws from [0, 1)."""

    initial_s: float = RECONNECT_INITIAL_DELAY_S
    max_s: float = RECONNECT_MAX_DELAY_S
    factor: float = RECONNECT_FACTOR
    fraction: Callable[[], float] = random.random

    def delay_s(self, failures: int) -> float:
        """The wait in seconds after ``failures`` consecutive failures (``failures`` >= 1)."""
        ceiling = min(self.max_s, self.initial_s * self.factor ** max(failures - 1, 0))
        return ceiling / 2 + self.fraction() * ceiling / 2


class ReconnectingSocketModeClient(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client with a connect loop that backs off and logs one line per
    failure. ``sleep`` waits (tests inject one that does not); ``on_connected`` runs after each
    connection is established."""

    def __init__(
        self,
        *args: Any,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self.failures = 0  # consecutive failed attempts, 0 once connected

    async def issue_new_wss_url(self) -> str:
        """A WebSocket URL from ``apps.connections.open``; raises on any failure (the loop logs it once;
        the Web API client already waits out a 429's Retry-After)."""
        response = await self.web_client.apps_connections_open(app_token=self.app_token)
        return str(response["url"])

    async def connect(self) -> None:
        """Connect, retrying with :class:`Backoff` until connected or closed."""
        while not self.closed:
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.closed:
                    return
                self.failures += 1
                delay = self.backoff.delay_s(self.failures)
                logger.warning(
                    "Socket Mode: cannot connect to Slack (attempt %d: %s); next attempt in %.1f s",
                    self.failures,
                    describe_failure(exc),
                    delay,
                )
                await self._sleep(delay)
            else:
                if self.failures:
                    logger.info("Socket Mode: connected to Slack after %d failed attempts", self.failures)
                self.failures = 0
                return

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        """Reconnect (Slack asked to, or the connection went stale) through :meth:`connect`'s loop.

        The lock keeps the session monitor and the message receiver from reconnecting twice at once.
        """
        async with self.connect_operation_lock:
            if force or not await self.is_connected():
                await self.connect()

    async def _connect_once(self) -> None:
        old = self.current_session
        # While the new connection is made, the monitor of the old one must not start another.
        self.auto_reconnect_enabled = False
        if old is not None and not old.closed:
            with contextlib.suppress(Exception):  # a broken connection may fail to close; it is dropped
                await old.close()
        if self.aiohttp_client_session.closed:
            self.aiohttp_client_session = aiohttp.ClientSession()
        self.wss_uri = await self.issue_new_wss_url()
        self.current_session = await self.aiohttp_client_session.ws_connect(
            self.wss_uri,
            autoping=False,
            heartbeat=self.ping_interval,
            proxy=self.proxy,
            ssl=self.web_client.ssl if self.web_client.ssl is not None else True,
        )
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        self.stale = False
        for task in (self.current_session_monitor, self.message_receiver):
            if task is not None:
                task.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        self.message_receiver = asyncio.ensure_future(self.receive_messages())


class ReconnectingSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler over :class:`ReconnectingSocketModeClient` (the app's Web API client,
    the app's logger)."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ping_interval_s: float = PING_INTERVAL_S,
    ) -> None:
        # Not super().__init__(): it would build (and start the tasks of) the stock client first.
        self.app = app
        self.app_token = app_token
        self.client = ReconnectingSocketModeClient(
            app_token=app_token,
            logger=app.logger,
            web_client=app.client,
            ping_interval=ping_interval_s,
            backoff=backoff,
            sleep=sleep,
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
