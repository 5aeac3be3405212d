"""The retrieval pipeline: take top-K candidates from the vector store, rerank to top-N.

Candidates come by ``retrieval`` mode: ``dense`` (embed the query, nearest vectors), ``lexical`` (BM25 over
the collection's sparse vectors) or ``hybrid`` (top-K of each, fused by ``fusion``: RRF or weighted
scores). Every chunk keeps its rank and score in each list it came from, for the drill-downs.
Every stage is timed with ``time.perf_counter``; timings are milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ragdeck.console.interfaces import Embedder, VectorSearch
from ragdeck.console.knobs import RetrievalKnobs
from ragdeck.console.retrieval.fusion import FusedHit, fuse
from ragdeck.console.retrieval.ports import HybridSearch, Reranker
from ragdeck.errors import DimensionMismatch, InputError
from ragdeck.services.types import PayloadFilter, ScoredHit


@dataclass(frozen=True, kw_only=True)
class RetrievalParams(RetrievalKnobs):
    """How to retrieve: the knobs (``console.knobs``: ``top_k`` candidates from the store, from each list in
    hybrid mode, ``top_n`` returned after reranking; ``retrieval`` is dense, lexical or hybrid, fused by
    ``fusion``: rrf with ``rrf_k``, or weighted with ``dense_weight``), plus ``exact`` (brute force instead of
    HNSW), a ``payload_filter``, and ``list_ranks``: whether hybrid hits need their rank and score in each
    list (the pages and eval results show them; the RAG API's answers do not, and an engine that fuses
    saves the two lists without them). Invalid knobs raise InputError naming the knob."""

    exact: bool = False
    payload_filter: PayloadFilter | None = None
    list_ranks: bool = True


@dataclass
class RetrievedChunk:
    """One ranked chunk with where it came from and how it scored."""

    rank: int
    chunk_id: str
    doc_id: str
    score: float  # the score the ranking is by: rerank score when reranked, else the first-stage score
    vector_score: float  # the first-stage score: cosine (dense), BM25 (lexical) or fused (hybrid)
    rerank_score: float | None
    text: str
    title: str = ""
    section: str = ""
    source: str = ""
    start: int | None = None
    end: int | None = None
    body: str = ""
    dense_rank: int | None = None  # 1-based rank among the dense candidates (None: not among them)
    lexical_rank: int | None = None
    dense_score: float | None = None
    lexical_score: float | None = None
    fused_score: float | None = None  # hybrid only


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


def _candidates(hits: list[ScoredHit], retrieval: str) -> list[FusedHit]:
    """One list's hits with their ranks and scores on its side (dense or lexical)."""
    side = "dense" if retrieval == "dense" else "lexical"
    return [
        FusedHit(
            hit=h,
            score=h.score,
            dense_rank=rank if side == "dense" else None,
            lexical_rank=rank if side == "lexical" else None,
            dense_score=h.score if side == "dense" else None,
            lexical_score=h.score if side == "lexical" else None,
        )
        for rank, h in enumerate(hits, start=1)
    ]


def _to_chunk(rank: int, found: FusedHit, rerank_score: float | None, hybrid: bool) -> RetrievedChunk:
    hit = found.hit
    payload = hit.payload
    return RetrievedChunk(
        rank=rank,
        chunk_id=hit.id,
        doc_id=str(payload.get("doc_id", "")),
        score=rerank_score if rerank_score is not None else found.score,
        vector_score=found.score,
        rerank_score=rerank_score,
        text=str(payload.get("text", "")),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        source=str(payload.get("source", "")),
        start=payload.get("start"),
        end=payload.get("end"),
        body=str(payload.get("body", "")),
        dense_rank=found.dense_rank,
        lexical_rank=found.lexical_rank,
        dense_score=found.dense_score,
        lexical_score=found.lexical_score,
        fused_score=found.score if hybrid else None,
    )


class Retriever:
    """Runs the pipeline over one store, embedder and optional reranker."""

    def __init__(self, store: VectorSearch, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self._checked_dims: dict[str, int] = {}
        # RRF in the engine when the store declares it: one call, payloads only for the chunks kept.
        self._native = store if store.capabilities.native_fusion and isinstance(store, HybridSearch) else None

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

    def search(
        self,
        query: str,
        collection: str,
        params: RetrievalParams | None = None,
        *,
        vector: Sequence[float] | None = None,
    ) -> SearchResult:
        """Search ``collection`` (a name or alias) by ``params.retrieval``, rerank when a reranker is set.

        ``vector``: the query's embedding when the caller made it already (the eval runner embeds a run's
        questions in batches); its time is then not in ``timings_ms["embed"]``."""
        params = params or RetrievalParams()
        if not query.strip():
            raise InputError("the question is empty: type a question to search for")
        started = time.perf_counter()
        physical = self.store.resolve(collection)
        reranking = self.reranker is not None and params.rerank
        hybrid = params.retrieval == "hybrid"
        depth = params.top_k if reranking or hybrid else params.top_n

        t0 = time.perf_counter()
        if params.retrieval == "lexical":
            vector = None
        else:
            self._check_dimension(physical)
            if vector is None:
                vector = self.embedder.embed_query(query).tolist()
            elif len(vector) != self.embedder.dimension:
                raise DimensionMismatch(
                    f"the query vector is {len(vector)}-d but the embedder '{self.embedder.model_name}' "
                    f"makes {self.embedder.dimension}-d ones; embed the question with the same embedder"
                )
        t1 = time.perf_counter()
        ef, exact, where = params.hnsw_ef, params.exact, params.payload_filter
        keep = params.top_k if reranking else params.top_n
        candidates: list[FusedHit]
        if vector is None:
            lexical = self.store.search_lexical(physical, query, depth, payload_filter=where)
            candidates = _candidates(lexical, "lexical")
        elif hybrid and params.fusion == "rrf" and self._native is not None:
            candidates = self._native.search_hybrid(
                physical, vector, query, keep, depth=depth, rrf_k=params.rrf_k, hnsw_ef=ef, exact=exact,
                payload_filter=where, ranks=params.list_ranks,
            )  # fmt: skip
        elif hybrid:  # one call: a server answers both lists in one request
            dense, lexical = self.store.search_both(
                physical, vector, query, depth, hnsw_ef=ef, exact=exact, payload_filter=where
            )
            fused = fuse(
                dense, lexical, fusion=params.fusion, rrf_k=params.rrf_k, dense_weight=params.dense_weight
            )
            candidates = fused[:keep]
        else:
            dense = self.store.search(physical, vector, depth, hnsw_ef=ef, exact=exact, payload_filter=where)
            candidates = _candidates(dense, "dense")
        t2 = time.perf_counter()

        use_reranker = reranking and bool(candidates)
        if use_reranker:
            assert self.reranker is not None
            scores = self.reranker.rerank(query, [str(c.hit.payload.get("text", "")) for c in candidates])
            order = sorted(range(len(candidates)), key=lambda i: scores[i], reverse=True)[: params.top_n]
            hits = [_to_chunk(r + 1, candidates[i], float(scores[i]), hybrid) for r, i in enumerate(order)]
        else:
            hits = [_to_chunk(r + 1, c, None, hybrid) for r, c in enumerate(candidates[: params.top_n])]
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
