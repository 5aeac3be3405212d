"""Search benchmark: P50/P95 of the retrieval pipeline (no reranker) over 200 queries on the demo collection.

Usage: python bench/search.py [--queries 200] [--k 10] [--data-dir DIR]

Builds the demo collection in a temporary data directory unless --data-dir names one that has it.
Queries are the first sentences of 200 chunks picked at random (fixed seed). For each query, in the same run:
the pipeline (``Retriever.search``), and the baseline: raw ``model.encode`` of the query plus the store's raw
search. Share outside embedding and vector search = (pipeline - baseline) / pipeline. Target: <= 10 %.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import ALIAS, ensure_demo_store, pct, sample_questions

from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = (args.data_dir or Path(tmp.name)) / "qdrant"
    embedder = LocalEmbedder()
    ensure_demo_store(root, embedder)
    with EmbeddedQdrantStore(root) as store:
        physical = store.resolve(ALIAS)
        chunks = store.collection_info(physical).points
        queries = sample_questions(store, args.queries)

        retriever = Retriever(store, embedder)
        params = RetrievalParams(top_k=40, top_n=args.k)
        for q in queries[:10]:  # warm-up
            retriever.search(q, ALIAS, params)

        pipeline, baseline, embed_share = [], [], []
        for q in queries:
            t0 = time.perf_counter()
            result = retriever.search(q, ALIAS, params)
            pipeline.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            vec = embedder.model.encode(q, normalize_embeddings=True, convert_to_numpy=True)
            t1 = time.perf_counter()
            store.search(physical, vec.tolist(), args.k)
            baseline.append((time.perf_counter() - t0) * 1000)
            embed_share.append((t1 - t0) * 1000)
            assert len(result.hits) == args.k

    p50, p95 = statistics.median(pipeline), pct(pipeline, 0.95)
    b50 = statistics.median(baseline)
    outside = [(p - b) / p for p, b in zip(pipeline, baseline, strict=True)]
    print(f"{len(queries)} queries on {physical} ({chunks} chunks), top-{args.k}, no reranker:")
    print(f"  pipeline          P50 {p50:6.2f} ms   P95 {p95:6.2f} ms")
    print(
        f"  baseline          P50 {b50:6.2f} ms   P95 {pct(baseline, 0.95):6.2f} ms"
        "  (raw encode + raw search)"
    )
    print(f"  raw encode alone  P50 {statistics.median(embed_share):6.2f} ms")
    print(
        f"  share outside embedding and vector search: median {100 * statistics.median(outside):5.1f} %, "
        f"of medians {100 * (p50 - b50) / p50:5.1f} %   (target <= 10 %)"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
