"""Metrics benchmark: ragdeck's ``score_rankings`` vs ``ranx.evaluate`` on 10,000 queries × 100 results.

Usage: python bench/metrics.py [--queries 10000] [--depth 100] [--repeat 5] [--seed 0]

Random run and graded qrels (fixed seed): each query ranks ``depth`` distinct ids out of 1,000,000 and judges
0-12 ids with grades 0-3, about two thirds of them among its ranked ids; some queries have no relevant id.
The same metrics are computed by both in the same run; their per-query values must agree to 1e-9.

Timed, each as the median of --repeat runs in alternating order (ragdeck first on even runs, ranx first on
odd ones), after one warm-up call of ranx (numba loads or compiles its kernels), reported separately:
- including conversion from Python lists / dicts: ragdeck ``score_rankings(rankings, qrels, metrics)`` vs
  ranx ``Qrels(dict)`` + ``Run(dict)`` + ``evaluate(qrels, run, ...)``;
- metric math only: ragdeck's metrics from a built grade table vs ranx's kernels on numba typed lists.
ranx is called with ``return_mean=False, save_results_in_run=False`` (per-query arrays, like ragdeck) and runs
its kernels on all of numba's threads; ragdeck is single-threaded numpy. Target: ratio ragdeck / ranx <= 1.0.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import ranx

# Not via common.py: that module loads the embedding stack, which this benchmark does not need.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ragdeck.console.evaluation.metrics import _score, _Table, parse_metric, score_rankings

METRICS = [f"{m}@{k}" for m in ("recall", "precision", "hit_rate", "mrr", "ndcg", "map") for k in (10, 100)]
CORPUS = 1_000_000


def make_data(n: int, depth: int, seed: int) -> tuple[list[list[str]], list[dict[str, int]]]:
    """Rankings of ``depth`` distinct ids and graded qrels, one of each per query."""
    rng = np.random.default_rng(seed)
    rankings, qrels = [], []
    for _ in range(n):
        ids = rng.choice(CORPUS, size=depth + 4, replace=False)
        ranking = [f"doc{i}" for i in ids[:depth]]
        judged = rng.integers(0, 13)
        inside = rng.choice(depth, size=min(judged, depth), replace=False)[: (2 * judged) // 3]
        judged_ids = [ranking[i] for i in inside] + [f"doc{i}" for i in ids[depth:]][: judged - len(inside)]
        qrels.append(
            {d: int(g) for d, g in zip(judged_ids, rng.integers(0, 4, len(judged_ids)), strict=True)}
        )
        rankings.append(ranking)
    return rankings, qrels


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # numba's type-safety warnings from inside ranx

    rankings, qrels = make_data(args.queries, args.depth, args.seed)
    q_ids = [f"q{i:06d}" for i in range(args.queries)]  # zero-padded: ranx sorts queries by id
    qrels_dict = dict(zip(q_ids, qrels, strict=True))
    run_seconds, run_dict = timed(
        lambda: {
            q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in zip(q_ids, rankings, strict=True)
        }
    )
    n_rel = sum(sum(g >= 1 for g in q.values()) for q in qrels)
    no_rel = sum(not any(g >= 1 for g in q.values()) for q in qrels)
    print(
        f"{args.queries} queries × {args.depth} results, {sum(map(len, qrels))} judged ids, "
        f"{n_rel} relevant, {no_rel} queries with none; metrics: {', '.join(METRICS)}"
    )
    versions = f"ranx {importlib.metadata.version('ranx')}, numpy {np.__version__}"
    print(f"numba threads: {numba.get_num_threads()}; {versions}")

    def ranx_total() -> dict[str, np.ndarray]:
        return ranx.evaluate(
            ranx.Qrels(qrels_dict), ranx.Run(run_dict), METRICS, return_mean=False, save_results_in_run=False
        )

    warm_up, _ = timed(ranx_total)
    print(f"ranx warm-up call (numba kernels loaded or compiled): {warm_up:.2f} s")
    typed_qrels = ranx.Qrels(qrels_dict).to_typed_list()
    typed_run = ranx.Run(run_dict).to_typed_list()
    parsed = [parse_metric(name) for name in METRICS]
    depth = max(k for _, k in parsed if k is not None)

    def ragdeck_math() -> tuple[float, float, dict[str, np.ndarray]]:
        build, table = timed(lambda: _Table(rankings, qrels, depth))
        math_s, scores = timed(
            lambda: {n: _score(table, m, k) for n, (m, k) in zip(METRICS, parsed, strict=True)}
        )
        return build, math_s, scores

    times: dict[str, list[float]] = {
        key: [] for key in ("ours", "ours_build", "ours_math", "ranx", "ranx_math")
    }
    ours = theirs = {}
    for repeat in range(args.repeat):
        for side in ("ragdeck", "ranx") if repeat % 2 == 0 else ("ranx", "ragdeck"):
            if side == "ragdeck":
                seconds, ours = timed(lambda: score_rankings(rankings, qrels, METRICS))
                times["ours"].append(seconds)
                build, math_s, _ = ragdeck_math()
                times["ours_build"].append(build)
                times["ours_math"].append(math_s)
            else:
                seconds, theirs = timed(ranx_total)
                times["ranx"].append(seconds)
                seconds, _ = timed(lambda: ranx.evaluate(typed_qrels, typed_run, METRICS, return_mean=False))
                times["ranx_math"].append(seconds)

    diffs = {name: float(np.max(np.abs(ours[name] - theirs[name]))) for name in METRICS}
    worst = max(diffs, key=diffs.get)  # type: ignore[arg-type]
    where = f"worst: {worst}" if diffs[worst] else "every value identical"
    print(f"max |ragdeck - ranx| over all queries and metrics: {diffs[worst]:.3g} ({where})")
    assert diffs[worst] <= 1e-9, diffs

    med = {key: statistics.median(values) * 1000 for key, values in times.items()}
    print(f"median of {args.repeat} runs (alternating order):")
    print("  including conversion from Python lists / dicts:")
    print(f"    ragdeck score_rankings                      {med['ours']:8.1f} ms")
    print(f"    ranx Qrels + Run + evaluate                 {med['ranx']:8.1f} ms")
    print(
        f"    ratio ragdeck / ranx                        {med['ours'] / med['ranx']:8.2f}   (target <= 1.0)"
    )
    print("  metric math only:")
    print(f"    ragdeck metrics from the grade table        {med['ours_math']:8.1f} ms")
    print(f"    ranx kernels on typed lists                 {med['ranx_math']:8.1f} ms")
    print(f"    ratio ragdeck / ranx                        {med['ours_math'] / med['ranx_math']:8.2f}")
    print(
        f"  ragdeck grade table (dedup, id lookups): {med['ours_build']:.1f} ms; "
        f"ranx's run dict built from the ranked lists (not timed above): {run_seconds * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
