"""The engine's RRF fusion read back in ragdeck's terms: each fused chunk's rank and score in the dense and
the lexical list, and ragdeck's order (``console.retrieval.fusion``) where the engine's differs.

The engine (``Fusion.Rrf(k)``, rank counted from 0 as ragdeck counts it) sums in float32 and leaves chunks
of equal score in no defined order; ragdeck sums in float64 and breaks ties by the better dense rank, then
the better lexical rank. So the fused chunks are re-scored from the two lists and re-sorted by ragdeck's key,
and when a chunk the engine left out ties with one it kept at the cut (``cut`` is None then) the caller
loads ragdeck's choice instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragdeck.services.qdrant_embedded._convert import hit
from ragdeck.services.types import FusedHit

Ranks = dict[Any, tuple[int, float]]  # point id -> (rank from 0, score) in one list


def ranks(points: Sequence[Any]) -> Ranks:
    """Point id -> (rank from 0, score) of one list (the first place of an id that comes twice)."""
    at: Ranks = {}
    for rank, p in enumerate(points):
        at.setdefault(p.id, (rank, p.score))
    return at


def rrf(dense: Ranks, lexical: Ranks, k: int) -> dict[Any, float]:
    """Every candidate's RRF score in float64: the sum over its lists of ``1 / (k + rank)``."""
    scores = {pid: 1.0 / (k + r) for pid, (r, _) in dense.items()}
    for pid, (r, _) in lexical.items():
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
    by_id = {p.id: p for p in fused}
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
    """Ragdeck's top ``limit`` point ids over both lists."""
    scores = rrf(dense, lexical, k)
    return order(list(scores), scores, dense, lexical)[:limit]


def fused_hit(point: Any, pid: Any, scores: dict[Any, float], dense: Ranks, lexical: Ranks) -> FusedHit:
    """One fused chunk: the point (a scored point or a record, with its payload), its ragdeck RRF score and
    its place in each list; its hit carries the dense score, else the lexical one (as ``fuse`` keeps)."""
    d, lx = dense.get(pid), lexical.get(pid)
    return FusedHit(
        hit=hit(pid, (d or lx)[1], point.payload),  # type: ignore[index]
        score=scores[pid],
        dense_rank=d[0] + 1 if d else None,
        lexical_rank=lx[0] + 1 if lx else None,
        dense_score=float(d[1]) if d else None,
        lexical_score=float(lx[1]) if lx else None,
    )
