"""Thumbs up/down on answers, kept in the SQLite state store (WAL, safe for several processes).

One vote per response id: a later vote on the same answer replaces the earlier one (a unique index on
``response_id`` holds the rule). Votes older than the retention are deleted by ``prune``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ragdeck.services.state_schema import open_state


class SqliteFeedbackLog:
    """The feedback table in the state database: one row per answer voted on."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        open_state(self.path, "feedback log", busy_timeout_s=30)  # WAL, tables at the latest version
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def add(
        self, response_id: str, policy: str, vote: str, comment: str | None = None, *, ts: float | None = None
    ) -> str | None:
        """Record the vote on ``response_id``, replacing an earlier one (committed before returning);
        returns the vote it replaced, or None when it is the first."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT vote FROM feedback WHERE response_id = ?", (response_id,)
                ).fetchone()
                self._db.execute(
                    "INSERT INTO feedback (ts, response_id, policy, vote, comment) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(response_id) DO UPDATE SET ts = excluded.ts, policy = excluded.policy, "
                    "vote = excluded.vote, comment = excluded.comment",
                    (time.time() if ts is None else ts, response_id, policy, vote, comment),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return None if row is None else str(row[0])

    def vote(self, response_id: str) -> str | None:
        """The vote kept for ``response_id``, or None."""
        with self._lock:
            row = self._db.execute("SELECT vote FROM feedback WHERE response_id = ?", (response_id,))
            row = row.fetchone()
        return None if row is None else str(row[0])

    def counts(self) -> dict[tuple[str, str], int]:
        """(policy, vote) -> number of votes."""
        with self._lock:
            rows = self._db.execute("SELECT policy, vote, COUNT(*) FROM feedback GROUP BY policy, vote")
            return {(policy, vote): n for policy, vote, n in rows}

    def prune(self, older_than_s: float, *, now: float | None = None) -> int:
        """Delete the votes last cast more than ``older_than_s`` seconds ago; returns how many."""
        cutoff = (time.time() if now is None else now) - older_than_s
        with self._lock:
            return self._db.execute("DELETE FROM feedback WHERE ts < ?", (cutoff,)).rowcount

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
