"""``EmbeddedQdrantStore``, the ``VectorStore`` on qdrant-edge shards, and its points: upsert and delete
them, build the index, search (dense, lexical BM25, both from one state), retrieve by id and scroll.

The collection, alias, snapshot and rebuild operations it inherits live in ``catalog``, ``snapshots`` and
``rebuild``; handles and files in ``_shards``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from qdrant_edge import (
    Filter,
    Fusion,
    Point,
    Prefetch,
    Query,
    QueryBatchRequest,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    SearchRequest,
    SparseVector,
    UpdateOperation,
)

from ragdeck.errors import DimensionMismatch, InputError
from ragdeck.services import native_rrf
from ragdeck.services.common import check_batch_size, dimension_mismatch, in_order
from ragdeck.services.lexical import LEXICAL_VECTOR, SparseTerms, encoder, no_lexical_index
from ragdeck.services.qdrant_embedded._convert import hits, point_vectors, query_list, stored, to_filter
from ragdeck.services.qdrant_embedded._shards import Slot
from ragdeck.services.qdrant_embedded.rebuild import IndexRebuild
from ragdeck.services.qdrant_embedded.snapshots import Snapshots
from ragdeck.services.types import (
    FusedHit,
    PayloadFilter,
    ScoredHit,
    StoredPoint,
    VectorPoint,
    point_uuid,
)

__all__ = ["EmbeddedQdrantStore"]


class EmbeddedQdrantStore(Snapshots, IndexRebuild):
    """``VectorStore`` on qdrant-edge shards under ``root`` (see the package docstring for the layout).

    ``busy_timeout_s`` is how long to retry when another process holds a shard before raising
    ``StoreBusy``; ``upsert_batch_size`` bounds the points sent to the engine per update.
    """

    def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by chunk id; raises DimensionMismatch before writing anything.

        In a collection with a lexical index each point also gets its BM25 vector, from its payload text.
        """
        collection = self.resolve(name)
        with self._open(collection) as slot:
            assert slot.meta is not None
            dimension = int(slot.meta["dimension"])
            lexical = bool(slot.meta.get("lexical"))
        prepared: list[tuple[str, list[float], dict[str, Any]]] = []
        for p in points:
            if not isinstance(p.id, str) or not p.id:
                raise InputError(f"point id {p.id!r} is not a non-empty chunk id string")
            vector = p.vector.tolist() if isinstance(p.vector, np.ndarray) else list(p.vector)
            if len(vector) != dimension:
                raise dimension_mismatch(collection, dimension, len(vector))
            payload = dict(p.payload or {})
            if payload.setdefault("chunk_id", p.id) != p.id:
                raise InputError(
                    f"point '{p.id}' carries payload chunk_id {payload['chunk_id']!r}; "
                    f"the payload's chunk_id must equal the point id"
                )
            prepared.append((p.id, vector, payload))
        for begin in range(0, len(prepared), self.upsert_batch_size):
            batch = [
                Point(point_uuid(cid), point_vectors(vector, payload) if lexical else vector, payload)
                for cid, vector, payload in prepared[begin : begin + self.upsert_batch_size]
            ]
            with self._open(collection) as slot:
                assert slot.shard is not None
                slot.shard.update(UpdateOperation.upsert_points(batch))
                slot.writes += 1

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        """Delete points by chunk id (unknown ids are ignored); an extra, like on the server store."""
        collection = self.resolve(name)
        if not ids:
            return
        with self._open(collection) as slot:
            assert slot.shard is not None
            slot.shard.update(UpdateOperation.delete_points([point_uuid(i) for i in dict.fromkeys(ids)]))
            slot.writes += 1

    def finish_indexing(self, name: str) -> None:
        """Run the optimizers (builds HNSW for every segment over 1 KB of vectors) and flush."""
        with self._open(self.resolve(name)) as slot:
            assert slot.shard is not None
            slot.shard.optimize()
            slot.shard.flush()

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
        """Nearest points by cosine similarity, best first; ``name`` may be an alias.

        Note: the engine searches with ``max(hnsw_ef, limit)``, so an ef below ``limit`` changes nothing.
        """
        collection = self.resolve(name)
        if limit <= 0:
            return []
        query = query_list(vector)
        with self._open(collection) as slot:
            return self._dense(slot, collection, query, limit, hnsw_ef, exact, to_filter(payload_filter))

    def search_lexical(
        self, name: str, text: str, limit: int, *, payload_filter: PayloadFilter | None = None
    ) -> list[ScoredHit]:
        """Points by BM25 score of ``text`` (Qdrant's IDF over the collection), best first; points that
        share no term with it are not returned. Raises InputError for a collection built without a
        lexical index."""
        collection = self.resolve(name)
        if limit <= 0:
            return []
        terms = encoder().query(text)
        with self._open(collection) as slot:
            return self._lexical(slot, collection, terms, limit, to_filter(payload_filter))

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
        """The dense and the lexical candidates of one hybrid query from the same state of the collection
        (no write between them): ``(search(...), search_lexical(...))``."""
        collection = self.resolve(name)
        if limit <= 0:
            return [], []
        query, terms, where = query_list(vector), encoder().query(text), to_filter(payload_filter)
        with self._open(collection) as slot:
            dense = self._dense(slot, collection, query, limit, hnsw_ef, exact, where)
            return dense, self._lexical(slot, collection, terms, limit, where)

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
        """Hybrid search fused by the engine: the top ``depth`` dense and lexical candidates fused by RRF
        (``Fusion.Rrf(k=rrf_k)``), the best ``limit`` returned with payloads, each with its rank and score
        in both lists; the same chunks, order and scores as ``fuse(*search_both(..., depth), rrf_k=...)``
        (see ``services.native_rrf``). One batch of three engine queries: the fused one, and the two
        lists without payloads for the ranks (payloads are what costs). ``ranks`` False: the fused query
        alone when no two of its scores tie (``native_rrf.without_ranks``), with no per-list rank."""
        collection = self.resolve(name)
        if limit <= 0 or depth <= 0:
            return []
        query, terms, where = query_list(vector), encoder().query(text), to_filter(payload_filter)
        params = SearchParams(hnsw_ef=hnsw_ef, exact=exact)
        dense_query = Query.Nearest(query)
        with self._open(collection) as slot:
            assert slot.shard is not None
            self._check_query(slot, collection, query)
            if not slot.meta.get("lexical"):  # type: ignore[union-attr]
                raise no_lexical_index(collection)
            if not terms.indices:  # no lexical candidate: the fused list is the dense one
                found = self._dense(slot, collection, query, min(limit, depth), hnsw_ef, exact, where)
                return [
                    FusedHit(h, 1.0 / (rrf_k + r), r + 1, None, h.score, None) for r, h in enumerate(found)
                ]
            sparse = Query.Nearest(SparseVector(terms.indices, terms.values), using=LEXICAL_VECTOR)
            prefetches = [
                Prefetch(limit=int(depth), query=dense_query, params=params, filter=where),
                Prefetch(limit=int(depth), query=sparse, filter=where),
            ]
            rrf = Fusion.Rrf(k=int(rrf_k))
            lists = [
                QueryRequest(
                    limit=int(depth), query=dense_query, params=params, filter=where, with_payload=False
                ),
                QueryRequest(limit=int(depth), query=sparse, filter=where, with_payload=False),
            ]
            if ranks:
                fused_query = QueryRequest(
                    limit=int(limit), prefetches=prefetches, query=rrf, filter=where, with_payload=True
                )
                fused, dense, lexical = slot.shard.query_batch(QueryBatchRequest([fused_query, *lists]))
            else:  # the fused query alone, and the two lists only when two of its scores tie
                fused_query = QueryRequest(
                    limit=int(limit) + 1, prefetches=prefetches, query=rrf, filter=where, with_payload=True
                )
                fused = slot.shard.query(fused_query)
                alone = native_rrf.without_ranks(fused, limit)
                if alone is not None:
                    return alone
                dense, lexical = slot.shard.query_batch(QueryBatchRequest(lists))
            return native_rrf.fused(
                fused,
                dense,
                lexical,
                limit,
                rrf_k,
                lambda ids: slot.shard.retrieve(ids, with_payload=True, with_vector=False),  # type: ignore[union-attr]
            )

    @staticmethod
    def _check_query(slot: Slot, collection: str, query: list[float]) -> None:
        assert slot.meta is not None
        dimension = int(slot.meta["dimension"])
        if len(query) != dimension:
            raise DimensionMismatch(
                f"collection '{collection}' holds {dimension}-d vectors but the query is "
                f"{len(query)}-d; use the embedder the collection was built with or rebuild it"
            )

    def _dense(
        self,
        slot: Slot,
        collection: str,
        query: list[float],
        limit: int,
        hnsw_ef: int | None,
        exact: bool,
        where: Filter | None,
    ) -> list[ScoredHit]:
        """The dense search on an open slot (call inside ``_open``)."""
        assert slot.shard is not None
        self._check_query(slot, collection, query)
        request = SearchRequest(
            query=Query.Nearest(query),
            limit=int(limit),
            filter=where,
            params=SearchParams(hnsw_ef=hnsw_ef, exact=exact),
            with_payload=True,
        )
        return hits(slot.shard.search(request))

    @staticmethod
    def _lexical(
        slot: Slot, collection: str, terms: SparseTerms, limit: int, where: Filter | None
    ) -> list[ScoredHit]:
        """The BM25 search on an open slot (call inside ``_open``)."""
        assert slot.shard is not None and slot.meta is not None
        if not slot.meta.get("lexical"):
            raise no_lexical_index(collection)
        if not terms.indices:
            return []
        found = slot.shard.query(
            QueryRequest(
                query=Query.Nearest(SparseVector(terms.indices, terms.values), using=LEXICAL_VECTOR),
                limit=int(limit),
                filter=where,
                with_payload=True,
            )
        )
        return hits(found)

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """Points by chunk id, in the order asked (missing ids are skipped)."""
        collection = self.resolve(name)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        with self._open(collection) as slot:
            assert slot.shard is not None
            records = slot.shard.retrieve(
                [point_uuid(i) for i in wanted], with_payload=True, with_vector=with_vectors
            )
        return in_order((stored(r, with_vectors) for r in records), wanted)

    def iter_points(
        self, name: str, *, batch_size: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every point of a collection, scrolled in batches (the lock is not held between batches)."""
        collection = self.resolve(name)
        check_batch_size(batch_size)
        return self._scroll(collection, batch_size, with_vectors)

    def _scroll(self, collection: str, batch_size: int, with_vectors: bool) -> Iterator[StoredPoint]:
        offset: Any = None
        while True:
            with self._open(collection) as slot:
                assert slot.shard is not None
                records, offset = slot.shard.scroll(
                    ScrollRequest(
                        offset=offset, limit=batch_size, with_payload=True, with_vector=with_vectors
                    )
                )
            for r in records:
                yield stored(r, with_vectors)
            if offset is None:
                return
