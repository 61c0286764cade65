"""Confirming a loss: a link that was live is lost only after it failed on several checks spanning hours.

One failed check is a *suspected* loss. It becomes a confirmed loss when the failure was seen on at least
``LossPolicy.checks`` checks and the first and the latest of them are at least ``LossPolicy.after_h``
hours apart. A healthy check in between clears the suspicion (a flapping link is never reported lost);
``unknown`` checks neither confirm nor clear it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config import LossPolicy


@dataclass(frozen=True, slots=True)
class Suspicion:
    reason: str
    since: str  # ISO 8601 UTC of the first failing check
    checks: int

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "since": self.since, "checks": self.checks}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Suspicion | None:
        if not data:
            return None
        return cls(str(data["reason"]), str(data["since"]), int(data["checks"]))


def observe_failure(
    previous: Suspicion | None, reason: str, now: datetime, policy: LossPolicy
) -> tuple[Suspicion, bool]:
    """Record one more failing check; returns the suspicion and whether the loss is now confirmed."""
    if previous is None:
        suspicion = Suspicion(reason, now.isoformat(timespec="seconds"), 1)
    else:
        suspicion = Suspicion(reason, previous.since, previous.checks + 1)
    elapsed = now - datetime.fromisoformat(suspicion.since)
    confirmed = suspicion.checks >= policy.checks and elapsed >= timedelta(hours=policy.after_h)
    return suspicion, confirmed
