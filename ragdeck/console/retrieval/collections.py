"""What the Stack page and ``ragdeck collections`` show about the vector store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ragdeck.console.interfaces import VectorSearch
from ragdeck.errors import RagdeckError


def collection_rows(store: VectorSearch) -> list[dict[str, Any]]:
    """One row per physical collection: aliases, points, indexed share, dimension and HNSW config."""
    rows = []
    for info in store.list_collections():
        rows.append(
            {
                "collection": info.name,
                "aliases": ", ".join(sorted(info.aliases)),
                "points": info.points,
                "indexed_vectors": info.indexed_vectors,
                "indexed_share": round(info.indexed_share, 4),
                "dimension": info.dimension,
                "distance": info.distance,
                "hnsw_m": info.hnsw.m,
                "hnsw_ef_construct": info.hnsw.ef_construct,
                "status": info.status,
            }
        )
    return rows


def search_targets(store: VectorSearch) -> list[str]:
    """What a search or an eval can name: the aliases, then the physical collections, each sorted."""
    aliases = sorted(store.list_aliases())
    return aliases + sorted(c.name for c in store.list_collections() if c.name not in aliases)


def live_version(store: VectorSearch, alias: str) -> str | None:
    """The physical collection behind ``alias`` (the live index version), or None when it names nothing."""
    try:
        return store.resolve(alias)
    except RagdeckError:
        return None


# Where a chunk stood in each first-stage list; a column shows only when some chunk has a value for it.
BREAKDOWN_COLUMNS = ("dense_rank", "lexical_rank", "fused_score", "rerank_score")


def hit_rows(hits: Sequence[Mapping[str, Any]], marks: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One table row per ranked chunk (``asdict`` of a ``RetrievedChunk``, or a stored eval ``retrieved``
    entry): rank, the ``marks`` (e.g. an eval's gold marker) when given, chunk, document, title when any
    chunk has one, score, then dense rank, lexical rank, fused score and rerank score, each only when some
    chunk has it (a chunk missing from a list, or an older eval run, leaves a blank)."""
    optional = [k for k in ("title", *BREAKDOWN_COLUMNS) if any(h.get(k) not in (None, "") for h in hits)]
    rows = []
    for i, hit in enumerate(hits):
        row: dict[str, Any] = {"rank": hit.get("rank") or i + 1}
        if marks is not None:
            row["hit"] = marks[i]
        row["chunk"] = hit.get("chunk_id")
        row["document"] = hit.get("doc_id")
        if "title" in optional:
            row["title"] = hit.get("title") or ""
        row["score"] = hit.get("score")
        row.update({k: hit.get(k) for k in optional if k != "title"})
        rows.append(row)
    return rows


def score_breakdown(hit: Mapping[str, Any]) -> str:
    """A chunk's scores in words: "dense #2 (0.713) · lexical #1 (BM25 7.41) · fused 0.0325 · rerank 3.2";
    parts the chunk lacks are left out ("" when it has none)."""
    parts = []
    if hit.get("dense_rank") is not None:
        score = hit.get("dense_score")
        parts.append(f"dense #{hit['dense_rank']}" + (f" ({score:.3f})" if score is not None else ""))
    if hit.get("lexical_rank") is not None:
        score = hit.get("lexical_score")
        bm25 = f" (BM25 {score:.2f})" if score is not None else ""
        parts.append(f"lexical #{hit['lexical_rank']}{bm25}")
    if hit.get("fused_score") is not None:
        parts.append(f"fused {hit['fused_score']:.4f}")
    if hit.get("rerank_score") is not None:
        parts.append(f"rerank {hit['rerank_score']:.3f}")
    return " · ".join(parts)
