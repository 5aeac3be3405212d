"""The supervisor of the local llama.cpp server, on a stand-in server process (tests/fake_llama.py): a crash
on the first generation, a SIGKILL, a hang, giving up; the status file other processes read; the API's
readiness, metrics and extractive fallback while it is down."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import free_port, readyz_when_warm

from ragdeck.services.llama_local import LlamaServer, describe_exit
from ragdeck.services.llama_supervisor import (
    FAILED,
    READY,
    RESTARTING,
    STOPPED,
    LlamaSupervisor,
    LlmServerStatus,
    read_status,
    status_file,
)

FAKE = Path(__file__).with_name("fake_llama.py")


class FakeLlamaServer(LlamaServer):
    """A LlamaServer whose process is tests/fake_llama.py (no model, starts in a fraction of a second)."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        super().__init__(tmp_path / "fake.gguf", port=free_port(), log_path=tmp_path / "fake-llama.log")
        self.extra = list(extra)

    def command(self) -> list[str]:
        return [sys.executable, str(FAKE), "--port", str(self.port), "--model-alias", self.model_alias,
                *self.extra]  # fmt: skip

    def preflight(self) -> None:
        pass


def wait_for(condition: Callable[[], object], timeout_s: float = 30.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def fast_supervisor(server: LlamaServer, path: Path, **kwargs: object) -> LlamaSupervisor:
    options = dict(backoff_s=0.1, max_backoff_s=0.5, probe_interval_s=0.1, probe_timeout_s=0.5,
                   hang_after_s=1.5, start_wait_s=30.0)  # fmt: skip
    options.update(kwargs)
    return LlamaSupervisor(server, path, **options)  # type: ignore[arg-type]


@pytest.fixture
def status_path(tmp_path: Path) -> Path:
    return status_file(tmp_path / "data")


@pytest.fixture
def supervised(tmp_path: Path, status_path: Path) -> Iterator[LlamaSupervisor]:
    server = FakeLlamaServer(tmp_path)
    with fast_supervisor(server, status_path) as supervisor:
        yield supervisor


def test_exit_codes_read_as_people_say_them() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-11) == "crashed with signal 11 (SIGSEGV)"
    assert describe_exit(-9) == "was killed with signal 9 (SIGKILL)"


def test_ready_after_one_real_generation_and_the_status_file_says_so(
    supervised: LlamaSupervisor, status_path: Path
) -> None:
    status = supervised.status()
    assert status.state == READY and status.restarts == 0 and status.pid
    on_disk = read_status(status_path, supervised.base_url)
    assert on_disk is not None and on_disk.state == READY and on_disk.pid == status.pid
    assert read_status(status_path, "http://127.0.0.1:1/v1") is None  # another URL: not ours
    assert "up" in status.summary()


def test_sigkill_is_restarted_and_counted(supervised: LlamaSupervisor, status_path: Path) -> None:
    first = supervised.status().pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    status = wait_for(lambda: (s := supervised.status()).state == READY and s.pid != first and s,
                      what="a restarted server")  # fmt: skip
    assert isinstance(status, LlmServerStatus)
    assert status.restarts == 1
    assert status.last_failure is not None and "signal 9 (SIGKILL)" in status.last_failure.reason
    assert "GET /v1/models" not in status.last_failure.log_tail  # its own probes are no news
    assert "restarted 1×" in status.summary()
    # the status file is written just after the state changes in memory: wait for it too
    on_disk = wait_for(lambda: (s := read_status(status_path)) and s.state == READY and s, what="the file")
    assert isinstance(on_disk, LlmServerStatus) and on_disk.restarts == 1


def test_a_crash_on_the_first_generation_is_caught_and_restarted(tmp_path: Path, status_path: Path) -> None:
    marker = tmp_path / "crash-once"
    marker.touch()
    server = FakeLlamaServer(tmp_path, "--crash-marker", str(marker))
    with fast_supervisor(server, status_path) as supervisor:
        status = wait_for(lambda: (s := supervisor.status()).state == READY and s, what="ready")
        assert isinstance(status, LlmServerStatus)
        assert status.restarts == 1
        assert status.last_failure is not None
        assert status.last_failure.reason == "crashed with signal 11 (SIGSEGV) during its first generation"
        assert "general protection fault (simulated)" in status.last_failure.log_tail


