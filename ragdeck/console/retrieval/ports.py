"""What retrieval needs from outside: ``Reranker`` (a cross-encoder for the pipeline) and
``PolicyOverrideStore`` (the policy fields set at run time).

``services.policy_overrides`` satisfies it; ``console.wiring`` builds it and reads it for
``policies.load_policies`` (the domain reads no database); ``hnsw.apply`` writes through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ragdeck.services.types import ComponentHealth

__all__ = ["PolicyOverrideStore", "Reranker"]


@runtime_checkable
class PolicyOverrideStore(Protocol):
    """Policy fields set at run time, seen by every process's policy loader
    (``services.policy_overrides.PolicyOverrides``, the SQLite state database)."""

    def all(self) -> dict[str, dict[str, Any]]:
        """Policy -> {field: value} for every override."""

    def set(self, policy: str, field: str, value: Any, *, actor: str) -> Any:
        """Set one field of one policy (None: back to unset); returns the previous override, if any."""

    def clear(self, policy: str, field: str) -> None:
        """Remove one override (the TOML value applies again)."""


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs with a cross-encoder (TEI /rerank or a local model directory)."""

    mode: str  # "local" | "server"
    model_name: str

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text, in input order (higher is more relevant)."""

    def health(self) -> ComponentHealth:
        """Whether the reranker answers, with its model."""
