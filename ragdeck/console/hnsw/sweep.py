"""HNSW tuning: what m, ef_construct and search-time ef cost and buy on one collection, and applying a choice.

A sweep measures every configuration on the same queries:

- search-time ``ef`` on the live index (no rebuild), for the collection's own m / ef_construct (always
  measured, as the baseline);
- other m / ef_construct on temporary copies built from the stored vectors (no re-embedding), named
  ``_hnsw-sweep-<unix time>-<token>-m<m>-efc<ef_construct>`` and always deleted, also when the sweep fails
  (copies of a killed process are removed by the next sweep once they are hours old: ``remove_temporary``).

Per configuration: recall@k against exact search (the store's ``exact`` flag on the live collection is the
ground truth: ``|HNSW top-k ∩ exact top-k| / |exact top-k|``, averaged over queries), recall@k against the
gold eval set when one is given (at the gold's level, chunk or document, as ``ragdeck eval`` scores it),
P50 / P95 search latency in milliseconds (the store call only, after a few untimed searches; a whole
untimed pass before an index's first ef), build seconds (the index build once the copy holds every vector;
None for the live index) and index bytes (embedded: bytes allocated on disk by the HNSW graph files
``segments/*/vector_index/``, what m and ef_construct change; the vectors are the same in every copy.
Server: None, since Qdrant's collection info reports no sizes). Notes say when the figures cannot differ:
a collection under its ``full_scan_threshold`` is searched exactly whatever m and ef are.

Queries: an eval set's questions embedded with the stack's embedder, else a seeded sample of stored
vectors, perturbed by Gaussian noise of relative size ``noise`` (0 = the stored vectors themselves).

The recommendation is the cheapest configuration that meets the recall target: the lowest latency among
those at or above the target (and within the latency budget when one is given); ties go to the smaller
index, then smaller m, then smaller ef.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ragdeck.console import audit
from ragdeck.console.evalsets.model import EvalSet, is_chunk_id
from ragdeck.console.evaluation.metric_names import metric_name
from ragdeck.console.evaluation.metrics import document_qrels, document_ranking, score_rankings
from ragdeck.console.evaluation.runner import prepare_set, qrels_of
from ragdeck.console.interfaces import Embedder, VectorStore
from ragdeck.console.retrieval.policies import load_policies
from ragdeck.console.roles import Role, User, require
from ragdeck.console.settings import Settings
from ragdeck.errors import CollectionNotFound, InputError, StoreBusy
from ragdeck.services.types import CollectionInfo, HnswConfig, VectorPoint

if TYPE_CHECKING:
    from ragdeck.services.policy_overrides import PolicyOverrides

TEMP_PREFIX = "_hnsw-sweep-"
DEFAULT_MS = (4, 16, 32)
DEFAULT_EF_CONSTRUCTS = (100,)
DEFAULT_EFS = (10, 16, 32, 64, 128)  # the engine searches with max(ef, k): ef below k = 10 is k
RECALL_KEYS = ("recall_exact", "recall_gold")
LATENCY_KEYS = ("p50_ms", "p95_ms")
_UPSERT_BATCH = 512
_WARMUP = 5

Progress = Callable[[str, int, int], None]


def parse_ints(text: str, what: str, minimum: int = 1) -> tuple[int, ...]:
    """``"4,16,32"`` -> (4, 16, 32), sorted and without duplicates; InputError naming ``what`` otherwise."""
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, e.g. 4,16,32 (got {text!r})") from None
    if not values or values[0] < minimum:
        raise InputError(f"{what} must be integers >= {minimum}, e.g. 4,16,32 (got {text!r})")
    return tuple(values)


# ------------------------------------------------------------------ queries


@dataclass
class StoredVectors:
    """Every point of a collection as read once for a sweep: ids, unit vectors (n, d) and slim payloads."""

    ids: list[str]
    vectors: np.ndarray
    payloads: list[dict[str, Any]]

    @classmethod
    def read(cls, store: VectorStore, collection: str) -> StoredVectors:
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


def eval_queries(evalset: EvalSet, embedder: Embedder, store: VectorStore, collection: str) -> QuerySet:
    """The eval set's questions embedded, with their gold (mapped by span when labelled on another
    chunking; raises EvalSetProblems when gold names nothing in the collection)."""
    prepared, _notes = prepare_set(evalset, store, collection)
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


# ------------------------------------------------------------------ measuring


@dataclass
class SweepRow:
    """One configuration's measurements (see the module docstring for each figure's definition)."""

    m: int
    ef_construct: int
    ef: int
    recall_exact: float
    recall_gold: float | None
    p50_ms: float
    p95_ms: float
    build_s: float | None
    index_bytes: int | None
    index: str  # "live" (the collection's own index) or "copy"
    recommended: bool = False
    on_front: bool = False

    @property
    def label(self) -> str:
        """``m=16 efc=100 ef=32``."""
        return f"m={self.m} efc={self.ef_construct} ef={self.ef}"

    def to_json(self) -> dict[str, Any]:
        """Every field by name."""
        return asdict(self)


@dataclass
class Recommendation:
    """The recommended row (index into the rows, None when nothing qualifies) and one sentence why."""

    index: int | None
    sentence: str


@dataclass
class SweepResult:
    """A finished sweep: its rows (front and recommendation marked), queries and timings."""

    collection: str
    k: int
    query_source: str
    queries: int
    rows: list[SweepRow]
    recommendation: Recommendation
    target: float
    budget_ms: float | None
    recall_key: str
    latency_key: str
    total_s: float
    live: dict[str, int] = field(default_factory=dict)  # the live index's m and ef_construct
    notes: list[str] = field(default_factory=list)  # what the figures mean on this collection

    def to_json(self) -> dict[str, Any]:
        """The whole result as JSON values (what ``ragdeck hnsw sweep --json`` writes)."""
        return {
            "collection": self.collection,
            "k": self.k,
            "queries": self.queries,
            "query_source": self.query_source,
            "target": self.target,
            "budget_ms": self.budget_ms,
            "recall_key": self.recall_key,
            "latency_key": self.latency_key,
            "live": self.live,
            "notes": self.notes,
            "total_s": round(self.total_s, 3),
            "recommended": self.recommendation.index,
            "recommendation": self.recommendation.sentence,
            "rows": [r.to_json() for r in self.rows],
        }


def exact_truth(store: VectorStore, collection: str, queries: QuerySet, k: int) -> list[list[str]]:
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
    store: VectorStore,
    collection: str,
    queries: QuerySet,
    truth: Sequence[Sequence[str]],
    ef: int,
    k: int,
    *,
    warmup: int = _WARMUP,
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


def _index_bytes(store: VectorStore, collection: str) -> int | None:
    """HNSW graph bytes on disk where the store can tell (the embedded store), else None."""
    sizes = getattr(store, "index_bytes", None)
    return int(sizes(collection)["hnsw"]) if callable(sizes) else None


_ACTIVE: set[str] = set()  # temporary copies of sweeps running in this process
_ACTIVE_LOCK = threading.Lock()


def temporary_name(m: int, ef_construct: int, *, now: float | None = None) -> str:
    """A fresh name for a temporary copy: prefix, creation time (Unix seconds), token, m, ef_construct."""
    created = int(time.time() if now is None else now)
    return f"{TEMP_PREFIX}{created}-{uuid.uuid4().hex[:8]}-m{m}-efc{ef_construct}"


def _created(name: str) -> float:
    """The creation time in a temporary copy's name (0 when it has none: treated as old)."""
    stamp = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return float(stamp) if stamp.isdigit() else 0.0


