"""HNSW sweeps and their measured points in the shared SQLite state database (tables ``hnsw_sweep``).

``hnsw_sweeps``: one row per sweep: the collection, the request as JSON (grid, k, the live index's m /
ef_construct, the queries' labels, source and gold), the query vectors (a BLOB the caller encodes), how many
points the plan holds, the status (running, partial, done), the process that runs or last ran it (host, pid),
the seconds spent so far and the error it stopped with. ``hnsw_sweep_points``: one row per measured
(m, ef_construct, ef), its figures as JSON, written as each one is measured, so a restart loses none.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ragdeck.services.state_schema import open_state

_SUMMARY = (
    "s.sweep_id, s.collection, s.status, s.created_at, s.updated_at, s.created_by, s.host, s.pid, s.planned, "
    "s.elapsed_s, s.request, s.error"
)


def _dict_row(cursor: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class SqliteSweepLog:
    """Sweeps and their measured points in SQLite; safe across threads and processes."""

    component = "HNSW sweep log"

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.db = open_state(path, self.component, busy_timeout_s=busy_timeout_s)

    def create(
        self,
        sweep_id: str,
        *,
        collection: str,
        request: dict[str, Any],
        queries: bytes,
        planned: int,
        created_by: str,
    ) -> None:
        """Record a new sweep, running in this process (IntegrityError when ``sweep_id`` exists)."""
        now = time.time()
        with self.db.connect(write=True) as db:
            db.execute(
                "INSERT INTO hnsw_sweeps (sweep_id, collection, status, created_at, updated_at, created_by, "
                "host, pid, planned, elapsed_s, request, queries) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (
                    sweep_id, collection, now, now, created_by, socket.gethostname(), os.getpid(), planned,
                    json.dumps(request, sort_keys=True), queries,
                ),
            )  # fmt: skip

    def claim(self, sweep_id: str) -> None:
        """Mark a recorded sweep running again, in this process (its resume)."""
        with self.db.connect(write=True) as db:
            db.execute(
                "UPDATE hnsw_sweeps SET status = 'running', host = ?, pid = ?, error = NULL, updated_at = ? "
                "WHERE sweep_id = ?",
                (socket.gethostname(), os.getpid(), time.time(), sweep_id),
            )

    def add_point(
        self, sweep_id: str, m: int, ef_construct: int, ef: int, result: dict[str, Any], *, elapsed_s: float
    ) -> None:
        """Keep one measured configuration (replacing an earlier measurement of it) and the sweep's seconds
        so far, in one transaction."""
        now = time.time()
        with self.db.connect(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO hnsw_sweep_points "
                "(sweep_id, m, ef_construct, ef, result, measured_at) VALUES (?, ?, ?, ?, ?, ?)",
                (sweep_id, m, ef_construct, ef, json.dumps(result, sort_keys=True), now),
            )
            db.execute(
                "UPDATE hnsw_sweeps SET elapsed_s = ?, updated_at = ? WHERE sweep_id = ?",
                (elapsed_s, now, sweep_id),
            )

    def finish(self, sweep_id: str, status: str, *, elapsed_s: float, error: str | None = None) -> None:
        """Record how a run of the sweep ended: ``done`` (every point measured) or ``partial``."""
        with self.db.connect(write=True) as db:
            db.execute(
                "UPDATE hnsw_sweeps SET status = ?, elapsed_s = ?, error = ?, updated_at = ? "
                "WHERE sweep_id = ?",
                (status, elapsed_s, error, time.time(), sweep_id),
            )

    def get(self, sweep_id: str) -> dict[str, Any] | None:
        """One sweep with its request (decoded), ``queries`` (the BLOB) and ``points`` (each measured
        configuration's figures, by m, ef_construct, ef); None when unknown."""
        with self.db.connect(read_tx=True) as db:
            db.row_factory = _dict_row
            row = db.execute(
                f"SELECT {_SUMMARY}, s.queries FROM hnsw_sweeps s WHERE s.sweep_id = ?", (sweep_id,)
            ).fetchone()
            if row is None:
                return None
            points = db.execute(
                "SELECT result FROM hnsw_sweep_points WHERE sweep_id = ? ORDER BY m, ef_construct, ef",
                (sweep_id,),
            ).fetchall()
        row["request"] = json.loads(row["request"])
        row["points"] = [json.loads(p["result"]) for p in points]
        row["measured"] = len(points)
        return row

    def sweeps(self, *, collection: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Sweeps newest first (without queries and points; ``measured``: how many points are kept)."""
        where, args = [], []
        if collection is not None:
            where.append("s.collection = ?")
            args.append(collection)
        if status is not None:
            where.append("s.status = ?")
            args.append(status)
        sql = (
            f"SELECT {_SUMMARY}, (SELECT COUNT(*) FROM hnsw_sweep_points p WHERE p.sweep_id = s.sweep_id) "
            "AS measured FROM hnsw_sweeps s"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self.db.connect() as db:
            db.row_factory = _dict_row
            rows = db.execute(sql + " ORDER BY s.updated_at DESC", args).fetchall()
        for row in rows:
            row["request"] = json.loads(row["request"])
        return rows

    def delete(self, sweep_id: str) -> None:
        """Forget a sweep and its points."""
        with self.db.connect(write=True) as db:
            db.execute("DELETE FROM hnsw_sweep_points WHERE sweep_id = ?", (sweep_id,))
            db.execute("DELETE FROM hnsw_sweeps WHERE sweep_id = ?", (sweep_id,))
