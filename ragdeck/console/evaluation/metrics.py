"""Retrieval metrics over ranked ids and graded qrels, vectorised with numpy; definitions equal ranx's.

A ranking is a query's ids, best first; only the first occurrence of an id counts (later duplicates are
dropped before any cut-off, as a ranx ``Run`` keeps one score per id). Qrels map ids to integer grades:
grade >= 1 is relevant, grade 0 (or below) is judged not relevant and counts like an unjudged id. ``R`` is the
number of relevant ids of a query; ``rel_i`` is 1 when the id at rank i is relevant, ``g_i`` its grade (0 when
not relevant). Ranks are list positions, so there are no ties. A cut-off ``@k`` keeps ranks 1..k; no cut-off
keeps the whole ranking. Metric names (``recall@10``, ``mrr``) and their parsing live in ``metric_names``.

- recall@k    = sum(rel_i, i <= k) / R
- precision@k = sum(rel_i, i <= k) / k            (no cut-off: / length of the ranking)
- hit_rate@k  = 1 if any rel_i, i <= k, else 0
- mrr@k       = 1 / (rank of the first relevant id) if it is <= k, else 0
- ndcg@k      = DCG@k / IDCG@k, DCG@k = sum(g_i / log2(i + 1), i <= k) (linear gain, Järvelin & Kekäläinen,
                ranx's ``ndcg``, not ``ndcg_burges``); IDCG@k is the DCG@k of the grades sorted descending
- map@k       = sum(precision@i * rel_i, i <= k) / R  (R, not min(R, k), as ranx)

A query with no relevant id scores 0.0 on every metric, as in ranx; so does an empty ranking. Every metric is
read from one (queries × depth) grade matrix and its cumulative sums; depth is the largest cut-off asked for
(the longest ranking when a metric has none).

**Levels.** A query's gold is at chunk level when it has relevant ids and every one is a chunk id, else at
document level (``gold_level``). ``score_levels`` scores a run's rankings of chunk ids as IR means them:
chunk-level gold gives ``metric@k`` over the first k chunks, and every query gives ``doc_metric@k`` over its
*document* ranking (each document once, at the rank of its best chunk: ``document_ranking``) cut at k
documents, against ``document_qrels``. So ``doc_recall@100`` always looks at 100 documents, never at the
documents that happen to lie in the first 100 chunks; the caller retrieves deep enough to hold them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from itertools import chain, islice, repeat

import numpy as np

from ragdeck.console.evalsets.model import doc_id_of, is_chunk_id
from ragdeck.console.evaluation.metric_names import (  # re-exported: the names are defined there
    RETRIEVAL_METRICS,
    MetricNameError,
    document_name,
    metric_name,
    metric_names,
    parse_metric,
)

__all__ = [
    "LEVELS",
    "RETRIEVAL_METRICS",
    "MetricNameError",
    "document_qrels",
    "document_ranking",
    "gold_level",
    "level_metric",
    "metric_names",
    "parse_metric",
    "score_documents",
    "score_levels",
    "score_rankings",
    "set_level",
    "set_recall_name",
]

LEVELS = ("chunk", "document")


class _Table:
    """The (n_queries × depth) grade matrix of the rankings and the cumulative sums the metrics read."""

    def __init__(self, rankings: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, int]], depth: int):
        n = len(rankings)
        ranked = [dict.fromkeys(r) for r in rankings]  # first occurrence wins, order kept
        self.length = np.fromiter(map(len, ranked), dtype=np.int64, count=n)
        self.length_at_least_1 = np.maximum(self.length, 1).astype(np.float64)
        depth = min(depth, int(self.length.max(initial=0)))
        self.depth = max(depth, 1)  # one all-zero column when every ranking is empty
        kept = np.minimum(self.length, depth)
        grades = np.zeros((n, self.depth))
        # One pass over all ranked ids: each query's ids looked up in its own qrels (dict.get in C).
        looked_up = chain.from_iterable(
            map(q.get, islice(r, depth), repeat(0)) for r, q in zip(ranked, qrels, strict=True)
        )
        grades[np.arange(self.depth) < kept[:, None]] = np.fromiter(
            looked_up, dtype=np.float64, count=int(kept.sum())
        )
        self.relevant = grades >= 1
        self.gain = np.where(self.relevant, grades, 0.0)
        self.hits = np.cumsum(self.relevant, axis=1, dtype=np.float64)
        self.ranks = np.arange(1, self.depth + 1, dtype=np.float64)
        counts = np.fromiter(map(len, qrels), dtype=np.int64, count=n)
        self.qrel_grades = np.fromiter(
            chain.from_iterable(q.values() for q in qrels), dtype=np.float64, count=int(counts.sum())
        )
        self.qrel_query = np.repeat(np.arange(n), counts)
        is_rel = self.qrel_grades >= 1
        self.n_relevant = np.bincount(self.qrel_query[is_rel], minlength=n)
        self.n_relevant_at_least_1 = np.maximum(self.n_relevant, 1).astype(np.float64)
        self._cache: dict[str, np.ndarray] = {}

    def column(self, k: int | None) -> int:
        return self.depth - 1 if k is None else min(k, self.depth) - 1

    def first_relevant(self) -> np.ndarray:
        """0-based rank of each query's first relevant id; ``depth`` where there is none."""
        if "first" not in self._cache:
            first = np.argmax(self.relevant, axis=1)
            self._cache["first"] = np.where(self.relevant.any(axis=1), first, self.depth)
        return self._cache["first"]

    def ap_sum(self) -> np.ndarray:
        """Cumulative sum of precision@i * rel_i along the ranks."""
        if "ap" not in self._cache:
            self._cache["ap"] = np.cumsum(self.hits / self.ranks * self.relevant, axis=1)
        return self._cache["ap"]

    def dcg(self) -> np.ndarray:
        if "dcg" not in self._cache:
            self._cache["dcg"] = np.cumsum(self.gain / np.log2(self.ranks + 1), axis=1)
        return self._cache["dcg"]

    def idcg(self, k: int | None) -> np.ndarray:
        """IDCG@k: the relevant grades of each query sorted descending, discounted, summed to k."""
        if "idcg" not in self._cache:
            rel = self.qrel_grades >= 1
            query, grade = self.qrel_query[rel], self.qrel_grades[rel]
            order = np.lexsort((-grade, query))
            query, grade = query[order], grade[order]
            starts = np.cumsum(self.n_relevant) - self.n_relevant
            position = np.arange(len(query)) - starts[query]
            width = max(int(self.n_relevant.max(initial=0)), 1)
            ideal = np.zeros((len(self.n_relevant), width))
            ideal[query, position] = grade
            self._cache["idcg"] = np.cumsum(ideal / np.log2(np.arange(2, width + 2)), axis=1)
        ideal_dcg = self._cache["idcg"]
        return ideal_dcg[:, -1 if k is None else min(k, ideal_dcg.shape[1]) - 1]


