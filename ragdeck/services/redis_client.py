"""One way to open a Redis client for ``REDIS_URL``: the cache (``kv.RedisKV``), the routing state and the
feedback votes all connect through ``connect_redis``, with the same timeouts, retry and error messages."""

from __future__ import annotations

from typing import Any

from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.optional import redis_module
from ragdeck.services.redact import redact_text, redact_url

__all__ = ["RedisConnection", "connect_redis"]


class RedisConnection:
    """A redis-py client (``client``, strings decoded) with its redacted endpoint and the redis-py error
    class, so adapters turn a failed command into ``unavailable(exc)`` without importing redis."""

    def __init__(self, url: str, *, timeout_s: float, unset_hint: str) -> None:
        redis = redis_module()
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.endpoint = redact_url(url)
        self.error: type[Exception] = redis.RedisError
        try:
            self.client: Any = redis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                decode_responses=True,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
            )
        except ValueError as exc:
            raise ConfigError(
                f"REDIS_URL {self.endpoint!r} is not a Redis URL ({redact_text(str(exc))}); "
                f"use redis://HOST:PORT/DB or {unset_hint}"
            ) from exc

    def unavailable(self, exc: Exception, consequence: str = "") -> ServiceUnavailable:
        """The error to raise when a command failed: where, why (redacted) and what to check."""
        return ServiceUnavailable(
            f"Redis at {self.endpoint} did not answer ({type(exc).__name__}: {redact_text(str(exc))}); "
            f"{consequence}check REDIS_URL and that redis-server is running"
        )


def connect_redis(url: str, *, timeout_s: float = 2.0, unset_hint: str) -> RedisConnection:
    """A client for ``url``: ``timeout_s`` bounds connecting and each command, a failed command is retried
    once after a short backoff. ConfigError for a malformed URL (``unset_hint`` says what unsetting
    REDIS_URL does) or when redis-py (``ragdeck[redis]``) is not installed."""
    return RedisConnection(url, timeout_s=timeout_s, unset_hint=unset_hint)
