"""The retrieval-mode options that ``ragdeck search`` and ``ragdeck eval`` share."""

from __future__ import annotations

from typing import Annotated, Any

import typer

RetrievalOpt = Annotated[
    str | None,
    typer.Option(
        "--retrieval",
        "-r",
        help="dense (embeddings), lexical (BM25 over the same chunks) or hybrid (both, fused). "
        "Default: the policy's, else RAGDECK_RETRIEVAL (dense).",
    ),
]
FusionOpt = Annotated[
    str | None, typer.Option("--fusion", help="Hybrid fusion: rrf (reciprocal rank) or weighted (scores).")
]
RrfKOpt = Annotated[int | None, typer.Option("--rrf-k", min=1, help="RRF's k (as in Qdrant's Rrf(k)).")]
DenseWeightOpt = Annotated[
    float | None,
    typer.Option("--dense-weight", min=0.0, max=1.0, help="Weighted fusion: the dense list's weight."),
]


def retrieval_overrides(
    retrieval: str | None, fusion: str | None, rrf_k: int | None, dense_weight: float | None
) -> dict[str, Any]:
    """The options given on the command line, by their policy field names (unset ones left out)."""
    given = {"retrieval": retrieval, "fusion": fusion, "rrf_k": rrf_k, "dense_weight": dense_weight}
    return {name: value for name, value in given.items() if value is not None}
