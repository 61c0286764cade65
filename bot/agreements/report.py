"""Agreements rendered for people (terminal text) and programs (JSON). Block Kit lives in handlers/."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from bot.agreements.model import (
    QUALIFICATION_FIELDS,
    Agreement,
    AgreementState,
    LinkHealth,
    PromisedLink,
    qualification_to_json,
)
from bot.agreements.record import AgreementRecord, PartnerRecord

STATE_ORDER = (
    AgreementState.BROKEN,
    AgreementState.ONE_SIDED,
    AgreementState.PENDING,
    AgreementState.LIVE,
    AgreementState.PRUNED,
)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 agreement"``, ``"2 agreements"``; ``plural_form`` for irregular words (``"losses"``)."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def link_to_json(link: PromisedLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "direction": link.direction.value,
        "source_url": link.source_url,
        "target_url": link.target_url,
        "expected_anchor": link.expected_anchor,
        "expected_rel": link.expected_rel.value,
        "expected_placement": link.expected_placement.value if link.expected_placement else None,
        "health": link.health.value,
        "reason": link.reason,
        "unknown_reason": link.unknown_reason or None,
        "checked_at": link.checked_at,
        "seen": {"anchor": link.seen_anchor, "rel": list(link.seen_rel), "placement": link.seen_placement},
    }


def agreement_to_json(
    agreement: Agreement, today: date, history: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": agreement.id,
        "state": agreement.state(today).value,
        "overdue": agreement.overdue(today),
        "partner": {
            "name": agreement.partner_name,
            "site": agreement.partner_site,
            "domain": agreement.partner_domain,
        },
        "contact": {
            "name": agreement.contact.name,
            "email": agreement.contact.email,
            "slack_user": agreement.contact.slack_user,
        },
        "owner": agreement.owner,
        "kind": agreement.kind.value,
        "deadline": agreement.deadline.isoformat(),
        "qualification": qualification_to_json(agreement.qualification),
        "notes": agreement.notes,
        "tags": list(agreement.tags),
        "cost": agreement.cost,
        "created_at": agreement.created_at,
        "updated_at": agreement.updated_at,
        "pruned_at": agreement.pruned_at,
        "pruned_by": agreement.pruned_by,
        "priority": agreement.priority.value,
        "recheck_interval_h": agreement.recheck_interval_h,
        "last_checked_at": agreement.last_checked_at,
        "links": [link_to_json(link) for link in agreement.links],
    }
    if history is not None:
        data["history"] = [dict(entry) for entry in history]
    return data


def link_line(link: PromisedLink) -> str:
    arrow = "we link" if link.direction.value == "ours" else "they link"
    state = link.health.value if link.health is not LinkHealth.NOT_CHECKED else "not checked yet"
    reason = f" ({link.reason})" if link.reason else ""
    unknown = f" [last check inconclusive: {link.unknown_reason}]" if link.unknown_reason else ""
    expect = [link.expected_rel.value]
    if link.expected_anchor:
        expect.append(f'anchor "{link.expected_anchor}"')
    if link.expected_placement:
        expect.append(link.expected_placement.value)
    return (
        f"{link.id} {arrow}: {link.source_url} -> {link.target_url}  expects {', '.join(expect)}: "
        f"{state}{reason}{unknown}"
    )


def agreement_line(agreement: Agreement, today: date) -> str:
    state = agreement.state(today).value
    overdue = " overdue" if agreement.overdue(today) else ""
    links = plural(len(agreement.links), "link")
    return (
        f"#{agreement.id} {agreement.partner_name} ({agreement.partner_domain}) {agreement.kind.value}, "
        f"{state}{overdue}, deadline {agreement.deadline.isoformat()}, {links}, owner {agreement.owner}"
    )


def render_agreement_list(agreements: Iterable[Agreement], today: date) -> str:
    """Agreements grouped by state (broken, one-sided, pending, live, pruned), newest first within."""
    groups: dict[AgreementState, list[Agreement]] = {state: [] for state in STATE_ORDER}
    for agreement in agreements:
        groups[agreement.state(today)].append(agreement)
    lines = []
    for state, members in groups.items():
        if not members:
            continue
        lines.append(f"{state.value} ({len(members)}):")
        lines.extend("  " + agreement_line(a, today) for a in members)
    return "\n".join(lines) + "\n" if lines else "no agreements yet (add one: linkpact agreement add)\n"


def render_agreement(agreement: Agreement, today: date, history: Iterable[Mapping[str, Any]] = ()) -> str:
    lines = [agreement_line(agreement, today)]
    contact = ", ".join(
        part
        for part in (agreement.contact.name, agreement.contact.email, agreement.contact.slack_user)
        if part
    )
    if contact:
        lines.append(f"  contact: {contact}")
    for name in QUALIFICATION_FIELDS:
        score = getattr(agreement.qualification, name)
        if score.note or score.score is not None:
            value = f"{score.score}/5" if score.score is not None else ""
            lines.append(f"  {name.replace('_', ' ')}: {value} {score.note}".rstrip())
    if agreement.notes:
        lines.append(f"  notes: {agreement.notes}")
    checked = agreement.last_checked_at
    lines.append(
        f"  priority: {agreement.priority.value} (rechecked every {agreement.recheck_interval_h:g} h), "
        + (f"last checked {checked}" if checked else "not checked yet")
    )
    lines.append("  links:")
    lines.extend("    " + link_line(link) for link in agreement.links)
    entries = list(history)
    if entries:
        lines.append("  history:")
        for entry in entries:
            details = ", ".join(
                f"{k}={v}" for k, v in entry.items() if k not in ("id", "agreement_id", "at", "by", "action")
            )
            lines.append(f"    {entry['at']} {entry['by']} {entry['action']} {details}".rstrip())
    return "\n".join(lines) + "\n"


def _days(days: float) -> str:
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def share_words(live: int, definite: int) -> str:
    """``live in 9 of 10 checks (90%)``, or ``no definite check yet``."""
    if not definite:
        return "no definite check yet"
    return f"live in {live} of {plural(definite, 'check')} ({live / definite:.0%})"


def agreement_record_line(record: AgreementRecord) -> str:
    """One agreement's part of a partner's track record, on one line."""
    if record.their_links == 0:
        delivery = "no link promised by them"
    elif record.days_to_deliver is not None:
        delivery = f"delivered in {_days(record.days_to_deliver)}"
    else:
        delivery = f"not delivered yet ({_days(record.waiting_days or 0.0)} since the start)"
    share = share_words(record.live_checks, record.definite_checks)
    return (
        f"#{record.id} {record.partner_name}, {record.state}: {delivery}; {share}; "
        f"{plural(record.losses, 'loss', 'losses')}, {plural(record.reclaims, 'reclaim')}"
    )


def render_partner_record(record: PartnerRecord) -> str:
    """A partner's track record as text: the totals, then one line per agreement, newest first."""
    names = ", ".join(record.names)
    lines = [f"{record.domain} ({names}): {plural(len(record.agreements), 'agreement')}"]
    with_links = record.delivered + record.awaited
    median = record.median_days_to_deliver
    delivered = f"delivered on {record.delivered} of {plural(with_links, 'agreement')}"
    if median is not None:
        delivered += f", median {_days(median)} after the start"
    lines.append(f"  days to deliver: {delivered}")
    lines.append(f"  their links: {share_words(record.live_checks, record.definite_checks)}")
    lines.append(
        f"  {plural(record.losses, 'loss', 'losses')}, {plural(record.reclaims, 'reclaim')} "
        "(a lost link of theirs live again)"
    )
    lines.extend("  " + agreement_record_line(a) for a in record.agreements)
    return "\n".join(lines) + "\n"
