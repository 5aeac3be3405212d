"""Shared routing state: canary weights, guard thresholds and an event log, seen alike by every API replica.

``SqliteRoutingState`` keeps them in one SQLite file (WAL; safe for several processes on one machine);
``RedisRoutingState`` in Redis (hashes for weights and thresholds, a capped list for events) for replicas
on several machines. Both satisfy ``console.online.ports.RoutingState`` and add ``record_event`` (the guard
logs its trips with it) and ``health``. Events are dicts: ``ts`` (Unix seconds), ``kind`` ("weight",
"thresholds", "guard_trip", ...), ``policy``, ``actor``, ``reason`` and kind-specific fields.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ragdeck.errors import InputError, ServiceUnavailable
from ragdeck.services.redis_client import connect_redis
from ragdeck.services.state_schema import open_state
from ragdeck.services.types import ComponentHealth

DEFAULT_MAX_EVENTS = 1000
COMPONENT = "routing state"


def check_weight(policy: str, weight: float) -> float:
    """``weight`` as a float in [0, 1]; InputError otherwise (a share of users)."""
    if not isinstance(policy, str) or not policy:
        raise InputError(f"policy name must be a non-empty string, got {policy!r}")
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise InputError(f"weight for '{policy}' must be a number in [0, 1], got {weight!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"weight for '{policy}' must be in [0, 1] (a share of users), got {weight!r}")
    return value


def check_thresholds(values: Mapping[str, float]) -> dict[str, float]:
    """Threshold names to finite floats; InputError on a non-number, NaN or infinity."""
    out: dict[str, float] = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"threshold '{name}' must be a number, got {value!r}") from None
        if not isinstance(name, str) or not name or not math.isfinite(number):
            raise InputError(f"threshold {name!r} must be named and finite, got {value!r}")
        out[name] = number
    return out


def _event(kind: str, policy: str, actor: str, reason: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {**data, "ts": time.time(), "kind": kind, "policy": policy, "actor": actor, "reason": reason}


class SqliteRoutingState:
    """Routing state in a SQLite file (WAL): tables ``weights``, ``thresholds`` and ``events``.

    Every call opens a short connection, so one instance serves any thread and several processes may
    share the file; writes take the write lock up front (``BEGIN IMMEDIATE``) and wait up to
    ``busy_timeout_s`` for it. Only the newest ``max_events`` events are kept.
    """

    mode = "sqlite"

    def __init__(
        self, path: Path | str, *, busy_timeout_s: float = 5.0, max_events: int = DEFAULT_MAX_EVENTS
    ) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self._db = open_state(self.path, "routing state database", busy_timeout_s=busy_timeout_s)

    @property
    def busy_timeout_s(self) -> float:
        """How long a write waits for another writer's lock before ``StoreBusy``."""
        return self._db.busy_timeout_s

    def _connect(self, write: bool = False) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._db.connect(write=write)

    def _append(self, db: sqlite3.Connection, event: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO events (ts, kind, body) VALUES (?, ?, ?)",
            (event["ts"], event["kind"], json.dumps(event, sort_keys=True)),
        )
        db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (self.max_events,))

    def weights(self) -> dict[str, float]:
        """Policy name -> weight as last set; empty when never set."""
        with self._connect() as db:
            return {p: float(w) for p, w in db.execute("SELECT policy, weight FROM weights")}

    def set_weight(self, policy: str, weight: float, *, actor: str, reason: str = "") -> None:
        """Set one policy's weight (0..1) and log a "weight" event with the previous value."""
        value = check_weight(policy, weight)
        with self._connect(write=True) as db:
            row = db.execute("SELECT weight FROM weights WHERE policy = ?", (policy,)).fetchone()
            now = time.time()
            db.execute(
                "INSERT INTO weights (policy, weight, actor, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(policy) DO UPDATE SET weight = excluded.weight, actor = excluded.actor, "
                "updated_at = excluded.updated_at",
                (policy, value, actor, now),
            )
            previous = None if row is None else float(row[0])
            self._append(db, _event("weight", policy, actor, reason, {"weight": value, "previous": previous}))

    def thresholds(self) -> dict[str, float]:
        """Guard thresholds by name as last set; empty when never set."""
        with self._connect() as db:
            return {n: float(v) for n, v in db.execute("SELECT name, value FROM thresholds")}

    def set_thresholds(self, values: dict[str, float], *, actor: str) -> None:
        """Update the named thresholds (others keep their value) and log a "thresholds" event."""
        clean = check_thresholds(values)
        if not clean:
            return
        with self._connect(write=True) as db:
            now = time.time()
            db.executemany(
                "INSERT INTO thresholds (name, value, actor, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value, actor = excluded.actor, "
                "updated_at = excluded.updated_at",
                [(name, value, actor, now) for name, value in clean.items()],
            )
            self._append(db, _event("thresholds", "", actor, "", {"values": clean}))

    def record_event(self, kind: str, *, policy: str = "", actor: str, reason: str = "", **data: Any) -> None:
        """Append one event (e.g. kind "guard_trip" with the numbers that tripped it)."""
        with self._connect(write=True) as db:
            self._append(db, _event(kind, policy, actor, reason, data))

    def events(self, limit: int = 50) -> list[dict[str, object]]:
        """The newest ``limit`` events, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT body FROM events ORDER BY id DESC LIMIT ?", (max(0, limit),))
            return [json.loads(body) for (body,) in rows]

    def health(self) -> ComponentHealth:
        """Whether the database can be read."""
        try:
            self.weights()
        except ServiceUnavailable as exc:
            return ComponentHealth(COMPONENT, self.mode, False, str(exc), endpoint=str(self.path))
        return ComponentHealth(
            COMPONENT,
            self.mode,
            True,
            "SQLite (WAL)",
            version=sqlite3.sqlite_version,
            endpoint=str(self.path),
        )


class RedisRoutingState:
    """Routing state in Redis: hashes ``<prefix>weights`` and ``<prefix>thresholds``, list ``<prefix>events``.

    A weight change and its event are written in one MULTI/EXEC transaction; the event list is trimmed to
    the newest ``max_events``. Connection failures raise ServiceUnavailable saying to check REDIS_URL.
    """

    mode = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "ragdeck:routing:",
        *,
        timeout_s: float = 2.0,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_events = max_events
        self._conn = connect_redis(url, timeout_s=timeout_s, unset_hint="unset it to keep routing in SQLite")
        self._redis = self._conn.client
        self._keys = {name: f"{prefix}{name}" for name in ("weights", "thresholds", "events")}

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._conn.error as exc:
            raise self._conn.unavailable(exc) from exc

    def _push_event(self, pipe: Any, event: dict[str, Any]) -> None:
        pipe.lpush(self._keys["events"], json.dumps(event, sort_keys=True))
        pipe.ltrim(self._keys["events"], 0, self.max_events - 1)

    def weights(self) -> dict[str, float]:
        """Policy name -> weight as last set; empty when never set."""
        with self._errors():
            return {p: float(w) for p, w in self._redis.hgetall(self._keys["weights"]).items()}

    def set_weight(self, policy: str, weight: float, *, actor: str, reason: str = "") -> None:
        """Set one policy's weight (0..1) and log a "weight" event with the previous value."""
        value = check_weight(policy, weight)
        with self._errors():
            previous = self._redis.hget(self._keys["weights"], policy)
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self._keys["weights"], policy, repr(value))
            data = {"weight": value, "previous": None if previous is None else float(previous)}
            self._push_event(pipe, _event("weight", policy, actor, reason, data))
            pipe.execute()

    def thresholds(self) -> dict[str, float]:
        """Guard thresholds by name as last set; empty when never set."""
        with self._errors():
            return {n: float(v) for n, v in self._redis.hgetall(self._keys["thresholds"]).items()}

    def set_thresholds(self, values: dict[str, float], *, actor: str) -> None:
        """Update the named thresholds (others keep their value) and log a "thresholds" event."""
        clean = check_thresholds(values)
        if not clean:
            return
        with self._errors():
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self._keys["thresholds"], mapping={k: repr(v) for k, v in clean.items()})
            self._push_event(pipe, _event("thresholds", "", actor, "", {"values": clean}))
            pipe.execute()

    def record_event(self, kind: str, *, policy: str = "", actor: str, reason: str = "", **data: Any) -> None:
        """Append one event (e.g. kind "guard_trip" with the numbers that tripped it)."""
        with self._errors():
            pipe = self._redis.pipeline(transaction=True)
            self._push_event(pipe, _event(kind, policy, actor, reason, data))
            pipe.execute()

    def events(self, limit: int = 50) -> list[dict[str, object]]:
        """The newest ``limit`` events, newest first."""
        if limit <= 0:
            return []
        with self._errors():
            return [json.loads(item) for item in self._redis.lrange(self._keys["events"], 0, limit - 1)]

    def health(self) -> ComponentHealth:
        """Whether Redis answers a PING, with its server version."""
        try:
            with self._errors():
                self._redis.ping()
                version = str(self._redis.info("server").get("redis_version", "")) or None
        except ServiceUnavailable as exc:
            return ComponentHealth(COMPONENT, self.mode, False, str(exc))
        return ComponentHealth(COMPONENT, self.mode, True, f"Redis, keys {self.prefix}*", version=version)

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()


def open_routing_state(redis_url: str | None, sqlite_path: Path) -> SqliteRoutingState | RedisRoutingState:
    """Redis when ``redis_url`` is set (replicas on several machines), else SQLite at ``sqlite_path``."""
    if redis_url:
        return RedisRoutingState(redis_url)
    return SqliteRoutingState(sqlite_path)
