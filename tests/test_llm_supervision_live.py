"""The real local LLM under ``ragdeck api serve``, killed with SIGKILL during a run of queries: answers keep
coming (labelled extractive while it is down, never a 500), the supervisor restarts it, LLM answers return,
and /readyz and /metrics show the restart. Slow; CI runs it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from servers import free_port

from ragdeck.services.llama_supervisor import read_status, status_file

pytestmark = pytest.mark.slow
QUESTIONS = (
    "How long does Prometheus keep data by default?",
    "Which HTTP route of text-embeddings-inference returns embeddings?",
    "What is a recording rule?",
    "How do I configure scrape intervals?",
)
RECOVERY_BOUND_S = 30.0  # issue 16: answers again within 30 s of the kill


def wait_until(condition, timeout_s: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the API exited while waiting for {what}:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            value = condition()
            if value:
                return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def test_sigkill_of_the_real_local_llm_during_queries(
    llama_server, api_data: Path, data_dir: Path, tmp_path: Path
) -> None:
    port, llm_port = free_port(), free_port()
    env = {
        **os.environ,
        "RAGDECK_DATA_DIR": str(api_data),
        "RAGDECK_LLM_GGUF_PATH": str(llama_server.model_path),
        "RAGDECK_LLM_PORT": str(llm_port),
        "RAGDECK_LLM_CTX": "2048",
        "RAGDECK_LLM_MAX_TOKENS": "24",
    }
    log = tmp_path / "api.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "ragdeck"), "api", "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        with httpx.Client(timeout=120) as client:
            wait_until(lambda: client.get(f"{url}/readyz").status_code == 200, 300, "/readyz 200", proc, log)
            first = read_status(status_file(api_data))
            assert first is not None and first.ready and first.restarts == 0

            def ask(i: int) -> tuple[float, int, dict]:
                sent = time.monotonic()
                response = client.post(f"{url}/query", json={"question": f"{QUESTIONS[i % 4]} (#{i})"})
                return sent, response.status_code, response.json()

            results = [ask(0)]
            assert results[0][1] == 200 and results[0][2]["mode"] == "llm", results[0]
            killed_at = time.monotonic()
            os.kill(first.pid, signal.SIGKILL)  # type: ignore[arg-type]
            path = status_file(api_data)
            down = wait_until(
                lambda: (s := read_status(path)) and not s.ready and s, 30, "the crash", proc, log
            )
            assert "SIGKILL" in down.last_failure.reason
            i = 1
            while time.monotonic() - killed_at < RECOVERY_BOUND_S:
                results.append(ask(i))
                i += 1
                if results[-1][2].get("mode") == "llm":
                    break
                time.sleep(0.2)  # pacing only: a few questions a second during the outage
            recovered_after = results[-1][0] - killed_at
            codes = [code for _, code, _ in results]
            assert codes == [200] * len(codes), [body for _, _, body in results]
            during = [body for _, _, body in results[1:-1]]
            assert during, "no query fell in the outage"
            assert all(b["mode"] == "extractive" and b["fallback_reason"] for b in during), during
            assert any("SIGKILL" in b["fallback_reason"] for b in during), during
            assert results[-1][2]["mode"] == "llm", f"no LLM answer within {RECOVERY_BOUND_S:g} s"
            print(f"LLM answers again {recovered_after:.1f} s after SIGKILL; {len(during)} extractive before")

            now = read_status(status_file(api_data))
            assert now is not None and now.ready and now.restarts == 1 and now.pid != first.pid
            assert "SIGKILL" in now.last_failure.reason  # type: ignore[union-attr]
            ready = client.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            llm = next(c for c in ready.json()["checks"] if c["component"] == "llm")
            assert llm["ok"] and "restarted 1×" in llm["detail"] and "SIGKILL" in llm["detail"]
            metrics = client.get(f"{url}/metrics").text
            assert "rag_llm_restarts_total 1.0" in metrics and "rag_llm_up 1.0" in metrics
            fallback_series = 'rag_answers_total{fallback="true",mode="extractive",policy="A"}'
            assert f"{fallback_series} {len(during)}.0" in metrics
    finally:
        proc.terminate()  # the CLI stops its supervised llama.cpp child on the way out
        try:
            proc.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode in (0, 128 + signal.SIGTERM), log.read_text()[-3000:]  # a clean stop either way
    last = read_status(status_file(api_data))
    assert last is None  # its supervisor is gone
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{llm_port}/v1/models", timeout=5)
