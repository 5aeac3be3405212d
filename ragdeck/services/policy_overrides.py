"""Policy overrides set at run time (e.g. a policy's default ``hnsw_ef`` applied from the Tune page).

They live in the SQLite state database (table ``policy_overrides``), one row per policy and field, so they
survive restarts and every process on the machine sees them; the policy loader applies them on top of
the TOML ``[policies.NAME]`` tables. Reading never creates or migrates the file: a data directory without a
state database (or without the table) simply has no overrides; one written by a newer ragdeck is refused.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from ragdeck.errors import ServiceUnavailable
from ragdeck.services.state_schema import check_not_newer, open_state


def read_overrides(path: Path | str) -> dict[str, dict[str, Any]]:
    """Policy -> {field: value} from the state database at ``path``; empty when it has none."""
    path = Path(path)
    if not path.is_file():
        return {}
    out: dict[str, dict[str, Any]] = {}
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            # a newer ragdeck's table may not mean what this one reads
            check_not_newer(path, db.execute("PRAGMA user_version").fetchone()[0])
            rows = db.execute("SELECT policy, field, value FROM policy_overrides").fetchall()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return {}
        raise ServiceUnavailable(
            f"policy overrides in {path} cannot be read ({exc}): check that the data directory "
            "(RAGDECK_DATA_DIR) is readable and on a local file system"
        ) from exc
    for policy, field, value in rows:
        out.setdefault(policy, {})[field] = json.loads(value)
    return out


class PolicyOverrides:
    """Read and write policy overrides in the state database (WAL, short connections, safe across threads)."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._db = open_state(self.path, "policy overrides", busy_timeout_s=busy_timeout_s)

    def all(self) -> dict[str, dict[str, Any]]:
        """Policy -> {field: value} for every override."""
        return read_overrides(self.path)

    def set(self, policy: str, field: str, value: Any, *, actor: str) -> Any:
        """Set one field of one policy (``value`` as JSON; None clears it to unset); returns the previous
        override (None when there was none)."""
        with self._db.connect(write=True) as db:
            row = db.execute(
                "SELECT value FROM policy_overrides WHERE policy = ? AND field = ?", (policy, field)
            ).fetchone()
            db.execute(
                "INSERT INTO policy_overrides (policy, field, value, actor, updated_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(policy, field) DO UPDATE SET value = excluded.value, actor = excluded.actor, "
                "updated_at = excluded.updated_at",
                (policy, field, json.dumps(value), actor, time.time()),
            )
        return None if row is None else json.loads(row[0])

    def set_fields(
        self, policy: str, values: dict[str, Any], *, clear: tuple[str, ...] = (), actor: str
    ) -> dict[str, Any]:
        """Set several fields of one policy and remove the overrides of ``clear``, in one transaction (a
        reader sees all of it or none); returns the overrides those fields held before (absent: none)."""
        fields = (*values, *clear)
        with self._db.connect(write=True) as db:
            marks = ", ".join("?" for _ in fields)
            rows = db.execute(
                f"SELECT field, value FROM policy_overrides WHERE policy = ? AND field IN ({marks})",
                (policy, *fields),
            ).fetchall()
            now = time.time()
            db.executemany(
                "INSERT INTO policy_overrides (policy, field, value, actor, updated_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(policy, field) DO UPDATE SET value = excluded.value, actor = excluded.actor, "
                "updated_at = excluded.updated_at",
                [(policy, field, json.dumps(value), actor, now) for field, value in values.items()],
            )
            db.executemany(
                "DELETE FROM policy_overrides WHERE policy = ? AND field = ?", [(policy, f) for f in clear]
            )
        return {field: json.loads(value) for field, value in rows}

    def clear(self, policy: str, field: str) -> None:
        """Remove one override (the TOML value applies again)."""
        with self._db.connect(write=True) as db:
            db.execute("DELETE FROM policy_overrides WHERE policy = ? AND field = ?", (policy, field))
