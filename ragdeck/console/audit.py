"""The audit log: who did what, to which target, the state before and after, why, when, and the outcome.

Public API::

    audit.record(actor, action, target, before=None, after=None, reason="", outcome="ok") -> AuditEntry
    audit.entries(limit=500, actor=None, action=None, target=None, outcome=None) -> list[AuditEntry]
    audit.to_csv(entries) -> str;  audit.to_jsonl(entries) -> str;  audit.verify() -> int | None

``actor`` is a ``roles.User`` (its role is recorded too) or a plain name. Each function takes the ``log``
(an ``AuditLog``; ``wiring.build_audit_log(settings)`` builds the one in the state database, once per
process). Rows are append-only and sealed outside the database (see ``services/audit_log.py``); ``verify``
returns the first ``AuditBreak`` (the row and what is wrong) or None.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ragdeck.services.types import AuditBreak

if TYPE_CHECKING:
    from ragdeck.console.identity import User

OUTCOMES = ("ok", "denied", "failed")


class AuditLog(Protocol):
    """Where audit rows are kept (``services.audit_log.SqliteAuditLog``)."""

    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        target: str,
        before: Any = None,
        after: Any = None,
        reason: str = "",
        outcome: str = "ok",
    ) -> dict[str, Any]: ...

    def rows(
        self,
        *,
        limit: int | None = 500,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def verify(self) -> AuditBreak | None: ...


CSV_COLUMNS = ("id", "time", "actor", "role", "action", "target", "before", "after", "reason", "outcome")


@dataclass(frozen=True)
class AuditEntry:
    """One audit row; ``time`` is ISO 8601 UTC, ``before`` / ``after`` any JSON value."""

    id: int
    time: str
    actor: str
    role: str
    action: str
    target: str
    before: Any
    after: Any
    reason: str
    outcome: str

    def table_row(self) -> dict[str, str]:
        """A flat table row: time, user, role, action, target, outcome, reason, before and after as JSON."""
        return {
            "time": self.time,
            "user": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "reason": self.reason,
            "before": "" if self.before is None else json.dumps(self.before),
            "after": "" if self.after is None else json.dumps(self.after),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        """From an ``AuditLog`` row."""
        stamp = datetime.fromtimestamp(float(row["at"]), UTC).isoformat(timespec="milliseconds")
        return cls(
            id=int(row["id"]),
            time=stamp,
            actor=row["actor"],
            role=row["role"],
            action=row["action"],
            target=row["target"],
            before=row["before"],
            after=row["after"],
            reason=row["reason"],
            outcome=row["outcome"],
        )


def record(
    actor: User | str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    *,
    outcome: str = "ok",
    log: AuditLog,
) -> AuditEntry:
    """Append one entry; ``action`` is a dotted name such as ``index.swap``."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    name, role = (actor, "") if isinstance(actor, str) else (actor.name, actor.role.label)
    row = log.append(
        actor=name,
        role=role,
        action=action,
        target=target,
        before=before,
        after=after,
        reason=reason.strip(),
        outcome=outcome,
    )
    return AuditEntry.from_row(row)


def entries(
    *,
    limit: int | None = 500,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    log: AuditLog,
) -> list[AuditEntry]:
    """Entries newest first, filtered by exact actor, action, target and outcome."""
    rows = log.rows(limit=limit, actor=actor, action=action, target=target, outcome=outcome)
    return [AuditEntry.from_row(row) for row in rows]


def verify(log: AuditLog) -> AuditBreak | None:
    """The first place where the log is not what ragdeck wrote (a row changed, added, cut or the log
    deleted outside ragdeck), or None."""
    return log.verify()


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def to_csv(items: list[AuditEntry]) -> str:
    """CSV with a header row; ``before`` / ``after`` as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in items:
        writer.writerow([_cell(getattr(entry, column)) for column in CSV_COLUMNS])
    return buffer.getvalue()


def to_jsonl(items: list[AuditEntry]) -> str:
    """One JSON object per line."""
    return "".join(json.dumps(asdict(entry), sort_keys=True) + "\n" for entry in items)
