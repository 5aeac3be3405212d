"""The answer cache: a question already answered by a policy on an index version is served again.

Key = sha256 over (policy, normalized question, index version), so "What is TEI?" and "  what is tei "
share an entry (``normalize_question`` from ``services.text``, the one form questions are compared in).
The index version is the *physical* collection behind the alias (``store.resolve(alias)``, e.g.
``rag_chunks_v7``): swapping or rolling back the alias changes the version, so answers built on the old
index are never served for the new one and simply expire. Values are JSON objects (``Answer.to_json()``
plus whatever the API adds).

The cache never fails a request: a store outage (Redis down) or a corrupt value reads as a miss, with a
warning in the log; a corrupt value is also deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from ragdeck.console.answering.ports import KeyValueStore
from ragdeck.errors import RagdeckError
from ragdeck.services.text import normalize_question

__all__ = ["KEY_PREFIX", "AnswerCache", "cache_key", "normalize_question"]

log = logging.getLogger(__name__)

KEY_PREFIX = "answer:"


def cache_key(policy: str, question: str, index_version: str) -> str:
    """``"answer:" + sha256 hex`` of the policy, the normalized question and the index version."""
    material = json.dumps([policy, normalize_question(question), index_version], ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()


class AnswerCache:
    """Answers as JSON in a ``KeyValueStore`` (``MemoryKV`` or ``RedisKV``), each kept ``ttl_s`` seconds.

    Wiring (``console.wiring``): ``RedisKV(settings.redis_url)`` when ``REDIS_URL`` is set, else
    ``MemoryKV(settings.cache_max_entries)``; ``ttl_s=settings.cache_ttl_s``.
    """

    def __init__(self, kv: KeyValueStore, ttl_s: float = 600.0) -> None:
        self.kv = kv
        self.ttl_s = ttl_s

    @property
    def mode(self) -> str:
        """The backing store's mode: "memory" or "redis"."""
        return self.kv.mode

    def get(self, policy: str, question: str, index_version: str) -> dict[str, Any] | None:
        """The cached value, or None on a miss, an outage or a corrupt entry (which is deleted)."""
        key = cache_key(policy, question, index_version)
        try:
            raw = self.kv.get(key)
        except RagdeckError as exc:
            log.warning("answer cache read failed, serving uncached: %s", exc)
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            log.warning("answer cache entry %s is not a JSON object; dropping it", key)
            self._delete(key)
            return None
        return value

    def put(self, policy: str, question: str, index_version: str, value: dict[str, Any]) -> None:
        """Store ``value`` (a JSON-ready dict, else TypeError) for ``ttl_s``; an outage is only logged."""
        raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        key = cache_key(policy, question, index_version)
        try:
            self.kv.set(key, raw, ttl_s=self.ttl_s)
        except RagdeckError as exc:
            log.warning("answer cache write failed, answer not cached: %s", exc)

    def invalidate(self, policy: str, question: str, index_version: str) -> None:
        """Drop one entry (e.g. after negative feedback); an outage is logged."""
        self._delete(cache_key(policy, question, index_version))

    def _delete(self, key: str) -> None:
        try:
            self.kv.delete(key)
        except RagdeckError as exc:
            log.warning("answer cache delete failed: %s", exc)