def test_gives_up_after_max_failures_and_says_why(tmp_path: Path, status_path: Path) -> None:
    server = FakeLlamaServer(tmp_path, "--always-crash")
    seen: list[str] = []
    supervisor = fast_supervisor(
        server, status_path, max_failures=3, on_change=lambda s: seen.append(s.state)
    )
    with supervisor:
        final = supervisor.wait()
        assert final.state == FAILED and final.failures == 3 and final.restarts == 2
        assert seen.count(RESTARTING) == 2
        summary = final.summary()
        assert "crashed with signal 11 (SIGSEGV) during its first generation" in summary
        assert "gave up after 3 tries" in summary
        assert read_status(status_path).state == FAILED  # type: ignore[union-attr]
    assert supervisor.status().state == STOPPED
    assert json.loads(status_path.read_text())["state"] == STOPPED
    assert server.process is not None and server.process.poll() is not None
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more (the port may sit in TIME_WAIT)
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_a_hung_server_is_killed_and_restarted(tmp_path: Path, status_path: Path) -> None:
    hang = tmp_path / "hang"
    server = FakeLlamaServer(tmp_path, "--hang-marker", str(hang))
    with fast_supervisor(server, status_path) as supervisor:
        first = supervisor.status().pid
        hang.touch()
        wait_for(lambda: supervisor.status().state != READY, what="the hang to be seen")
        hang.unlink()
        status = wait_for(lambda: (s := supervisor.status()).state == READY and s.pid != first and s,
                          what="a restarted server")  # fmt: skip
        assert "stopped answering /v1/models for" in status.last_failure.reason  # type: ignore[union-attr]


def test_a_status_whose_supervisor_is_gone_is_ignored(tmp_path: Path, status_path: Path) -> None:
    status = LlmServerStatus(state=READY, url="http://127.0.0.1:9/v1", supervisor_pid=2**22 + 12345)
    status_path.parent.mkdir(parents=True)
    status_path.write_text(json.dumps(status.to_json()))
    assert read_status(status_path) is None
    status_path.write_text("{not json")
    assert read_status(status_path) is None


# ---------------------------------------------------------------- what users see while it is down


