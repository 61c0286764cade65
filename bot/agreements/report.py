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

STATE_ORDER = (
    AgreementState.BROKEN,
    AgreementState.ONE_SIDED,
    AgreementState.PENDING,
    AgreementState.LIVE,
    AgreementState.PRUNED,
)


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
    return (
        f"#{agreement.id} {agreement.partner_name} ({agreement.partner_domain}) {agreement.kind.value}, "
        f"{state}{overdue}, deadline {agreement.deadline.isoformat()}, {len(agreement.links)} links, "
        f"owner {agreement.owner}"
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
