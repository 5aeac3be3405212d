"""What the Stack page and ``ragdeck collections`` show about the vector store."""

from __future__ import annotations

from typing import Any

from ragdeck.console.interfaces import VectorStore
from ragdeck.errors import RagdeckError


def collection_rows(store: VectorStore) -> list[dict[str, Any]]:
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


def search_targets(store: VectorStore) -> list[str]:
    """What a search or an eval can name: the aliases, then the physical collections, each sorted."""
    aliases = sorted(store.list_aliases())
    return aliases + sorted(c.name for c in store.list_collections() if c.name not in aliases)


def live_version(store: VectorStore, alias: str) -> str | None:
    """The physical collection behind ``alias`` (the live index version), or None when it names nothing."""
    try:
        return store.resolve(alias)
    except RagdeckError:
        return None
