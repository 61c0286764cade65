"""Tracked backlinks: source pages that should link to one of our target URLs.

Stored in the ``backlinks`` table, one document per (source, target) pair compared by
:func:`bot.urls.link_key`, so ``https://Partner.example/a/`` and ``https://partner.example/a`` are the
same backlink. Each document also keeps the latest verification (``last_verdict``, ``last_reason``,
``last_checked_at``) so later rechecks can tell what changed.

The stored keys are recomputed from the stored URLs when :data:`bot.urls.LINK_KEY_VERSION` changes
(:func:`refresh_link_keys`, run once per store by the first registry operation and by imports), so a
database written by an older key still matches ``https://partner.example/café`` with
``https://partner.example/caf%C3%A9``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.backlinks.changes import Change, ChangeKind, log_changes
from bot.backlinks.confirm import Suspicion, observe_failure
from bot.config import LossPolicy
from bot.errors import InputError
from bot.models import InboundResult, InboundVerdict
from bot.net.policy import AddressPolicy
from bot.store import ReadTx, Store, Tx
from bot.urls import LINK_KEY_VERSION, link_key, scheme_of

logger = logging.getLogger(__name__)

BACKLINKS_TABLE = "backlinks"
# One document per stored format that can go stale: here, which link_key rules made the stored keys.
META_TABLE = "meta"
LINK_KEYS_DOC = "link_keys"


@dataclass(frozen=True, slots=True)
class TrackedBacklink:
    id: str
    source_url: str
    target_url: str
    added_by: str | None
    added_at: str  # ISO 8601, UTC
    last_verdict: str | None = None
    last_reason: str | None = None
    last_checked_at: str | None = None
    # The agreement whose promised link this is (a partner-side link is also tracked), else None.
    agreement_id: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TrackedBacklink:
        return cls(
            id=str(doc["id"]),
            source_url=doc["source_url"],
            target_url=doc["target_url"],
            added_by=doc.get("added_by"),
            added_at=doc.get("added_at", ""),
            last_verdict=doc.get("last_verdict"),
            last_reason=doc.get("last_reason"),
            last_checked_at=doc.get("last_checked_at"),
            agreement_id=str(doc["agreement_id"]) if doc.get("agreement_id") else None,
        )


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def validate_user_url(url: str, policy: AddressPolicy, *, what: str = "URL") -> str:
    """Return ``url`` stripped if it is an http(s) URL the address policy accepts; else raise InputError."""
    url = url.strip()
    if not url:
        raise InputError(f"the {what} is empty")
    scheme = scheme_of(url)
    if scheme not in ("http", "https"):
        raise InputError(f"{url!r} is not an http(s) URL (the {what} must start with http:// or https://)")
    error = policy.vet_url(url)
    if error is not None:
        raise InputError(f"{url} was refused: {error.message}")
    try:
        link_key(url)
    except ValueError as exc:
        raise InputError(f"{url!r} is not a valid URL: {exc}") from exc
    return url


def add_backlink(tx: Tx, doc: dict[str, Any]) -> bool:
    """Insert a backlink document made by :meth:`BacklinkRegistry.new_doc` unless the same (source,
    target) pair is already tracked. Returns True when it was added."""
    if tx.find(BACKLINKS_TABLE, source_key=doc["source_key"], target_key=doc["target_key"]):
        return False
    tx.insert(BACKLINKS_TABLE, doc)
    return True


def link_keys_stale(tx: ReadTx) -> bool:
    """Whether tracked backlinks are stored with keys of another link_key version (an empty table
    never is)."""
    marker = tx.get(META_TABLE, LINK_KEYS_DOC)
    if marker is not None and marker.get("version") == LINK_KEY_VERSION:
        return False
    return tx.count(BACKLINKS_TABLE) > 0


def refresh_link_keys(tx: Tx) -> int:
    """Recompute ``source_key``/``target_key`` of every tracked backlink from its stored URLs when they
    were made by another :func:`bot.urls.link_key` (:data:`bot.urls.LINK_KEY_VERSION`, kept in the
    ``meta`` table); returns how many documents changed (0 when the keys are current, after one read).

    Two backlinks the old keys told apart and the new ones do not (``/café`` and ``/caf%C3%A9``) are both
    kept, with their histories, under one key: listed twice, untracked together.
    """
    if not link_keys_stale(tx):
        return 0
    changed = 0
    for doc in tx.find(BACKLINKS_TABLE):
        try:
            keys = {"source_key": link_key(doc["source_url"]), "target_key": link_key(doc["target_url"])}
        except (KeyError, ValueError):
            logger.warning(
                "tracked backlink %s has a URL that no longer parses; its keys are kept", doc.get("id")
            )
            continue
        if any(doc.get(name) != value for name, value in keys.items()):
            tx.update(BACKLINKS_TABLE, doc["id"], keys)
            changed += 1
    tx.upsert(META_TABLE, {"id": LINK_KEYS_DOC, "version": LINK_KEY_VERSION}, key=("id",))
    if changed:
        logger.info(
            "recomputed the link keys of %d tracked backlinks (link key version %d)",
            changed,
            LINK_KEY_VERSION,
        )
    return changed


class BacklinkRegistry:
    """Adds, removes, lists and records verifications of tracked backlinks in a :class:`Store`."""

    def __init__(self, store: Store, policy: AddressPolicy, *, now: Callable[[], str] = utc_now_iso) -> None:
        self._store = store
        self._policy = policy
        self._now = now
        self._keys_current = False

    async def _current_keys(self) -> None:
        """Bring stored keys up to the current link_key once per registry (see :func:`refresh_link_keys`).

        A read decides first, so a check does not queue behind a long write (an import) to learn that
        nothing needs writing."""
        if not self._keys_current:
            if await self._store.view(link_keys_stale):
                await self._store.transact(refresh_link_keys)
            self._keys_current = True

    async def track(self, source_url: str, target_url: str, *, added_by: str | None = None) -> bool:
        """Start tracking; True when new, False when it was already tracked. Raises InputError."""
        doc = self.new_doc(source_url, target_url, added_by=added_by)
        await self._current_keys()
        # One transaction: two people tracking the same backlink at once store it once.
        return await self._store.transact(lambda tx: add_backlink(tx, doc))

    def new_doc(self, source_url: str, target_url: str, *, added_by: str | None = None) -> dict[str, Any]:
        """A validated backlink document, not yet stored. Raises InputError."""
        source_url = validate_user_url(source_url, self._policy, what="source page URL")
        target_url = validate_user_url(target_url, self._policy, what="target URL")
        source_key, target_key = link_key(source_url), link_key(target_url)
        if source_key == target_key:
            raise InputError("the source page and the target are the same URL")
        return {
            "source_url": source_url,
            "target_url": target_url,
            "source_key": source_key,
            "target_key": target_key,
            "added_by": added_by,
            "added_at": self._now(),
        }

    async def untrack(self, source_url: str, target_url: str) -> bool:
        """Stop tracking; True when something was removed. Raises InputError on a malformed URL."""
        try:
            source_key, target_key = link_key(source_url.strip()), link_key(target_url.strip())
        except ValueError as exc:
            raise InputError(f"not a valid URL: {exc}") from exc
        await self._current_keys()
        removed = await self._store.remove(BACKLINKS_TABLE, source_key=source_key, target_key=target_key)
        return removed > 0

    async def tracked(self, target_url: str | None = None) -> list[TrackedBacklink]:
        """All tracked backlinks, or those pointing to ``target_url``, oldest first."""
        await self._current_keys()
        equals: dict[str, str] = {}
        if target_url is not None:
            try:
                equals["target_key"] = link_key(target_url.strip())
            except ValueError as exc:
                raise InputError(f"not a valid URL: {exc}") from exc

        def read(tx: ReadTx) -> list[TrackedBacklink]:
            # Built and sorted in the store's worker, not on the event loop: 100,000 of them take ~0.3 s.
            backlinks = (TrackedBacklink.from_doc(d) for d in tx.find(BACKLINKS_TABLE, **equals))
            return sorted(backlinks, key=lambda b: (b.added_at, b.id))

        return await self._store.view(read)

    async def for_targets(self, target_urls: list[str]) -> list[TrackedBacklink]:
        """Tracked backlinks whose target matches any of ``target_urls`` (e.g. requested and final URL)."""
        keys = []
        for url in target_urls:
            try:
                keys.append(link_key(url))
            except ValueError:
                continue
        await self._current_keys()
        seen: dict[str, TrackedBacklink] = {}
        for key in dict.fromkeys(keys):
            for doc in await self._store.find(BACKLINKS_TABLE, target_key=key):
                backlink = TrackedBacklink.from_doc(doc)
                seen.setdefault(backlink.id, backlink)
        return list(seen.values())

    async def record(
        self,
        verified: list[tuple[TrackedBacklink, InboundResult]],
        *,
        now: datetime | None = None,
        loss: LossPolicy | None = None,
    ) -> list[Change]:
        """Store each verification on its backlink in one write, and log what changed.

        A backlink's ``state`` moves ``None`` (never seen live) -> ``live`` (change ``new``) -> ``lost``
        (change ``lost``, only once the loss is confirmed by ``loss``, :mod:`bot.backlinks.confirm`) ->
        ``live``
        (change ``restored``). While live, a different rel, anchor or placement is logged as
        ``rel_changed``, ``anchor_changed`` or ``placement_changed``. ``unknown`` results change nothing
        but ``last_*``.
        """
        moment = now or datetime.now(UTC)
        policy = loss or LossPolicy()

        def write(tx: Tx) -> list[Change]:
            changes: list[Change] = []
            for backlink, result in verified:
                doc = tx.get(BACKLINKS_TABLE, backlink.id)
                if doc is None:  # untracked meanwhile
                    continue
                fields, found = _next_state(doc, result, moment, policy)
                tx.update(BACKLINKS_TABLE, backlink.id, fields)
                changes.extend(found)
            log_changes(tx, changes)
            return changes

        return await self._store.transact(write)


def _seen(result: InboundResult) -> dict[str, Any]:
    return {
        "anchor": result.anchor or "",
        "rel": sorted(result.rel),
        "placement": result.placement.value if result.placement else "",
    }


def _next_state(
    doc: dict[str, Any], result: InboundResult, now: datetime, policy: LossPolicy
) -> tuple[dict[str, Any], list[Change]]:
    at = now.isoformat(timespec="seconds")
    fields: dict[str, Any] = {
        "last_verdict": result.verdict.value,
        "last_reason": result.reason,
        "last_checked_at": at,
    }
    changes: list[Change] = []

    def change(kind: ChangeKind, reason: str = "", before: str = "", after: str = "") -> None:
        changes.append(
            Change(
                at=at,
                kind=kind,
                subject="backlink",
                reason=reason,
                source_url=doc["source_url"],
                target_url=doc["target_url"],
                agreement_id=str(doc.get("agreement_id") or ""),
                before=before,
                after=after,
            )
        )

    state = doc.get("state")
    if result.verdict is InboundVerdict.UNKNOWN:
        return fields, changes
    if result.verdict is InboundVerdict.LIVE:
        seen = _seen(result)
        if state == "lost":
            change(ChangeKind.RESTORED, result.reason)
        elif state != "live":
            change(ChangeKind.NEW, result.reason)
            fields["first_live_at"] = at
        else:
            old = doc.get("seen") or {}
            if old.get("rel", []) != seen["rel"]:
                change(ChangeKind.REL_CHANGED, "rel", " ".join(old.get("rel", [])), " ".join(seen["rel"]))
            if old.get("anchor", "") != seen["anchor"]:
                change(ChangeKind.ANCHOR_CHANGED, "anchor", old.get("anchor", ""), seen["anchor"])
            if old.get("placement", "") != seen["placement"]:
                change(ChangeKind.PLACEMENT_CHANGED, "placement", old.get("placement", ""), seen["placement"])
        fields.update(state="live", suspicion=None, seen=seen)
        return fields, changes
    # LOST: only a live link can be lost, and only once confirmed.
    if state == "live":
        suspicion, confirmed = observe_failure(
            Suspicion.from_json(doc.get("suspicion")), result.reason, now, policy
        )
        if confirmed:
            change(ChangeKind.LOST, result.reason)
            fields.update(state="lost", suspicion=None, lost_at=at)
        else:
            fields["suspicion"] = suspicion.to_json()
    return fields, changes