def remove_temporary(store: VectorStore, *, older_than_s: float = 6 * 3600) -> list[str]:
    """Delete temporary copies left by sweeps that died (killed process, power cut): those created more than
    ``older_than_s`` ago and not in use by a sweep of this process; returns their names. A copy another
    process still holds open (embedded store) is skipped."""
    gone = []
    for info in store.list_collections():
        name = info.name
        if not name.startswith(TEMP_PREFIX) or time.time() - _created(name) < older_than_s:
            continue
        with _ACTIVE_LOCK:
            if name in _ACTIVE:
                continue
        try:
            store.delete_collection(name)
        except CollectionNotFound:
            continue
        except StoreBusy:  # a live sweep in another process
            continue
        gone.append(name)
    return gone


def _build_copy(
    store: VectorStore, name: str, info: CollectionInfo, points: StoredVectors, hnsw: HnswConfig
) -> float:
    """Create ``name`` with ``hnsw``, load every stored vector into it, build its index; the build seconds."""
    store.create_collection(name, info.dimension, hnsw, lexical=False)  # sweeps are dense only
    for begin in range(0, len(points.ids), _UPSERT_BATCH):
        end = begin + _UPSERT_BATCH
        store.upsert(
            name,
            [
                VectorPoint(id=i, vector=v, payload=p)  # type: ignore[arg-type]  # adapters take ndarrays
                for i, v, p in zip(
                    points.ids[begin:end], points.vectors[begin:end], points.payloads[begin:end], strict=True
                )
            ],
        )
    started = time.perf_counter()
    store.finish_indexing(name)
    return time.perf_counter() - started


