"""Each Events API event has its effect once, however often Slack delivers it.

Slack delivers an event again when the app did not answer 2xx within 3 seconds (or the connection
failed): same ``event_id`` in the envelope, ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` headers in
HTTP mode, ``retry_attempt`` / ``retry_reason`` in a Socket Mode envelope; up to three retries, the last
about 5 minutes after the first try (Slack docs, "The Events API": "Retries"). Without a ledger a file
sent in a DM would be imported twice and the Home tab published twice.

:class:`EventLedger` remembers every ``event_id`` it saw for :data:`EVENT_MEMORY_S` in the store
(table :data:`EVENTS_TABLE`, so a restart between a delivery and its retry changes nothing). Claiming an
id is one store transaction (find, then insert), and transactions are serialised, so of two concurrent
deliveries exactly one gets True. The ledger is at-most-once: an event whose listener failed after the
claim is not run again on a retry (a half-done import repeated is worse than one the person re-sends).

:func:`drop_repeated_events` is the Bolt global middleware that asks the ledger before any listener runs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse

from bot.store.base import Store, Tx

logger = logging.getLogger(__name__)

EVENTS_TABLE = "slack_events"
# Slack's last retry comes about 5 minutes after the first delivery; an hour leaves room for a process
# that was down and for Slack's own delays, and keeps the table to an hour of events.
EVENT_MEMORY_S = 60 * 60


class EventLedger:
    """Which Events API deliveries are the first for their ``event_id``.

    ``store`` None (a stand-in engine without one) keeps the ledger in memory, with the same rules: one
    event loop, and no ``await`` between the look-up and the write.
    """

    def __init__(self, store: Store | None, *, memory_s: float = EVENT_MEMORY_S) -> None:
        self._store = store
        self._memory_s = memory_s
        self._seen: dict[str, float] = {}

    async def first_delivery(self, event_id: str, *, now_s: float) -> bool:
        """True the first time ``event_id`` is seen within ``memory_s`` seconds, False for a repeat.

        ``now_s``: Unix seconds. Forgets ids older than ``memory_s`` on the way. Raises
        :class:`bot.store.StorageError` when the store cannot be read or written.
        """
        key = _key(event_id)
        if self._store is None:
            self._seen = {k: t for k, t in self._seen.items() if t > now_s}
            if key in self._seen:
                return False
            self._seen[key] = now_s + self._memory_s
            return True

        def claim(tx: Tx) -> bool:
            for doc in tx.find(EVENTS_TABLE):
                if not isinstance(doc.get("expires_at"), int | float) or doc["expires_at"] <= now_s:
                    tx.remove(EVENTS_TABLE, id=doc["id"])
            if tx.get(EVENTS_TABLE, key) is not None:
                return False
            tx.insert(
                EVENTS_TABLE, {"id": key, "event_id": event_id[:200], "expires_at": now_s + self._memory_s}
            )
            return True

        return await self._store.transact(claim)


def _key(event_id: str) -> str:
    """A document id for any event id (Slack's are short, but a store id is capped at 200 characters)."""
    return hashlib.sha256(event_id.encode()).hexdigest()


def drop_repeated_events(
    events: EventLedger, clock: Callable[[], float]
) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A Bolt global middleware: an ``event_callback`` whose ``event_id`` was seen is acked (200) and no
    listener runs. ``clock`` gives Unix seconds.

    When the store fails, the event is handled anyway (logged): a rare double effect beats losing it.
    """

    async def drop_repeated_event(
        body: dict[str, Any], request: Any, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not isinstance(event_id, str) or not event_id:
            await next()
            return None
        try:
            first = await events.first_delivery(event_id, now_s=clock())
        except Exception:
            logger.exception("could not record event %s; handling it without the retry check", event_id)
            first = True
        if not first:
            retry = _first_header(request, "x-slack-retry-num")
            logger.info("event %s delivered again (retry %s): already handled", event_id, retry or "?")
            return BoltResponse(status=200, body="")
        await next()
        return None

    return drop_repeated_event


def _first_header(request: Any, name: str) -> str | None:
    values = getattr(request, "headers", {}).get(name) or []
    return str(values[0]) if values else None
