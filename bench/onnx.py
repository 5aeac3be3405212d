"""ONNX Runtime (fp32, int8) vs torch for the packaged embedder (all-MiniLM-L6-v2): speed, equal rankings.

Usage: python bench/onnx.py [--queries 200] [--runs 3] [--repeat 5] [--threads 1] [--out DIR] [--quick]

Needs onnxruntime (and onnx, which torch's exporter uses) in the environment that runs it; it exits 2 with
what to install when they are missing. Nothing is written into the model's package directory: the ONNX files
are exported to --out (default: a temporary directory, deleted at the end).

Why not sentence-transformers' own ``backend="onnx"``: it loads and exports through optimum-onnx, and every
optimum-onnx release (0.1.0 the newest) requires transformers < 4.58, while sentence-transformers 6.x needs
transformers >= 5 (``pip install sentence-transformers[onnx]`` cannot be resolved; forced in, optimum's
exporter fails to import against transformers 5). So this script does what that backend does, without
optimum: ``ragdeck.services.onnx_embedder`` (the opt-in ``RAGDECK_EMBED_BACKEND=onnx``) exports the model's
transformer (eager attention) with sentence-transformers' mean pooling in the graph by ``torch.onnx.export``,
fuses it with ONNX Runtime's transformer optimizer (graph rewrites only, opt_level 0), and runs it by an
``onnxruntime.InferenceSession``, the same tokenizer (truncation at the model's
max_seq_length, padding to the longest text of a batch), batches formed longest text first, L2-normalised
outputs.

int8: ``onnxruntime.quantization.quantize_dynamic`` of the fp32 file, weights uint8 per channel (U8U8),
activations quantised at run time. Portable by construction: the scales come from the weights alone, no
calibration and no CPU detection; U8U8 is chosen over the usual int8 weights (U8S8) because U8S8 can saturate
on x86-64 CPUs without VNNI (AVX2 only), so its results would depend on the CPU that runs it; U8U8 has no such
case on x86-64 or arm64. ONNX Runtime's graph optimisations (fusions chosen for the running CPU) happen when a
session loads and are never saved to the file.

Measured in one process, interleaved (the order of the three backends rotates per item and per run):

- load: constructing the model / session from files on disk plus a first one-text encode (median of --repeat);
- single-query latency: P50 / P95 of embedding one question (the demo gold questions, then first sentences of
  demo chunks, --queries in all), per run; medians over --runs;
- batch throughput: 64 demo chunks in one batch of 64, median of --repeat, as chunks/s;
- agreement: cosine of each backend's vector to torch's, over every demo chunk and question;
- rankings: each backend embeds the whole demo corpus (chunked by ragdeck's ingest chunker, as
  ``ragdeck demo`` does) and its own queries; exact cosine search (numpy, no HNSW noise) gives the top 10 per
  gold question: mean top-10 overlap with torch's, and the eval metrics at k = 10 (``score_levels``, as
  ``ragdeck eval`` scores them).

Criteria (issue 21): a backend qualifies when top-10 overlap >= 0.99, every metric within 0.005 of torch's,
and it is faster (lower single-query P50 and higher batch throughput). Raw figures: bench/results/onnx.json.
On a shared machine keep --threads 1 (torch's and ONNX Runtime's thread pools fight other processes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# This file is named onnx.py: drop its folder (sys.path[0] when run as a script) from the path, or
# `import onnx` would import this script.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from ragdeck.console.evalsets.files import DEMO_EVAL_SETS
from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evaluation.metrics import score_levels
from ragdeck.console.evaluation.prepare import qrels_of
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.ingest.pipeline import chunking_from, prepare_chunks
from ragdeck.console.settings import Settings
from ragdeck.services.embedders import l2_normalize, packaged_model_path
from ragdeck.services.onnx_embedder import OnnxSentenceModel, export_onnx

try:
    import onnx
    import onnxruntime  # noqa: F401  (ragdeck.services.onnx_embedder runs it)
except ImportError as exc:
    print(
        f"bench/onnx.py needs onnxruntime and onnx ({exc}), which ragdeck depends on: reinstall it "
        "(`pip install -e .`).",
        file=sys.stderr,
    )
    sys.exit(2)

RESULTS = Path(__file__).resolve().parent / "results"
K = 10


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation, U8U8 per channel (see the module docstring for why)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QUInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # the fused ops' outputs are float
    )


def torch_encoder(model_dir: Path) -> Callable[[Sequence[str], int], np.ndarray]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

    def encode(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalize(vectors)

    encode.model = model  # type: ignore[attr-defined]
    return encode


def rotated(names: list[str], step: int) -> list[str]:
    step %= len(names)
    return names[step:] + names[:step]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200, help="single-query latency: questions per run")
    parser.add_argument("--runs", type=int, default=3, help="single-query latency: runs (medians over runs)")
    parser.add_argument("--repeat", type=int, default=5, help="load and batch timings: repetitions")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of torch and ONNX Runtime")
    parser.add_argument("--out", type=Path, help="keep the exported ONNX files here (default: a temp dir)")
    parser.add_argument(
        "--quick", action="store_true", help="50 queries, 1 run, 2 repeats (the whole-corpus pass stays)"
    )
    args = parser.parse_args()
    if args.quick:
        args.queries, args.runs, args.repeat = 50, 1, 2
    torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    model_dir = packaged_model_path()
    out = args.out or Path(tempfile.mkdtemp(prefix="ragdeck-onnx-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, model_dir, out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


def run(args: argparse.Namespace, model_dir: Path, out: Path) -> int:
    fp32, int8 = out / "model.onnx", out / "model_int8_u8u8.onnx"
    started = time.perf_counter()
    export_onnx(model_dir, fp32)
    exported = time.perf_counter()
    quantize_int8(fp32, int8)
    quantized = time.perf_counter()
    print(
        f"export fp32 {exported - started:.1f} s ({fp32.stat().st_size / 1e6:.1f} MB), "
        f"int8 {quantized - exported:.1f} s ({int8.stat().st_size / 1e6:.1f} MB)",
        flush=True,
    )
    loaders: dict[str, Callable[[], Callable[..., np.ndarray]]] = {
        "torch": lambda: torch_encoder(model_dir),
        "onnx-fp32": lambda: OnnxSentenceModel(model_dir, out, threads=args.threads, onnx_file=fp32).encode,
        "onnx-int8": lambda: OnnxSentenceModel(model_dir, out, threads=args.threads, onnx_file=int8).encode,
    }
    names = list(loaders)
    loads: dict[str, list[float]] = {n: [] for n in names}
    encoders: dict[str, Callable[..., np.ndarray]] = {}
    for rep in range(args.repeat):
        for name in rotated(names, rep):
            t0 = time.perf_counter()
            encoder = loaders[name]()
            encoder(["ragdeck load probe"])
            loads[name].append(time.perf_counter() - t0)
            encoders[name] = encoder

    settings = Settings()
    chunking: ChunkingConfig = chunking_from(settings)
    _, chunks, _, _ = prepare_chunks(DEMO_CORPUS, chunking)
    texts = [c.text for c in chunks]
    ids = [c.chunk_id for c in chunks]
    gold = read_jsonl(DEMO_EVAL_SETS / "demo_gold.jsonl")
    questions = [r.question for r in gold.records]
    rng = random.Random(7)
    sampled = [
        re.split(r"(?<=[.?!])\s", c.body.strip(), maxsplit=1)[0][:200] for c in rng.sample(chunks, 400)
    ]
    latency_queries = (questions + [s for s in sampled if s])[: args.queries]
    print(f"demo corpus: {len(chunks)} chunks; {len(questions)} gold questions", flush=True)

    # Single-query latency, interleaved.
    for q in latency_queries[:10]:
        for name in names:
            encoders[name]([q])
    per_run: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for run_no in range(args.runs):
        times: dict[str, list[float]] = {n: [] for n in names}
        for i, q in enumerate(latency_queries):
            for name in rotated(names, i + run_no):
                t0 = time.perf_counter()
                encoders[name]([q])
                times[name].append((time.perf_counter() - t0) * 1000)
        for name in names:
            per_run[name].append((statistics.median(times[name]), pct(times[name], 0.95)))

    # Batch throughput: 64 chunks, one batch.
    batch = random.Random(11).sample(texts, 64)
    batch_s: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.repeat):
        for name in rotated(names, rep):
            t0 = time.perf_counter()
            encoders[name](batch, 64)
            batch_s[name].append(time.perf_counter() - t0)

    # Whole corpus and gold questions per backend, rankings by exact cosine.
    corpus: dict[str, np.ndarray] = {}
    corpus_s: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        corpus[name] = encoders[name](texts, 64)
        corpus_s[name] = time.perf_counter() - t0
        print(f"{name}: corpus embedded in {corpus_s[name]:.1f} s", flush=True)
    query_vectors = {n: encoders[n](questions, 64) for n in names}
    qrels = [qrels_of(r) for r in gold.records]
    rankings: dict[str, list[list[str]]] = {}
    metrics: dict[str, dict[str, float]] = {}
    for name in names:
        scores = query_vectors[name] @ corpus[name].T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        rankings[name] = [[ids[j] for j in row] for row in top]
        _, per_query = score_levels(rankings[name], qrels, [K])
        keys = sorted({k for m in per_query for k in m})
        metrics[name] = {k: float(statistics.fmean(m[k] for m in per_query if k in m)) for k in keys}

    report: dict[str, Any] = {"load_average_end": os.getloadavg(), "threads": args.threads, "backends": {}}
    base_p50 = statistics.median(p for p, _ in per_run["torch"])
    base_batch = statistics.median(batch_s["torch"])
    print(f"\nload average at end: {report['load_average_end']}; threads {args.threads}")
    header = (
        "backend | load s | P50 ms | P95 ms | batch-64 s | chunks/s | corpus s | cos min | cos median | "
        "top-10 overlap | max |metric diff| | verdict"
    )
    print(header)
    for name in names:
        p50 = statistics.median(p for p, _ in per_run[name])
        p95 = statistics.median(p for _, p in per_run[name])
        b = statistics.median(batch_s[name])
        cos = np.concatenate(
            [
                np.sum(corpus[name] * corpus["torch"], axis=1),
                np.sum(query_vectors[name] * query_vectors["torch"], axis=1),
            ]
        )
        overlap = statistics.fmean(
            len(set(a) & set(t)) / K for a, t in zip(rankings[name], rankings["torch"], strict=True)
        )
        diffs = {k: metrics[name][k] - metrics["torch"][k] for k in metrics["torch"]}
        worst = max(abs(v) for v in diffs.values())
        faster = p50 < base_p50 and b < base_batch
        equal = overlap >= 0.99 and worst <= 0.005
        verdict = "reference" if name == "torch" else ("qualifies" if faster and equal else "fails")
        row = {
            "load_s": statistics.median(loads[name]),
            "p50_ms": p50,
            "p95_ms": p95,
            "per_run": per_run[name],
            "batch64_s": b,
            "batch64_chunks_per_s": 64 / b,
            "corpus_s": corpus_s[name],
            "cos_min": float(cos.min()),
            "cos_median": float(np.median(cos)),
            "top10_overlap": overlap,
            "metrics": metrics[name],
            "metric_diffs": diffs,
            "max_metric_diff": worst,
            "faster": faster,
            "equal_rankings": equal,
            "verdict": verdict,
        }
        report["backends"][name] = row
        print(
            f"{name} | {row['load_s']:.2f} | {p50:.2f} | {p95:.2f} | {b:.3f} | {64 / b:.1f} | "
            f"{corpus_s[name]:.1f} | {row['cos_min']:.5f} | {row['cos_median']:.6f} | {overlap:.4f} | "
            f"{worst:.4f} | {verdict}"
        )
    print("\nmetrics at k = 10 (mean over the gold questions):")
    for key in sorted(metrics["torch"]):
        print(f"  {key:>18}: " + "  ".join(f"{n} {metrics[n][key]:.4f}" for n in names))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "onnx.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
