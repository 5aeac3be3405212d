"""Hybrid retrieval latency: P50 / P95 of dense, lexical and hybrid (RRF) search on the demo collection.

Usage: python bench/hybrid.py [--runs 5] [--queries 43] [--data-dir DIR] [--set FILE]

Builds the demo collection in a temporary data directory unless --data-dir names one that has it (the data
dir's ``qdrant/`` folder, as ``ragdeck demo`` builds it with RAGDECK_DATA_DIR=DIR). Queries are the
questions of the demo eval set (the first --queries; cycled when more are asked for than the set holds).

Through ``Retriever.search`` with rerank off, top-K 40, top-N 10 (the settings' defaults): dense
embeds the query and takes the 10 nearest chunks; lexical takes the 10 best BM25 chunks (no embedding);
hybrid embeds the query, takes 40 of each and fuses them by RRF (k = 60), keeping 10. Hybrid therefore pays
the embed step exactly as dense does, plus a lexical search, a deeper dense search and the fusion.

Store-only timings, on query vectors embedded beforehand: ``store.search`` (dense) and
``store.search_lexical`` at depth 10 and 40, ``fuse`` of the two depth-40 lists, and the embed step alone
(``embedder.embed_query``), so the embed time is separable from the rest.

Every operation is timed once per query per run, and the order of the operations rotates from query to query
and from run to run, so machine noise hits every mode alike; a warm-up of 10 queries comes first. Per run:
P50 and P95 (nearest rank) of each operation; the table shows the median over runs. Hybrid's added P95 over
dense = (hybrid P95 - dense P95) / dense P95, per run and the median of those; also the paired difference
per query (hybrid - dense on the same question in the same run, median over queries) and what hybrid adds
according to the store-only parts (lexical@40 + fuse + dense@40 - dense@10, P50s), which embedding noise does
not blur. Figures to read, no assertion: the goal is <= 20 %. Raw figures go to bench/results/hybrid.json.

On a shared machine, run with OMP_NUM_THREADS=1: with torch's default two threads, any other busy process
makes the embed step ~25x slower (480 ms instead of 20 ms), which buries everything else in the noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ALIAS, ensure_demo_store, pct

from ragdeck.console.retrieval.fusion import fuse
from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

TOP_K, TOP_N, WARMUP = 40, 10, 10
MODES = ("dense", "lexical", "hybrid")
STORE_OPS = (
    "store dense@10",
    "store dense@40",
    "store lexical@10",
    "store lexical@40",
    "fuse rrf (40+40)",
    "embed query",
)


DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


def questions(path: Path, n: int | None) -> list[str]:
    """The eval set's questions, the first ``n`` (cycled when ``n`` is larger than the set)."""
    found = [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    n = n or len(found)
    return [found[i % len(found)] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=None, help="default: every question of the set")
    parser.add_argument("--set", type=Path, default=DEMO_GOLD)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/hybrid.json"))
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = (args.data_dir or Path(tmp.name)) / "qdrant"
    embedder = LocalEmbedder()
    ensure_demo_store(root, embedder)
    queries = questions(args.set, args.queries)
    with EmbeddedQdrantStore(root) as store:
        physical = store.resolve(ALIAS)
        chunks = store.collection_info(physical).points
        retriever = Retriever(store, embedder)
        params = {m: RetrievalParams(top_k=TOP_K, top_n=TOP_N, rerank=False, retrieval=m) for m in MODES}
        vectors = [embedder.embed_query(q).tolist() for q in queries]

        def ops(i: int) -> dict[str, Callable[[], object]]:
            q, v = queries[i], vectors[i]
            dense40 = store.search(physical, v, TOP_K)
            lexical40 = store.search_lexical(physical, q, TOP_K)
            return {
                **{m: (lambda m=m: retriever.search(q, ALIAS, params[m])) for m in MODES},
                "store dense@10": lambda: store.search(physical, v, TOP_N),
                "store dense@40": lambda: store.search(physical, v, TOP_K),
                "store lexical@10": lambda: store.search_lexical(physical, q, TOP_N),
                "store lexical@40": lambda: store.search_lexical(physical, q, TOP_K),
                "fuse rrf (40+40)": lambda: fuse(dense40, lexical40, fusion="rrf", rrf_k=60),
                "embed query": lambda: embedder.embed_query(q),
            }

        names = [*MODES, *STORE_OPS]
        for i in range(min(WARMUP, len(queries))):
            for op in ops(i).values():
                op()

        runs: list[dict[str, list[float]]] = []
        for run in range(args.runs):
            times: dict[str, list[float]] = {name: [] for name in names}
            started = time.perf_counter()
            for i in range(len(queries)):
                table = ops(i)
                shift = (i + run) % len(names)
                for name in names[shift:] + names[:shift]:
                    t0 = time.perf_counter()
                    table[name]()
                    times[name].append((time.perf_counter() - t0) * 1000)
            runs.append(times)
            took = time.perf_counter() - started
            print(f"run {run + 1}/{args.runs}: {len(queries)} queries x {len(names)} ops, {took:.1f} s")

    def per_run(name: str, q: float) -> list[float]:
        return [pct(r[name], q) for r in runs]

    figures = {
        name: {
            "p50_ms": statistics.median(per_run(name, 0.5)),
            "p95_ms": statistics.median(per_run(name, 0.95)),
            "p50_runs": per_run(name, 0.5),
            "p95_runs": per_run(name, 0.95),
        }
        for name in names
    }
    added = [(h - d) / d for h, d in zip(per_run("hybrid", 0.95), per_run("dense", 0.95), strict=True)]
    added50 = [(h - d) / d for h, d in zip(per_run("hybrid", 0.5), per_run("dense", 0.5), strict=True)]
    # Paired per query (the same question, the same run): hybrid - dense in ms, median over queries.
    paired = [statistics.median(h - d for h, d in zip(r["hybrid"], r["dense"], strict=True)) for r in runs]
    # What hybrid adds from the store-only parts: a lexical search, a deeper dense search, the fusion.
    p50 = {name: figures[name]["p50_ms"] for name in names}
    parts = p50["store lexical@40"] + p50["fuse rrf (40+40)"] + p50["store dense@40"] - p50["store dense@10"]

    import torch  # loaded by the embedder already

    print(
        f"\n{len(queries)} questions of {args.set} on {physical} ({chunks} chunks), top-K {TOP_K}, "
        f"top-N {TOP_N}, no reranker, {args.runs} runs, torch threads {torch.get_num_threads()}; "
        "medians over runs of each run's P50 / P95:\n"
    )
    print("| operation | P50 ms | P95 ms | P95 per run (ms) |")
    print("| --- | --- | --- | --- |")
    for name in names:
        f = figures[name]
        label = f"`Retriever.search` {name}" if name in MODES else name
        runs_p95 = ", ".join(f"{x:.2f}" for x in f["p95_runs"])
        print(f"| {label} | {f['p50_ms']:.2f} | {f['p95_ms']:.2f} | {runs_p95} |")
    d95, h95 = figures["dense"]["p95_ms"], figures["hybrid"]["p95_ms"]
    print(
        f"\nhybrid's added P95 over dense: median over runs {100 * statistics.median(added):+.1f} % "
        f"(per run: {', '.join(f'{100 * a:+.1f} %' for a in added)}); of the medians "
        f"{h95:.2f} / {d95:.2f} ms = {h95 / d95:.3f} ({100 * (h95 - d95) / d95:+.1f} %)   (goal <= 20 %)"
    )
    print(f"hybrid's added P50 over dense: median over runs {100 * statistics.median(added50):+.1f} %")
    print(
        f"paired per query, hybrid - dense: median {statistics.median(paired):+.2f} ms "
        f"(per run: {', '.join(f'{x:+.2f}' for x in paired)} ms)"
    )
    print(
        f"from the store-only parts (P50s): lexical@40 + fuse + (dense@40 - dense@10) = {parts:.2f} ms, "
        f"{100 * parts / p50['dense']:.1f} % of dense's P50"
    )
    print(
        "both dense and hybrid include the embed step "
        f"(embed query alone: P50 {figures['embed query']['p50_ms']:.2f} ms); lexical does not embed"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "queries": len(queries),
                "set": str(args.set),
                "collection": physical,
                "chunks": chunks,
                "runs": args.runs,
                "torch_threads": torch.get_num_threads(),
                "figures": figures,
                "hybrid_added_p95": added,
                "hybrid_added_p50": added50,
                "paired_hybrid_minus_dense_ms": paired,
                "store_parts_ms": parts,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
