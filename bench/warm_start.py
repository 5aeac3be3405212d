"""Warm starts (issue 21): how soon the API is ready, whether its first query is as fast as the next ones,
how fast ``/readyz`` answers under load, and the Stack page's render time against a trivial Streamlit app.

Usage: python bench/warm_start.py [--starts 3] [--queries 20] [--clients 16] [--load-seconds 8]
                                  [--data-dir DIR] [--no-page]

For each of ``--starts`` cold starts, ``ragdeck api serve`` (embedded default, extractive answers) starts on
a fresh copy of the demo data; the script records the time from the process start to the port answering
``/healthz`` and to ``/readyz`` turning 200, then sends one ``/query`` and ``--queries`` more (distinct
questions, so the answer cache never answers): the ratio first / median of the rest is the figure (target
≤ 1.5). On the last start, ``--clients`` closed-loop clients send ``/query`` for ``--load-seconds`` while the
script times ``/readyz`` (P50 / P95). Then, in this process, Streamlit's AppTest renders the console's app
(Stack page) and a one-line app, each cold (first run) and warm (second run), and the script says whether
the Stack page's health check loaded a model (it must not: the background warm-up does).
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
from pathlib import Path

import httpx
from common import ensure_demo_store, free_port, pct, sample_questions

from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

ROOT = Path(__file__).resolve().parent.parent


def _until(url: str, ok, proc: subprocess.Popen, timeout_s: float = 300) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited with {proc.returncode}")
        try:
            if ok(httpx.get(url, timeout=30)):
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} not as expected after {timeout_s} s")


def _query(url: str, question: str) -> float:
    t0 = time.perf_counter()
    response = httpx.post(f"{url}/query", json={"question": question}, timeout=120)
    response.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def cold_start(source: Path, work: Path, questions: list[str], args: argparse.Namespace, load: bool) -> dict:
    """One cold start of the API on a copy of ``source``: readiness times, first / next queries, readyz."""
    data = work / f"start-{time.monotonic_ns()}"
    subprocess.run(["cp", "-a", "--sparse=always", str(source), str(data)], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAGDECK_DATA_DIR": str(data), "RAGDECK_CACHE_TTL_S": "1"}
    ragdeck = Path(sys.executable).parent / "ragdeck"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(ragdeck), "api", "serve", "--port", str(port), "--no-llm", "--log-level", "warning"],
        env=env, stdout=(work / "api.log").open("a"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        port_at = _until(f"{url}/healthz", lambda r: r.status_code == 200, proc)
        ready_at = _until(f"{url}/readyz", lambda r: r.status_code == 200, proc)
        first = _query(url, questions[0])
        rest = [_query(url, q) for q in questions[1 : args.queries + 1]]
        out = {
            "port_s": port_at - t0,
            "ready_s": ready_at - t0,
            "first_ms": first,
            "rest_p50_ms": statistics.median(rest),
            "ratio": first / statistics.median(rest),
        }
        if load:
            out.update(_readyz_under_load(url, questions, args.clients, args.load_seconds))
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def _readyz_under_load(url: str, questions: list[str], clients: int, seconds: float) -> dict:
    stop = time.perf_counter() + seconds
    answered = [0]

    def client(offset: int) -> None:
        with httpx.Client(timeout=120) as http:
            i = offset
            while time.perf_counter() < stop:
                http.post(f"{url}/query", json={"question": questions[i % len(questions)], "user_id": str(i)})
                answered[0] += 1
                i += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    times: list[float] = []
    with httpx.Client(timeout=120) as http:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            assert http.get(f"{url}/readyz").status_code == 200
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)
    for t in threads:
        t.join()
    return {
        "readyz_p50_ms": statistics.median(times),
        "readyz_p95_ms": pct(times, 0.95),
        "load_rps": answered[0] / seconds,
    }


def page_render(data_dir: Path) -> dict:
    """Render times of the console (Stack page) and of a trivial app in AppTest, cold and warm."""
    from streamlit.testing.v1 import AppTest

    os.environ["RAGDECK_DATA_DIR"] = str(data_dir)
    import ragdeck.ui as ui

    def timed(at: AppTest) -> float:
        t0 = time.perf_counter()
        at.run()
        assert not at.exception, at.exception
        return time.perf_counter() - t0

    trivial = AppTest.from_string(
        "import streamlit as st\nst.title('trivial')\nst.write('hello')", default_timeout=300
    )
    trivial_cold, trivial_warm = timed(trivial), timed(trivial)
    app = AppTest.from_file(str(ROOT / "ragdeck" / "app.py"), default_timeout=300)
    stack_cold = timed(app)
    embedder_row = next(r for r in app.dataframe[0].value.to_dict("records") if r["component"] == "embedder")
    job = ui.warm_up_job()
    warm_running = job is not None and job.running
    stack_warm = timed(app)
    if job is not None:
        job.wait(300)
    return {
        "trivial_cold_s": trivial_cold,
        "trivial_warm_s": trivial_warm,
        "stack_cold_s": stack_cold,
        "stack_warm_s": stack_warm,
        "health_detail": embedder_row["detail"],
        "warm_up_running_after_first_render": warm_running,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--load-seconds", type=float, default=8.0)
    parser.add_argument("--data-dir", type=Path, help="a data dir that holds the demo collection")
    parser.add_argument("--no-page", action="store_true", help="skip the Stack page render timing")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    work = Path(tmp.name)
    source = args.data_dir or work / "source"
    ensure_demo_store(source / "qdrant", LocalEmbedder())
    with EmbeddedQdrantStore(source / "qdrant") as store:
        pool = sample_questions(store, args.starts * (args.queries + 1) + 400, seed=21)
    print(f"load average before: {os.getloadavg()}")
    starts = []
    per_start = args.queries + 1
    for n in range(args.starts):
        questions = pool[n * per_start : (n + 1) * per_start]
        if n == args.starts - 1:
            questions = questions + pool[args.starts * per_start :]
        result = cold_start(source, work, questions, args, load=n == args.starts - 1)
        starts.append(result)
        print(
            f"start {n + 1}: port {result['port_s']:.2f} s, ready {result['ready_s']:.2f} s, first /query "
            f"{result['first_ms']:.1f} ms, next {args.queries} P50 {result['rest_p50_ms']:.1f} ms, "
            f"ratio {result['ratio']:.2f}",
            flush=True,
        )
    last = starts[-1]
    print(
        f"median over {len(starts)} starts: port {statistics.median(s['port_s'] for s in starts):.2f} s, "
        f"ready {statistics.median(s['ready_s'] for s in starts):.2f} s, "
        f"first / next-{args.queries} median ratio {statistics.median(s['ratio'] for s in starts):.2f} "
        "(target <= 1.5)"
    )
    print(
        f"/readyz under {args.clients} clients ({last['load_rps']:.1f} queries/s): "
        f"P50 {last['readyz_p50_ms']:.2f} ms, P95 {last['readyz_p95_ms']:.2f} ms"
    )
    if not args.no_page:
        page = page_render(source)
        print(
            f"AppTest render: trivial app cold {page['trivial_cold_s']:.2f} s / "
            f"warm {page['trivial_warm_s']:.2f} s; "
            f"console Stack page cold {page['stack_cold_s']:.2f} s / warm {page['stack_warm_s']:.2f} s "
            f"(cold ratio {page['stack_cold_s'] / page['trivial_cold_s']:.1f}x, "
            f"warm ratio {page['stack_warm_s'] / page['trivial_warm_s']:.1f}x)"
        )
        print(
            f"embedder health at the first render: {page['health_detail']!r}; background warm-up still "
            f"running then: {page['warm_up_running_after_first_render']}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
