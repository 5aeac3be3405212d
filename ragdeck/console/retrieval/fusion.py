"""Fusing a dense and a lexical ranking of the same chunks into one.

- **RRF** (reciprocal rank fusion): ``score(d) = sum over the lists holding d of 1 / (k + rank)``, with
  ``rank`` counted from 0 as Qdrant's Query API counts it, so ``k`` means what Qdrant's ``Rrf(k)`` means and
  the fused order equals the engine's own (Cormack et al.'s formula ranks from 1: their k is this k - 1).
- **Weighted score fusion**: each list's scores are min-max normalised to [0, 1] over the candidates (one
  candidate, or all scores equal, gives 1), then ``w * dense + (1 - w) * lexical``; a chunk missing from a
  list gets 0 from it. The scores of the two lists are on different scales (cosine vs BM25), which is why
  they are normalised before they are weighted.
- **Distribution-based score fusion** (DBSF, as Qdrant's ``Fusion.DBSF`` computes it): each list's scores
  are scaled so that its mean − 3σ maps to 0 and its mean + 3σ to 1 (σ the sample standard deviation of
  the list's scores, n − 1; one candidate, or all equal, gives 0.5), then the two are summed; a chunk
  missing from a list gets 0 from it. Scores beyond 3σ are not clipped. Unlike min-max, one extreme score
  does not squeeze the others together.

Ties are broken by the better dense rank, then the better lexical rank, then the chunk id: the same input
always gives the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragdeck.console.knobs import DEFAULT_RRF_K, KNOBS, check_fusion
from ragdeck.services.types import FusedHit, ScoredHit

__all__ = ["FusedHit", "fuse", "rrf_scores"]


def rrf_scores(rankings: Sequence[Sequence[str]], k: int = DEFAULT_RRF_K) -> dict[str, float]:
    """RRF score of every id in any ranking: sum of ``1 / (k + rank)``, rank from 0 (Qdrant's formula)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(dict.fromkeys(ranking)):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def _distribution_scaled(hits: Sequence[ScoredHit]) -> dict[str, float]:
    """DBSF's scaling of one list: (score - (mean - 3σ)) / 6σ; 0.5 for every hit when σ is 0."""
    if not hits:
        return {}
    scores = [h.score for h in hits]
    mean = sum(scores) / len(scores)
    sigma = (sum((s - mean) ** 2 for s in scores) / max(1, len(scores) - 1)) ** 0.5
    if sigma <= 0:
        return {h.id: 0.5 for h in hits}
    low = mean - 3 * sigma
    return {h.id: (h.score - low) / (6 * sigma) for h in hits}


def _normalised(hits: Sequence[ScoredHit]) -> dict[str, float]:
    if not hits:
        return {}
    low, high = min(h.score for h in hits), max(h.score for h in hits)
    span = high - low
    return {h.id: (h.score - low) / span if span > 0 else 1.0 for h in hits}


def fuse(
    dense: Sequence[ScoredHit],
    lexical: Sequence[ScoredHit],
    *,
    fusion: str = KNOBS["fusion"].default,
    rrf_k: int = DEFAULT_RRF_K,
    dense_weight: float = KNOBS["dense_weight"].default,
) -> list[FusedHit]:
    """The union of both lists, best fused score first, each with its ranks and scores in both lists."""
    check_fusion("hybrid", fusion, rrf_k, dense_weight)
    dense_at = {h.id: (rank, h) for rank, h in reversed(list(enumerate(dense, start=1)))}
    lexical_at = {h.id: (rank, h) for rank, h in reversed(list(enumerate(lexical, start=1)))}
    if fusion == "rrf":
        scores = rrf_scores([[h.id for h in dense], [h.id for h in lexical]], rrf_k)
    elif fusion == "dbsf":
        dense_dbsf, lexical_dbsf = _distribution_scaled(dense), _distribution_scaled(lexical)
        scores = {
            cid: dense_dbsf.get(cid, 0.0) + lexical_dbsf.get(cid, 0.0) for cid in {**dense_at, **lexical_at}
        }
    else:
        dense_norm, lexical_norm = _normalised(dense), _normalised(lexical)
        scores = {
            cid: dense_weight * dense_norm.get(cid, 0.0) + (1 - dense_weight) * lexical_norm.get(cid, 0.0)
            for cid in {**dense_at, **lexical_at}
        }
    fused = []
    for cid, score in scores.items():
        d, lx = dense_at.get(cid), lexical_at.get(cid)
        fused.append(
            FusedHit(
                hit=(d or lx)[1],  # type: ignore[index]
                score=score,
                dense_rank=d[0] if d else None,
                lexical_rank=lx[0] if lx else None,
                dense_score=d[1].score if d else None,
                lexical_score=lx[1].score if lx else None,
            )
        )
    never = len(dense) + len(lexical) + 1
    fused.sort(key=lambda f: (-f.score, f.dense_rank or never, f.lexical_rank or never, f.hit.id))
    return fused