def sweep(
    store: VectorStore,
    collection: str,
    queries: QuerySet,
    *,
    ms: Sequence[int] = DEFAULT_MS,
    ef_constructs: Sequence[int] = DEFAULT_EF_CONSTRUCTS,
    efs: Sequence[int] = DEFAULT_EFS,
    k: int = 10,
    points: StoredVectors | None = None,
    progress: Progress | None = None,
) -> list[SweepRow]:
    """Measure every (m, ef_construct) x ef on ``collection`` (an alias is resolved); rows sorted by m,
    ef_construct, ef.

    The live index is always measured (its own m / ef_construct, no rebuild: the baseline); every other
    pair is built on a temporary copy that is deleted before the next one is built, and in any case before
    this returns or raises.
    """
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    for what, values in (("m", ms), ("ef_construct", ef_constructs), ("ef", efs)):
        if not values:
            raise InputError(f"give at least one {what} value")
    physical = store.resolve(collection)
    info = store.collection_info(physical)
    live_pair = (info.hnsw.m, info.hnsw.ef_construct)
    builds = sorted({(int(m), int(e)) for m in ms for e in ef_constructs} | {live_pair})
    efs = sorted({int(e) for e in efs})
    total = len(builds) * len(efs)
    report = progress or (lambda stage, done, total: None)
    report("exact search (ground truth)", 0, total)
    truth = exact_truth(store, physical, queries, k)
    rows: list[SweepRow] = []
    for m, ef_construct in builds:
        hnsw = HnswConfig(m=m, ef_construct=ef_construct, full_scan_threshold=info.hnsw.full_scan_threshold)
        live = (m, ef_construct) == live_pair
        target, build_s, temp = physical, None, None
        try:
            if not live:
                if points is None:
                    report("reading stored vectors", len(rows), total)
                    points = StoredVectors.read(store, physical)
                temp = target = temporary_name(m, ef_construct)
                with _ACTIVE_LOCK:
                    _ACTIVE.add(temp)
                report(f"building m={m} ef_construct={ef_construct}", len(rows), total)
                build_s = _build_copy(store, temp, info, points, hnsw)
            size = _index_bytes(store, target)
            for n, ef in enumerate(efs):
                report(f"searching m={m} ef_construct={ef_construct} ef={ef}", len(rows), total)
                # A fresh copy's files are cold: its first ef gets a whole untimed pass first.
                warmup = len(queries) if n == 0 else _WARMUP
                recall, gold, p50, p95 = measure(store, target, queries, truth, ef, k, warmup=warmup)
                rows.append(
                    SweepRow(
                        m, ef_construct, ef, recall, gold, p50, p95, build_s, size, "live" if live else "copy"
                    )
                )
        finally:
            if temp is not None:
                with contextlib.suppress(CollectionNotFound):
                    store.delete_collection(temp)
                with _ACTIVE_LOCK:
                    _ACTIVE.discard(temp)
    report("done", total, total)
    return rows


# ------------------------------------------------------------------ choosing


