"""What answering needs from outside: ``KeyValueStore`` (the answer cache's shared values) and
``LlmServerState`` / ``LlmStatusSource`` (what the supervisor of the local LLM server saw).

``services.kv`` and ``services.llama_supervisor`` satisfy them; ``console.wiring`` builds them. The chat
model itself (``ChatModel``) is shared with annotation and evaluation and stays in ``console.interfaces``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ragdeck.services.types import ComponentHealth

__all__ = ["KeyValueStore", "LlmServerState", "LlmStatusSource"]


class LlmServerState(Protocol):
    """What the supervisor of the local LLM server saw (``services.llama_supervisor.LlmServerStatus``)."""

    ready: bool  # answering now
    restarts: int  # restarts since the supervisor started

    def summary(self) -> str:
        """One line for people: up, crashed with signal N and restarting, gave up, restarted N times."""


LlmStatusSource = Callable[[], "LlmServerState | None"]  # None: no supervisor serves the configured URL


@runtime_checkable
class KeyValueStore(Protocol):
    """Small shared values with expiry: in process by default, Redis when ``REDIS_URL`` is set."""

    mode: str  # "memory" | "redis"

    def get(self, key: str) -> str | None:
        """The value, or None when absent or expired."""

    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl_s`` seconds when given."""

    def delete(self, key: str) -> None:
        """Remove a key (no error when absent)."""

    def health(self) -> ComponentHealth:
        """Whether the store answers."""
