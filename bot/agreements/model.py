"""Partnership agreements: who promised which links, and whether both directions hold.

An agreement records a partner, a contact, the owner who logged it, its kind, qualification notes, a
deadline and the **promised links**: each a source page that should link to a target URL with an
expected anchor, rel and placement, on *our* site (``ours``) or the partner's (``theirs``). Promised
links are verified with the same :class:`bot.linkcheck.inbound.BacklinkVerifier` as tracked backlinks, with
the
expectations applied on top (``../shared/domain.md``, "A tracked link is healthy when").

States are derived from the latest checks, never typed in (see :func:`derive_state`):
``pending`` -> ``live`` / ``one_sided`` / ``broken``; ``pruned`` once a person ended it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.backlinks.confirm import Suspicion, observe_failure
from bot.config import LossPolicy
from bot.errors import InputError
from bot.models import InboundResult, InboundVerdict, Placement

AGREEMENTS_TABLE = "agreements"
HISTORY_TABLE = "agreement_history"
COUNTERS_TABLE = "counters"

# Seed 001, step 5: "The timeline for implementation (e.g., within 7 days)".
DEFAULT_DEADLINE_DAYS = 7
# Anchors are "the agreed one (or close)" (domain brief): case, punctuation and spacing are ignored, and
# a similarity ratio at or above this (difflib's ratio, 0..1) still counts as the agreed anchor.
ANCHOR_SIMILARITY_MIN = 0.8
SCORE_MIN, SCORE_MAX = 1, 5
UNFOLLOWED_RELS = frozenset({"nofollow", "sponsored", "ugc"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_USER = re.compile(r"^<?@?([UW][A-Z0-9]{2,})(?:\|[^>]*)?>?$")


class AgreementKind(StrEnum):
    EXCHANGE = "exchange"  # a direct A <-> B exchange
    THREE_WAY = "three_way"  # A -> B, B -> C, C -> A
    PAID = "paid"  # our link on their site is paid for: Google expects rel="sponsored"
    EDITORIAL = "editorial"  # an earned link, no link given back


class AgreementState(StrEnum):
    PENDING = "pending"
    LIVE = "live"
    ONE_SIDED = "one_sided"
    BROKEN = "broken"
    PRUNED = "pruned"


class Direction(StrEnum):
    OURS = "ours"  # the link sits on our site (we give it)
    THEIRS = "theirs"  # the link sits on a partner's site (we receive it)


class ExpectedRel(StrEnum):
    FOLLOW = "follow"
    NOFOLLOW = "nofollow"
    SPONSORED = "sponsored"
    UGC = "ugc"


class Priority(StrEnum):
    """How often an agreement's promised links are rechecked (:data:`PRIORITY_INTERVAL_H`)."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# Hours between two rechecks of an agreement, by priority (docs/monitoring.md, "Cadence"). High: daily,
# the bot's historic cadence, for the partnerships that matter most (a loss is seen within a day). Normal:
# every 3 days, so a loss is confirmed (two checks at least LINKPACT_LOSS_CONFIRM_AFTER_H apart) within
# the weekly digest's period while each partner gets a third of the requests. Low: weekly, the digest's
# own rhythm, for long-standing partnerships nobody watches closely.
PRIORITY_INTERVAL_H: Mapping[Priority, float] = {
    Priority.HIGH: 24.0,
    Priority.NORMAL: 72.0,
    Priority.LOW: 168.0,
}
DEFAULT_PRIORITY = Priority.NORMAL


def parse_priority(raw: str | None) -> Priority | None:
    """The priority named by ``raw`` (case and spaces ignored; empty: :data:`DEFAULT_PRIORITY`), or None
    when it names none."""
    text = (raw or "").strip().lower()
    if not text:
        return DEFAULT_PRIORITY
    try:
        return Priority(text)
    except ValueError:
        return None


