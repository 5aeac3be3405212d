"""Between ragdeck's types and qdrant-edge's: the engine config of a collection, payload filters, point
vectors (dense beside the BM25 sparse one) and the records and hits the engine returns.

Pure functions over the engine's classes; no file, no handle, no lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HnswIndexConfig,
    MatchValue,
    Modifier,
    SparseVector,
)

from ragdeck.services.common import stored_point
from ragdeck.services.lexical import LEXICAL_VECTOR, encoder, lexical_text
from ragdeck.services.native_rrf import hit
from ragdeck.services.types import HnswConfig, PayloadFilter, ScoredHit, StoredPoint

INDEXING_THRESHOLD_KB = 1  # index every segment larger than 1 KB once optimize() runs (0 would disable it)
DEFAULT_SEGMENTS = 2
DISTANCE = "Cosine"


def edge_config(dimension: int, hnsw: HnswConfig, lexical: bool) -> EdgeConfig:
    """The engine config of a collection: cosine dense vectors, the BM25 sparse vector when ``lexical``."""
    return EdgeConfig(
        vectors=EdgeVectorParams(size=dimension, distance=Distance.Cosine),
        sparse_vectors={LEXICAL_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf)} if lexical else None,
        hnsw_config=HnswIndexConfig(
            m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=hnsw.full_scan_threshold
        ),
        optimizers=EdgeOptimizersConfig(
            indexing_threshold=INDEXING_THRESHOLD_KB, default_segment_number=DEFAULT_SEGMENTS
        ),
    )


def hnsw_from_meta(meta: dict[str, Any]) -> HnswConfig:
    """The HNSW settings recorded in a collection's meta.json."""
    h = meta["hnsw"]
    return HnswConfig(
        m=int(h["m"]), ef_construct=int(h["ef_construct"]), full_scan_threshold=int(h["full_scan_threshold"])
    )


def match_value(value: str | int | bool) -> MatchValue:
    """A payload value to match exactly."""
    # Trap: qdrant-edge reads a Python bool as the integer 0/1 (bool is an int subclass), so
    # MatchValue(True) never matches a stored `true`; numpy's bool_ is read as a real boolean.
    if isinstance(value, bool):
        return MatchValue(np.bool_(value))
    return MatchValue(value)


def to_filter(payload_filter: PayloadFilter | None) -> Filter | None:
    """Every key must match its value; None for no filter."""
    if not payload_filter:
        return None
    return Filter(must=[FieldCondition(key=k, match=match_value(v)) for k, v in payload_filter.items()])


def vector_list(vector: Any) -> list[float]:
    """The dense vector of a record, as floats (empty when the record has none)."""
    if isinstance(vector, dict):  # the unnamed dense vector beside the named sparse one
        vector = vector.get("")
    if vector is None:
        return []
    return [float(x) for x in vector]


def point_vectors(dense: list[float], payload: dict[str, Any]) -> dict[str, Any]:
    """A point's vectors in a collection with a lexical index: the dense one and its payload text's BM25."""
    terms = encoder().document(lexical_text(payload))
    if not terms.indices:  # no term to index: no sparse vector (so counting them counts real ones)
        return {"": dense}
    return {"": dense, LEXICAL_VECTOR: SparseVector(terms.indices, terms.values)}


def stored(record: Any, with_vectors: bool) -> StoredPoint:
    """A retrieved or scrolled record as a ``StoredPoint``."""
    return stored_point(record.id, record.payload, vector_list(record.vector) if with_vectors else None)


def hits(found: Iterable[Any]) -> list[ScoredHit]:
    """The engine's scored points as ``ScoredHit``s, in its order (best first); the engine hands a new
    payload dict on every read, so it is not copied again."""
    out = []
    for p in found:
        payload = p.payload
        chunk_id = payload.get("chunk_id") if payload else None
        # The point id (a UUID object, ~1 µs to make) only for a point whose payload names no chunk.
        out.append(
            hit(p.id, p.score, payload) if chunk_id is None else ScoredHit(str(chunk_id), p.score, payload)
        )
    return out


def query_list(vector: Any) -> list[float]:
    """A query vector as the list of floats the engine reads (a list of numbers is passed as it is)."""
    if isinstance(vector, np.ndarray):
        return vector.tolist()  # type: ignore[no-any-return]
    return vector if isinstance(vector, list) else [float(x) for x in vector]
