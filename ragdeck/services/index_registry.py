"""Index versions and alias moves in the shared SQLite state database (tables ``index_``).

``index_versions``: one row per physical collection ragdeck built behind an alias, with how it was built
(spec JSON), its status (building, interrupted, ready, failed, abandoned, deleted), the rebuild's owner
(host, pid) and heartbeat (so a killed rebuild is found at the next start), progress, and the gate result
that cleared it.
``index_alias_events``: every swap and rollback (from, to, who, why, when), the history a rollback reads. A
move is written ``pending`` (with the writing process's host and pid) before the alias changes and marked
``done`` once it has, so a move whose process was killed in between is found and settled (``settle_event``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ragdeck.services.state_schema import open_state

_JSON = ("spec", "progress", "gate")
_COLUMNS = (
    "collection, alias, version, status, created_at, updated_at, finished_at, created_by, spec, corpus_hash, "
    "points, host, pid, heartbeat_at, progress, gate, cleared_by_run, error"
)
_UPDATABLE = {
    "status",
    "finished_at",
    "corpus_hash",
    "points",
    "host",
    "pid",
    "heartbeat_at",
    "progress",
    "gate",
    "cleared_by_run",
    "error",
    "spec",
}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON:
        if row.get(key) is not None:
            row[key] = json.loads(row[key])
    return row


class SqliteIndexRegistry:
    """Index version rows and alias events in SQLite; safe across threads and processes."""

    component = "index registry"

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.db = open_state(path, self.component, busy_timeout_s=busy_timeout_s)

    def add_version(self, row: dict[str, Any]) -> None:
        """Insert a version row (``collection`` must be new to the registry or replace a deleted one)."""
        now = time.time()
        values = {
            "created_at": now,
            "updated_at": now,
            **row,
        }
        for key in _JSON:
            if values.get(key) is not None:
                values[key] = json.dumps(values[key], sort_keys=True)
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.db.connect(write=True) as db:
            db.execute(
                "DELETE FROM index_versions WHERE collection = ? AND status = 'deleted'", (row["collection"],)
            )
            db.execute(f"INSERT INTO index_versions ({names}) VALUES ({marks})", tuple(values.values()))

    def update_version(self, collection: str, *, durable: bool = True, **fields: Any) -> None:
        """Change some fields of a version row (unknown field names are a bug: ValueError)."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} of an index version")
        values = {
            k: json.dumps(v, sort_keys=True) if k in _JSON and v is not None else v for k, v in fields.items()
        }
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self.db.connect(write=True, durable=durable) as db:
            db.execute(
                f"UPDATE index_versions SET {assignments} WHERE collection = ?",
                (*values.values(), collection),
            )

    def version(self, collection: str) -> dict[str, Any] | None:
        """One version row, or None."""
        with self.db.connect() as db:
            db.row_factory = _dict_row
            row = db.execute(
                f"SELECT {_COLUMNS} FROM index_versions WHERE collection = ?", (collection,)
            ).fetchone()
        return None if row is None else _decode(row)

    def versions(self, alias: str | None = None, *, status: str | None = None) -> list[dict[str, Any]]:
        """Version rows, newest version first, filtered by alias and status."""
        where, args = [], []
        if alias is not None:
            where.append("alias = ?")
            args.append(alias)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = f"SELECT {_COLUMNS} FROM index_versions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self.db.connect() as db:
            db.row_factory = _dict_row
            rows = db.execute(sql + " ORDER BY version DESC, created_at DESC", args).fetchall()
        return [_decode(row) for row in rows]

    def add_event(
        self,
        *,
        alias: str,
        action: str,
        from_collection: str | None,
        to_collection: str,
        actor: str,
        reason: str,
        pending: bool = False,
    ) -> int:
        """Record one alias move (swap, rollback, restore); its id. ``pending``: written before the move,
        with this process as its owner, to be settled by ``settle_event`` once the alias moved (or not)."""
        state, host, pid = ("pending", socket.gethostname(), os.getpid()) if pending else ("done", None, None)
        with self.db.connect(write=True) as db:
            cursor = db.execute(
                "INSERT INTO index_alias_events (alias, at, action, from_collection, to_collection, actor, "
                "reason, state, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alias, time.time(), action, from_collection, to_collection, actor, reason, state, host, pid),
            )
            return int(cursor.lastrowid or 0)

    def settle_event(self, event_id: int, *, moved: bool) -> bool:
        """Settle a pending move: ``moved`` marks it done (True when this call did), else the move never
        happened and its row is deleted (True when there was one)."""
        with self.db.connect(write=True) as db:
            if moved:
                sql = "UPDATE index_alias_events SET state = 'done' WHERE id = ? AND state = 'pending'"
            else:
                sql = "DELETE FROM index_alias_events WHERE id = ?"
            return db.execute(sql, (event_id,)).rowcount > 0

    def events(
        self, alias: str, limit: int | None = 100, *, state: str | None = None
    ) -> list[dict[str, Any]]:
        """Alias moves, newest first (pending ones included: see ``state``, ``host`` and ``pid``); only
        those in ``state`` when given."""
        sql = (
            "SELECT id, alias, at, action, from_collection, to_collection, actor, reason, state, host, pid "
            "FROM index_alias_events WHERE alias = ?"
            + (" AND state = ?" if state else "")
            + " ORDER BY id DESC"
        )
        args: list[Any] = [alias, state] if state else [alias]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self.db.connect() as db:
            db.row_factory = _dict_row
            return db.execute(sql, args).fetchall()


def _dict_row(cursor: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}
