"""HNSW sweep benchmark: 12 configurations (m 4 / 16 / 32 x ef 10 / 32 / 64 / 128, ef_construct 100) on 20,000
clustered 384-d vectors in the embedded engine (qdrant-edge), through
``ragdeck.console.hnsw.sweep.run_sweep``.

Usage: python bench/hnsw.py [--points 20000] [--queries 200] [--repeat 3] [--noise 0.5] [--seed 0]

Data: unit vectors around 100 Gaussian centres (per-dimension noise 0.35 around N(0, 1) centres), ingested
once into a collection with m=16, ef_construct=100 (the live index); m=4 and m=32 are temporary copies built
from the stored vectors, as ``ragdeck hnsw sweep`` does. Queries: stored vectors sampled with a fixed seed and
perturbed (relative noise 0.5: a query is near a cluster, not a copy of a stored point, as a question is
to its chunks). k = 10: ef below 10 would change nothing (the engine searches with
max(ef, k)). Each configuration: recall@10 against exact search, P50 / P95 of the store's search call over
the queries, build seconds (copies), HNSW graph bytes on disk. The whole sweep runs --repeat times; the table
shows, per configuration, the median over runs of each figure, and the total time of each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Not via common.py: that module loads the embedding stack, which this benchmark does not need.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ragdeck.console.hnsw import StoredVectors, run_sweep, sample_queries
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig, VectorPoint

DIM, CENTRES, SPREAD = 384, 100, 0.35
MS, EFS, EF_CONSTRUCT, K = (4, 16, 32), (10, 32, 64, 128), 100, 10


def clustered(n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors around ``CENTRES`` Gaussian centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CENTRES, DIM))
    x = centres[rng.integers(0, CENTRES, n)] + SPREAD * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/hnsw.json"))
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    x = clustered(args.points, args.seed)
    with EmbeddedQdrantStore(Path(tmp.name) / "qdrant") as store:
        started = time.perf_counter()
        store.create_collection("bench", DIM, HnswConfig(m=16, ef_construct=EF_CONSTRUCT))
        store.upsert("bench", [VectorPoint(f"d{i % 500}#s:{i}", x[i]) for i in range(len(x))])  # type: ignore[arg-type]
        store.finish_indexing("bench")
        took = time.perf_counter() - started
        print(f"ingested and indexed {len(x):,} x {DIM}-d vectors (m=16) in {took:.1f} s")
        points = StoredVectors.read(store, "bench")
        queries = sample_queries(points, args.queries, seed=args.seed + 1, noise=args.noise)
        exact = []
        for v in queries.vectors:
            t0 = time.perf_counter()
            store.search("bench", v, K, exact=True)
            exact.append((time.perf_counter() - t0) * 1000)
        runs = []
        for n in range(args.repeat):
            result = run_sweep(
                store, "bench", queries, ms=MS, ef_constructs=(EF_CONSTRUCT,), efs=EFS, k=K, target=0.95,
                points=points,
            )  # fmt: skip
            runs.append(result)
            print(f"run {n + 1}/{args.repeat}: {len(result.rows)} configurations in {result.total_s:.1f} s")
        left = [c.name for c in store.list_collections()]

    def med(i: int, key: str) -> float | None:
        values = [getattr(r.rows[i], key) for r in runs]
        return None if values[0] is None else statistics.median(values)

    print(f"\nqueries: {queries.source}; k={K}; exact search P50 {statistics.median(exact):.2f} ms")
    print(f"total sweep time per run: {', '.join(f'{r.total_s:.1f} s' for r in runs)}")
    print(f"collections left after the sweeps: {left}\n")
    print("| m | ef_construct | ef | recall@10 vs exact | P50 ms | P95 ms | build s | HNSW bytes | index |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    table = []
    for i, row in enumerate(runs[0].rows):
        figures = {k: med(i, k) for k in ("recall_exact", "p50_ms", "p95_ms", "build_s", "index_bytes")}
        table.append(
            {"m": row.m, "ef_construct": row.ef_construct, "ef": row.ef, "index": row.index, **figures}
        )
        build = "live" if figures["build_s"] is None else f"{figures['build_s']:.2f}"
        cells = [
            row.m, row.ef_construct, row.ef, f"{figures['recall_exact']:.3f}", f"{figures['p50_ms']:.3f}",
            f"{figures['p95_ms']:.3f}", build, f"{int(figures['index_bytes'] or 0):,}", row.index,
        ]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
    print(f"\nrecommendation (target 0.95, first run): {runs[0].recommendation.sentence}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "points": len(x),
                "queries": queries.source,
                "exact_p50_ms": statistics.median(exact),
                "total_s": [r.total_s for r in runs],
                "rows": table,
                "runs": [r.to_json() for r in runs],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