class LinkHealth(StrEnum):
    """A promised link's latest state. ``unknown`` (page unreadable) never counts as a loss."""

    NOT_CHECKED = "not_checked"
    HEALTHY = "healthy"
    FAILING = "failing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Score:
    """A qualification criterion (seed 001, step 2): a free-text note and an optional 1-5 score."""

    note: str = ""
    score: int | None = None


@dataclass(frozen=True, slots=True)
class Qualification:
    relevance: Score = field(default_factory=Score)
    authority: Score = field(default_factory=Score)
    content_quality: Score = field(default_factory=Score)
    traffic: Score = field(default_factory=Score)


QUALIFICATION_FIELDS = ("relevance", "authority", "content_quality", "traffic")


@dataclass(frozen=True, slots=True)
class Contact:
    name: str = ""
    email: str = ""
    slack_user: str = ""  # a Slack user id (U...)


@dataclass(frozen=True, slots=True)
class PromisedLink:
    """One promised link and its latest verification.

    ``reason`` is the named reason of the latest state (``link_present``, ``link_removed``,
    ``now_nofollow``, ``not_sponsored``, ``anchor_changed``, ``moved_to_footer``, ``noindex``, ...).
    ``ever_healthy`` remembers that the link was once live, so losing it makes the agreement ``broken``.
    """

    id: str
    source_url: str
    target_url: str
    direction: Direction
    expected_rel: ExpectedRel = ExpectedRel.FOLLOW
    expected_anchor: str | None = None
    expected_placement: Placement | None = None
    health: LinkHealth = LinkHealth.NOT_CHECKED
    reason: str = ""
    checked_at: str | None = None
    ever_healthy: bool = False
    seen_anchor: str | None = None
    seen_rel: tuple[str, ...] = ()
    seen_placement: str | None = None
    # Set when the latest check could not read the page (bot wall, timeout, ...); the health above is
    # then the last definite one, because a single failed fetch is never a loss.
    unknown_reason: str = ""
    # A healthy link seen failing, not yet confirmed lost (see bot.backlinks.confirm); health stays HEALTHY.
    suspicion: Suspicion | None = None
    # Distinct external links on the source page at the latest check (a links page carries dozens).
    seen_external_links: int | None = None
    # Checks with a definite answer (``unknown`` ones are not counted) and, of those, the ones in which
    # the link was there as agreed: the partner's track record (bot.agreements.record).
    definite_checks: int = 0
    live_checks: int = 0


@dataclass(frozen=True, slots=True)
class Agreement:
    id: str
    partner_name: str
    partner_site: str
    owner: str
    kind: AgreementKind
    deadline: date
    links: tuple[PromisedLink, ...]
    contact: Contact = field(default_factory=Contact)
    qualification: Qualification = field(default_factory=Qualification)
    notes: str = ""
    created_at: str = ""
    updated_at: str = ""
    pruned_at: str | None = None
    pruned_by: str | None = None
    tags: tuple[str, ...] = ()
    cost: str = ""
    priority: Priority = DEFAULT_PRIORITY

    @property
    def recheck_interval_h(self) -> float:
        """Hours between two scheduled rechecks of this agreement (:data:`PRIORITY_INTERVAL_H`)."""
        return PRIORITY_INTERVAL_H[self.priority]

    @property
    def last_checked_at(self) -> str | None:
        """When every promised link was last verified: the oldest link's ``checked_at`` (ISO 8601, UTC);
        None while a link has never been checked (or there are no links)."""
        stamps = [link.checked_at for link in self.links]
        if not stamps or any(not stamp for stamp in stamps):
            return None
        return min(stamp for stamp in stamps if stamp)

    def state(self, today: date) -> AgreementState:
        return derive_state(self, today)

    def overdue(self, today: date) -> bool:
        """Past the deadline with a promised link not (yet) healthy."""
        return (
            self.pruned_at is None
            and today > self.deadline
            and any(link.health is not LinkHealth.HEALTHY for link in self.links)
        )

    @property
    def partner_domain(self) -> str:
        from bot.urls import url_registrable_domain

        return url_registrable_domain(self.partner_site)


