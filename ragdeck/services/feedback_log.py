"""Thumbs up/down on answers, kept in the SQLite state store (WAL, safe for several processes)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ragdeck.services.state_schema import open_state


class SqliteFeedbackLog:
    """Append-only feedback table in the state database."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        open_state(self.path, "feedback log", busy_timeout_s=30)  # WAL, tables at the latest version
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def add(self, response_id: str, policy: str, vote: str, comment: str | None = None) -> None:
        """Record one vote (committed before returning)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO feedback (ts, response_id, policy, vote, comment) VALUES (?, ?, ?, ?, ?)",
                (time.time(), response_id, policy, vote, comment),
            )

    def counts(self) -> dict[tuple[str, str], int]:
        """(policy, vote) -> number of votes."""
        with self._lock:
            rows = self._db.execute("SELECT policy, vote, COUNT(*) FROM feedback GROUP BY policy, vote")
            return {(policy, vote): n for policy, vote, n in rows}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
