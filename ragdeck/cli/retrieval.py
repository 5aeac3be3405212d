"""``ragdeck search``: one question through the retrieval pipeline; and the retrieval-mode options that
``ragdeck search`` and ``ragdeck eval`` share."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.table import Table

from ragdeck.cli.common import CollectionOpt, JsonOpt, open_stack, out
from ragdeck.console.ingest.documents import TEXT_PAYLOAD_FIELDS
from ragdeck.console.knobs import KNOBS
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import default_policy
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError

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
    str | None,
    typer.Option("--fusion", help="Hybrid fusion: rrf (ranks), weighted or dbsf (scores)."),
]
_RRF_K, _DENSE_WEIGHT = KNOBS["rrf_k"], KNOBS["dense_weight"]  # their bounds, defined once
RrfKOpt = Annotated[
    int | None, typer.Option("--rrf-k", min=_RRF_K.minimum, help="RRF's k (as in Qdrant's Rrf(k)).")
]
DenseWeightOpt = Annotated[
    float | None,
    typer.Option(
        "--dense-weight",
        min=_DENSE_WEIGHT.minimum,
        max=_DENSE_WEIGHT.maximum,
        help="Weighted fusion: the dense list's weight.",
    ),
]


def retrieval_overrides(
    retrieval: str | None, fusion: str | None, rrf_k: int | None, dense_weight: float | None
) -> dict[str, Any]:
    """The options given on the command line, by their policy field names (unset ones left out)."""
    given = {"retrieval": retrieval, "fusion": fusion, "rrf_k": rrf_k, "dense_weight": dense_weight}
    return {name: value for name, value in given.items() if value is not None}


def _parse_filters(values: list[str]) -> dict[str, str | int | bool] | None:
    """``KEY=VALUE`` items as a payload filter: ``true``/``false`` and integers are typed, except for the
    fields ragdeck stores as text (``TEXT_PAYLOAD_FIELDS``: ``doc_id=2024`` is the document named "2024")."""
    parsed: dict[str, str | int | bool] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(
                f"--filter '{item}': expected KEY=VALUE, e.g. --filter doc_id=tei/docs/source/en/quick_tour"
            )
        value: str | int | bool = raw
        if key in TEXT_PAYLOAD_FIELDS:
            pass
        elif raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif raw.lstrip("-").isdigit():
            value = int(raw)
        parsed[key] = value
    return parsed or None


def search_cmd(
    question: Annotated[str, typer.Argument(help="The question to retrieve contexts for.")],
    collection: CollectionOpt = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Results to return (top-N).")] = None,
    candidates: Annotated[int | None, typer.Option(help="Candidates from the vector store (top-K).")] = None,
    ef: Annotated[int | None, typer.Option("--ef", help="HNSW ef at search time.")] = None,
    exact: Annotated[bool, typer.Option(help="Exact (brute-force) search instead of HNSW.")] = False,
    rerank: Annotated[bool, typer.Option(help="Rerank when a reranker is configured.")] = True,
    filter_: Annotated[
        list[str], typer.Option("--filter", help="Payload filter KEY=VALUE (repeatable).")
    ] = [],  # noqa: B006
    retrieval: RetrievalOpt = None,
    fusion: FusionOpt = None,
    rrf_k: RrfKOpt = None,
    dense_weight: DenseWeightOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the retrieval pipeline for one question (dense, lexical or hybrid)."""
    settings = Settings()
    params = replace(
        default_policy("cli", settings).retrieval_params(),
        top_k=candidates or settings.top_k,
        top_n=k or settings.top_n,
        hnsw_ef=ef if ef is not None else settings.hnsw_ef,
        exact=exact,
        rerank=rerank,
        payload_filter=_parse_filters(filter_),
        **retrieval_overrides(retrieval, fusion, rrf_k, dense_weight),
    )
    with open_stack() as stack:
        result = Retriever(stack.store, stack.embedder, stack.reranker).search(
            question, collection or settings.alias, params
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    table = Table(title=f"{result.collection} ({params.retrieval}): {question}", show_lines=False)
    hybrid = params.retrieval == "hybrid"
    for column in ("#", "score", *(("dense #", "lexical #") if hybrid else ()), "chunk", "source"):
        table.add_column(column)
    for hit in result.hits:
        where = f"{hit.title} > {hit.section}" if hit.section else hit.title
        ranks = (_rank(hit.dense_rank), _rank(hit.lexical_rank)) if hybrid else ()
        table.add_row(str(hit.rank), f"{hit.score:.3f}", *ranks, hit.chunk_id, where)
    out.print(table)
    t = result.timings_ms
    out.print(
        f"embed {t['embed']:.1f} ms · search {t['search']:.1f} ms · rerank {t['rerank']:.1f} ms · "
        f"total {t['total']:.1f} ms"
    )


def _rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)