def derive_state(agreement: Agreement, today: date) -> AgreementState:
    """The agreement's state from its links' latest checks (``../shared/domain.md``).

    - ``pruned``: a person ended it;
    - ``live``: every promised link is healthy;
    - ``broken``: a link that was healthy before is now failing (lost, or no longer meets its
      expectation); ``unknown`` checks never count;
    - ``one_sided``: past the deadline, every link of ours is healthy and a link of theirs is failing
      (the partner has not delivered);
    - ``pending``: anything else (before the deadline, or overdue without a definite answer).
    """
    if agreement.pruned_at:
        return AgreementState.PRUNED
    links = agreement.links
    if links and all(link.health is LinkHealth.HEALTHY for link in links):
        return AgreementState.LIVE
    if any(link.ever_healthy and link.health is LinkHealth.FAILING for link in links):
        return AgreementState.BROKEN
    if today > agreement.deadline:
        ours = [link for link in links if link.direction is Direction.OURS]
        theirs = [link for link in links if link.direction is Direction.THEIRS]
        if (
            ours
            and all(link.health is LinkHealth.HEALTHY for link in ours)
            and any(link.health is LinkHealth.FAILING for link in theirs)
        ):
            return AgreementState.ONE_SIDED
    return AgreementState.PENDING


# -- expectations ---------------------------------------------------------------------------------------


