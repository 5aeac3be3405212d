"""How deep a run retrieves, so that every cut-off it scores is filled.

Chunk cut-offs need k chunks: one search of ``max(ks)`` chunks (or the policy's ``top_n`` when larger).
Document cut-offs need k *documents*, and a ranking of chunks holds fewer documents than chunks (several
chunks of one document). Neither the embedded engine (qdrant-edge has no grouped search) nor the fusion and
reranking ragdeck does after the store can group by document, so the depth grows instead:

    chunks = max(chunk depth, DEPTH_FACTOR × k); search; while fewer than k distinct documents came back,
    the search returned all it was asked for, and chunks < MAX_CHUNKS: chunks = min(2 × chunks,
    MAX_CHUNKS); search again.

The ranking scored is the last search's (one search at one depth, never pieces of several), kept up to
what the cut-offs read: the first ``chunk depth`` chunks, and through the first chunk of the k-th document
(chunks after it change no metric). A query that
still holds fewer than k documents is *not filled*, because the collection (or, for lexical search, the
chunks sharing a term with the question) ran out, or the cap was reached; its ``Depth`` says which, and the
run lists it. Deeper searches are the same search with a larger limit: for dense search the first chunks
do not change (up to HNSW's approximation); in hybrid and reranked modes the candidate lists grow, as they
do whenever k exceeds the policy's ``top_k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

DEPTH_FACTOR = 2  # first chunk depth for k documents: k × this
MAX_CHUNKS = 10_000  # never retrieve more chunks than this for one query

Hit = TypeVar("Hit")

NOT_FILLED_WHY = {
    "exhausted": "the search returned every chunk it could (collection or matching chunks exhausted)",
    "cap": f"the depth reached the cap of {MAX_CHUNKS} chunks",
}


@dataclass(frozen=True)
class Depth:
    """What one query's ranking holds: ``chunks`` retrieved by the last search, ``chunks_scored`` kept (what
    the cut-offs read), the distinct ``documents`` retrieved, the ``searches`` it took, whether the
    ``documents_wanted`` were found (``filled``) and, when not, ``why`` ("exhausted" or "cap")."""

    chunks: int
    chunks_scored: int
    documents: int
    documents_wanted: int
    searches: int
    filled: bool
    why: str | None = None

    @property
    def documents_scored(self) -> int:
        """Documents the deepest document cut-off reads: at most ``documents_wanted``."""
        return min(self.documents, self.documents_wanted)

    def to_json(self) -> dict[str, Any]:
        """Every field, and ``documents_scored``."""
        return {**asdict(self), "documents_scored": self.documents_scored}


def retrieve_to_depth(
    search: Callable[[int], Sequence[Hit]],
    doc_of: Callable[[Hit], str],
    *,
    chunk_depth: int,
    documents: int,
) -> tuple[list[Hit], Depth]:
    """Search (``search(n)`` returns up to n hits, best first) deep enough to hold ``chunk_depth`` chunks
    and ``documents`` distinct documents (``doc_of`` names a hit's), as the module docstring says."""
    depth = max(chunk_depth, DEPTH_FACTOR * documents)
    searches = 0
    while True:
        hits = list(search(depth))
        searches += 1
        found = len(dict.fromkeys(map(doc_of, hits)))
        exhausted = len(hits) < depth
        if found >= documents or exhausted or depth >= MAX_CHUNKS:
            break
        depth = min(2 * depth, MAX_CHUNKS)
    filled = found >= documents
    why = None if filled else ("exhausted" if exhausted else "cap")
    kept = len(hits)
    if filled:
        seen: set[str] = set()
        for position, hit in enumerate(hits):
            seen.add(doc_of(hit))
            if len(seen) == documents:
                kept = max(position + 1, min(chunk_depth, len(hits)))
                break
    return hits[:kept], Depth(len(hits), kept, found, documents, searches, filled, why)


def depth_summary(depths: Sequence[dict[str, Any]], query_ids: Sequence[str]) -> dict[str, Any]:
    """A run's depth from its queries' ``Depth.to_json()``: chunks retrieved and documents scored (min,
    median, max), searches, and the queries not filled with why."""
    if not depths:
        return {}

    def spread(key: str) -> dict[str, float]:
        values = sorted(d[key] for d in depths)
        middle = len(values) // 2
        median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        return {"min": values[0], "median": median, "max": values[-1]}

    return {
        "chunks_retrieved": spread("chunks"),
        "chunks_scored": spread("chunks_scored"),
        "documents_scored": spread("documents_scored"),
        "documents_wanted": max(d["documents_wanted"] for d in depths),
        "searches": sum(d["searches"] for d in depths),
        "not_filled": {q: d["why"] for q, d in zip(query_ids, depths, strict=True) if not d["filled"]},
    }


def method_text() -> str:
    """One line saying how the depth was chosen (stored with every run)."""
    return (
        f"chunk cut-offs: max(ks) chunks; document cut-offs: k documents of the deduplicated ranking, "
        f"retrieved from {DEPTH_FACTOR}×k chunks, doubling until k documents, the search runs out, "
        f"or {MAX_CHUNKS} chunks"
    )
