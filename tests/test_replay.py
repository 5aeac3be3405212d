"""Traffic replay: the schedule never outruns --qps, it stops by itself, errors are counted by status, remote
targets are refused, and end to end against the real RAG API its counts match the API's own /metrics."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from cli_runner import assert_one_line_error, run_cli
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from servers import serve_asgi

from ragdeck.console.online.replay import ReplayPlan, check_target, planned_sends, run_replay, user_id
from ragdeck.errors import InputError
from ragdeck.services.replay_client import QueryReply

QUESTIONS = ["What is a scrape target?", "How do I expose TEI metrics?", "What is PromQL?"]


class FakeSender:
    """Records send times and in-flight peaks; answers after ``delay_s`` with ``reply_for(user)``."""

    def __init__(self, delay_s: float = 0.0, reply_for=None) -> None:
        self.times: list[float] = []
        self.users: list[str] = []
        self.delay_s = delay_s
        self.reply_for = reply_for or (lambda user: QueryReply(200, "A"))
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, question: str, user: str, policy: str | None) -> QueryReply:
        self.times.append(time.monotonic())
        self.users.append(user)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        return self.reply_for(user)


def max_in_window(times: list[float], window_s: float) -> int:
    """The most sends inside any window of ``window_s`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window_s + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_rate_is_bounded_and_close_to_the_target() -> None:
    sender = FakeSender(delay_s=0.01)
    started = time.monotonic()
    summary = asyncio.run(run_replay(ReplayPlan(QUESTIONS, qps=20, duration_s=2.0, users=4), sender))
    wall = time.monotonic() - started
    assert summary.sent == len(sender.times) == planned_sends(20, 2.0) == 40
    assert summary.ok == 40 and summary.in_flight == 0 and not summary.interrupted
    assert 20 * 0.9 <= summary.achieved_qps <= 20 * 1.05
    span = sender.times[-1] - sender.times[0]
    assert (len(sender.times) - 1) / span <= 20 * 1.05  # measured from the send times themselves
    assert max_in_window(sender.times, 1.0) <= 20 + 2  # a send is at most one interval late, else rebased
    assert wall < 2.6, "it stops by itself at the duration"
    assert sender.users[:5] == [user_id(i, 4) for i in range(5)] == [
        "replay-user-0", "replay-user-1", "replay-user-2", "replay-user-3", "replay-user-0",
    ]  # fmt: skip


def test_in_flight_is_bounded_and_a_slow_server_is_not_burst_at() -> None:
    sender = FakeSender(delay_s=0.4)
    plan = ReplayPlan(QUESTIONS, qps=20, duration_s=1.0, max_in_flight=2)
    summary = asyncio.run(run_replay(plan, sender))
    assert sender.peak <= 2
    assert summary.throttled > 0 and summary.sent < planned_sends(20, 1.0)
    assert max_in_window(sender.times, 0.5) <= 10 + 2
    assert summary.sent == summary.ok  # the outstanding ones were awaited after the duration


def test_stop_ends_it_early_and_cancels_what_is_outstanding() -> None:
    sender = FakeSender(delay_s=60)
    ticks = []

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        return await run_replay(
            ReplayPlan(QUESTIONS, qps=10, duration_s=30), sender, stop=stop, on_tick=ticks.append, tick_s=0.2
        )

    started = time.monotonic()
    summary = asyncio.run(main())
    assert time.monotonic() - started < 2
    assert summary.interrupted and summary.sent >= 4
    assert summary.cancelled == summary.sent and summary.ok == 0 and summary.in_flight == 0
    assert ticks and ticks[-1].sent >= 3 and not ticks[-1].done


def test_errors_are_counted_by_status_and_per_policy() -> None:
    replies = {
        "replay-user-0": QueryReply(200, "A", no_answer=True),
        "replay-user-1": QueryReply(200, "B"),
        "replay-user-2": QueryReply(503),
        "replay-user-3": QueryReply("timeout"),
        "replay-user-4": QueryReply(500),
    }
    sender = FakeSender(reply_for=replies.__getitem__)
    summary = asyncio.run(run_replay(ReplayPlan(QUESTIONS, qps=50, duration_s=0.2, users=5), sender))
    assert summary.sent == 10 and summary.ok == 4
    assert summary.errors == {"503": 2, "timeout": 2, "500": 2}
    a, b, unknown = summary.policies["A"], summary.policies["B"], summary.policies["(unknown)"]
    assert (a.count, a.no_answer_rate, a.error_rate) == (2, 1.0, 0.0)
    assert (b.count, b.no_answer_rate) == (2, 0.0)
    assert (unknown.count, unknown.error_rate, unknown.p50_ms) == (6, 1.0, None)
    assert sum(p.count for p in summary.policies.values()) == summary.sent
    forced = asyncio.run(
        run_replay(ReplayPlan(QUESTIONS, qps=50, duration_s=0.1, users=5, policy="B"), FakeSender(
            reply_for=lambda user: QueryReply(503)
        ))
    )  # fmt: skip
    assert set(forced.policies) == {"B"} and forced.policies["B"].error_rate == 1.0
    body = forced.to_json()
    assert body["errors"] == {"503": 5} and body["policies"]["B"]["error_rate"] == 1.0
    assert any("503 x5" in line for line in forced.lines())


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000"])
def test_loopback_targets_are_accepted(url: str) -> None:
    assert check_target(url) == url.rstrip("/")


def test_remote_targets_need_allow_remote(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    remote = "http://rag-api.invalid:8000"
    with pytest.raises(InputError, match="--allow-remote"):
        check_target(remote)
    assert check_target(remote, allow_remote=True) == remote
    with pytest.raises(InputError, match="http"):
        check_target("ftp://127.0.0.1/")
    evalset = tmp_path / "set.jsonl"
    evalset.write_text(json.dumps({"id": "q1", "question": "What?", "gold_context_ids": ["c1"]}) + "\n")
    args = ["replay", "--set", str(evalset), "--qps", "5", "--duration", "1", "--target", remote]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, "--allow-remote", "not on this machine")
    code, _, err = run_cli(
        monkeypatch, capsys, "replay", "--set", str(evalset), "--qps", "0", "--duration", "1",
        "--target", "http://127.0.0.1:9",
    )  # fmt: skip
    assert_one_line_error(code, err, "--qps")


def fake_api() -> FastAPI:
    """A stand-in RAG API: user 0 gets 503, the others a 200 from policy A (user 1 a no-answer)."""
    app = FastAPI()

    @app.post("/query")
    async def query(body: dict) -> JSONResponse:
        await asyncio.sleep(0.02)
        if body["user_id"] == "replay-user-0":
            return JSONResponse({"error": "qdrant is down"}, status_code=503)
        no_answer = body["user_id"] == "replay-user-1"
        return JSONResponse({"policy": body.get("policy") or "A", "no_answer": no_answer, "response_id": "r"})

    return app


def test_cli_over_http_counts_statuses_and_ctrl_c_stops_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    evalset = tmp_path / "set.jsonl"
    evalset.write_text(
        "".join(json.dumps({"id": f"q{i}", "question": q, "gold_context_ids": ["c"]}) + "\n"
                for i, q in enumerate(QUESTIONS))
    )  # fmt: skip
    out_json = tmp_path / "summary.json"
    with serve_asgi(fake_api(), "fake-rag-api") as api:
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        started = time.monotonic()
        timer.start()
        try:
            code, out, err = run_cli(
                monkeypatch, capsys, "replay", "--set", str(evalset), "--qps", "10", "--duration", "30",
                "--target", api, "--users", "4", "--json", str(out_json),
            )  # fmt: skip
        finally:
            timer.cancel()
        elapsed = time.monotonic() - started
    assert code == 130, err
    assert elapsed < 5
    summary = json.loads(out_json.read_text())
    assert summary["interrupted"] is True and 6 <= summary["sent"] <= 12
    finished = summary["sent"] - summary["cancelled"]
    assert summary["errors"]["503"] >= 2 and summary["ok"] + summary["errors"]["503"] == finished
    assert summary["policies"]["A"]["no_answer"] >= 2
    assert summary["policies"]["A"]["count"] + summary["policies"]["(unknown)"]["count"] == finished
    assert "Replay interrupted" in out and "503 x" in out


@pytest.fixture
def small_api(data_dir: Path, local_embedder, tmp_path: Path):
    """The real RAG API over a two-document collection (alias rag_chunks), half the users on canary B."""
    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.ingest.pipeline import ingest
    from ragdeck.console.settings import Settings
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "prometheus.md").write_text(
        "# Scraping\n\nPrometheus scrapes targets over HTTP at the scrape interval. A scrape target exposes "
        "metrics at /metrics in the text exposition format.\n\n# PromQL\n\nPromQL is the query language of "
        "Prometheus; histogram_quantile computes quantiles from histogram buckets.\n"
    )
    (corpus / "tei.md").write_text(
        "# Text Embeddings Inference\n\nTEI serves embedding models over HTTP. Its /embed route returns "
        "embeddings, and it exposes Prometheus metrics on its own port.\n"
    )
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="rag_chunks_v1", alias="rag_chunks")
    runtime = build_runtime(Settings(canary_weight=0.5), embedder=local_embedder)
    try:
        with serve_asgi(create_app(runtime), "rag-api") as origin:
            yield origin
    finally:
        runtime.close()


def requests_counted(metrics_text: str) -> dict[tuple[str, str], float]:
    """``rag_requests_total`` samples by (policy, status) from /metrics text."""
    counts = {}
    for line in metrics_text.splitlines():
        if line.startswith("rag_requests_total{"):
            series, value = line.rsplit(" ", 1)
            labels = dict(part.split("=", 1) for part in series.partition("{")[2].rstrip("}").split(","))
            counts[(labels["policy"].strip('"'), labels["status"].strip('"'))] = float(value)
    return counts


def test_replay_against_the_real_api_matches_its_metrics(
    small_api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    evalset = tmp_path / "set.jsonl"
    evalset.write_text(
        "".join(json.dumps({"id": f"q{i}", "question": q, "gold_context_ids": ["c"]}) + "\n"
                for i, q in enumerate(QUESTIONS))
    )  # fmt: skip
    out_json = tmp_path / "summary.json"
    code, out, err = run_cli(
        monkeypatch, capsys, "replay", "--set", str(evalset), "--qps", "5", "--duration", "2",
        "--target", small_api, "--users", "8", "--json", str(out_json),
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out_json.read_text())
    assert summary["sent"] == 10 and summary["ok"] == 10 and summary["errors"] == {}
    assert summary["achieved_qps"] <= 5 * 1.05
    policies = summary["policies"]
    assert set(policies) == {"A", "B"}, "8 users split between control and a 50 % canary"
    assert sum(p["count"] for p in policies.values()) == summary["sent"]
    counted = requests_counted(httpx.get(f"{small_api}/metrics", timeout=10).text)
    for name, figures in policies.items():
        assert counted.get((name, "ok"), 0.0) == figures["count"]
    assert sum(v for (_, status), v in counted.items() if status != "ok") == 0
    assert "Replay done: 10 sent" in out


def test_background_replay_job_runs_to_its_duration_and_stops_on_request() -> None:
    from ragdeck.console.online.replay import ReplayJob
    from ragdeck.console.wiring import build_replay_sender

    with serve_asgi(fake_api(), "fake-rag-api") as api:
        plan = ReplayPlan(QUESTIONS, qps=10, duration_s=1.0, users=4)
        job = ReplayJob(plan, lambda: build_replay_sender(api, plan.max_in_flight), api).start()
        deadline = time.monotonic() + 30
        while job.running:
            assert time.monotonic() < deadline, "the replay did not end at its duration"
            time.sleep(0.05)
        assert job.error is None and job.summary is not None and job.summary.done
        # A stalled machine moves the schedule later (never bursts), so fewer than 10 may go out in 1 s;
        # whatever went out was answered, and user 0 of 4 (slots 0, 4, 8) got the 503s.
        sent = job.summary.sent
        assert 1 <= sent <= 10 and job.summary.in_flight == 0 and job.summary.cancelled == 0
        to_user_0 = math.ceil(sent / 4)
        assert job.summary.errors == {"503": to_user_0} and job.summary.ok == sent - to_user_0

        endless = ReplayPlan(QUESTIONS, qps=10, duration_s=60)
        long = ReplayJob(endless, lambda: build_replay_sender(api, 8), api).start()
        time.sleep(0.5)
        long.stop()
        deadline = time.monotonic() + 10
        while long.running:
            assert time.monotonic() < deadline, "stop() did not end the replay"
            time.sleep(0.05)
        assert long.summary is not None and long.summary.interrupted and long.summary.sent < 20
