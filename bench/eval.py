"""Eval benchmark: a retrieval-only eval of the demo gold set against raw embed+search loops, in one run.

Usage: python bench/eval.py [--repeat 5] [--concurrency 1] [--synthetic N] [--data-dir DIR]

Builds the demo collection in a temporary data directory unless --data-dir names one that has it. Each
repeat runs, in rotating order: (a) ragdeck's eval runner over the shipped ``demo_gold.jsonl`` (gold check
against the collection, questions embedded in batches, retrieval, every metric at k = 1, 3, 5, 10 at gold
and document level, results committed to SQLite in batches, the bootstrap summary), (b) the raw loop: for
each question, raw ``model.encode`` of that question plus the store's raw search, nothing stored, and (c)
the raw batched loop: raw ``model.encode`` of the questions batched as the runner batches them
(windows of ``EMBED_WINDOW`` sorted by length, calls of ``EMBED_BATCH``), then the raw search of each.
Reports the median time per query of each and the overhead of (a) over (b) and over (c), the floor the
runner can reach. Goal: overhead <= 10 %. ``--synthetic N`` evaluates N questions made from the demo chunks
instead (each chunk's opening words, the chunk as gold), to see how the per-run costs spread over a larger
set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ALIAS, ensure_demo_store

from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evalsets.model import EvalRecord, EvalSet
from ragdeck.console.evaluation.batching import EMBED_BATCH, EMBED_WINDOW
from ragdeck.console.evaluation.runner import EvalDeps, EvalPlan, EvalRunner
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


def synthetic_set(store: EmbeddedQdrantStore, size: int) -> EvalSet:
    """Up to ``size`` questions: each chunk's first 14 words (distinct ones), with that chunk as gold."""
    records: dict[str, EvalRecord] = {}
    for point in store.iter_points(ALIAS):
        words = str(point.payload.get("body") or point.payload.get("text", "")).split()[:14]
        question = " ".join(words) + " ?"
        if len(words) >= 8 and question.casefold() not in records:
            records[question.casefold()] = EvalRecord(f"s{len(records)}", question, [point.id])
        if len(records) == size:
            break
    return EvalSet("synthetic", list(records.values()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--synthetic", type=int, default=0, help="N questions made from chunks instead")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    data = args.data_dir or Path(tmp.name)
    embedder = LocalEmbedder()
    ensure_demo_store(data / "qdrant", embedder)
    with EmbeddedQdrantStore(data / "qdrant") as store:
        evalset = synthetic_set(store, args.synthetic) if args.synthetic else read_jsonl(DEMO_GOLD)
        questions = [r.question for r in evalset.records]
        physical = store.resolve(ALIAS)
        runner = EvalRunner(EvalDeps(Retriever(store, embedder), EvalStore(Path(tmp.name) / "bench.sqlite3")))
        plan = EvalPlan(Policy("bench", alias=ALIAS, top_n=10, rerank=False), concurrency=args.concurrency)

        def ragdeck_run() -> float:
            t0 = time.perf_counter()
            run, prepared = runner.start(evalset, plan)
            run = runner.execute(run, prepared)
            assert run.status == "done" and run.summary["failed"] == 0
            return (time.perf_counter() - t0) * 1000 / len(questions)

        def raw_queries() -> None:
            for q in questions:
                vec = embedder.model.encode([q], normalize_embeddings=True, convert_to_numpy=True)[0]
                store.search(physical, vec.tolist(), 10)

        def raw_batched_queries() -> None:
            for window in range(0, len(questions), EMBED_WINDOW):
                part = sorted(questions[window : window + EMBED_WINDOW], key=len)
                for begin in range(0, len(part), EMBED_BATCH):
                    matrix = embedder.model.encode(
                        part[begin : begin + EMBED_BATCH], normalize_embeddings=True, convert_to_numpy=True
                    )
                    for vec in matrix:
                        store.search(physical, vec.tolist(), 10)

        def timed(work: Callable[[], None]) -> Callable[[], float]:
            # On the embedder's inference thread, where the runner's embeddings run too: one OpenMP team for
            # both, so the comparison is not about torch's threading.
            def run() -> float:
                t0 = time.perf_counter()
                embedder.batcher.alone(work)
                return (time.perf_counter() - t0) * 1000 / len(questions)

            return run

        loops = {"runner": ragdeck_run, "raw": timed(raw_queries), "raw batched": timed(raw_batched_queries)}
        for loop in loops.values():  # warm-up: model, store, SQLite
            loop()
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {name: [] for name in loops}
        names = list(loops)
        for i in range(args.repeat):
            for name in names[i % 3 :] + names[: i % 3]:
                times[name].append(loops[name]())
            a, b, c = (times[n][-1] for n in names)
            print(
                f"repeat {i + 1}: eval runner {a:6.2f} ms/query   raw loop {b:6.2f}   raw batched {c:6.2f}   "
                f"overhead vs raw {100 * (a / b - 1):+5.1f} %, vs raw batched {100 * (a / c - 1):+5.1f} %",
                flush=True,
            )
        load_after = os.getloadavg()
    ours, raw, batched = (times[n] for n in names)
    print(f"\n{len(questions)} questions, k=10, {args.repeat} repeats, concurrency {args.concurrency}")
    print(
        f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} before, "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after"
    )
    print(
        f"eval runner median {statistics.median(ours):.2f} ms/query; raw embed+search median "
        f"{statistics.median(raw):.2f} ms/query; raw batched embed + search median "
        f"{statistics.median(batched):.2f} ms/query"
    )
    for label, base in (("raw loop", raw), ("raw batched loop", batched)):
        ratios = [a / b - 1 for a, b in zip(ours, base, strict=True)]
        print(
            f"overhead over the {label}: median of paired ratios {100 * statistics.median(ratios):+.1f} % "
            f"(per repeat {', '.join(f'{100 * r:+.1f}' for r in ratios)} %; goal <= 10 %)"
        )


if __name__ == "__main__":
    main()
