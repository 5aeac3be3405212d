"""The embedded store adapter against the engine it wraps: hybrid and dense search through ragdeck vs the
same search made directly on the qdrant-edge shard, in one run.

Usage: python bench/store.py [--runs 5] [--repeat 3] [--queries 43] [--data-dir DIR]

Builds the demo collection in a temporary data directory unless --data-dir names one that has it. Queries are
the demo eval set's questions, embedded once beforehand (the embed step is the same on both sides and is
not measured here). Per question, each operation is timed ``--repeat`` times in a row (the median is kept),
and the order of the operations rotates from question to question and run to run:

- ``hybrid ragdeck``: ``Retriever.search`` in hybrid RRF mode (k = 60, 40 candidates of each list, 10 kept,
  no reranker) with the question's vector given, on the alias: what the console and the eval runner do
  after embedding (alias resolution, the store's ``search_hybrid``: the engine's prefetch + RRF plus the
  two lists without payloads for the per-list ranks, the chunks as ``RetrievedChunk``s);
- ``hybrid ragdeck, no ranks``: the same without the per-list ranks, as the RAG API asks (the engine's
  fused query alone, unless two of its scores tie);
- ``hybrid store``: the store's ``search_hybrid`` alone, on the alias;
- ``hybrid old``: ``store.search_both`` + ragdeck's ``fuse`` (the path before the engine fused);
- ``hybrid native``: the shard's ``query`` with ``prefetches=[dense, sparse]`` and ``Fusion.Rrf(k=60)``,
  limit 10 with payloads, plus the BM25 encoding of the question, and reading each hit's score and
  payload (which names its chunk): the engine on its own, used as any caller must use it;
- ``hybrid native+lists``: the same batched with the two lists without payloads, reading their ids and
  scores too (what ragdeck asks for, to give each chunk its rank in both lists);
- ``dense ragdeck``: ``store.search`` on the alias, 10 hits with payloads; ``dense native``: the shard's
  ``search`` with the same request, reading each hit's score and payload.

Per run: the median time per call of each operation over the questions; the table shows the median over
runs, and the ratios are medians of the per-run ratios. Targets: hybrid ragdeck / native <= 1.10, dense
ragdeck / native <= 1.05. Raw figures go to bench/results/store.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ALIAS, ensure_demo_store
from qdrant_edge import (
    Fusion,
    Prefetch,
    Query,
    QueryBatchRequest,
    QueryRequest,
    SearchParams,
    SearchRequest,
    SparseVector,
)

from ragdeck.console.retrieval.fusion import fuse
from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.lexical import LEXICAL_VECTOR, encoder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"
TOP_K, TOP_N, RRF_K = 40, 10, 60
OPS = (
    "hybrid ragdeck",
    "hybrid ragdeck, no ranks",
    "hybrid store",
    "hybrid old",
    "hybrid native",
    "hybrid native+lists",
    "dense ragdeck",
    "dense native",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="timings per question per op (median kept)")
    parser.add_argument("--queries", type=int, default=None, help="default: every question of the set")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/store.json"))
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = (args.data_dir or Path(tmp.name)) / "qdrant"
    embedder = LocalEmbedder()
    ensure_demo_store(root, embedder)
    found = [json.loads(line)["question"] for line in DEMO_GOLD.read_text().splitlines() if line.strip()]
    questions = found[: args.queries] if args.queries else found
    vectors = [v.tolist() for v in embedder.embed_documents(questions)]
    bm25 = encoder()

    with EmbeddedQdrantStore(root) as store:
        physical = store.resolve(ALIAS)
        retriever = Retriever(store, embedder)
        params = RetrievalParams(top_k=TOP_K, top_n=TOP_N, rerank=False, retrieval="hybrid", rrf_k=RRF_K)
        answering = dataclasses.replace(params, list_ranks=False)  # what the RAG API asks for
        with store._open(physical) as slot:  # the engine's own handle (one per shard per process)
            shard = slot.shard
        assert shard is not None

        def native_requests(q: str, v: list[float], lists: bool) -> list[QueryRequest]:
            terms = bm25.query(q)
            dense = Query.Nearest(v)
            sparse = Query.Nearest(SparseVector(terms.indices, terms.values), using=LEXICAL_VECTOR)
            fused = QueryRequest(
                limit=TOP_N,
                prefetches=[Prefetch(limit=TOP_K, query=dense), Prefetch(limit=TOP_K, query=sparse)],
                query=Fusion.Rrf(k=RRF_K),
                with_payload=True,
            )
            if not lists:
                return [fused]
            return [
                fused,
                QueryRequest(limit=TOP_K, query=dense, with_payload=False),
                QueryRequest(limit=TOP_K, query=sparse, with_payload=False),
            ]

        def read(points: list[Any]) -> list[tuple[float, dict[str, Any]]]:
            """What any caller reads of a hit: its score and payload (which names the chunk)."""
            return [(p.score, p.payload) for p in points]

        def read_lists(found: list[list[Any]]) -> object:
            """The fused hits as ``read``, and each list's point ids and scores (they carry no payload)."""
            fused, dense, lexical = found
            return read(fused), [(p.id, p.score) for p in dense], [(p.id, p.score) for p in lexical]

        def ops(q: str, v: list[float]) -> dict[str, Callable[[], object]]:
            return {
                "hybrid ragdeck": lambda: retriever.search(q, ALIAS, params, vector=v),
                "hybrid ragdeck, no ranks": lambda: retriever.search(q, ALIAS, answering, vector=v),
                "hybrid store": lambda: store.search_hybrid(ALIAS, v, q, TOP_N, depth=TOP_K, rrf_k=RRF_K),
                "hybrid old": lambda: fuse(*store.search_both(ALIAS, v, q, TOP_K), rrf_k=RRF_K)[:TOP_N],
                "hybrid native": lambda: read(shard.query(native_requests(q, v, False)[0])),
                "hybrid native+lists": lambda: read_lists(
                    shard.query_batch(QueryBatchRequest(native_requests(q, v, True)))
                ),
                "dense ragdeck": lambda: store.search(ALIAS, v, TOP_N),
                "dense native": lambda: read(
                    shard.search(
                        SearchRequest(
                            query=Query.Nearest(v), limit=TOP_N, params=SearchParams(), with_payload=True
                        )
                    )
                ),
            }

        # Same chunks: the engine's fused top 10 equals ragdeck's (ties at the cut aside, which ragdeck
        # breaks its own way); checked on every question before timing.
        same = 0
        for q, v in zip(questions, vectors, strict=True):
            ours = [h.chunk_id for h in retriever.search(q, ALIAS, params, vector=v).hits]
            old = [f.hit.id for f in fuse(*store.search_both(ALIAS, v, q, TOP_K), rrf_k=RRF_K)[:TOP_N]]
            cheap = [h.chunk_id for h in retriever.search(q, ALIAS, answering, vector=v).hits]
            same += ours == old == cheap
        for q, v in zip(questions[:10], vectors[:10], strict=True):  # warm-up
            for op in ops(q, v).values():
                op()

        load_before = os.getloadavg()
        runs: list[dict[str, list[float]]] = []
        for run in range(args.runs):
            times: dict[str, list[float]] = {name: [] for name in OPS}
            for i, (q, v) in enumerate(zip(questions, vectors, strict=True)):
                table = ops(q, v)
                shift = (i + run) % len(OPS)
                for name in OPS[shift:] + OPS[:shift]:
                    took = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        table[name]()
                        took.append((time.perf_counter() - t0) * 1e6)
                    times[name].append(statistics.median(took))
            runs.append(times)
            print(f"run {run + 1}/{args.runs} done", flush=True)
        load_after = os.getloadavg()

    med = {name: [statistics.median(r[name]) for r in runs] for name in OPS}
    figures = {name: statistics.median(med[name]) for name in OPS}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(med[a], med[b], strict=True))

    print(
        f"\n{len(questions)} questions on {physical}, {args.runs} runs x {args.repeat} timings per call; "
        f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} before, "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after; ragdeck's top 10 = "
        f"search_both + fuse on {same} of {len(questions)} questions\n"
    )
    print("| operation | median µs per call | per run (µs) |")
    print("| --- | --- | --- |")
    for name in OPS:
        print(f"| {name} | {figures[name]:.1f} | {', '.join(f'{x:.1f}' for x in med[name])} |")
    lines = {
        "hybrid ragdeck / hybrid native": ratio("hybrid ragdeck", "hybrid native"),
        "hybrid ragdeck, no ranks / hybrid native": ratio("hybrid ragdeck, no ranks", "hybrid native"),
        "hybrid store / hybrid native": ratio("hybrid store", "hybrid native"),
        "hybrid ragdeck / hybrid native+lists": ratio("hybrid ragdeck", "hybrid native+lists"),
        "hybrid old / hybrid native": ratio("hybrid old", "hybrid native"),
        "dense ragdeck / dense native": ratio("dense ragdeck", "dense native"),
    }
    print()
    for label, value in lines.items():
        print(f"{label}: {value:.3f}")
    overhead = {
        "hybrid (ragdeck - native+lists)": figures["hybrid ragdeck"] - figures["hybrid native+lists"],
        "hybrid store (store - native+lists)": figures["hybrid store"] - figures["hybrid native+lists"],
        "dense (ragdeck - native)": figures["dense ragdeck"] - figures["dense native"],
    }
    for label, value in overhead.items():
        print(f"adapter overhead per call, {label}: {value:+.1f} µs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "questions": len(questions),
                "runs": args.runs,
                "repeat": args.repeat,
                "load_before": load_before,
                "load_after": load_after,
                "same_top10": same,
                "median_us": figures,
                "per_run_us": med,
                "ratios": lines,
                "overhead_us": overhead,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
