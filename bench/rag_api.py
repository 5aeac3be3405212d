"""RAG API benchmark: a bounded load at fixed QPS on loopback, against the same pipeline called in process.

Usage: python bench/rag_api.py [--qps 4] [--requests 240] [--top-k 40] [--data-dir DIR] [--llm-url URL]

Starts ``ragdeck api serve`` as its own process on 127.0.0.1 over a copy of the demo data, then sends
``--requests`` distinct questions on an open-loop schedule (request i leaves at i / qps seconds, whatever the
earlier ones are doing, so a slow server shows up as queueing instead of hiding it). Reports P50/P95/P99 of
retrieval+rerank (as the server measured it) and of the whole request (as the client saw it), then runs the
same questions through ``RagService.query`` in this process and reports the API's overhead: HTTP, JSON,
routing and metrics. Seed target: P95 retrieval+rerank <= 200 ms on CPU with top-K <= 40.
Without ``--llm-url`` answers are extractive, so generation costs little and the overhead is the API's own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import ensure_demo_store, free_port, sample_questions, summary

from ragdeck.api.runtime import build_runtime
from ragdeck.console.settings import Settings
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


def start_api(data_dir: Path, port: int, env_extra: dict[str, str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAGDECK_DATA_DIR": str(data_dir), **env_extra}
    ragdeck = Path(sys.executable).parent / "ragdeck"
    proc = subprocess.Popen(
        [str(ragdeck), "api", "serve", "--port", str(port), "--no-llm", "--log-level", "warning"],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited early; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the API was not ready after 120 s; see {log}")


def run_load(url: str, questions: list[str], qps: float) -> tuple[list[float], list[float], int]:
    """Open-loop load: (client latency ms from the scheduled start, server retrieval+rerank ms, errors)."""
    latencies: list[float] = []
    stages: list[float] = []
    errors = 0
    lock = threading.Lock()
    client = httpx.Client(timeout=120)
    t0 = time.perf_counter() + 0.5

    def send(i: int, question: str) -> None:
        nonlocal errors
        scheduled = t0 + i / qps
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        response = client.post(f"{url}/query", json={"question": question, "user_id": f"bench-{i}"})
        done = time.perf_counter()
        with lock:
            if response.status_code != 200:
                errors += 1
                return
            timings = response.json()["timings_ms"]
            latencies.append((done - scheduled) * 1000)
            stages.append(timings["retrieval"] + timings["rerank"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        for future in [pool.submit(send, i, q) for i, q in enumerate(questions)]:
            future.result()
    client.close()
    return latencies, stages, errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qps", type=float, default=4.0)
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, help="a data dir that holds the demo collection")
    parser.add_argument("--llm-url", help="LLM_BASE_URL of an OpenAI-compatible server (else extractive)")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    source = args.data_dir or Path(tmp.name) / "source"
    embedder = LocalEmbedder()
    ensure_demo_store(source / "qdrant", embedder)
    with EmbeddedQdrantStore(source / "qdrant") as store:
        questions = sample_questions(store, args.requests + 20, seed=11)
    warmup, questions = questions[:20], questions[20:]

    # The API process and the in-process baseline each get their own copy (one process per embedded store).
    api_dir, local_dir = Path(tmp.name) / "api", Path(tmp.name) / "local"
    for target in (api_dir, local_dir):
        subprocess.run(["cp", "-a", "--sparse=always", str(source), str(target)], check=True)
    env = {
        "RAGDECK_TOP_K": str(args.top_k),
        "RAGDECK_TOP_N": str(args.top_n),
        "RAGDECK_CACHE_TTL_S": "1",
    }
    if args.llm_url:
        env["LLM_BASE_URL"] = args.llm_url
    port = free_port()
    proc = start_api(api_dir, port, env, Path(tmp.name) / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        for q in warmup:
            httpx.post(f"{url}/query", json={"question": q}, timeout=120)
        started = time.perf_counter()
        latencies, stages, errors = run_load(url, questions, args.qps)
        wall = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    os.environ.update(env)
    settings = Settings(data_dir=local_dir)
    runtime = build_runtime(settings, embedder=embedder)
    try:
        service = runtime.service
        for q in warmup:
            service.query(q)
        local = []
        for i, q in enumerate(questions):
            t0 = time.perf_counter()
            service.query(q, user_id=f"bench-{i}")
            local.append((time.perf_counter() - t0) * 1000)
    finally:
        runtime.close()

    mode = "LLM at " + args.llm_url if args.llm_url else "extractive answers"
    print(f"{len(questions)} requests at {args.qps:g} QPS ({wall:.1f} s), top-K {args.top_k}, {mode}")
    print(f"  errors                  {errors}")
    print(f"  retrieval+rerank (API)  {summary(stages)}   (target P95 <= 200 ms)")
    print(f"  whole request (client)  {summary(latencies)}")
    print(f"  in process (baseline)   {summary(local)}")
    overhead = statistics.median(latencies) - statistics.median(local)
    print(
        f"  API overhead at P50     {overhead:7.2f} ms   "
        f"({100 * overhead / statistics.median(local):+.0f} % of the in-process median)"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
