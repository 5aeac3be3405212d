"""Retrieval study benchmark on the demo set: the default study's run time and trials per second, and what
the candidate cache saves — a trial scored from the cached lists against the same trial scored by the eval
runner on the store itself (one search per question, as `ragdeck eval` does), in one run.

Usage: python bench/tune.py [--repeat 3] [--data-dir DIR]

Builds the demo collection in a temporary data directory unless --data-dir names one that has it. Each
repeat runs the default study (`SearchSpace()`: dense, lexical, hybrid with RRF k 10/60, weighted 0.3/0.5/0.7
and DBSF, candidates 20/40/80; engine ef; no reranker) on `demo_gold.jsonl` with seed 0 (30 tune, 13 test
questions), objective doc_ndcg@10. Then, alternating, every hybrid trial is scored again on the tune
questions both ways: from a warm candidate cache (the study's way) and through a `Retriever` on the store
(questions embedded beforehand in both). Prints medians and writes bench/results/tune.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import ALIAS, ensure_demo_store

from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.runner import EvalDeps, EvalRunner
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.tuning.record import Study, new_study_id
from ragdeck.console.tuning.study import StudyDeps, StudyRunner, plan_study
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/tune.json"))
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = (args.data_dir or Path(tmp.name)) / "qdrant"
    embedder = LocalEmbedder()
    ensure_demo_store(root, embedder)
    evalset = read_jsonl(DEMO_GOLD)
    load_before = os.getloadavg()
    studies, cached_s, direct_s = [], [], []
    with EmbeddedQdrantStore(root) as store:
        for _ in range(args.repeat):
            plan = plan_study(evalset, Policy(name="A"), ALIAS, objective="doc_ndcg@10")
            runner = StudyRunner(StudyDeps(store, embedder), plan, evalset)
            t0 = time.perf_counter()
            study = runner.run(Study(new_study_id(), plan))
            wall = time.perf_counter() - t0
            studies.append(
                {**study.timing, "wall_s": wall, "chosen": study.chosen["label"] if study.chosen else None}
            )
            print(f"study: {wall:.2f} s, {study.timing}", flush=True)

            # the same hybrid trials scored both ways on the tune questions (vectors made beforehand)
            direct = EvalRunner(EvalDeps(Retriever(store, embedder), runs=None))  # type: ignore[arg-type]
            for params in [t for t in runner.trials if t["retrieval"] == "hybrid"]:
                policy = runner.policy(params)
                plan_k = EvalPlan(policy, runner.ks, answers=False, concurrency=1)
                order = ("cached", "direct") if len(cached_s) % 2 == 0 else ("direct", "cached")
                for way in order:
                    t0 = time.perf_counter()
                    if way == "cached":
                        runner.scores(policy, runner.tune)
                    else:
                        for record in runner.tune:
                            direct.evaluate_query(
                                plan_k, record, runner.collection, vector=runner._vectors[record.id]
                            )
                    (cached_s if way == "cached" else direct_s).append(time.perf_counter() - t0)
    load_after = os.getloadavg()

    per_s = [s["trials_per_s"] for s in studies]
    med_cached, med_direct = statistics.median(cached_s), statistics.median(direct_s)
    print(
        f"\nload average {load_before[0]:.2f} before, {load_after[0]:.2f} after; {args.repeat} studies of "
        f"{studies[0]['trials']} trials on {len(evalset.records)} questions"
    )
    print(
        f"study wall time (median): {statistics.median(s['wall_s'] for s in studies):.2f} s, of which "
        f"embedding the questions {statistics.median(s['embed_seconds'] for s in studies):.2f} s"
    )
    each = ", ".join(f"{x:.1f}" for x in per_s)
    print(f"trials per second (median): {statistics.median(per_s):.1f}  (per study: {each})")
    print(f"engine calls per study: {studies[-1]['engine_calls']}")
    print(
        f"hybrid trial on the tune questions: cached {med_cached * 1000:.1f} ms, direct "
        f"{med_direct * 1000:.1f} ms, ratio direct / cached {med_direct / med_cached:.2f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "load_before": load_before, "load_after": load_after, "studies": studies,
        "cached_trial_s": cached_s, "direct_trial_s": direct_s,
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
