"""The retrieval pipeline: embed the query, take top-K from the vector store, rerank to top-N.

Every stage is timed with ``time.perf_counter``; timings are milliseconds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ragdeck.console.interfaces import Embedder, Reranker, VectorStore
from ragdeck.errors import DimensionMismatch, InputError
from ragdeck.services.types import PayloadFilter, ScoredHit


@dataclass(frozen=True)
class RetrievalParams:
    """How to retrieve: ``top_k`` candidates from the store, ``top_n`` returned after reranking."""

    top_k: int = 40
    top_n: int = 10
    hnsw_ef: int | None = None
    exact: bool = False
    rerank: bool = True
    payload_filter: PayloadFilter | None = None

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.top_n < 1:
            raise InputError(
                f"top_k and top_n must be at least 1 (got top_k={self.top_k}, top_n={self.top_n})"
            )
        if self.hnsw_ef is not None and self.hnsw_ef < 1:
            raise InputError(f"hnsw_ef must be at least 1 (got {self.hnsw_ef})")


@dataclass
class RetrievedChunk:
    """One ranked chunk with where it came from and how it scored."""

    rank: int
    chunk_id: str
    doc_id: str
    score: float  # the score the ranking is by: rerank score when reranked, else vector similarity
    vector_score: float
    rerank_score: float | None
    text: str
    title: str = ""
    section: str = ""
    source: str = ""
    start: int | None = None
    end: int | None = None
    body: str = ""


@dataclass
class SearchResult:
    """The outcome of one query: ranked chunks and per-stage timings in milliseconds."""

    query: str
    collection: str  # the physical collection that answered (an alias is resolved)
    hits: list[RetrievedChunk]
    timings_ms: dict[str, float]
    params: RetrievalParams
    reranker: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``hits`` (chunk_id, doc_id, score, text, ...) and ``timings_ms``."""
        return {
            "query": self.query,
            "collection": self.collection,
            "reranker": self.reranker,
            "params": asdict(self.params),
            "timings_ms": self.timings_ms,
            "hits": [asdict(hit) for hit in self.hits],
        }


def _to_chunk(rank: int, hit: ScoredHit, rerank_score: float | None) -> RetrievedChunk:
    payload = hit.payload
    return RetrievedChunk(
        rank=rank,
        chunk_id=hit.id,
        doc_id=str(payload.get("doc_id", "")),
        score=rerank_score if rerank_score is not None else hit.score,
        vector_score=hit.score,
        rerank_score=rerank_score,
        text=str(payload.get("text", "")),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        source=str(payload.get("source", "")),
        start=payload.get("start"),
        end=payload.get("end"),
        body=str(payload.get("body", "")),
    )


class Retriever:
    """Runs the pipeline over one store, embedder and optional reranker."""

    def __init__(self, store: VectorStore, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self._checked_dims: dict[str, int] = {}

    def _check_dimension(self, collection: str) -> None:
        if collection not in self._checked_dims:
            self._checked_dims[collection] = self.store.collection_info(collection).dimension
        expected, got = self._checked_dims[collection], self.embedder.dimension
        if expected != got:
            raise DimensionMismatch(
                f"collection '{collection}' holds {expected}-d vectors but the embedder "
                f"'{self.embedder.model_name}' makes {got}-d ones; search it with the model it was built "
                f"with or rebuild it"
            )

    def search(self, query: str, collection: str, params: RetrievalParams | None = None) -> SearchResult:
        """Embed ``query``, search ``collection`` (a name or alias), rerank when a reranker is set."""
        params = params or RetrievalParams()
        if not query.strip():
            raise InputError("the question is empty: type a question to search for")
        started = time.perf_counter()
        physical = self.store.resolve(collection)
        self._check_dimension(physical)

        t0 = time.perf_counter()
        vector = self.embedder.embed_query(query)
        t1 = time.perf_counter()
        candidates = self.store.search(
            physical,
            vector.tolist(),
            params.top_k if self.reranker is not None and params.rerank else params.top_n,
            hnsw_ef=params.hnsw_ef,
            exact=params.exact,
            payload_filter=params.payload_filter,
        )
        t2 = time.perf_counter()

        use_reranker = self.reranker is not None and params.rerank and bool(candidates)
        if use_reranker:
            assert self.reranker is not None
            scores = self.reranker.rerank(query, [str(c.payload.get("text", "")) for c in candidates])
            order = sorted(range(len(candidates)), key=lambda i: scores[i], reverse=True)[: params.top_n]
            hits = [_to_chunk(r + 1, candidates[i], float(scores[i])) for r, i in enumerate(order)]
        else:
            hits = [_to_chunk(r + 1, c, None) for r, c in enumerate(candidates[: params.top_n])]
        t3 = time.perf_counter()

        timings = {
            "embed": (t1 - t0) * 1000,
            "search": (t2 - t1) * 1000,
            "rerank": (t3 - t2) * 1000 if use_reranker else 0.0,
            "total": (t3 - started) * 1000,
        }
        return SearchResult(
            query=query,
            collection=physical,
            hits=hits,
            timings_ms=timings,
            params=params,
            reranker=self.reranker.model_name if use_reranker and self.reranker else None,
        )
