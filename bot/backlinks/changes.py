"""The append-only change log: what changed about a tracked link or an agreement, when and why.

Only changes are logged, not every check (a daily recheck of 10,000 links would otherwise write 10,000
rows a day). The weekly digest reads the changes since the previous digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from bot.store import Tx
from bot.urls import url_registrable_domain

CHANGES_TABLE = "changes"


class ChangeKind(StrEnum):
    NEW = "new"  # a link seen live for the first time
    LOST = "lost"  # a live link's loss, confirmed (bot.backlinks.confirm)
    RESTORED = "restored"  # a lost link is live again
    REL_CHANGED = "rel_changed"
    ANCHOR_CHANGED = "anchor_changed"
    PLACEMENT_CHANGED = "placement_changed"
    DEADLINE_PASSED = "deadline_passed"  # an agreement's deadline passed with a promised link missing
    STATE_CHANGED = "state_changed"  # an agreement's derived state changed
    PRUNED = "pruned"


@dataclass(frozen=True, slots=True)
class Change:
    """One entry. ``subject`` is ``backlink`` (a tracked backlink), ``promised_link`` or ``agreement``.
    ``before``/``after`` hold the old and new value for *_changed kinds (rel as space-joined tokens)."""

    at: str
    kind: ChangeKind
    subject: str
    reason: str = ""
    source_url: str = ""
    target_url: str = ""
    agreement_id: str = ""
    partner: str = ""
    link_id: str = ""
    before: str = ""
    after: str = ""

    @property
    def referring_domain(self) -> str:
        return url_registrable_domain(self.source_url) if self.source_url else ""

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["kind"] = self.kind.value
        doc["referring_domain"] = self.referring_domain
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Change:
        fields = {name: doc.get(name, "") for name in cls.__dataclass_fields__}
        fields["kind"] = ChangeKind(doc["kind"])
        return cls(**fields)


def log_changes(tx: Tx, changes: list[Change]) -> None:
    if changes:
        tx.insert_many(CHANGES_TABLE, [change.to_doc() for change in changes])
