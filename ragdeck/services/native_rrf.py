"""Qdrant's own RRF fusion (qdrant-edge's ``Fusion.Rrf(k)``, the server's ``RrfQuery(Rrf(k))``) read back in
ragdeck's terms, for both store adapters' ``search_hybrid``: each fused chunk's rank and score in the dense
and the lexical list, and ragdeck's order (``console.retrieval.fusion``) where Qdrant's differs.

Qdrant counts the rank from 0 as ragdeck does, but sums in float32 and leaves chunks of equal score in no
defined order; ragdeck sums in float64 and breaks ties by the better dense rank, then the better lexical
rank. So the fused chunks are re-scored from the two lists and re-sorted by ragdeck's key, and when a chunk
Qdrant left out ties with one it kept at the cut (``cut`` is None then) the caller loads ragdeck's choice
instead (``full_order``). Points are anything with ``id``, ``score`` and ``payload`` (either engine's).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from ragdeck.services.types import FusedHit, ScoredHit

# Engine scores closer than this (relative) count as a tie: Qdrant sums in float32 (about 6e-8 relative per
# operation), so two sums it orders apart by more than this are in ragdeck's float64 order too.
TIE_TOLERANCE = 1e-6

Ranks = dict[Any, tuple[int, float, Any]]  # key -> (rank from 0, score, point id) in one list


def key(point_id: Any) -> Any:
    """A point id as a dict key: a UUID's integer (hashing a ``uuid.UUID`` runs Python code each time,
    and qdrant-edge hands every id as one), any other id as it is."""
    return point_id.int if isinstance(point_id, UUID) else point_id


def ranks(points: Sequence[Any]) -> Ranks:
    """Key -> (rank from 0, score, point id) of one list (the first place of an id that comes twice)."""
    at: Ranks = {}
    for rank, p in enumerate(points):
        pid = p.id
        k = pid.int if isinstance(pid, UUID) else pid
        if k not in at:
            at[k] = (rank, p.score, pid)
    return at


def rrf(dense: Ranks, lexical: Ranks, k: int) -> dict[Any, float]:
    """Every candidate's RRF score in float64: the sum over its lists of ``1 / (k + rank)``."""
    scores = {pid: 1.0 / (k + r) for pid, (r, _, _) in dense.items()}
    for pid, (r, _, _) in lexical.items():
        scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + r)
    return scores


def order(ids: Sequence[Any], scores: dict[Any, float], dense: Ranks, lexical: Ranks) -> list[Any]:
    """``ids`` in ragdeck's fused order: best score, then better dense rank, then better lexical rank."""
    never = len(dense) + len(lexical) + 1
    return sorted(
        ids,
        key=lambda pid: (
            -scores[pid],
            dense[pid][0] if pid in dense else never,
            lexical[pid][0] if pid in lexical else never,
        ),
    )


def cut(fused: Sequence[Any], limit: int, dense: Ranks, lexical: Ranks, k: int) -> list[FusedHit] | None:
    """The engine's fused points (with payloads) as ragdeck's top ``limit``, or None when ragdeck's top
    ``limit`` holds a candidate the engine did not return (a tie at the cut): then use ``full_order``."""
    scores = rrf(dense, lexical, k)
    by_id = {key(p.id): p for p in fused}
    if any(pid not in scores for pid in by_id):
        return None
    kept = order(list(by_id), scores, dense, lexical)
    wanted = min(limit, len(scores))
    if len(kept) < wanted:
        return None
    if kept and len(scores) > len(kept):
        worst = scores[kept[-1]]
        best_left = max(s for pid, s in scores.items() if pid not in by_id)
        if best_left >= worst:  # a tie (or the engine's float32 rounding) at the cut: ragdeck decides
            return None
    return [fused_hit(by_id[pid], pid, scores, dense, lexical) for pid in kept[:wanted]]


def full_order(limit: int, dense: Ranks, lexical: Ranks, k: int) -> list[Any]:
    """Ragdeck's top ``limit`` over both lists (keys)."""
    scores = rrf(dense, lexical, k)
    return order(list(scores), scores, dense, lexical)[:limit]


