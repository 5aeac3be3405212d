"""Key-value stores with expiry for small shared values (the answer cache, issued response ids): in process,
in the SQLite state database, or Redis.

``MemoryKV`` lives in one process: thread-safe, per-key TTL, least-recently-used eviction past
``max_entries``. ``SqliteKV`` keeps values in the state database (table ``kv_entries``): they survive a
restart and are shared by every process on the data directory; expired rows are pruned. ``RedisKV`` is
shared by every replica: keys are namespaced by ``prefix``, TTLs are kept by Redis in milliseconds, and a
connection failure raises ``ServiceUnavailable`` saying to check ``REDIS_URL``.
All three satisfy ``ragdeck.console.answering.ports.KeyValueStore``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from ragdeck.errors import InputError, RagdeckError, ServiceUnavailable
from ragdeck.services.redact import redact_url
from ragdeck.services.redis_client import connect_redis
from ragdeck.services.state_schema import open_state
from ragdeck.services.types import ComponentHealth

__all__ = ["MemoryKV", "RedisKV", "SqliteKV"]


def _check_ttl(ttl_s: float | None) -> None:
    if ttl_s is not None and not ttl_s > 0:
        raise InputError(f"ttl_s must be a positive number of seconds or None (no expiry), got {ttl_s!r}")


class MemoryKV:
    """An in-process store: TTL per key, LRU eviction beyond ``max_entries``, safe across threads.

    ``clock`` (seconds, monotonic) is injectable for tests. An expired key is dropped when read; eviction
    removes the least recently read or written key first.
    """

    mode = "memory"

    def __init__(self, max_entries: int = 2048, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise InputError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[str, float | None]] = OrderedDict()

    def get(self, key: str) -> str | None:
        """The value, or None when absent or expired (an expired key is removed)."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, expires_at = item
            if expires_at is not None and self._clock() >= expires_at:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None:
        """Store ``value``, expiring ``ttl_s`` seconds from now when given; evict LRU keys past the bound."""
        _check_ttl(ttl_s)
        with self._lock:
            expires_at = None if ttl_s is None else self._clock() + ttl_s
            self._items[key] = (value, expires_at)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def delete(self, key: str) -> None:
        """Remove a key (no error when absent)."""
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        """Remove every key."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        """Entries held, expired ones not yet read included."""
        with self._lock:
            return len(self._items)

    def health(self) -> ComponentHealth:
        """Always ok: the store is this process's memory."""
        return ComponentHealth(
            component="cache",
            mode=self.mode,
            ok=True,
            detail=f"in process, {len(self)} of at most {self.max_entries} entries",
        )

    def close(self) -> None:
        """Nothing to release."""


