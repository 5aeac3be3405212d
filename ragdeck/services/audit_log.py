"""The append-only audit log in the shared SQLite state database (table ``audit_log``).

One row per action: when, who (and their role), what, on which target, the state before and after (JSON),
the reason given and the outcome (``ok``, ``denied``, ``failed``). Triggers refuse every UPDATE and DELETE,
and each row carries a SHA-256 chained over the previous row's, so an edit made around SQLite (the triggers
dropped, the file patched) shows up in ``verify()``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ragdeck.services.state_schema import open_state
from ragdeck.services.types import ComponentHealth

COLUMNS = ("id", "at", "actor", "role", "action", "target", "before", "after", "reason", "outcome")
_GENESIS = "0" * 64


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _digest(previous: str, row: tuple[Any, ...]) -> str:
    return hashlib.sha256((previous + json.dumps(list(row), default=str)).encode()).hexdigest()


class SqliteAuditLog:
    """Append-only audit rows in SQLite; safe across threads and processes (one short connection a call)."""

    component = "audit log"

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.db = open_state(path, self.component, busy_timeout_s=busy_timeout_s)

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
        at: float | None = None,
    ) -> dict[str, Any]:
        """Append one row (durably) and return it as a dict of ``COLUMNS``."""
        at = time.time() if at is None else at
        values = (at, actor, role, action, target, _dump(before), _dump(after), reason, outcome)
        with self.db.connect(write=True) as db:
            last = db.execute("SELECT digest FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
            digest = _digest(last[0] if last else _GENESIS, values)
            cursor = db.execute(
                "INSERT INTO audit_log (at, actor, role, action, target, before, after, reason, outcome, "
                "digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, digest),
            )
            row_id = cursor.lastrowid
        return self._as_dict((row_id, *values))

    def rows(
        self,
        *,
        limit: int | None = 500,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Rows newest first, filtered by exact actor / action / target / outcome and ``at >= since``."""
        where, args = [], []
        for column, value in (("actor", actor), ("action", action), ("target", target), ("outcome", outcome)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self.db.connect() as db:
            return [self._as_dict(row) for row in db.execute(sql, args).fetchall()]

    def verify(self) -> int | None:
        """The id of the first row whose chained digest does not match, or None when the chain holds."""
        previous = _GENESIS
        with self.db.connect(read_tx=True) as db:
            for row in db.execute(f"SELECT {', '.join(COLUMNS)}, digest FROM audit_log ORDER BY id"):
                expected = _digest(previous, tuple(row[1:-1]))
                if expected != row[-1]:
                    return int(row[0])
                previous = row[-1]
        return None

    def health(self) -> ComponentHealth:
        """Whether the table answers, with its row count."""
        with self.db.connect() as db:
            count = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
        return ComponentHealth(
            component=self.component, mode="local", ok=True, detail=f"{count} entries in {self.db.path}"
        )

    @staticmethod
    def _as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
        out = dict(zip(COLUMNS, row, strict=True))
        for key in ("before", "after"):
            out[key] = None if out[key] is None else json.loads(out[key])
        return out
