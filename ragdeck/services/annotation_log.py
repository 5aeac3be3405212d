"""The annotation store's change log: how one logged write is made, and how a change is undone.

Every write of ``annotation_store`` goes through ``LoggedChange.write`` with the table map ``TABLES``: it
sets or deletes one record and appends a row to ``ann_history`` (the record's key, its value before and
after) under one ``ann_changes`` row per call (who, what, when). ``revert_newest`` undoes an actor's newest
change not yet undone by writing the "before" values as a new change (action ``undo``), so the history stays
append-only and repeated undos walk back. Every function works inside the caller's write transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ragdeck.errors import InputError
from ragdeck.services.types import Change

__all__ = ["TABLES", "VOLATILE", "LoggedChange", "change_of", "read_record", "revert_newest"]

# Table -> (key columns, value columns). Every write goes through ``LoggedChange.write`` with these.
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ann_questions": (
        ("id",),
        ("seq", "question", "norm", "source", "draft", "tags", "created_at", "created_by"),
    ),
    "ann_labels": (
        ("question_id", "annotator", "chunk_id"),
        ("relevance", "doc_id", "span_start", "span_end", "updated_at"),
    ),
    "ann_answers": (("question_id", "annotator"), ("reference_answer", "status", "note", "updated_at")),
    "ann_assignments": (("question_id", "annotator"), ("assigned_by", "assigned_at")),
    "ann_adjudications": (
        ("question_id", "chunk_id"),
        ("relevance", "doc_id", "span_start", "span_end", "adjudicator", "reason", "ts"),
    ),
}
# Columns that change on every write; a write whose other values are unchanged is not a change.
VOLATILE = frozenset({"updated_at", "assigned_at", "ts"})


def _same(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }


def read_record(db: sqlite3.Connection, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The value columns of one record of ``table`` (None when there is none)."""
    keys, values = TABLES[table]
    where = " AND ".join(f"{k} = ?" for k in keys)
    row = db.execute(
        f"SELECT {', '.join(values)} FROM {table} WHERE {where}", [key[k] for k in keys]
    ).fetchone()
    return None if row is None else dict(zip(values, row, strict=True))


def _put(
    db: sqlite3.Connection, table: str, key: Mapping[str, Any], values: Mapping[str, Any] | None
) -> None:
    keys, columns = TABLES[table]
    if values is None:
        db.execute(
            f"DELETE FROM {table} WHERE {' AND '.join(f'{k} = ?' for k in keys)}", [key[k] for k in keys]
        )
        return
    names = (*keys, *columns)
    db.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns)}",
        [key[k] for k in keys] + [values[c] for c in columns],
    )


class LoggedChange:
    """Writes of one call: the ``ann_changes`` row is created on the first real write (or by ``ensure``)."""

    def __init__(self, db: sqlite3.Connection, actor: str, action: str, undoes: int | None = None) -> None:
        self.db, self.actor, self.action, self.undoes = db, actor, action, undoes
        self.id: int | None = None
        self.ts = time.time()

    def ensure(self) -> int:
        """The id of this change's ``ann_changes`` row, created now if no write made it yet."""
        if self.id is None:
            cursor = self.db.execute(
                "INSERT INTO ann_changes (ts, actor, action, undoes) VALUES (?, ?, ?, ?)",
                (self.ts, self.actor, self.action, self.undoes),
            )
            self.id = int(cursor.lastrowid or 0)
        return self.id

    def write(self, table: str, key: Mapping[str, Any], values: Mapping[str, Any] | None) -> bool:
        """Set one record (None deletes it) and log it; False when nothing but timestamps would change."""
        before = read_record(self.db, table, key)
        if _same(before, values):
            return False
        _put(self.db, table, key, values)
        question_id = key.get("question_id", key.get("id"))
        self.db.execute(
            "INSERT INTO ann_history (change_id, tbl, key, question_id, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.ensure(),
                table,
                json.dumps(dict(key), sort_keys=True),
                question_id,
                None if before is None else json.dumps(before, sort_keys=True),
                None if values is None else json.dumps(dict(values), sort_keys=True),
            ),
        )
        return True


def change_of(db: sqlite3.Connection, row: Sequence[Any]) -> Change:
    """The Change of an ``ann_changes`` row ``(id, ts, actor, action, undoes)``, with the questions it
    touched."""
    qids = db.execute(
        "SELECT DISTINCT question_id FROM ann_history WHERE change_id = ? ORDER BY id", (row[0],)
    ).fetchall()
    return Change(row[0], row[1], row[2], row[3], row[4], tuple(q for (q,) in qids if q is not None))


def revert_newest(db: sqlite3.Connection, actor: str) -> Change | None:
    """Revert ``actor``'s newest change not yet undone, as a new change; returns it (None: none is left).

    InputError, and nothing reverted, when a record it touched was changed after it (by anyone).
    """
    row = db.execute(
        "SELECT id, ts, actor, action, undoes FROM ann_changes c WHERE actor = ? AND undoes IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM ann_changes u WHERE u.undoes = c.id) ORDER BY id DESC LIMIT 1",
        (actor,),
    ).fetchone()
    if row is None:
        return None
    target = change_of(db, row)
    change = LoggedChange(db, actor, "undo", undoes=target.id)
    change.ensure()
    steps = db.execute(
        "SELECT tbl, key, before, after FROM ann_history WHERE change_id = ? ORDER BY id DESC", (target.id,)
    ).fetchall()
    for table, key_json, before, after in steps:
        key = json.loads(key_json)
        if not _same(read_record(db, table, key), None if after is None else json.loads(after)):
            raise InputError(
                f"cannot undo {target.action} by {actor}: {table} {key} was changed after it; "
                "change it back by hand"
            )
        try:
            change.write(table, key, None if before is None else json.loads(before))
        except sqlite3.IntegrityError as exc:
            raise InputError(f"cannot undo {target.action} by {actor}: {exc}") from exc
    return target
