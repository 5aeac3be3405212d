"""Cheap trials: each question's candidate lists fetched once, at the deepest depth a study needs, and
served again by prefix to every trial that asks for them.

``CandidateCache`` stands in for the vector store under a ``Retriever``: a dense list is kept per
(collection, query vector, ef, exact, filter), a lexical list per (collection, text, filter); a search for
at most as many hits as are kept, or for any number once a list came back shorter than asked (nothing
more to find), is answered from the kept list's first hits; anything deeper goes to the store at
``max(limit, depth)``. It declares no native fusion, so hybrid trials fuse in ragdeck (``fusion.fuse``),
which ranks as the engine does (tests prove it). A trial that changes only the fusion or the cut-offs
therefore costs no engine call; ``calls`` counts the ones made. ``RerankCache`` keeps the reranker's score
per (question, text) the same way.

A prefix of a deeper dense search is the shallower search for exact search and for collections searched
without HNSW; with HNSW the engine searches with ``max(ef, limit)``, so a prefix can be slightly *more*
accurate than a shallow search of its own.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ragdeck.console.interfaces import VectorSearch
from ragdeck.console.retrieval.ports import Reranker
from ragdeck.services.types import (
    CollectionInfo,
    ComponentHealth,
    PayloadFilter,
    ScoredHit,
    StoreCapabilities,
)


class CandidateCache:
    """A read-only ``VectorSearch`` over ``store`` that keeps and reuses candidate lists (see the module)."""

    def __init__(self, store: VectorSearch, *, depth: int) -> None:
        self.store = store
        self.depth = depth  # the least a list is fetched at: the deepest candidate depth of the study
        self.calls: Counter[str] = Counter()  # engine calls made: "dense", "lexical", "both"
        self._lists: dict[tuple[Any, ...], tuple[list[ScoredHit], int]] = {}  # key -> (hits, asked)
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> StoreCapabilities:
        """The store's, without native fusion: hybrid lists are fused from the kept lists."""
        return dataclasses.replace(self.store.capabilities, native_fusion=False)

    def resolve(self, name: str) -> str:
        """The store's resolution of an alias."""
        return self.store.resolve(name)

    def collection_info(self, name: str) -> CollectionInfo:
        """The store's."""
        return self.store.collection_info(name)

    def _kept(self, key: tuple[Any, ...], limit: int) -> list[ScoredHit] | None:
        found = self._lists.get(key)
        if found is None:
            return None
        hits, asked = found
        return hits[:limit] if limit <= len(hits) or len(hits) < asked else None

    def _keep(self, key: tuple[Any, ...], hits: list[ScoredHit], asked: int) -> None:
        with self._lock:
            self._lists[key] = (hits, asked)

    @staticmethod
    def _dense_key(name: str, vector: Sequence[float], ef: int | None, exact: bool, where: Any) -> tuple:
        return ("dense", name, tuple(vector), ef, exact, repr(where))

    def search(
        self,
        name: str,
        vector: Sequence[float],
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> list[ScoredHit]:
        """The dense list, from the kept one when it holds ``limit`` hits."""
        key = self._dense_key(name, vector, hnsw_ef, exact, payload_filter)
        kept = self._kept(key, limit)
        if kept is not None:
            return kept
        depth = max(limit, self.depth)
        self.calls["dense"] += 1
        where = payload_filter
        hits = self.store.search(name, vector, depth, hnsw_ef=hnsw_ef, exact=exact, payload_filter=where)
        self._keep(key, hits, depth)
        return hits[:limit]

    def search_lexical(
        self, name: str, text: str, limit: int, *, payload_filter: PayloadFilter | None = None
    ) -> list[ScoredHit]:
        """The lexical list, from the kept one when it holds ``limit`` hits."""
        key = ("lexical", name, text, repr(payload_filter))
        kept = self._kept(key, limit)
        if kept is not None:
            return kept
        depth = max(limit, self.depth)
        self.calls["lexical"] += 1
        hits = self.store.search_lexical(name, text, depth, payload_filter=payload_filter)
        self._keep(key, hits, depth)
        return hits[:limit]

    def search_both(
        self,
        name: str,
        vector: Sequence[float],
        text: str,
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> tuple[list[ScoredHit], list[ScoredHit]]:
        """Both lists, from the kept ones when they hold ``limit`` hits, else both from the store in one
        call."""
        dense_key = self._dense_key(name, vector, hnsw_ef, exact, payload_filter)
        lexical_key = ("lexical", name, text, repr(payload_filter))
        dense, lexical = self._kept(dense_key, limit), self._kept(lexical_key, limit)
        if dense is not None and lexical is not None:
            return dense, lexical
        depth = max(limit, self.depth)
        self.calls["both"] += 1
        dense_hits, lexical_hits = self.store.search_both(
            name, vector, text, depth, hnsw_ef=hnsw_ef, exact=exact, payload_filter=payload_filter
        )
        self._keep(dense_key, dense_hits, depth)
        self._keep(lexical_key, lexical_hits, depth)
        return dense_hits[:limit], lexical_hits[:limit]

    def __getattr__(self, name: str) -> Any:  # every other read (retrieve for the judge, ...) as the store's
        return getattr(self.store, name)


class RerankCache:
    """A ``Reranker`` that scores each (question, text) once and reuses the score (see the module)."""

    def __init__(self, reranker: Reranker) -> None:
        self.reranker = reranker
        self.mode = reranker.mode
        self.model_name = reranker.model_name
        self.calls = 0  # reranker calls made
        self._scores: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, the unseen ones from the reranker in one call."""
        missing = list(dict.fromkeys(t for t in texts if (query, t) not in self._scores))
        if missing:
            self.calls += 1
            scores = self.reranker.rerank(query, missing)
            with self._lock:
                self._scores.update({(query, t): float(s) for t, s in zip(missing, scores, strict=True)})
        return [self._scores[(query, t)] for t in texts]

    def health(self) -> ComponentHealth:
        """The reranker's."""
        return self.reranker.health()
