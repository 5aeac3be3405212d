"""What retrieval needs from outside: ``Reranker`` (a cross-encoder for the pipeline),
``PolicyOverrideStore`` (the policy fields set at run time) and ``HybridSearch`` (a vector store that fuses
hybrid candidates itself, declared by ``capabilities.native_fusion``).

``services.policy_overrides`` satisfies it; ``console.wiring`` builds it and reads it for
``policies.load_policies`` (the domain reads no database); ``hnsw.apply`` writes through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ragdeck.services.types import ComponentHealth, FusedHit, PayloadFilter

__all__ = ["HybridSearch", "PolicyOverrideStore", "Reranker"]


@runtime_checkable
class HybridSearch(Protocol):
    """The optional call of a vector store whose ``capabilities.native_fusion`` is True (the embedded
    engine): hybrid search fused by RRF in the engine."""

    def search_hybrid(
        self,
        name: str,
        vector: Sequence[float],
        text: str,
        limit: int,
        *,
        depth: int,
        rrf_k: int,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
        ranks: bool = True,
    ) -> list[FusedHit]:
        """The best ``limit`` of the top-``depth`` dense and lexical candidates fused by RRF: the same
        chunks, order, scores and per-list ranks as ``fusion.fuse(*store.search_both(..., depth))``.
        ``ranks`` False: the same chunks in the same order without per-list ranks and scores (scores
        within 1e-9), cheaper where the engine's fused list has no tie."""


@runtime_checkable
class PolicyOverrideStore(Protocol):
    """Policy fields set at run time, seen by every process's policy loader
    (``services.policy_overrides.PolicyOverrides``, the SQLite state database)."""

    def all(self) -> dict[str, dict[str, Any]]:
        """Policy -> {field: value} for every override."""

    def set(self, policy: str, field: str, value: Any, *, actor: str) -> Any:
        """Set one field of one policy (None: back to unset); returns the previous override, if any."""

    def set_fields(
        self, policy: str, values: dict[str, Any], *, clear: tuple[str, ...] = (), actor: str
    ) -> dict[str, Any]:
        """Set several fields and remove the overrides of ``clear`` at once; returns what they held."""

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
