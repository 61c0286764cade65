"""Logging, listing, verifying and ending partnership agreements, over a :class:`Store`.

Every change appends an entry to the agreement's history (``agreement_history`` table: who, when,
what); entries are never edited or removed. Promised links on a partner's site (``theirs``) are also
tracked as backlinks, so ``/linkcheck <our page>`` shows them among the inbound links.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from bot.agreements.model import (
    AGREEMENTS_TABLE,
    COUNTERS_TABLE,
    HISTORY_TABLE,
    QUALIFICATION_FIELDS,
    Agreement,
    AgreementInput,
    AgreementInputError,
    AgreementKind,
    AgreementState,
    Contact,
    Direction,
    ExpectedRel,
    LinkHealth,
    Priority,
    PromisedLink,
    Qualification,
    Score,
    apply_result,
    default_deadline,
    from_doc,
    parse_priority,
    parse_score,
    parse_slack_user,
    to_doc,
)
from bot.agreements.record import PartnerRecord, partner_record
from bot.backlinks.changes import CHANGES_TABLE, Change, ChangeKind, log_changes
from bot.backlinks.registry import BacklinkRegistry, TrackedBacklink, add_backlink
from bot.config import LossPolicy
from bot.errors import InputError
from bot.linkcheck.inbound import BacklinkVerifier
from bot.models import InboundResult, Placement
from bot.net.policy import AddressPolicy
from bot.store import Store, Tx
from bot.urls import link_key, same_site, scheme_of, url_registrable_domain

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_EMAIL_AT = "@"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AgreementService:
    """Agreements in a store; verification through the engine's :class:`BacklinkVerifier`."""

    def __init__(
        self,
        store: Store,
        verifier: BacklinkVerifier,
        backlinks: BacklinkRegistry,
        policy: AddressPolicy,
        *,
        clock: Clock = _utc_now,
        loss: LossPolicy | None = None,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._backlinks = backlinks
        self._policy = policy
        self._clock = clock
        self._loss = loss or LossPolicy()

    def today(self) -> date:
        return self._clock().date()

    def _now_iso(self) -> str:
        return self._clock().isoformat(timespec="seconds")

    # -- validation --------------------------------------------------------------------------------------
    def validate(self, data: AgreementInput, *, allow_past_deadline: bool = False) -> Agreement:
        """Check every field of ``data``; raise :class:`AgreementInputError` listing each bad field
        (keys: ``partner_name``, ``partner_site``, ``kind``, ``deadline``, ``contact_email``,
        ``contact_slack``, ``links``, ``link_<n>_source``, ``link_<n>_target``, ``link_<n>_direction``,
        ``link_<n>_rel``, ``link_<n>_placement``, ``<criterion>_score``, ``priority``). The returned
        agreement has no id yet."""
        errors: dict[str, str] = {}
        name = data.partner_name.strip()
        if not name:
            errors["partner_name"] = "give the partner's name"
        site = self._url(data.partner_site, "partner_site", "the partner's site", errors)
        try:
            kind = AgreementKind(data.kind.strip().lower() or AgreementKind.EXCHANGE.value)
        except ValueError:
            errors["kind"] = "kind must be one of " + ", ".join(k.value for k in AgreementKind)
            kind = AgreementKind.EXCHANGE
        deadline = self._deadline(data.deadline, errors, allow_past=allow_past_deadline)
        priority = parse_priority(data.priority)
        if priority is None:
            errors["priority"] = f"{data.priority.strip()!r} is not a priority (use {_priorities()})"
        email = data.contact_email.strip()
        if email and (_EMAIL_AT not in email or " " in email or "." not in email.split(_EMAIL_AT)[-1]):
            errors["contact_email"] = f"{email!r} is not an email address"
        slack_user = ""
        if data.contact_slack.strip():
            slack_user = parse_slack_user(data.contact_slack) or ""
            if not slack_user:
                errors["contact_slack"] = f"{data.contact_slack!r} is not a Slack user (e.g. <@U123ABC>)"
        scores = {}
        for criterion in QUALIFICATION_FIELDS:
            note, raw_score = data.qualification.get(criterion, ("", ""))
            scores[criterion] = Score(note.strip(), parse_score(criterion, raw_score, errors))
        links = self._links(data, kind, errors)
        if errors:
            raise AgreementInputError(errors)
        now = self._now_iso()
        return Agreement(
            id="",
            partner_name=name,
            partner_site=site,
            owner=data.owner,
            kind=kind,
            deadline=deadline,
            links=tuple(links),
            contact=Contact(data.contact_name.strip(), email, slack_user),
            qualification=Qualification(**scores),
            notes=data.notes.strip(),
            created_at=now,
            updated_at=now,
            tags=tuple(t.strip() for t in data.tags if t.strip()),
            cost=data.cost.strip(),
            priority=priority or Priority.NORMAL,
        )

    def _url(self, raw: str, key: str, what: str, errors: dict[str, str]) -> str:
        url = raw.strip()
        if not url:
            errors[key] = f"give {what} (an http(s) URL)"
            return url
        if scheme_of(url) not in ("http", "https"):
            errors[key] = f"{url!r} is not an http(s) URL"
            return url
        problem = self._policy.vet_url(url)
        if problem is not None:
            errors[key] = f"{url} is refused: {problem.message}"
            return url
        try:
            link_key(url)
        except ValueError as exc:
            errors[key] = f"{url!r} is not a valid URL ({exc})"
        return url

    def _deadline(self, raw: str, errors: dict[str, str], *, allow_past: bool = False) -> date:
        raw = raw.strip()
        if not raw:
            return default_deadline(self.today())
        try:
            deadline = date.fromisoformat(raw)
        except ValueError:
            errors["deadline"] = f"{raw!r} is not a date (use YYYY-MM-DD)"
            return default_deadline(self.today())
        if deadline < self.today() and not allow_past:
            errors["deadline"] = f"the deadline {raw} is in the past"
        return deadline

    def _links(self, data: AgreementInput, kind: AgreementKind, errors: dict[str, str]) -> list[PromisedLink]:
        if not data.links:
            errors["links"] = "promise at least one link (source page and target URL)"
            return []
        links = []
        seen: set[tuple[str, str]] = set()
        for number, item in enumerate(data.links, start=1):
            prefix = f"link_{number}"
            source = self._url(item.source_url, f"{prefix}_source", f"link {number}'s source page", errors)
            target = self._url(item.target_url, f"{prefix}_target", f"link {number}'s target URL", errors)
            try:
                direction = Direction(item.direction.strip().lower() or Direction.THEIRS.value)
            except ValueError:
                errors[f"{prefix}_direction"] = "direction must be 'ours' or 'theirs'"
                direction = Direction.THEIRS
            # Paid links are expected to be marked sponsored (Google Search Central, "Qualify your
            # outbound links to Google"); everything else is expected to be followed unless said.
            default_rel = ExpectedRel.SPONSORED if kind is AgreementKind.PAID else ExpectedRel.FOLLOW
            try:
                rel = ExpectedRel(item.rel.strip().lower() or default_rel.value)
            except ValueError:
                errors[f"{prefix}_rel"] = "rel must be one of " + ", ".join(r.value for r in ExpectedRel)
                rel = default_rel
            placement = None
            if item.placement.strip():
                try:
                    placement = Placement(item.placement.strip().lower())
                except ValueError:
                    errors[f"{prefix}_placement"] = "placement must be one of " + ", ".join(
                        p.value for p in Placement
                    )
            if f"{prefix}_source" not in errors and f"{prefix}_target" not in errors:
                if same_site(source, target):
                    errors[f"{prefix}_target"] = (
                        f"link {number} points from {url_registrable_domain(source)} to itself: a "
                        "partnership link goes from one site to another"
                    )
                pair = (link_key(source), link_key(target))
                if pair in seen:
                    errors[f"{prefix}_source"] = f"link {number} repeats an earlier link"
                seen.add(pair)
            links.append(
                PromisedLink(
                    id=f"L{number}",
                    source_url=source,
                    target_url=target,
                    direction=direction,
                    expected_rel=rel,
                    expected_anchor=item.anchor.strip() or None,
                    expected_placement=placement,
                )
            )
        return links

    # -- writing -----------------------------------------------------------------------------------------
    async def add(self, data: AgreementInput) -> Agreement:
        """Validate and store a new agreement in one transaction (agreement, history entry, and the
        partner-side links as tracked backlinks). Raises :class:`AgreementInputError`."""
        [agreement] = await self.add_many([data])
        return agreement

    async def add_many(
        self,
        items: Sequence[AgreementInput],
        *,
        action: str = "created",
        allow_past_deadline: bool = False,
    ) -> list[Agreement]:
        """Validate every item, then store them all in one transaction: all or nothing.

        Raises :class:`AgreementInputError` (one item) or :class:`InputError` naming each bad item by its
        1-based position (several)."""
        drafts = []
        problems = []
        for number, data in enumerate(items, start=1):
            try:
                drafts.append(self.validate(data, allow_past_deadline=allow_past_deadline))
            except AgreementInputError as exc:
                if len(items) == 1:
                    raise
                problems.append(f"agreement {number} ({data.partner_name or 'no name'}): {exc}")
        if problems:
            raise InputError("nothing was imported; fix these and try again:\n" + "\n".join(problems))
        backlink_docs = [
            [
                self._backlinks.new_doc(link.source_url, link.target_url, added_by=draft.owner)
                for link in draft.links
                if link.direction is Direction.THEIRS
            ]
            for draft in drafts
        ]

        def write(tx: Tx) -> list[Agreement]:
            counter = tx.get(COUNTERS_TABLE, AGREEMENTS_TABLE)
            number = (counter or {}).get("value", 0)
            stored = []
            for draft, docs in zip(drafts, backlink_docs, strict=True):
                number += 1
                agreement = replace(draft, id=str(number))
                tx.insert(AGREEMENTS_TABLE, to_doc(agreement))
                self._history(tx, agreement.id, agreement.owner, action, {"state": "pending"})
                for doc in docs:
                    add_backlink(tx, {**doc, "agreement_id": agreement.id})
                stored.append(agreement)
            tx.upsert(COUNTERS_TABLE, {"id": AGREEMENTS_TABLE, "value": number}, key=("id",))
            return stored

        return await self._store.transact(write)

    def _history(self, tx: Tx, agreement_id: str, by: str, action: str, details: dict[str, Any]) -> None:
        tx.insert(
            HISTORY_TABLE,
            {"agreement_id": agreement_id, "at": self._now_iso(), "by": by, "action": action, **details},
        )

    async def set_priority(self, ref: str, raw: str, *, by: str) -> tuple[Agreement, Priority]:
        """Set the priority (``high``, ``normal``, ``low``) of the agreement ``ref`` (id or partner domain)
        and append a ``priority_changed`` history entry when it changes. Returns the agreement after the
        change and the priority it had. Raises :class:`InputError` for an unknown agreement or level."""
        priority = parse_priority(raw) if raw.strip() else None
        if priority is None:
            raise InputError(f"{raw.strip()!r} is not a priority (use {_priorities()})")
        agreement = await self.get(ref)

        def write(tx: Tx) -> tuple[Agreement, Priority]:
            doc = tx.get(AGREEMENTS_TABLE, agreement.id)
            if doc is None:
                raise InputError(f"agreement #{agreement.id} was removed meanwhile")
            current = from_doc(doc)
            if current.priority is priority:
                return current, current.priority
            after = replace(current, priority=priority, updated_at=self._now_iso())
            tx.update(
                AGREEMENTS_TABLE, after.id, {"priority": priority.value, "updated_at": after.updated_at}
            )
            self._history(
                tx,
                after.id,
                by,
                "priority_changed",
                {"priority": priority.value, "was": current.priority.value},
            )
            return after, current.priority

        return await self._store.transact(write)

    # -- reading -----------------------------------------------------------------------------------------
    async def all(self, state: AgreementState | None = None) -> list[Agreement]:
        """Agreements newest first, optionally only those in ``state``."""
        agreements = [from_doc(doc) for doc in await self._store.find(AGREEMENTS_TABLE)]
        agreements.sort(key=lambda a: (a.created_at, int(a.id) if a.id.isdigit() else 0), reverse=True)
        if state is not None:
            today = self.today()
            agreements = [a for a in agreements if a.state(today) is state]
        return agreements

    async def get(self, ref: str) -> Agreement:
        """One agreement by id (``12`` or ``#12``) or by the partner's domain (the newest one).
        Raises :class:`InputError` when nothing matches."""
        ref = ref.strip().lstrip("#")
        if not ref:
            raise InputError("give an agreement id or the partner's domain")
        doc = await self._store.get(AGREEMENTS_TABLE, ref)
        if doc is not None:
            return from_doc(doc)
        domain = url_registrable_domain(ref if "://" in ref else f"http://{ref}")
        matches = [a for a in await self.all() if a.partner_domain == domain]
        if not matches:
            raise InputError(f"no agreement with id or partner domain {ref!r} (see: linkpact agreement list)")
        return matches[0]

    async def partner_record(self, ref: str) -> PartnerRecord:
        """The track record (:mod:`bot.agreements.record`) of the partner of ``ref``: an agreement id, or
        the partner's domain or site. Raises :class:`InputError` when no agreement matches."""
        domain = (await self.get(ref)).partner_domain
        docs = [
            doc for doc in await self._store.find(AGREEMENTS_TABLE) if from_doc(doc).partner_domain == domain
        ]
        history: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        for agreement_id in (str(doc["id"]) for doc in docs):
            history += await self._store.find(HISTORY_TABLE, agreement_id=agreement_id)
            changes += await self._store.find(CHANGES_TABLE, agreement_id=agreement_id)
        return partner_record(domain, docs, history, changes, now=self._clock())

    async def history(self, agreement_id: str) -> list[dict[str, Any]]:
        entries = await self._store.find(HISTORY_TABLE, agreement_id=agreement_id)
        return sorted(entries, key=lambda e: e["at"])

    # -- verifying ---------------------------------------------------------------------------------------
    async def check(self, refs: Sequence[str] | None = None, *, by: str = "linkpact") -> list[Agreement]:
        """Verify every promised link of the given agreements (default: all not pruned) now, store the
        results and append history entries for each state or link change. Returns the agreements as
        they are after the check, in the order asked (newest first by default)."""
        if refs:
            targets = [await self.get(ref) for ref in refs]
        else:
            targets = await self.active()
        pairs = promised_links(targets)
        results = await self._verifier.verify(as_backlinks(pairs))
        agreements, _ = await self.record(pairs, results, by=by)
        return agreements

    async def active(self) -> list[Agreement]:
        """Agreements not pruned, newest first: the ones rechecks verify."""
        return [a for a in await self.all() if a.pruned_at is None]

    async def record(
        self,
        pairs: Sequence[tuple[Agreement, PromisedLink]],
        results: Sequence[InboundResult],
        *,
        by: str,
    ) -> tuple[list[Agreement], list[Change]]:
        """Apply verification ``results`` (one per pair) to the stored agreements in one transaction:
        links judged against their expectations with loss confirmation, history entries and change-log
        entries written. Returns the agreements after the update and the changes logged."""
        now = self._clock()
        today = now.date()
        by_link = {(a.id, link.id): result for (a, link), result in zip(pairs, results, strict=True)}
        order = list(dict.fromkeys(a.id for a, _ in pairs))

        def write(tx: Tx) -> tuple[list[Agreement], list[Change]]:
            out, changes = [], []
            deadline_noted = _DeadlineNotes(tx)
            for agreement_id in order:
                doc = tx.get(AGREEMENTS_TABLE, agreement_id)
                if doc is None:  # removed meanwhile
                    continue
                current = from_doc(doc)
                links = tuple(
                    apply_result(link, by_link[(agreement_id, link.id)], now, self._loss)
                    if (agreement_id, link.id) in by_link
                    else link
                    for link in current.links
                )
                after = replace(current, links=links)
                changes.extend(self._record_changes(tx, current, after, today, by, deadline_noted))
                tx.update(AGREEMENTS_TABLE, after.id, {"links": to_doc(after)["links"]})
                out.append(after)
            log_changes(tx, changes)
            return out, changes

        return await self._store.transact(write)

    def _record_changes(
        self,
        tx: Tx,
        before: Agreement,
        after: Agreement,
        today: date,
        by: str,
        deadline_noted: _DeadlineNotes,
    ) -> list[Change]:
        at = self._now_iso()
        changes = []

        def change(kind: ChangeKind, link: PromisedLink | None = None, **fields: str) -> Change:
            return Change(
                at=at,
                kind=kind,
                subject="promised_link" if link else "agreement",
                agreement_id=after.id,
                partner=after.partner_name,
                source_url=link.source_url if link else "",
                target_url=link.target_url if link else "",
                link_id=link.id if link else "",
                **fields,
            )

        old_links = {link.id: link for link in before.links}
        for link in after.links:
            old = old_links.get(link.id)
            if old is None:
                continue
            if (old.health, old.reason) != (link.health, link.reason):
                self._history(
                    tx,
                    after.id,
                    by,
                    "link_checked",
                    {
                        "link": link.id,
                        "health": link.health.value,
                        "reason": link.reason,
                        "was": old.health.value,
                    },
                )
            if old.health is LinkHealth.HEALTHY and link.health is LinkHealth.FAILING:
                changes.append(change(ChangeKind.LOST, link, reason=link.reason))
            elif link.health is LinkHealth.HEALTHY and old.health is not LinkHealth.HEALTHY:
                kind = ChangeKind.RESTORED if old.ever_healthy else ChangeKind.NEW
                changes.append(change(kind, link, reason=link.reason))
        old_state, new_state = before.state(today), after.state(today)
        if old_state is not new_state:
            self._history(
                tx, after.id, by, "state_changed", {"state": new_state.value, "was": old_state.value}
            )
            changes.append(
                change(
                    ChangeKind.STATE_CHANGED,
                    reason=new_state.value,
                    before=old_state.value,
                    after=new_state.value,
                )
            )
        if after.overdue(today) and not deadline_noted.has(after.id):
            missing = [link.id for link in after.links if link.health is not LinkHealth.HEALTHY]
            self._history(tx, after.id, by, "deadline_passed", {"missing": missing})
            deadline_noted.add(after.id)
            changes.append(
                change(ChangeKind.DEADLINE_PASSED, reason="deadline_passed", after=" ".join(missing))
            )
        return changes


class _DeadlineNotes:
    """Which agreements' history already holds a ``deadline_passed`` entry, read from ``tx`` once (on
    first use) rather than searched for per overdue agreement: a recheck of many overdue agreements stays
    linear in the history's length."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self._ids: set[str] | None = None

    def has(self, agreement_id: str) -> bool:
        if self._ids is None:
            entries = self._tx.find(HISTORY_TABLE, action="deadline_passed")
            self._ids = {doc["agreement_id"] for doc in entries if isinstance(doc.get("agreement_id"), str)}
        return agreement_id in self._ids

    def add(self, agreement_id: str) -> None:
        if self._ids is not None:
            self._ids.add(agreement_id)


def _priorities() -> str:
    return ", ".join(p.value for p in Priority)


def promised_links(agreements: Sequence[Agreement]) -> list[tuple[Agreement, PromisedLink]]:
    return [(agreement, link) for agreement in agreements for link in agreement.links]


def as_backlinks(pairs: Sequence[tuple[Agreement, PromisedLink]]) -> list[TrackedBacklink]:
    return [_as_backlink(agreement, link) for agreement, link in pairs]


def _as_backlink(agreement: Agreement, link: PromisedLink) -> TrackedBacklink:
    return TrackedBacklink(
        id=f"{agreement.id}:{link.id}",
        source_url=link.source_url,
        target_url=link.target_url,
        added_by=agreement.owner,
        added_at=agreement.created_at,
    )


def link_states(agreement: Agreement) -> dict[str, int]:
    """How many promised links are in each health state."""
    counts = {health.value: 0 for health in LinkHealth}
    for link in agreement.links:
        counts[link.health.value] += 1
    return counts
