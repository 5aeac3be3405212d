"""API throughput under concurrent clients, with and without micro-batching (issue 21).

Usage: python bench/api_load.py [--seconds 8] [--rounds 2] [--clients 1,16]
                                [--configs batching,no-batching,before,torch]

Starts one ``ragdeck api serve`` per configuration (embedded default over a copy of the demo collection,
extractive answers), each its own process on 127.0.0.1:
  batching     the defaults: the embedder on ONNX Runtime (``RAGDECK_EMBED_BACKEND=auto``), its threads sized
               to the usable cores, micro-batching on;
  no-batching  the same, ``RAGDECK_EMBED_BATCHING=false`` (one encode per call);
  before       torch, no batching and torch's own thread count (``RAGDECK_TORCH_THREADS`` = every core);
  torch        the defaults on torch (``RAGDECK_EMBED_BACKEND=torch``, the default before ONNX Runtime).
Then, for ``--rounds`` rounds, drives each server in turn (order alternating between rounds) with closed-loop
clients (each sends its next request when the previous answer arrives) for ``--seconds`` at each concurrency.
Only one server is loaded at a time. Reports requests/s, client P50/P95, the server's retrieval stage
(query embedding + vector search, from the response's ``timings_ms``), and per configuration the ratio
throughput(max clients) / throughput(1) and retrieval P50 under load / alone (medians over rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import ensure_demo_store, free_port, pct, sample_questions
from rag_api import start_api

from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.threads import usable_cores

CONFIGS = {
    "batching": {},
    "no-batching": {"RAGDECK_EMBED_BATCHING": "false"},
    "before": {
        "RAGDECK_EMBED_BACKEND": "torch",
        "RAGDECK_EMBED_BATCHING": "false",
        "RAGDECK_TORCH_THREADS": str(os.cpu_count() or 1),
    },
    "torch": {"RAGDECK_EMBED_BACKEND": "torch"},
}


def closed_loop(url: str, questions: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads posting /query back to back for ``seconds``: rate, latency and stage figures."""
    latencies: list[float] = []
    retrieval: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(timeout=60) as http:
            while time.perf_counter() < stop:
                i = next(counter)
                t0 = time.perf_counter()
                question = questions[i % len(questions)]
                response = http.post(f"{url}/query", json={"question": question, "user_id": f"load-{i}"})
                elapsed = (time.perf_counter() - t0) * 1000
                timings = response.json().get("timings_ms", {}) if response.status_code == 200 else {}
                with lock:
                    if response.status_code != 200:
                        errors += 1
                        continue
                    latencies.append(elapsed)
                    if "retrieval" in timings:  # else a cached answer (a repeated first sentence)
                        retrieval.append(timings["retrieval"])

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "rps": len(latencies) / wall,
        "p50": statistics.median(latencies),
        "p95": pct(latencies, 0.95),
        "retrieval_p50": statistics.median(retrieval),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="load per concurrency, per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", default="1,16", help="concurrency levels, comma-separated")
    parser.add_argument("--configs", default="batching,no-batching,before")
    parser.add_argument("--data-dir", type=Path, help="a data dir that holds the demo collection")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    names = args.configs.split(",")

    tmp = tempfile.TemporaryDirectory()
    source = args.data_dir or Path(tmp.name) / "source"
    ensure_demo_store(source / "qdrant", LocalEmbedder())
    with EmbeddedQdrantStore(source / "qdrant") as store:
        questions = sample_questions(store, 400, seed=13)

    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    # TTL 1 s: a question comes round again after several seconds, so answers are computed, not cached.
    env = {"RAGDECK_CACHE_TTL_S": "1"}
    try:
        for name in names:
            data = Path(tmp.name) / name
            subprocess.run(["cp", "-a", "--sparse=always", str(source), str(data)], check=True)
            port = free_port()
            proc = start_api(data, port, {**env, **CONFIGS[name]}, Path(tmp.name) / f"{name}.log")
            servers[name] = (proc, f"http://127.0.0.1:{port}")
            for q in questions[:20]:
                httpx.post(f"{servers[name][1]}/query", json={"question": q}, timeout=60)
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        print(f"usable cores {usable_cores()}, load before: {os.getloadavg()}", flush=True)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for clients in levels:
                for name in order:
                    fig = closed_loop(servers[name][1], questions[20:], clients, args.seconds)
                    results.setdefault((name, clients), []).append(fig)
                    print(
                        f"  round {r + 1} {name:12} {clients:3} clients  {fig['rps']:6.1f} req/s  "
                        f"P50 {fig['p50']:6.1f} ms  P95 {fig['p95']:6.1f} ms  "
                        f"retrieval P50 {fig['retrieval_p50']:6.1f} ms  errors {fig['errors']:.0f}",
                        flush=True,
                    )
        print(f"load after: {os.getloadavg()}")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)

    def med(name: str, clients: int, key: str) -> float:
        return statistics.median(f[key] for f in results[(name, clients)])

    low, high = levels[0], levels[-1]
    print(f"\nmedians over {args.rounds} rounds of {args.seconds:g} s")
    print("| config | clients | req/s | P50 ms | P95 ms | retrieval P50 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        for clients in levels:
            print(
                f"| {name} | {clients} | {med(name, clients, 'rps'):.1f} | {med(name, clients, 'p50'):.1f} | "
                f"{med(name, clients, 'p95'):.1f} | {med(name, clients, 'retrieval_p50'):.1f} |"
            )
    for name in names:
        ratio = med(name, high, "rps") / med(name, low, "rps")
        slow = med(name, high, "retrieval_p50") / med(name, low, "retrieval_p50")
        print(
            f"{name:12} throughput({high})/throughput({low}) = {ratio:.2f} (target >= 3)   "
            f"retrieval P50 at {high} / at {low} = {slow:.2f} (target <= 2)"
        )
    tmp.cleanup()


if __name__ == "__main__":
    main()