def _score(table: _Table, metric: str, k: int | None) -> np.ndarray:
    """One metric for every query. Denominators are raised to >= 1: where one is 0 (no relevant id, an empty
    ranking) its numerator is 0 too, and an IDCG > 0 is >= 1 (a grade >= 1 at rank 1), so 0/0 gives 0."""
    c = table.column(k)
    hits = table.hits[:, c]
    if metric == "recall":
        return hits / table.n_relevant_at_least_1
    if metric == "precision":
        return hits / (table.length_at_least_1 if k is None else float(k))
    if metric == "hit_rate":
        return (hits > 0).astype(np.float64)
    if metric == "mrr":
        first = table.first_relevant()
        return np.where(first <= c, 1.0 / (first + 1.0), 0.0)
    if metric == "ndcg":
        return table.dcg()[:, c] / np.maximum(table.idcg(k), 1.0)
    return table.ap_sum()[:, c] / table.n_relevant_at_least_1  # map


def score_rankings(
    rankings: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, int]], metrics: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per-query values of each metric: ``{name: float64 array, one value per query in order}``.

    ``rankings[i]`` is query i's ids, best first; ``qrels[i]`` its graded judgements. Definitions and edge
    cases are in the module docstring. Raises ``MetricNameError`` for a bad name and ``ValueError`` when
    ``rankings`` and ``qrels`` differ in length.
    """
    parsed = {name: parse_metric(name) for name in metrics}
    if len(rankings) != len(qrels):
        raise ValueError(f"{len(rankings)} rankings but {len(qrels)} qrels: give one of each per query")
    if not parsed:
        return {}
    cutoffs = [k for _, k in parsed.values()]
    if None in cutoffs:
        depth = max(map(len, rankings), default=0)
    else:
        depth = max(k for k in cutoffs if k is not None)
    table = _Table(rankings, qrels, depth)
    return {name: _score(table, metric, k) for name, (metric, k) in parsed.items()}


# ``doc_id_of`` remembered: a run reads the document of the same chunk ids over and over (depth, metrics).
doc_of = functools.lru_cache(maxsize=1 << 16)(doc_id_of)


def document_ranking(ranking: Sequence[str]) -> list[str]:
    """Chunk ids → document ids, each document once, at the rank of its first chunk."""
    return list(dict.fromkeys(map(doc_of, ranking)))


def document_qrels(qrels: Mapping[str, int]) -> dict[str, int]:
    """Chunk-level (or mixed chunk and document) qrels → document qrels: the highest grade per document."""
    documents: dict[str, int] = {}
    for gold_id, grade in qrels.items():
        doc = doc_id_of(gold_id)
        documents[doc] = max(grade, documents.get(doc, grade))
    return documents


def score_documents(
    rankings: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, int]], metrics: Sequence[str]
) -> dict[str, np.ndarray]:
    """``score_rankings`` at document level: ``document_ranking`` of each ranking, ``document_qrels``."""
    return score_rankings(
        [document_ranking(r) for r in rankings], [document_qrels(q) for q in qrels], metrics
    )


def gold_level(qrels: Mapping[str, int]) -> str:
    """ "chunk" when the query has relevant gold and every relevant id is a chunk id, else "document"."""
    relevant = [g for g, grade in qrels.items() if grade >= 1]
    return "chunk" if relevant and all(map(is_chunk_id, relevant)) else "document"


def level_metric(metric: str, k: int, level: str) -> str:
    """The name a metric at cut-off k has at a gold level: ``recall@10`` (chunk), ``doc_recall@10``."""
    return metric_name(metric, k, document=level == "document")


def set_level(qrels: Sequence[Mapping[str, int]]) -> str:
    """The level one figure for a whole set is read at: "chunk" when every query's gold is at chunk level
    (then every query has ``metric@k``), else "document" (every query has ``doc_metric@k``)."""
    return "chunk" if qrels and all(gold_level(q) == "chunk" for q in qrels) else "document"


def set_recall_name(qrels: Sequence[Mapping[str, int]], k: int) -> str:
    """The eval's recall at k for a set, by ``set_level``: ``recall@k`` (k chunks) or ``doc_recall@k``
    (k documents). The HNSW sweep's recall against gold is this metric's mean, as an eval summary has it."""
    return level_metric("recall", k, set_level(qrels))


def score_levels(
    rankings: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, int]], ks: Sequence[int]
) -> tuple[list[str], list[dict[str, float]]]:
    """Each query's gold level and its retrieval metrics at every k of ``ks`` (see "Levels" above).

    ``rankings[i]`` is query i's chunk ids, best first, as deep as it was retrieved. Chunk-level queries get
    ``metric@k`` (k chunks) and ``doc_metric@k``; document-level ones only ``doc_metric@k`` (k documents):
    a name always says its level. Values equal ranx's on the scored rankings.
    """
    if len(rankings) != len(qrels):
        raise ValueError(f"{len(rankings)} rankings but {len(qrels)} qrels: give one of each per query")
    names = metric_names(sorted(set(ks)))
    levels = [gold_level(q) for q in qrels]
    per_query: list[dict[str, float]] = [{} for _ in rankings]
    chunk_queries = [i for i, level in enumerate(levels) if level == "chunk"]
    if chunk_queries:
        chunk = score_rankings([rankings[i] for i in chunk_queries], [qrels[i] for i in chunk_queries], names)
        for row, i in enumerate(chunk_queries):
            per_query[i].update({name: float(chunk[name][row]) for name in names})
    documents = score_documents(rankings, qrels, names)
    for i, metrics in enumerate(per_query):
        metrics.update({document_name(name): float(documents[name][i]) for name in names})
    return levels, per_query
