"""Key-value stores with expiry for small shared values (the answer cache): in process or Redis.

``MemoryKV`` lives in one process: thread-safe, per-key TTL, least-recently-used eviction past
``max_entries``. ``RedisKV`` is shared by every replica: keys are namespaced by ``prefix``, TTLs are kept by
Redis in milliseconds, and a connection failure raises ``ServiceUnavailable`` saying to check ``REDIS_URL``.
Both satisfy ``ragdeck.console.answering.ports.KeyValueStore``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.optional import redis_module
from ragdeck.services.redact import redact_text, redact_url
from ragdeck.services.types import ComponentHealth

__all__ = ["MemoryKV", "RedisKV"]


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
        redis = redis_module()
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self._redis_error: type[Exception] = redis.RedisError
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                decode_responses=True,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
            )
        except ValueError as exc:
            raise ConfigError(
                f"REDIS_URL {self.endpoint!r} is not a Redis URL ({redact_text(str(exc))}); "
                "use redis://HOST:PORT/DB or unset it to cache in process"
            ) from exc

    def _unavailable(self, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"Redis at {self.endpoint} did not answer ({type(exc).__name__}: {redact_text(str(exc))}); "
            "check REDIS_URL and that redis-server is running, or unset REDIS_URL to cache in process"
        )

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
