"""What the benchmarks share: a demo data directory and questions drawn from the demo chunks."""

from __future__ import annotations

import os
import random
import re
import socket
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

ALIAS = "rag_chunks"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    """``P50 … P95 … P99 …`` in milliseconds."""
    return (
        f"P50 {statistics.median(values):7.2f} ms   P95 {pct(values, 0.95):7.2f} ms   "
        f"P99 {pct(values, 0.99):7.2f} ms"
    )


def ensure_demo_store(root: Path, embedder: LocalEmbedder) -> None:
    """Build the demo collection behind ``rag_chunks`` under ``root`` unless it is there."""
    with EmbeddedQdrantStore(root) as store:
        if ALIAS not in store.list_aliases():
            print("building the demo collection…", flush=True)
            ingest(DEMO_CORPUS, store, embedder, collection="rag_chunks_v1", alias=ALIAS)


def sample_questions(store: EmbeddedQdrantStore, n: int, seed: int = 7) -> list[str]:
    """``n`` questions: the first sentence (at most 200 characters) of chunks picked with a fixed seed."""
    bodies = [p.payload.get("body", "") for p in store.iter_points(store.resolve(ALIAS))]
    rng = random.Random(seed)
    picked = [rng.choice(bodies) for _ in range(n)] if n > len(bodies) else rng.sample(bodies, n)
    questions = []
    for body in picked:
        sentence = re.split(r"(?<=[.?!])\s", body.strip(), maxsplit=1)[0]
        questions.append(sentence[:200] or body[:200])
    return questions