def normalise_anchor(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def anchor_matches(expected: str, seen: str) -> bool:
    """True when ``seen`` is the agreed anchor "or close" (case, punctuation, spacing ignored; a difflib
    similarity ratio of at least :data:`ANCHOR_SIMILARITY_MIN`)."""
    a, b = normalise_anchor(expected), normalise_anchor(seen)
    if a == b:
        return True
    return difflib.SequenceMatcher(None, a, b).ratio() >= ANCHOR_SIMILARITY_MIN


def rel_problem(expected: ExpectedRel, rel: Iterable[str]) -> str | None:
    """The named reason when the link's rel does not meet the expectation, else None.

    Follow expected: any of nofollow/sponsored/ugc loses the link's value (``now_nofollow``). Sponsored
    expected (paid links, Google Search Central "Qualify your outbound links"): ``not_sponsored``.
    """
    tokens = set(rel)
    if expected is ExpectedRel.FOLLOW:
        return "now_nofollow" if tokens & UNFOLLOWED_RELS else None
    if expected.value not in tokens:
        return f"not_{expected.value}"
    return None


def placement_problem(expected: Placement | None, seen: Placement | None) -> str | None:
    if expected is None or seen is None or seen is expected:
        return None
    return f"moved_to_{seen.value}"


def judge(link: PromisedLink, result: InboundResult) -> tuple[LinkHealth, str]:
    """Apply the promised link's expectations to a verification of its source page."""
    if result.verdict is InboundVerdict.UNKNOWN:
        return LinkHealth.UNKNOWN, result.reason
    if result.verdict is InboundVerdict.LOST:
        return LinkHealth.FAILING, result.reason
    problem = rel_problem(link.expected_rel, result.rel)
    if (
        problem is None
        and link.expected_anchor
        and result.anchor is not None
        and not anchor_matches(link.expected_anchor, result.anchor)
    ):
        problem = "anchor_changed"
    if problem is None:
        problem = placement_problem(link.expected_placement, result.placement)
    if problem is not None:
        return LinkHealth.FAILING, problem
    return LinkHealth.HEALTHY, result.reason


def apply_result(
    link: PromisedLink, result: InboundResult, now: datetime, policy: LossPolicy
) -> PromisedLink:
    """The link after a verification at ``now``.

    - ``unknown`` keeps the last definite health and reason (a single failed fetch is never a loss);
    - a failure of a link that is healthy is a *suspected* loss until ``policy`` confirms it (two checks
      20 h apart by default, :mod:`bot.backlinks.confirm`); the health stays ``healthy`` meanwhile;
    - a failure of a link that was never healthy (the partner has not delivered yet) is immediate.
    """
    checked_at = now.isoformat(timespec="seconds")
    health, reason = judge(link, result)
    seen_anchor = result.anchor
    seen_rel = tuple(sorted(result.rel))
    seen_placement = result.placement.value if result.placement else None
    external = result.external_links if result.external_links is not None else link.seen_external_links
    if health is not LinkHealth.UNKNOWN:
        link = replace(
            link,
            definite_checks=link.definite_checks + 1,
            live_checks=link.live_checks + (health is LinkHealth.HEALTHY),
        )
    if health is LinkHealth.UNKNOWN:
        if link.health is LinkHealth.NOT_CHECKED:
            return replace(link, health=health, reason=reason, checked_at=checked_at, unknown_reason=reason)
        return replace(link, checked_at=checked_at, unknown_reason=reason)
    if health is LinkHealth.FAILING and link.health is LinkHealth.HEALTHY:
        suspicion, confirmed = observe_failure(link.suspicion, reason, now, policy)
        if not confirmed:
            return replace(
                link,
                checked_at=checked_at,
                unknown_reason="",
                suspicion=suspicion,
                seen_anchor=seen_anchor,
                seen_rel=seen_rel,
                seen_placement=seen_placement,
                seen_external_links=external,
            )
    return replace(
        link,
        health=health,
        reason=reason,
        checked_at=checked_at,
        ever_healthy=link.ever_healthy or health is LinkHealth.HEALTHY,
        unknown_reason="",
        suspicion=None,
        seen_anchor=seen_anchor,
        seen_rel=seen_rel,
        seen_placement=seen_placement,
        seen_external_links=external,
    )


# -- input ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkInput:
    """A promised link as typed by a person (CLI flags, modal fields, CSV row)."""

    source_url: str
    target_url: str
    direction: str = Direction.THEIRS.value
    anchor: str = ""
    rel: str = ""
    placement: str = ""


@dataclass(frozen=True, slots=True)
class AgreementInput:
    """An agreement as typed by a person; :func:`validate_agreement` turns it into field errors or values."""

    partner_name: str
    partner_site: str
    owner: str
    links: tuple[LinkInput, ...]
    kind: str = AgreementKind.EXCHANGE.value
    deadline: str = ""  # ISO date; empty = today + DEFAULT_DEADLINE_DAYS
    contact_name: str = ""
    contact_email: str = ""
    contact_slack: str = ""
    notes: str = ""
    qualification: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (note, score)
    tags: tuple[str, ...] = ()
    cost: str = ""
    priority: str = ""  # high, normal, low; empty = DEFAULT_PRIORITY


class AgreementInputError(InputError):
    """Bad agreement input. ``errors`` maps a field name to a message (for a modal's field errors)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def parse_score(name: str, raw: str, errors: dict[str, str]) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[f"{name}_score"] = f"the {name.replace('_', ' ')} score must be a whole number 1-5"
        return None
    if not SCORE_MIN <= value <= SCORE_MAX:
        errors[f"{name}_score"] = f"the {name.replace('_', ' ')} score must be between 1 and 5"
        return None
    return value


def parse_slack_user(raw: str) -> str | None:
    """A Slack user id from ``U123``, ``<@U123>`` or ``<@U123|name>``; None when it is not one."""
    match = _SLACK_USER.match(raw.strip())
    return match.group(1) if match else None


def default_deadline(today: date) -> date:
    return today + timedelta(days=DEFAULT_DEADLINE_DAYS)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def qualification_to_json(qualification: Qualification) -> dict[str, dict[str, Any]]:
    return {
        name: {"note": score.note, "score": score.score}
        for name in QUALIFICATION_FIELDS
        for score in [getattr(qualification, name)]
    }


def to_doc(agreement: Agreement) -> dict[str, Any]:
    """The JSON document stored for an agreement (dates as ISO strings)."""
    return {
        "id": agreement.id,
        "partner_name": agreement.partner_name,
        "partner_site": agreement.partner_site,
        "partner_domain": agreement.partner_domain,
        "owner": agreement.owner,
        "kind": agreement.kind.value,
        "deadline": agreement.deadline.isoformat(),
        "contact": {
            "name": agreement.contact.name,
            "email": agreement.contact.email,
            "slack_user": agreement.contact.slack_user,
        },
        "qualification": qualification_to_json(agreement.qualification),
        "notes": agreement.notes,
        "created_at": agreement.created_at,
        "updated_at": agreement.updated_at,
        "pruned_at": agreement.pruned_at,
        "pruned_by": agreement.pruned_by,
        "tags": list(agreement.tags),
        "cost": agreement.cost,
        "priority": agreement.priority.value,
        "links": [
            {
                "id": link.id,
                "source_url": link.source_url,
                "target_url": link.target_url,
                "direction": link.direction.value,
                "expected_rel": link.expected_rel.value,
                "expected_anchor": link.expected_anchor,
                "expected_placement": link.expected_placement.value if link.expected_placement else None,
                "health": link.health.value,
                "reason": link.reason,
                "checked_at": link.checked_at,
                "ever_healthy": link.ever_healthy,
                "seen_anchor": link.seen_anchor,
                "seen_rel": list(link.seen_rel),
                "seen_placement": link.seen_placement,
                "unknown_reason": link.unknown_reason,
                "suspicion": link.suspicion.to_json() if link.suspicion else None,
                "seen_external_links": link.seen_external_links,
                "definite_checks": link.definite_checks,
                "live_checks": link.live_checks,
            }
            for link in agreement.links
        ],
    }


def from_doc(doc: Mapping[str, Any]) -> Agreement:
    contact = doc.get("contact") or {}
    qualification = doc.get("qualification") or {}
    return Agreement(
        id=str(doc["id"]),
        partner_name=doc["partner_name"],
        partner_site=doc["partner_site"],
        owner=doc["owner"],
        kind=AgreementKind(doc["kind"]),
        deadline=date.fromisoformat(doc["deadline"]),
        contact=Contact(contact.get("name", ""), contact.get("email", ""), contact.get("slack_user", "")),
        qualification=Qualification(
            **{
                name: Score(
                    (qualification.get(name) or {}).get("note", ""),
                    (qualification.get(name) or {}).get("score"),
                )
                for name in QUALIFICATION_FIELDS
            }
        ),
        notes=doc.get("notes", ""),
        created_at=doc.get("created_at", ""),
        updated_at=doc.get("updated_at", ""),
        pruned_at=doc.get("pruned_at"),
        pruned_by=doc.get("pruned_by"),
        tags=tuple(doc.get("tags", ())),
        cost=doc.get("cost", ""),
        # Agreements stored before priorities existed (or with a value we no longer know) are normal.
        priority=parse_priority(doc.get("priority")) or DEFAULT_PRIORITY,
        links=tuple(
            PromisedLink(
                id=link["id"],
                source_url=link["source_url"],
                target_url=link["target_url"],
                direction=Direction(link["direction"]),
                expected_rel=ExpectedRel(link.get("expected_rel", "follow")),
                expected_anchor=link.get("expected_anchor"),
                expected_placement=Placement(link["expected_placement"])
                if link.get("expected_placement")
                else None,
                health=LinkHealth(link.get("health", LinkHealth.NOT_CHECKED.value)),
                reason=link.get("reason", ""),
                checked_at=link.get("checked_at"),
                ever_healthy=bool(link.get("ever_healthy", False)),
                seen_anchor=link.get("seen_anchor"),
                seen_rel=tuple(link.get("seen_rel", ())),
                seen_placement=link.get("seen_placement"),
                unknown_reason=link.get("unknown_reason", ""),
                suspicion=Suspicion.from_json(link.get("suspicion")),
                seen_external_links=link.get("seen_external_links"),
                definite_checks=int(link.get("definite_checks") or 0),
                live_checks=int(link.get("live_checks") or 0),
            )
            for link in doc.get("links", ())
        ),
    )


Clock = Callable[[], datetime]
