"""An injected clock: tests move time forward instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float = 0, *, hours: float = 0) -> None:
        self.now += timedelta(days=days, hours=hours)
