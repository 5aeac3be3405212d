"""Thumbs up/down on answers in Redis, shared by every replica of the API when ``REDIS_URL`` is set.

One hash per answer voted on (``{prefix}{response_id}``: ts, policy, vote, comment), written by one Lua
script so that a vote and the one it replaces are read and written in one step whichever replica takes it.
Each hash expires ``retention_s`` after its latest vote, so Redis prunes by itself. Satisfies the same
port as ``feedback_log.SqliteFeedbackLog``.
"""

from __future__ import annotations

import time

from ragdeck.errors import ServiceUnavailable
from ragdeck.services.redis_client import connect_redis

# KEYS[1] the answer's hash; ARGV ts, policy, vote, comment ('' for none), retention in ms. Returns the
# vote it replaced, or false.
_VOTE = """
local old = redis.call('HGET', KEYS[1], 'vote')
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'policy', ARGV[2], 'vote', ARGV[3], 'comment', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return old
"""


class RedisFeedbackLog:
    """Votes on answers in Redis, one per response id (see the module docstring)."""

    def __init__(
        self, url: str, *, retention_s: float, prefix: str = "ragdeck:feedback:", timeout_s: float = 2.0
    ) -> None:
        self.prefix = prefix
        self.retention_ms = max(1, round(retention_s * 1000))
        self._conn = connect_redis(
            url, timeout_s=timeout_s, unset_hint="unset it to keep votes in the state database"
        )
        self.endpoint = self._conn.endpoint
        self._client = self._conn.client
        self._redis_error = self._conn.error
        self._vote = self._client.register_script(_VOTE)

    def _unavailable(self, exc: Exception) -> ServiceUnavailable:
        return self._conn.unavailable(exc, "the vote was not kept: ")

    def add(
        self, response_id: str, policy: str, vote: str, comment: str | None = None, *, ts: float | None = None
    ) -> str | None:
        """Record the vote on ``response_id``, replacing an earlier one; the vote it replaced, or None."""
        args = [time.time() if ts is None else ts, policy, vote, comment or "", self.retention_ms]
        try:
            old = self._vote(keys=[self.prefix + response_id], args=args)
        except self._redis_error as exc:
            raise self._unavailable(exc) from exc
        return str(old) if old else None

    def vote(self, response_id: str) -> str | None:
        """The vote kept for ``response_id``, or None."""
        try:
            value = self._client.hget(self.prefix + response_id, "vote")
        except self._redis_error as exc:
            raise self._unavailable(exc) from exc
        return None if value is None else str(value)

    def counts(self) -> dict[tuple[str, str], int]:
        """(policy, vote) -> number of votes kept (a scan of the prefix: fine for a dashboard's read)."""
        out: dict[tuple[str, str], int] = {}
        try:
            keys = list(self._client.scan_iter(match=self.prefix + "*", count=500))
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, "policy", "vote")
            rows = pipe.execute()
        except self._redis_error as exc:
            raise self._unavailable(exc) from exc
        for policy, vote in rows:
            if policy is not None and vote is not None:
                out[(policy, vote)] = out.get((policy, vote), 0) + 1
        return out

    def prune(self, older_than_s: float, *, now: float | None = None) -> int:
        """Nothing to do: each vote expires ``retention_s`` after it was cast; returns 0."""
        return 0

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