def _check_keys(recall_key: str, latency_key: str) -> None:
    if recall_key not in RECALL_KEYS:
        raise InputError(f"recall must be one of {', '.join(RECALL_KEYS)}, got {recall_key!r}")
    if latency_key not in LATENCY_KEYS:
        raise InputError(f"latency must be one of {', '.join(LATENCY_KEYS)}, got {latency_key!r}")


def pareto_front(
    rows: Sequence[SweepRow], recall_key: str = "recall_exact", latency_key: str = "p95_ms"
) -> list[int]:
    """Indexes of the rows no other row beats: none has lower-or-equal latency and higher-or-equal recall
    with one of them strictly better. Sorted by latency. Rows without the recall figure are left out."""
    _check_keys(recall_key, latency_key)
    points = [
        (i, float(getattr(r, latency_key)), float(getattr(r, recall_key)))
        for i, r in enumerate(rows)
        if getattr(r, recall_key) is not None
    ]
    front = [
        i
        for i, lat, rec in points
        if not any((l2 <= lat and r2 >= rec) and (l2 < lat or r2 > rec) for _, l2, r2 in points)
    ]
    return sorted(front, key=lambda i: (getattr(rows[i], latency_key), -getattr(rows[i], recall_key)))


def recommend(
    rows: Sequence[SweepRow],
    target: float,
    budget_ms: float | None = None,
    *,
    k: int = 10,
    recall_key: str = "recall_exact",
    latency_key: str = "p95_ms",
) -> Recommendation:
    """The cheapest configuration that meets ``target``: lowest latency among rows with recall >= target
    (and latency <= ``budget_ms`` when given); ties: smaller index, smaller m, smaller ef."""
    _check_keys(recall_key, latency_key)
    if not 0.0 <= target <= 1.0:
        raise InputError(f"the recall target must be in [0, 1], got {target}")
    what = "against exact search" if recall_key == "recall_exact" else "against the gold eval set"
    lat_name = "P95" if latency_key == "p95_ms" else "P50"
    scored = [(i, r) for i, r in enumerate(rows) if getattr(r, recall_key) is not None]
    if not scored:
        return Recommendation(
            None, f"No configuration has recall {what}: give an eval set or pick recall_exact."
        )
    meets = [(i, r) for i, r in scored if getattr(r, recall_key) >= target]
    within = [(i, r) for i, r in meets if budget_ms is None or getattr(r, latency_key) <= budget_ms]
    if not within:
        _, best = max(scored, key=lambda ir: (getattr(ir[1], recall_key), -getattr(ir[1], latency_key)))
        if meets:
            fastest = min(getattr(r, latency_key) for _, r in meets)
            return Recommendation(
                None,
                f"No configuration reaches recall@{k} >= {target:g} {what} within the {budget_ms:g} ms "
                f"budget: the fastest that reaches it takes {fastest:.2f} ms at {lat_name}, so raise the "
                f"budget or lower the target.",
            )
        return Recommendation(
            None,
            f"No configuration reaches recall@{k} >= {target:g} {what}: the best is {best.label} with "
            f"{getattr(best, recall_key):.3f} at {lat_name} {getattr(best, latency_key):.2f} ms, so try a "
            f"larger ef or m, or lower the target.",
        )
    index, row = min(
        within,
        key=lambda ir: (getattr(ir[1], latency_key), ir[1].index_bytes or 0, ir[1].m, ir[1].ef),
    )
    budget = f", within the {budget_ms:g} ms budget" if budget_ms is not None else ""
    return Recommendation(
        index,
        f"{row.label} is the cheapest of the {len(within)} configurations that reach recall@{k} >= "
        f"{target:g} {what}{budget}: recall {getattr(row, recall_key):.3f} at {lat_name} "
        f"{getattr(row, latency_key):.2f} ms.",
    )


