"""Measuring one index at one search-time ef: recall and latency over a query set, and one live search.

``recall_exact`` is recall@k against exact search (the store's ``exact`` flag on the live collection is
the ground truth: ``|HNSW top-k ∩ exact top-k| / |exact top-k|``, averaged over queries); ``recall_gold``
is recall@k against the eval set's gold, at the gold's level (chunk or document) as ``ragdeck eval`` scores
it. Latency is the store call only, in milliseconds, after a few untimed searches.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragdeck.console.evalsets.model import is_chunk_id
from ragdeck.console.evaluation.metric_names import metric_name
from ragdeck.console.evaluation.metrics import document_qrels, document_ranking, score_rankings
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
    """Mean recall@k against gold over queries with relevant gold, at each query's gold level (chunk when
    every relevant id is a chunk id, else document); None when no query has relevant gold."""
    values = []
    for ranking, judged in zip(rankings, qrels, strict=True):
        relevant = [g for g, grade in judged.items() if grade > 0]
        if not relevant:
            continue
        if all(is_chunk_id(g) for g in relevant):
            ranked, gold = list(ranking), dict(judged)
        else:
            ranked, gold = document_ranking(ranking), document_qrels(judged)
        values.append(float(score_rankings([ranked], [gold], [name := metric_name("recall", k)])[name][0]))
    return float(np.mean(values)) if values else None


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
    gold = gold_recall(rankings, queries.qrels, k) if queries.qrels is not None else None
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