@pytest.fixture
def down_then_up(tmp_path: Path, demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """A supervised stand-in server for the demo data directory (LLM_BASE_URL points at it), and a function
    that SIGKILLs it and waits until the supervisor reports it down (its restart waits for ``retry_now``)."""
    server = FakeLlamaServer(tmp_path)
    path = status_file(demo_data_dir)
    with fast_supervisor(server, path, backoff_s=600, max_backoff_s=600) as supervisor:
        monkeypatch.setenv("LLM_BASE_URL", supervisor.base_url)

        def kill() -> None:
            os.kill(supervisor.status().pid, signal.SIGKILL)  # type: ignore[arg-type]
            wait_for(lambda: supervisor.status().state == RESTARTING, what="the crash to be seen")

        yield supervisor, kill


def test_api_answers_extractively_while_the_local_llm_is_down_and_says_so(
    down_then_up, demo_data_dir: Path, local_embedder
) -> None:
    from fastapi.testclient import TestClient

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    supervisor, kill = down_then_up
    runtime = build_runtime(Settings(), embedder=local_embedder)
    try:
        with TestClient(create_app(runtime)) as client:
            assert runtime.service.fallback_default  # the local LLM ragdeck supervises: fallback on
            up = client.post("/query", json={"question": "What is a recording rule?"}).json()
            assert up["mode"] == "llm" and up["fallback_reason"] is None
            assert readyz_when_warm(client.get).status_code == 200

            kill()
            wait_for(lambda: runtime.service._llm_down(), what="the service to see the LLM down")
            for question in ("How do I expose TEI metrics?", "What does TEI's /rerank return?"):
                response = client.post("/query", json={"question": question})
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["mode"] == "extractive" and not body["cached"]
                assert "was killed with signal 9 (SIGKILL)" in body["fallback_reason"]
            ready = client.get("/readyz")
            assert ready.status_code == 200  # still answering: degraded, not down
            assert ready.json()["degraded"] == ["llm"]
            llm = next(c for c in ready.json()["checks"] if c["component"] == "llm")
            assert not llm["ok"] and "restarting" in llm["detail"]
            metrics = client.get("/metrics").text
            assert 'rag_answers_total{fallback="true",mode="extractive",policy="A"} 2.0' in metrics
            assert "rag_llm_restarts_total 0.0" in metrics and "rag_llm_up 0.0" in metrics

            supervisor.retry_now()
            wait_for(lambda: supervisor.status().state == READY, what="the restart")
            wait_for(lambda: not runtime.service._llm_down(), what="the service to see the LLM up")
            again = client.post("/query", json={"question": "How does Prometheus scrape targets?"}).json()
            assert again["mode"] == "llm" and again["fallback_reason"] is None
            ready = client.get("/readyz").json()
            llm = next(c for c in ready["checks"] if c["component"] == "llm")
            assert ready["ready"] and llm["ok"] and "restarted 1×" in llm["detail"]
            metrics = client.get("/metrics").text
            assert "rag_llm_restarts_total 1.0" in metrics and "rag_llm_up 1.0" in metrics
    finally:
        runtime.close()


def test_without_fallback_a_down_llm_is_a_503_naming_it(
    down_then_up, demo_data_dir: Path, local_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    _, kill = down_then_up
    monkeypatch.setenv("RAGDECK_LLM_FALLBACK", "false")
    runtime = build_runtime(Settings(), embedder=local_embedder)
    try:
        with TestClient(create_app(runtime)) as client:
            kill()
            wait_for(lambda: runtime.service._llm_down(), what="the service to see the LLM down")
            response = client.post("/query", json={"question": "What is a recording rule?"})
            assert response.status_code == 503
            error = response.json()["error"]
            assert "The LLM of policy 'A' is unavailable" in error and "signal 9 (SIGKILL)" in error
            assert "RAGDECK_LLM_FALLBACK" in error
            ready = readyz_when_warm(client.get)
            assert ready.status_code == 503 and ready.json()["failed"] == ["llm"]
    finally:
        runtime.close()


def test_an_external_llm_does_not_fall_back_by_default(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragdeck.console.settings import Settings
    from ragdeck.console.wiring import fallback_default, llm_supervision

    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    settings = Settings()
    status = llm_supervision(settings)
    assert status is not None and status() is None  # no supervisor serves that URL
    assert not fallback_default(settings, status)
    assert fallback_default(settings.model_copy(update={"llm_fallback": True}), status)


@pytest.mark.slow
def test_stack_and_ask_pages_say_what_happened(down_then_up, demo_data_dir: Path) -> None:
    from pages import open_page

    supervisor, kill = down_then_up
    kill()
    at = open_page().run()
    assert not at.exception, at.exception
    components = at.dataframe[0].value
    llm = components[components["component"] == "llm"].iloc[0]
    assert llm["status"] == "○ DOWN" and llm["mode"] == "local"
    assert "was killed with signal 9 (SIGKILL)" in llm["detail"] and "restarting in" in llm["detail"]
    assert any("Local LLM" in e.value and "restarting" in e.value for e in at.error)

    at = open_page("ask")
    assert any("The LLM is down" in e.value for e in at.error)
    at.text_input[0].input("What is a recording rule?")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    outcome = at.session_state["ask_outcome"]
    assert outcome.answer.mode == "extractive" and "SIGKILL" in outcome.answer.fallback_reason
    assert any("badge[✂️ Extractive · LLM down]" in m.value for m in at.markdown)
    assert any("the LLM was unavailable" in w.value for w in at.warning)

    supervisor.retry_now()
    wait_for(lambda: supervisor.status().state == READY, what="the restart")
    at = open_page().run()
    components = at.dataframe[0].value
    llm = components[components["component"] == "llm"].iloc[0]
    assert llm["status"] == "● up" and "restarted 1×" in llm["detail"]
    assert any("restarted 1×" in i.value for i in at.info)


# ---------------------------------------------------------------- the install-time proof


def test_smoke_names_the_crash_the_log_and_the_fix(tmp_path: Path) -> None:
    from ragdeck.errors import ServiceUnavailable
    from ragdeck.services.llama_local import smoke_generation

    server = FakeLlamaServer(tmp_path, "--always-crash")
    with pytest.raises(ServiceUnavailable) as caught:
        smoke_generation(tmp_path / "fake.gguf", tmp_path, wait_s=30, server=server)
    message = str(caught.value)
    assert "crashed with signal 11 (SIGSEGV) during the first generation" in message
    assert "general protection fault (simulated)" in message  # the log's last lines
    assert "-DGGML_NATIVE=OFF" in message and "--no-llm" in message  # the fix
    assert not server.running


def test_smoke_reports_a_real_answer(tmp_path: Path) -> None:
    from ragdeck.services.llama_local import smoke_generation

    report = smoke_generation(tmp_path / "fake.gguf", tmp_path, wait_s=30, server=FakeLlamaServer(tmp_path))
    assert report.text == "OK [1]" and report.completion_tokens == 2 and report.model == "fake"


def test_only_avx512_and_amx_count_as_non_portable() -> None:
    from ragdeck.services.llama_local import non_portable_features

    portable = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 |"
    native = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | REPACK = 1 |"
    assert non_portable_features(portable) == []
    assert non_portable_features(native) == ["AVX512", "AVX512_VNNI", "AMX_INT8"]
    assert non_portable_features("unknown") == []