def run_sweep(
    store: VectorStore,
    collection: str,
    queries: QuerySet,
    *,
    ms: Sequence[int] = DEFAULT_MS,
    ef_constructs: Sequence[int] = DEFAULT_EF_CONSTRUCTS,
    efs: Sequence[int] = DEFAULT_EFS,
    k: int = 10,
    target: float = 0.95,
    budget_ms: float | None = None,
    recall_key: str | None = None,
    latency_key: str = "p95_ms",
    points: StoredVectors | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """``sweep`` plus the Pareto front and the recommendation (recall against gold when the queries carry
    gold, else against exact search, unless ``recall_key`` says)."""
    recall_key = recall_key or ("recall_gold" if queries.qrels is not None else "recall_exact")
    _check_keys(recall_key, latency_key)
    started = time.perf_counter()
    physical = store.resolve(collection)
    info = store.collection_info(physical)
    live = info.hnsw
    rows = sweep(
        store, physical, queries, ms=ms, ef_constructs=ef_constructs, efs=efs, k=k, points=points,
        progress=progress,
    )  # fmt: skip
    result = SweepResult(
        collection=physical,
        k=k,
        query_source=queries.source,
        queries=len(queries),
        rows=rows,
        recommendation=Recommendation(None, ""),
        target=target,
        budget_ms=budget_ms,
        recall_key=recall_key,
        latency_key=latency_key,
        total_s=time.perf_counter() - started,
        live={"m": live.m, "ef_construct": live.ef_construct},
        notes=sweep_notes(info, rows),
    )
    return choose(result, target, budget_ms, recall_key=recall_key, latency_key=latency_key)


def sweep_notes(info: CollectionInfo, rows: Sequence[SweepRow]) -> list[str]:
    """Plain-language caveats: a collection under the full-scan threshold is searched exactly (HNSW
    settings change nothing there); ef below k is k."""
    notes = []
    vector_kb = info.points * info.dimension * 4 / 1024
    if vector_kb < info.hnsw.full_scan_threshold:
        notes.append(
            f"{info.name} holds {vector_kb:,.0f} KB of vectors, under its full_scan_threshold of "
            f"{info.hnsw.full_scan_threshold:,} KB: the engine searches it exactly (no HNSW), so m and ef "
            f"change nothing here until it grows past the threshold"
        )
    if rows and all(r.recall_exact == 1.0 for r in rows):
        notes.append("every configuration found the exact top-k: the cheapest one costs nothing in recall")
    return notes


def choose(
    result: SweepResult,
    target: float,
    budget_ms: float | None = None,
    *,
    recall_key: str = "recall_exact",
    latency_key: str = "p95_ms",
) -> SweepResult:
    """The same sweep with the front and the recommendation worked out for this target, budget and
    choice of recall and latency (the page's sliders call it; nothing is measured again)."""
    front = set(pareto_front(result.rows, recall_key, latency_key))
    pick = recommend(
        result.rows, target, budget_ms, k=result.k, recall_key=recall_key, latency_key=latency_key
    )
    rows = [replace(r, on_front=i in front, recommended=i == pick.index) for i, r in enumerate(result.rows)]
    return replace(
        result,
        rows=rows,
        recommendation=pick,
        target=target,
        budget_ms=budget_ms,
        recall_key=recall_key,
        latency_key=latency_key,
    )


# ------------------------------------------------------------------ the live ef slider


@dataclass
class LiveSearch:
    """One query at one ef: its hits (with whether exact search also found them), latency and recall."""

    ef: int
    latency_ms: float
    recall_exact: float
    hits: list[dict[str, Any]]


def live_search(
    store: VectorStore, collection: str, vector: Sequence[float], ef: int, k: int = 10
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


# ------------------------------------------------------------------ applying


def _audit(actor: User | str, action: str, target: str, before: Any, after: Any, outcome: str = "ok") -> None:
    """The one place HNSW tuning actions are audited."""
    audit.record(actor, action, target, before=before, after=after, outcome=outcome)


def _allow(actor: User | str, role: Role, action: str, target: str) -> None:
    """Roles apply to users (``ui.current_user()``, ``roles.cli_user()``); a plain name is trusted code."""
    if isinstance(actor, User):
        require(actor, role, action, target=target)


def check_apply(actor: User | str, collection: str) -> None:
    """Changing a live collection's index needs the operator role (PermissionDenied, audited, otherwise)."""
    _allow(actor, Role.OPERATOR, "collection.hnsw", f"collection:{collection}")


def check_sweep(actor: User | str, collection: str) -> None:
    """Sweeping needs the engineer role (PermissionDenied, audited, otherwise)."""
    _allow(actor, Role.ENGINEER, "hnsw.sweep", f"collection:{collection}")


def policy_overrides(settings: Settings) -> PolicyOverrides:
    """The run-time policy overrides in the state database of ``settings``."""
    from ragdeck.services.policy_overrides import PolicyOverrides

    return PolicyOverrides(settings.state_db)


def apply_policy_ef(
    settings: Settings,
    policy: str,
    ef: int | None,
    *,
    actor: User | str,
    overrides: PolicyOverrides | None = None,
) -> tuple[int | None, int | None]:
    """Set the default search-time ef of ``policy`` (None: the engine's default) in the state database, where
    every process's policy loader picks it up; returns (before, after). A user needs the operator role."""
    policies = load_policies(settings)
    if policy not in policies:
        raise InputError(f"unknown policy {policy!r}: use one of {', '.join(sorted(policies))}")
    if ef is not None and (isinstance(ef, bool) or not isinstance(ef, int) or ef < 1):
        raise InputError(f"ef must be an integer >= 1 (or unset), got {ef!r}")
    _allow(actor, Role.OPERATOR, "policy.hnsw_ef", f"policy:{policy}")
    before = policies[policy].hnsw_ef
    name = actor if isinstance(actor, str) else actor.name
    (overrides or policy_overrides(settings)).set(policy, "hnsw_ef", ef, actor=name)
    _audit(actor, "policy.hnsw_ef", f"policy:{policy}", before, ef)
    return before, ef


def _while_reporting(
    work: Callable[[], None],
    report: Progress,
    stage: str,
    counts: Callable[[], tuple[int, int]] | None = None,
    poll_s: float = 0.5,
) -> None:
    """Run ``work`` on a worker thread, reporting ``stage`` with the elapsed seconds (and ``counts()``, e.g.
    vectors indexed of all, when given) every ``poll_s``; its exception is raised here."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hnsw-apply") as pool:
        future = pool.submit(work)
        while True:
            done, total = 0, 1
            if counts is not None:
                with contextlib.suppress(Exception):  # progress is best effort; the work's errors count
                    done, total = counts()
            report(f"{stage} ({time.monotonic() - started:.0f} s)", done, total)
            finished, _ = concurrent.futures.wait([future], timeout=poll_s)
            if finished:
                future.result()  # raises the work's error
                report(f"{stage}: done", 1, 1)
                return


def apply_hnsw(
    store: VectorStore,
    collection: str,
    m: int,
    ef_construct: int,
    *,
    actor: User | str,
    progress: Progress | None = None,
) -> tuple[HnswConfig, HnswConfig]:
    """Change m / ef_construct of a live collection (server: ``update_collection``, then wait for the
    index; embedded: rebuilt on a copy and swapped in, searches keep working); returns (before, after).
    A user needs the operator role."""
    physical = store.resolve(collection)
    check_apply(actor, physical)
    before = store.collection_info(physical).hnsw
    wanted = HnswConfig(m=m, ef_construct=ef_construct, full_scan_threshold=before.full_scan_threshold)
    report = progress or (lambda stage, done, total: None)
    try:
        stage = f"rebuilding {physical} with m={m} ef_construct={ef_construct}"
        _while_reporting(lambda: store.update_hnsw(physical, wanted), report, stage)
        if store.mode == "server":

            def indexed() -> tuple[int, int]:
                info = store.collection_info(physical)
                return info.indexed_vectors, max(info.points, 1)

            _while_reporting(lambda: store.finish_indexing(physical), report, "server indexing", indexed)
    except BaseException:
        _audit(actor, "collection.hnsw", f"collection:{physical}", asdict(before), asdict(wanted), "failed")
        raise
    after = store.collection_info(physical).hnsw
    report("done", 1, 1)
    _audit(actor, "collection.hnsw", f"collection:{physical}", asdict(before), asdict(after))
    return before, after
