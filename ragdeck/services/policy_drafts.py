"""Draft policies and their applications in the SQLite state database (tables ``policy_drafts`` and
``policy_draft_applications``; WAL, short connections, safe across threads and processes).

A draft row: its name, the knobs it sets (JSON), the study it came from, the study's summary (JSON), who
saved it and when. An application row: which draft's knobs became which policy's run-time overrides, what
those override fields held before (JSON: field -> value, a field absent had no override), who did it and
when, and who undid it and when (NULL while it stands). Rows are plain dicts; ``console.online.drafts``
owns the rules.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ragdeck.services.state_schema import open_state

_DRAFT = "name, knobs, study_id, summary, created_by, created_at"
_APPLICATION = "id, draft, study_id, policy, knobs, previous, applied_by, applied_at, undone_by, undone_at"


def _draft(row: tuple[Any, ...]) -> dict[str, Any]:
    name, knobs, study_id, summary, created_by, created_at = row
    return {
        "name": name,
        "knobs": json.loads(knobs),
        "study_id": study_id,
        "summary": json.loads(summary),
        "created_by": created_by,
        "created_at": created_at,
    }


def _application(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = [k.strip() for k in _APPLICATION.split(",")]
    out = dict(zip(keys, row, strict=True))
    out["knobs"], out["previous"] = json.loads(out["knobs"]), json.loads(out["previous"])
    return out


class SqlitePolicyDrafts:
    """Draft policies and their applications in the state database."""

    component = "policy drafts"

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.db = open_state(path, self.component, busy_timeout_s=busy_timeout_s)

    def put(
        self, name: str, knobs: dict[str, Any], study_id: str | None, summary: dict[str, Any], created_by: str
    ) -> dict[str, Any]:
        """Save a draft (replacing one of the same name); returns the stored row."""
        now = time.time()
        with self.db.connect(write=True) as db:
            db.execute(
                f"INSERT OR REPLACE INTO policy_drafts ({_DRAFT}) VALUES (?, ?, ?, ?, ?, ?)",
                (name, json.dumps(knobs, sort_keys=True), study_id, json.dumps(summary), created_by, now),
            )
        return {
            "name": name,
            "knobs": dict(knobs),
            "study_id": study_id,
            "summary": json.loads(json.dumps(summary)),
            "created_by": created_by,
            "created_at": now,
        }

    def get(self, name: str) -> dict[str, Any] | None:
        """One draft, or None."""
        with self.db.connect() as db:
            row = db.execute(f"SELECT {_DRAFT} FROM policy_drafts WHERE name = ?", (name,)).fetchone()
        return None if row is None else _draft(row)

    def list(self) -> list[dict[str, Any]]:
        """Every draft, newest first."""
        with self.db.connect() as db:
            rows = db.execute(f"SELECT {_DRAFT} FROM policy_drafts ORDER BY created_at DESC, name").fetchall()
        return [_draft(r) for r in rows]

    def delete(self, name: str) -> bool:
        """Remove a draft; False when there was none (its applications stay, for the record and the undo)."""
        with self.db.connect(write=True) as db:
            return db.execute("DELETE FROM policy_drafts WHERE name = ?", (name,)).rowcount > 0

    def record_application(
        self,
        *,
        draft: str,
        study_id: str | None,
        policy: str,
        knobs: dict[str, Any],
        previous: dict[str, Any],
        actor: str,
    ) -> int:
        """Note that ``draft``'s ``knobs`` became ``policy``'s overrides (``previous``: what they held);
        returns its id."""
        with self.db.connect(write=True) as db:
            cursor = db.execute(
                "INSERT INTO policy_draft_applications "
                "(draft, study_id, policy, knobs, previous, applied_by, applied_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (draft, study_id, policy, json.dumps(knobs), json.dumps(previous), actor, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def standing(self, policy: str) -> dict[str, Any] | None:
        """The newest application to ``policy`` not undone yet, or None."""
        with self.db.connect() as db:
            row = db.execute(
                f"SELECT {_APPLICATION} FROM policy_draft_applications "
                "WHERE policy = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
                (policy,),
            ).fetchone()
        return None if row is None else _application(row)

    def mark_undone(self, application_id: int, actor: str) -> bool:
        """Mark an application undone; False when it already was (another undo got there first)."""
        with self.db.connect(write=True) as db:
            return (
                db.execute(
                    "UPDATE policy_draft_applications SET undone_by = ?, undone_at = ? "
                    "WHERE id = ? AND undone_at IS NULL",
                    (actor, time.time(), application_id),
                ).rowcount
                > 0
            )