def hit(point_id: Any, score: float, payload: dict[str, Any] | None) -> ScoredHit:
    """A ``ScoredHit`` of a Qdrant point: its chunk id (the payload's ``chunk_id``, else the point id).
    Both engines hand a new payload dict per point, so it is kept as it is, not copied."""
    payload = payload if payload is not None else {}
    chunk_id = payload.get("chunk_id")
    return ScoredHit(str(chunk_id) if chunk_id is not None else str(point_id), float(score), payload)


def fused_hit(point: Any, at: Any, scores: dict[Any, float], dense: Ranks, lexical: Ranks) -> FusedHit:
    """One fused chunk (``at``: its key): the point (a scored point or a record, with its payload), its
    ragdeck RRF score and its place in each list; its hit carries the dense score, else the lexical one
    (as ``fuse`` keeps)."""
    d, lx = dense.get(at), lexical.get(at)
    first = d or lx
    assert first is not None
    return FusedHit(
        hit=hit(first[2], first[1], point.payload),
        score=scores[at],
        dense_rank=d[0] + 1 if d else None,
        lexical_rank=lx[0] + 1 if lx else None,
        dense_score=float(d[1]) if d else None,
        lexical_score=float(lx[1]) if lx else None,
    )


def fused(
    fused_points: Sequence[Any],
    dense_points: Sequence[Any],
    lexical_points: Sequence[Any],
    limit: int,
    k: int,
    load: Callable[[list[Any]], Sequence[Any]],
) -> list[FusedHit]:
    """Ragdeck's top ``limit`` from Qdrant's fused points (with payloads) and the two lists they were
    fused from (payloads not needed); ``load(point_ids)`` fetches the payloads of ragdeck's choice when a
    tie at the cut makes it differ from Qdrant's."""
    dense, lexical = ranks(dense_points), ranks(lexical_points)
    chosen = cut(fused_points, limit, dense, lexical, k)
    if chosen is not None:
        return chosen
    wanted = full_order(limit, dense, lexical, k)
    point_ids = [(dense.get(w) or lexical[w])[2] for w in wanted]
    records = {key(r.id): r for r in load(point_ids)}
    scores = rrf(dense, lexical, k)
    return [fused_hit(records[w], w, scores, dense, lexical) for w in wanted]


def without_ranks(fused_points: Sequence[Any], limit: int) -> list[FusedHit] | None:
    """Ragdeck's top ``limit`` from Qdrant's fused points alone, asked for ``limit + 1`` of them (with
    payloads), when no per-list rank is wanted (the RAG API's answers show none): the engine's order and
    score (its float32 sum, within 1e-9 of ragdeck's; the hit carries it too) with no rank. None when two
    of them tie within ``TIE_TOLERANCE`` (the one past the cut included): only the two lists can say
    ragdeck's order then, so the caller takes the full path (``fused``)."""
    scores = [float(p.score) for p in fused_points[: limit + 1]]
    for better, worse in itertools.pairwise(scores):
        if better - worse <= TIE_TOLERANCE * abs(better):
            return None
    out = []
    for p, score in zip(fused_points[:limit], scores, strict=False):
        payload = p.payload or {}
        # the point id (a UUID object, ~1 µs to make) only for a point whose payload names no chunk
        point_id = p.id if payload.get("chunk_id") is None else None
        out.append(FusedHit(hit(point_id, score, payload), score, None, None, None, None))
    return out


def from_lists(
    dense_hits: Sequence[ScoredHit], lexical_hits: Sequence[ScoredHit], limit: int, k: int
) -> list[FusedHit]:
    """Ragdeck's RRF of two lists that carry their payloads, where Qdrant does not fuse (a query with no
    lexical term, or a server without a parametrised RRF)."""
    by_id = {h.id: h for h in [*lexical_hits, *dense_hits]}
    return fused([], dense_hits, lexical_hits, limit, k, lambda ids: [by_id[i] for i in ids])
