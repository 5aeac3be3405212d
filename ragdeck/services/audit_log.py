"""The append-only audit log in the state database (table ``audit_log``), sealed from outside it.

One row per action: when, who (and their role), what, on which target, the state before and after (JSON),
the reason given and the outcome (``ok``, ``denied``, ``failed``). Triggers refuse every UPDATE and DELETE.

Proof against edits made around SQLite (triggers dropped, the file patched, rows cut or the file deleted):

- each row's ``digest`` is an HMAC-SHA256, keyed with a secret kept in a **key file outside the database**
  (``audit.key`` in the data directory by default, ``RAGDECK_AUDIT_KEY_FILE`` to move it somewhere the
  database's writers cannot read), chained over the previous row's digest: an edited, inserted or appended
  row, or a chain recomputed without the key, breaks at the first row touched;
- a **head record** beside the key (``audit.head``, itself keyed) names the newest sealed row and its digest:
  a cut tail or a deleted log (rows, table or the whole database file) falls short of it.

Rows written before the key existed (ragdeck ≤ 0.2 chained them with plain SHA-256) are adopted when the key
is made: the head records the last of them and its digest, so they are checked with their old chain and
cannot be rewritten either. ``verify()`` returns the first problem as an ``AuditBreak`` (the row and what is
wrong), or None. What this cannot detect: someone who can read the key file (keep it apart), and the
deletion of the database, the key and the head together.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragdeck.errors import ConfigError
from ragdeck.services.files import write_json_atomic, write_text_atomic
from ragdeck.services.state_schema import open_state
from ragdeck.services.types import AuditBreak, ComponentHealth

COLUMNS = ("id", "at", "actor", "role", "action", "target", "before", "after", "reason", "outcome")
_GENESIS = "0" * 64
_HEAD_FIELDS = ("legacy_end", "legacy_digest", "id", "digest")
_CHANGED = (
    "its digest does not match: the row was changed, inserted or re-chained outside ragdeck, "
    "or a row before it was removed"
)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _payload(previous: str, row: tuple[Any, ...]) -> bytes:
    return (previous + json.dumps(list(row), default=str)).encode()


def _legacy_digest(previous: str, row: tuple[Any, ...]) -> str:
    return hashlib.sha256(_payload(previous, row)).hexdigest()


def _keyed_digest(key: bytes, previous: str, row: tuple[Any, ...]) -> str:
    return hmac.new(key, _payload(previous, row), hashlib.sha256).hexdigest()


class SqliteAuditLog:
    """Append-only, sealed audit rows in SQLite; safe across threads and processes.

    ``key_file`` defaults to ``audit.key`` beside the database; the head record is the key's name with the
    suffix ``.head``, and ``.lock`` serialises head updates across processes.
    """

    component = "audit log"

    def __init__(
        self, path: Path | str, *, key_file: Path | str | None = None, busy_timeout_s: float = 10.0
    ) -> None:
        self.db = open_state(path, self.component, busy_timeout_s=busy_timeout_s)
        self.key_file = Path(key_file) if key_file else Path(path).with_name("audit.key")
        self.head_file = self.key_file.with_suffix(".head")
        self._lock_file = self.key_file.with_suffix(".lock")
        self._key: bytes | None = None
        self._seal_on_first_use()

    # ------------------------------------------------------------------ the key and the head record
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_file, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _seal_on_first_use(self) -> None:
        """Make the key and the head record when neither exists, adopting the rows already there."""
        if self.key_file.exists() or self.head_file.exists():
            return
        with self._locked():
            if self.key_file.exists() or self.head_file.exists():
                return
            with self.db.connect(write=True) as db:  # no append can slip in while the head is made
                last = db.execute("SELECT id, digest FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
                key = secrets.token_bytes(32)
                last_id, last_digest = (int(last[0]), last[1]) if last else (0, _GENESIS)
                ends = {"legacy_end": last_id, "legacy_digest": last_digest}
                self._write_head(key, {**ends, "id": last_id, "digest": last_digest})
                write_text_atomic(self.key_file, key.hex() + "\n")
                os.chmod(self.key_file, 0o600)

    def _read_key(self) -> bytes | None:
        if self._key is None:
            try:
                self._key = bytes.fromhex(self.key_file.read_text().strip())
            except (OSError, ValueError):
                return None
        return self._key

    def _key_or_raise(self) -> bytes:
        key = self._read_key()
        if key is None:
            raise ConfigError(
                f"the audit key file {self.key_file} is missing or unreadable, and the audit log was sealed "
                "with it: restore it from your backup (or point RAGDECK_AUDIT_KEY_FILE at it)"
            )
        return key

    @staticmethod
    def _head_mac(key: bytes, head: dict[str, Any]) -> str:
        text = json.dumps([head[field] for field in _HEAD_FIELDS])
        return hmac.new(key, b"head" + text.encode(), hashlib.sha256).hexdigest()

    def _write_head(self, key: bytes, head: dict[str, Any]) -> None:
        write_json_atomic(self.head_file, {**head, "mac": self._head_mac(key, head)})

    def _read_head(self, key: bytes) -> dict[str, Any] | None:
        """The head record when present and signed with ``key``, else None."""
        try:
            head = json.loads(self.head_file.read_text())
            fields = {field: head[field] for field in _HEAD_FIELDS}
            good = hmac.compare_digest(str(head["mac"]), self._head_mac(key, fields))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return fields if good else None

    def _advance_head(self, key: bytes, row_id: int, digest: str) -> None:
        with self._locked():
            head = self._read_head(key)
            if head is not None and row_id > head["id"]:
                self._write_head(key, {**head, "id": row_id, "digest": digest})

    # ------------------------------------------------------------------ rows
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
        """Append one row (durably), move the head record to it, and return it as a dict of ``COLUMNS``."""
        key = self._key_or_raise()
        at = time.time() if at is None else at
        values = (at, actor, role, action, target, _dump(before), _dump(after), reason, outcome)
        with self.db.connect(write=True) as db:
            last = db.execute("SELECT digest FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
            digest = _keyed_digest(key, last[0] if last else _GENESIS, values)
            cursor = db.execute(
                "INSERT INTO audit_log (at, actor, role, action, target, before, after, reason, outcome, "
                "digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, digest),
            )
            row_id = int(cursor.lastrowid or 0)
        # After the commit: a crash here leaves the head one row behind, which verify accepts (the row
        # after it is keyed); the other order would leave a head naming a row that was never written.
        self._advance_head(key, row_id, digest)
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

    def verify(self) -> AuditBreak | None:
        """The first place where the log is not what ragdeck wrote, or None when every check holds."""
        key = self._read_key()
        if key is None:
            return AuditBreak(None, f"the audit key file {self.key_file} is missing or unreadable")
        head = self._read_head(key)
        if head is None:
            return AuditBreak(None, f"the head record {self.head_file} is missing or not written by ragdeck")
        sealed = {head["legacy_end"]: head["legacy_digest"], head["id"]: head["digest"]}
        previous, last_id = _GENESIS, 0
        with self.db.connect(read_tx=True) as db:
            for row in db.execute(f"SELECT {', '.join(COLUMNS)}, digest FROM audit_log ORDER BY id"):
                row_id, values, digest = int(row[0]), tuple(row[1:-1]), row[-1]
                if row_id <= head["legacy_end"]:
                    expected = _legacy_digest(previous, values)
                else:
                    expected = _keyed_digest(key, previous, values)
                if not hmac.compare_digest(expected, digest):
                    return AuditBreak(row_id, _CHANGED)
                if sealed.get(row_id, digest) != digest:
                    return AuditBreak(row_id, "it differs from the sealed head record: the chain was re-made")
                previous, last_id = digest, row_id
        if last_id < head["id"]:
            return AuditBreak(
                last_id + 1, f"rows {last_id + 1} to {head['id']} are missing: the log was cut or deleted"
            )
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
