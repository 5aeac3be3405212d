"""Eval runs and their per-query results in the shared SQLite state database (tables ``eval_``).

A run row holds what was evaluated (eval set name and content hash, the configuration, the physical
collection), its status and, once finished, its summary. A result row holds one query's outcome as JSON.
Results are committed as they are saved (one by one, or a batch in one transaction), so a run killed
half-way keeps every query it saved and can be resumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragdeck.errors import InputError
from ragdeck.services.state_schema import open_state
from ragdeck.services.types import ComponentHealth, RunRow

RUN_STATUSES = ("running", "done", "cancelled", "failed")


def _row(values: tuple[Any, ...]) -> RunRow:
    run_id, created, updated, status, name, digest, collection, total, config, summary, error = values
    return RunRow(
        run_id,
        created,
        updated,
        status,
        name,
        digest,
        collection,
        total,
        json.loads(config),
        json.loads(summary) if summary else None,
        error,
    )


_RUN_COLUMNS = (
    "run_id, created_at, updated_at, status, set_name, set_hash, collection, total, config, summary, error"
)


class EvalStore:
    """Eval runs in SQLite; safe across threads and processes (one short connection per call)."""

    component = "eval store"

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.db = open_state(path, self.component, busy_timeout_s=busy_timeout_s)

    @property
    def path(self) -> Path:
        """The database file."""
        return self.db.path

    def create_run(self, row: RunRow) -> None:
        """Insert a new run; InputError when its id exists."""
        with self.db.connect(write=True) as db:
            if db.execute("SELECT 1 FROM eval_runs WHERE run_id = ?", (row.run_id,)).fetchone():
                raise InputError(f"eval run {row.run_id!r} exists already")
            db.execute(
                f"INSERT INTO eval_runs ({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.run_id,
                    row.created_at,
                    row.updated_at,
                    row.status,
                    row.set_name,
                    row.set_hash,
                    row.collection,
                    row.total,
                    json.dumps(row.config, sort_keys=True),
                    json.dumps(row.summary) if row.summary is not None else None,
                    row.error,
                ),
            )

    def get_run(self, run_id: str) -> RunRow:
        """A run by id; InputError naming the latest runs when it is unknown."""
        with self.db.connect() as db:
            found = db.execute(f"SELECT {_RUN_COLUMNS} FROM eval_runs WHERE run_id = ?", (run_id,)).fetchone()
        if found is None:
            latest = ", ".join(r.run_id for r in self.list_runs(limit=5)) or "none yet"
            raise InputError(f"unknown eval run {run_id!r}; latest runs: {latest}")
        return _row(found)

    def list_runs(self, *, limit: int = 100, set_name: str | None = None) -> list[RunRow]:
        """Runs, newest first, optionally of one eval set."""
        query = f"SELECT {_RUN_COLUMNS} FROM eval_runs"
        args: tuple[Any, ...] = ()
        if set_name is not None:
            query += " WHERE set_name = ?"
            args = (set_name,)
        with self.db.connect() as db:
            rows = db.execute(query + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [_row(r) for r in rows]

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Set a run's status, summary or error (those given)."""
        if status is not None and status not in RUN_STATUSES:
            raise InputError(f"run status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        sets, args = ["updated_at = ?"], [time.time()]
        for column, value in (("status", status), ("summary", summary), ("error", error)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(json.dumps(value) if column == "summary" else value)
        with self.db.connect(write=True) as db:
            db.execute(f"UPDATE eval_runs SET {', '.join(sets)} WHERE run_id = ?", (*args, run_id))

    def save_result(
        self, run_id: str, query_id: str, position: int, ok: bool, result: dict[str, Any]
    ) -> None:
        """Store (or replace) one query's result; committed before this returns (WAL, synchronous=NORMAL:
        a killed process loses nothing; a power cut may lose the last results, which a resume redoes)."""
        with self.db.connect(write=True, durable=False) as db:
            db.execute(
                "INSERT OR REPLACE INTO eval_results (run_id, query_id, position, ok, result, saved_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, query_id, position, int(ok), json.dumps(result), time.time()),
            )

    def save_results(self, run_id: str, results: Sequence[tuple[str, int, bool, dict[str, Any]]]) -> None:
        """Store (or replace) several queries' results, ``(query_id, position, ok, result)`` each, in one
        transaction: all of them are committed before this returns, or none (as ``save_result``)."""
        if not results:
            return
        now = time.time()
        rows = [(run_id, q, pos, int(ok), json.dumps(r), now) for q, pos, ok, r in results]
        with self.db.connect(write=True, durable=False) as db:
            db.executemany(
                "INSERT OR REPLACE INTO eval_results (run_id, query_id, position, ok, result, saved_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def results(self, run_id: str) -> list[dict[str, Any]]:
        """A run's per-query results in eval-set order."""
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT result FROM eval_results WHERE run_id = ? ORDER BY position", (run_id,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def finished_ids(self, run_id: str) -> set[str]:
        """Query ids of a run that finished without error (resume skips them)."""
        with self.db.connect() as db:
            rows = db.execute("SELECT query_id FROM eval_results WHERE run_id = ? AND ok = 1", (run_id,))
            return {r[0] for r in rows.fetchall()}

    def delete_run(self, run_id: str) -> None:
        """Remove a run and its results."""
        with self.db.connect(write=True) as db:
            db.execute("DELETE FROM eval_results WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM eval_runs WHERE run_id = ?", (run_id,))

    def health(self) -> ComponentHealth:
        """Whether the database answers, with the number of runs."""
        try:
            with self.db.connect() as db:
                count = db.execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0]
        except Exception as exc:  # health reports, never raises
            return ComponentHealth(self.component, "local", False, detail=str(exc))
        return ComponentHealth(self.component, "local", True, detail=f"{count} runs in {self.path.name}")
