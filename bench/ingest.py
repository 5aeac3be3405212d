"""Ingest benchmark: chunks per second, and the pipeline's overhead over raw ``model.encode``.

Usage: python bench/ingest.py [--corpus PATH] [--repeat 3] [--batch-size 64]

Each repetition (1) ingests the corpus into a fresh embedded collection through
``ragdeck.console.ingest.pipeline``
(load, redact, chunk, embed, upsert, build HNSW) and (2) runs ``SentenceTransformer.encode`` on exactly the
same chunk texts with the same batch size. Overhead = (ingest time - encode time) / encode time.
Reports medians over the repetitions. Target: overhead <= 15 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.ingest.pipeline import ingest, prepare_chunks
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEMO_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    embedder = LocalEmbedder(batch_size=args.batch_size)
    model = embedder.model  # the raw SentenceTransformer: the baseline
    _, chunks, _, _ = prepare_chunks(args.corpus, ChunkingConfig())
    texts = [c.text for c in chunks]
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up

    def run_ingest() -> tuple[float, object]:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedQdrantStore(Path(tmp) / "qdrant") as store:
            t0 = time.perf_counter()
            report = ingest(args.corpus, store, embedder, collection="bench", batch_size=args.batch_size)
            return time.perf_counter() - t0, report

    def run_encode() -> float:
        t0 = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return time.perf_counter() - t0

    ingest_s, encode_s, overheads = [], [], []
    for run in range(args.repeat):
        # Alternate which goes first so slow drift on a shared machine does not favour either side.
        if run % 2 == 0:
            (ing, report), enc = run_ingest(), run_encode()
        else:
            enc = run_encode()
            ing, report = run_ingest()
        ingest_s.append(ing)
        encode_s.append(enc)
        overheads.append((ing - enc) / enc)
        print(
            f"run {run + 1}: ingest {ing:.1f} s (stages {report.seconds}), encode {enc:.1f} s, "
            f"overhead {100 * overheads[-1]:+.1f} %",
            flush=True,
        )

    ing, enc = statistics.median(ingest_s), statistics.median(encode_s)
    print(f"corpus: {report.documents} documents, {len(texts)} chunks; {args.repeat} runs, medians:")
    print(f"  ingest pipeline   {ing:7.1f} s   {len(texts) / ing:6.1f} chunks/s")
    print(f"  raw model.encode  {enc:7.1f} s   {len(texts) / enc:6.1f} chunks/s")
    overhead = 100 * statistics.median(overheads)
    print(f"  overhead          {overhead:+6.1f} %   (median of paired runs; target <= 15 %)")


if __name__ == "__main__":
    main()
