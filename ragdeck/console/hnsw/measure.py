"""Measuring one index at one search-time ef: recall and latency over a query set, and one live search.

``recall_exact`` is recall@k against exact search (the store's ``exact`` flag on the live collection is
the ground truth: ``|HNSW top-k ∩ exact top-k| / |exact top-k|``, averaged over queries); ``recall_gold``
is the eval's recall against the eval set's gold, one definition with ``ragdeck eval``'s
(``metrics.set_recall_name``: ``recall@k`` over k chunks for chunk-level gold, else ``doc_recall@k`` over k
documents, retrieved as deep as the eval retrieves them). Latency is the k-chunk store call only, in
milliseconds, after a few untimed searches.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragdeck.console.evalsets.model import doc_id_of
from ragdeck.console.evaluation.depth import retrieve_to_depth
from ragdeck.console.evaluation.metrics import score_levels, set_level, set_recall_name
from ragdeck.console.hnsw.queries import QuerySet
from ragdeck.console.interfaces import VectorSearch

WARMUP = 5  # untimed searches before each timed pass


def exact_truth(store: VectorSearch, collection: str, queries: QuerySet, k: int) -> list[list[str]]:
    """Each query's exact top-k chunk ids (the ground truth of ``recall_exact``)."""
    return [[h.id for h in store.search(collection, v, k, exact=True)] for v in queries.vectors]


def recall_against(ranking: Sequence[str], truth: Sequence[str]) -> float:
    """``|ranking ∩ truth| / |truth|`` (1.0 when ``truth`` is empty)."""
    return 1.0 if not truth else len(set(ranking) & set(truth)) / len(truth)


def gold_recall(
    rankings: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, int]], k: int
) -> float | None:
    """The eval's recall at k against gold (``metrics.set_recall_name``: ``recall@k`` over k chunks when
    every query's gold is at chunk level, else ``doc_recall@k`` over k documents), averaged over every query
    as an eval run's summary averages it (a query without relevant gold counts 0); None when no query has
    relevant gold. Document level needs rankings holding k documents (``measure`` retrieves them)."""
    if not any(grade >= 1 for judged in qrels for grade in judged.values()):
        return None
    name = set_recall_name(qrels, k)
    _, metrics = score_levels(rankings, qrels, [k])
    return float(np.mean([m[name] for m in metrics]))


def document_rankings(
    store: VectorSearch, collection: str, queries: QuerySet, ef: int, k: int
) -> list[list[str]]:
    """Each query's chunk ids at ``ef``, deep enough to hold k documents, as an eval run retrieves them
    (``evaluation.depth.retrieve_to_depth``); untimed."""
    rankings = []
    for vector in queries.vectors:
        hits, _ = retrieve_to_depth(
            lambda n, v=vector: store.search(collection, v, n, hnsw_ef=ef),
            lambda h: doc_id_of(h.id),
            chunk_depth=k,
            documents=k,
        )
        rankings.append([h.id for h in hits])
    return rankings


def measure(
    store: VectorSearch,
    collection: str,
    queries: QuerySet,
    truth: Sequence[Sequence[str]],
    ef: int,
    k: int,
    *,
    warmup: int = WARMUP,
) -> tuple[float, float | None, float, float]:
    """``(recall_exact, recall_gold, p50_ms, p95_ms)`` of HNSW search at ``ef`` over every query, after
    ``warmup`` untimed searches."""
    for vector in queries.vectors[:warmup]:
        store.search(collection, vector, k, hnsw_ef=ef)
    rankings, times = [], []
    for vector in queries.vectors:
        started = time.perf_counter()
        hits = store.search(collection, vector, k, hnsw_ef=ef)
        times.append((time.perf_counter() - started) * 1000.0)
        rankings.append([h.id for h in hits])
    recall = float(np.mean([recall_against(r, t) for r, t in zip(rankings, truth, strict=True)]))
    gold = None
    if queries.qrels is not None:
        if set_level(queries.qrels) == "document":
            rankings = document_rankings(store, collection, queries, ef, k)
        gold = gold_recall(rankings, queries.qrels, k)
    return recall, gold, statistics.median(times), float(np.percentile(times, 95))


def index_bytes(store: VectorSearch, collection: str) -> int | None:
    """HNSW graph bytes on disk where the store can tell (the embedded store: the graph files
    ``segments/*/vector_index/``, what m and ef_construct change), else None (Qdrant's server reports no
    sizes)."""
    return int(store.index_bytes(collection)["hnsw"]) if store.capabilities.index_sizes else None


@dataclass
class LiveSearch:
    """One query at one ef: its hits (with whether exact search also found them), latency and recall."""

    ef: int
    latency_ms: float
    recall_exact: float
    hits: list[dict[str, Any]]


def live_search(
    store: VectorSearch, collection: str, vector: Sequence[float], ef: int, k: int = 10
) -> LiveSearch:
    """Search once at ``ef`` on the live index and compare with exact search."""
    exact = [h.id for h in store.search(collection, vector, k, exact=True)]
    store.search(collection, vector, k, hnsw_ef=ef)  # warm
    started = time.perf_counter()
    hits = store.search(collection, vector, k, hnsw_ef=ef)
    latency = (time.perf_counter() - started) * 1000.0
    rows = [
        {"rank": n, "id": h.id, "score": round(h.score, 4), "in_exact_top_k": h.id in exact}
        for n, h in enumerate(hits, start=1)
    ]
    return LiveSearch(ef, latency, recall_against([h.id for h in hits], exact), rows)
