"""The queries a sweep measures every configuration on, and the stored vectors its copies are built from.

Queries are an eval set's questions embedded with the stack's embedder (with their gold, for recall against
gold), else a seeded sample of stored vectors perturbed by Gaussian noise of relative size ``noise``
(0 = the stored vectors themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ragdeck.console.evalsets.model import EvalSet
from ragdeck.console.evaluation.prepare import prepare_set, qrels_of
from ragdeck.console.interfaces import Embedder, VectorSearch
from ragdeck.errors import InputError


@dataclass
class StoredVectors:
    """Every point of a collection as read once for a sweep: ids, unit vectors (n, d) and slim payloads."""

    ids: list[str]
    vectors: np.ndarray
    payloads: list[dict[str, Any]]

    @classmethod
    def read(cls, store: VectorSearch, collection: str) -> StoredVectors:
        """Scroll the collection with vectors (payloads keep only ``chunk_id`` and ``doc_id``)."""
        ids, rows, payloads = [], [], []
        for point in store.iter_points(collection, batch_size=1024, with_vectors=True):
            ids.append(point.id)
            rows.append(np.asarray(point.vector, dtype=np.float32))
            payloads.append({k: point.payload[k] for k in ("chunk_id", "doc_id") if k in point.payload})
        if not ids:
            raise InputError(f"collection '{collection}' has no points: ingest a corpus before tuning it")
        return cls(ids, np.vstack(rows), payloads)


@dataclass
class QuerySet:
    """The queries every configuration is measured on, and where they came from (said in every output)."""

    vectors: np.ndarray  # (n, d) float32
    labels: list[str]  # the question, or the stored point the query was drawn from
    source: str  # one line, e.g. "200 stored vectors sampled with seed 7, perturbed (noise 0.1)"
    qrels: list[dict[str, int]] | None = None  # gold per query when from an eval set

    def __len__(self) -> int:
        return len(self.labels)


def sample_queries(points: StoredVectors, n: int = 200, *, seed: int = 7, noise: float = 0.1) -> QuerySet:
    """``n`` stored vectors picked with ``seed``; with ``noise`` > 0 each gets Gaussian noise of that size
    relative to its norm (per-dimension sigma ``noise / sqrt(d)``) and is renormalised."""
    if n < 1:
        raise InputError(f"the number of sampled queries must be >= 1, got {n}")
    if noise < 0:
        raise InputError(f"noise must be >= 0 (0 = the stored vectors themselves), got {noise}")
    rng = np.random.default_rng(seed)
    count = min(n, len(points.ids))
    picked = rng.choice(len(points.ids), size=count, replace=False)
    vectors = points.vectors[picked].astype(np.float64)
    if noise > 0:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors + rng.normal(size=vectors.shape) * noise * norms / np.sqrt(vectors.shape[1])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    how = f", perturbed (noise {noise:g})" if noise > 0 else " as stored (not perturbed)"
    return QuerySet(
        vectors=vectors.astype(np.float32),
        labels=[points.ids[i] for i in picked],
        source=f"{count} stored vectors sampled with seed {seed}{how}",
    )


def eval_queries(evalset: EvalSet, embedder: Embedder, store: VectorSearch, collection: str) -> QuerySet:
    """The eval set's questions embedded, with their gold (mapped by span when labelled on another
    chunking; raises EvalSetProblems when gold names nothing in the collection)."""
    prepared, _notes, _missing = prepare_set(evalset, store, collection)
    records = list(prepared.records)
    if not records:
        raise InputError(f"eval set {evalset.name} has no questions")
    vectors = np.vstack([np.asarray(embedder.embed_query(r.question), dtype=np.float32) for r in records])
    return QuerySet(
        vectors=vectors,
        labels=[r.question for r in records],
        source=f"{len(records)} questions of eval set {evalset.name} embedded by {embedder.model_name}",
        qrels=[qrels_of(r) for r in records],
    )