class SqliteKV:
    """A durable store in the SQLite state database (WAL): values survive a restart of the process and are
    shared by every process on the same data directory. Keys are stored as ``prefix + key``.

    Expiry uses the wall clock (``clock``, seconds since the epoch, injectable for tests), so it holds across
    restarts. Expired rows are never returned and are deleted by ``prune()``, which ``set`` runs at most
    every ``prune_every_s`` seconds.
    """

    mode = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        prefix: str = "ragdeck:",
        prune_every_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.prefix = prefix
        self.prune_every_s = prune_every_s
        self._clock = clock
        self._file = open_state(self.path, "key-value store", busy_timeout_s=10)
        self._pruned_at = float("-inf")

    def get(self, key: str) -> str | None:
        """The value, or None when absent or expired."""
        with self._file.connect() as db:
            row = db.execute(
                "SELECT value FROM kv_entries WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (self.prefix + key, self._clock()),
            ).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None:
        """Store ``value`` (committed before returning); with ``ttl_s`` it expires after that many seconds."""
        _check_ttl(ttl_s)
        now = self._clock()
        with self._file.connect(write=True, durable=False) as db:
            db.execute(
                "INSERT INTO kv_entries (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                "SET value = excluded.value, expires_at = excluded.expires_at",
                (self.prefix + key, value, None if ttl_s is None else now + ttl_s),
            )
        if now - self._pruned_at >= self.prune_every_s:
            self.prune()

    def delete(self, key: str) -> None:
        """Remove a key (no error when absent)."""
        with self._file.connect(write=True, durable=False) as db:
            db.execute("DELETE FROM kv_entries WHERE key = ?", (self.prefix + key,))

    def prune(self) -> int:
        """Delete the expired entries under this prefix; returns how many."""
        now = self._clock()
        self._pruned_at = now
        with self._file.connect(write=True, durable=False) as db:
            cursor = db.execute(
                "DELETE FROM kv_entries WHERE key >= ? AND key < ? AND expires_at <= ?",
                (self.prefix, self.prefix + "\U0010ffff", now),
            )
            return cursor.rowcount

    def __len__(self) -> int:
        """Entries under this prefix, expired ones not yet pruned included."""
        with self._file.connect() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM kv_entries WHERE key >= ? AND key < ?",
                (self.prefix, self.prefix + "\U0010ffff"),
            ).fetchone()
        return int(row[0])

    def health(self) -> ComponentHealth:
        """Whether the state database answers."""
        try:
            entries = len(self)
        except (RagdeckError, sqlite3.Error) as exc:
            return ComponentHealth(component="cache", mode=self.mode, ok=False, detail=str(exc))
        return ComponentHealth(
            component="cache", mode=self.mode, ok=True, detail=f"{entries} entries in {self.path.name}"
        )

    def close(self) -> None:
        """Nothing to release (every call opens its own short connection)."""


class RedisKV:
    """A Redis-backed store shared by every replica (redis-py). Keys are stored as ``prefix + key``.

    ``timeout_s`` bounds connecting and each command; a failed command is retried once after a short
    backoff. Raises ConfigError for a malformed URL, or when redis-py (``ragdeck[redis]``) is not installed,
    and ServiceUnavailable when Redis does not answer.
    """

    mode = "redis"

    def __init__(self, url: str, *, prefix: str = "ragdeck:", timeout_s: float = 2.0) -> None:
        self.url = url
        self.endpoint = redact_url(url)
        self.prefix = prefix
        self._conn = connect_redis(url, timeout_s=timeout_s, unset_hint="unset it to cache in process")
        self._client = self._conn.client
        self._redis_error = self._conn.error

    def _unavailable(self, exc: Exception) -> ServiceUnavailable:
        return self._conn.unavailable(exc, "unset REDIS_URL to cache in process, or ")

    def get(self, key: str) -> str | None:
        """The value, or None when absent or expired."""
        try:
            value = self._client.get(self.prefix + key)
        except self._redis_error as exc:
            raise self._unavailable(exc) from exc
        return None if value is None else str(value)

    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None:
        """Store ``value``; with ``ttl_s`` it expires after that many seconds (millisecond precision)."""
        _check_ttl(ttl_s)
        px = None if ttl_s is None else max(1, round(ttl_s * 1000))
        try:
            self._client.set(self.prefix + key, value, px=px)
        except self._redis_error as exc:
            raise self._unavailable(exc) from exc

    def delete(self, key: str) -> None:
        """Remove a key (no error when absent)."""
        try:
            self._client.delete(self.prefix + key)
        except self._redis_error as exc:
            raise self._unavailable(exc) from exc

    def health(self) -> ComponentHealth:
        """Pings Redis and reports its server version; ok=False with the reason when it does not answer."""
        try:
            self._client.ping()
            info = self._client.info("server")
        except self._redis_error as exc:
            return ComponentHealth(
                component="cache",
                mode=self.mode,
                ok=False,
                endpoint=self.endpoint,
                detail=str(self._unavailable(exc)),
            )
        return ComponentHealth(
            component="cache",
            mode=self.mode,
            ok=True,
            endpoint=self.endpoint,
            version=str(info.get("redis_version", "")) or None,
            detail=f"keys under prefix {self.prefix!r}",
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
