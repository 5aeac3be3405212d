"""Watching the local llama.cpp server: restart it when it dies or hangs, and say truthfully what happened.

``LlamaSupervisor`` owns one ``LlamaServer``. A watcher thread starts it, proves it with one real generation
(a server can load its model and still crash on its first matrix product, as ggml's AMX path did), then
probes ``/v1/models`` every few seconds. A process that exits, or stops answering several probes in a row, is
a failure: its exit code or signal and its log's last lines are kept, and it is restarted after a backoff
(1, 2, 4 … seconds, capped). After ``max_failures`` failures with no stable spell in between it gives up.

The status is written atomically to a JSON file (``status_path``) on every change, so other processes (the
console's pages, the API the console hosts) read the same truth: ``read_status``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from ragdeck.errors import RagdeckError
from ragdeck.services.common import pid_alive, write_json_atomic
from ragdeck.services.llama_local import LlamaServer, describe_exit, tail

log = logging.getLogger("ragdeck.llm")

STARTING, READY, RESTARTING, FAILED, STOPPED = "starting", "ready", "restarting", "failed", "stopped"
LOG_TAIL_LINES = 12
PROBE_LOG_LINE = '"GET /v1/models HTTP'  # the supervisor's own probes in the server's access log


@dataclass
class LlmFailure:
    """One way the server went down: when, why (``reason``), and its log's last lines."""

    at: float
    reason: str
    log_tail: str = ""


@dataclass
class LlmServerStatus:
    """What the supervisor knows about the local server (written to the status file as JSON)."""

    state: str  # starting | ready | restarting | failed | stopped
    url: str
    model: str = ""
    pid: int | None = None  # the llama.cpp server's process
    supervisor_pid: int = field(default_factory=os.getpid)
    restarts: int = 0  # restarts done since the supervisor started
    failures: int = 0  # failures in a row (reset after a stable spell)
    max_failures: int = 0
    last_failure: LlmFailure | None = None
    next_attempt_at: float | None = None
    log_path: str = ""
    updated_at: float = field(default_factory=time.time)

    @property
    def ready(self) -> bool:
        """True while the server answers."""
        return self.state == READY

    def summary(self, now: float | None = None) -> str:
        """One line for people: the state, and what happened last."""
        now = time.time() if now is None else now
        if self.state == READY:
            text = f"local llama.cpp server up (pid {self.pid})"
            if self.restarts:
                last = self.last_failure.reason if self.last_failure else "?"
                text += f"; restarted {self.restarts}× (last: {last})"
            return text
        last = f"{self.last_failure.reason}" if self.last_failure else ""
        if self.state == STARTING:
            return "local llama.cpp server starting" + (f" after it {last}" if last else "")
        if self.state == RESTARTING:
            wait = max(0.0, (self.next_attempt_at or now) - now)
            return (
                f"local llama.cpp server {last}; restarting in {wait:.0f} s "
                f"(attempt {self.failures + 1} of {self.max_failures})"
            )
        if self.state == FAILED:
            return (
                f"local llama.cpp server {last}; gave up after {self.failures} tries in a row "
                "(see the log tail; restart ragdeck to try again)"
            )
        return "local llama.cpp server stopped"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LlmServerStatus:
        """The inverse of ``to_json``; TypeError / KeyError for a body that is not one."""
        values = dict(data)
        failure = values.pop("last_failure", None)
        status = cls(**values)
        status.last_failure = LlmFailure(**failure) if isinstance(failure, dict) else None
        return status


def status_file(data_dir: Path) -> Path:
    """Where the supervisor of a data directory's local LLM writes its status."""
    return Path(data_dir) / "run" / "llm-server.json"


def read_status(path: Path, url: str | None = None) -> LlmServerStatus | None:
    """The status a live supervisor wrote to ``path``; None when there is none, it does not parse, its
    supervisor process is gone, or it serves another ``url`` than the one given."""
    import json

    try:
        status = LlmServerStatus.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not pid_alive(status.supervisor_pid):
        return None
    if url is not None and status.url.rstrip("/") != url.rstrip("/"):
        return None
    return status


class LlamaSupervisor:
    """Runs ``server`` and keeps it running (see the module docstring). Use as a context manager.

    ``start(wait_s)`` launches the watcher and blocks until the first attempt has answered a generation or
    failed (it never raises for a crash: the status says what happened and restarts follow). ``stop()``
    ends the watcher and the server. ``on_change(status)`` is called on every transition (logging, CLI).
    """

    def __init__(
        self,
        server: LlamaServer,
        status_path: Path | None = None,
        *,
        max_failures: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        probe_interval_s: float = 2.0,
        probe_timeout_s: float = 5.0,
        hang_after_s: float = 120.0,
        stable_s: float = 60.0,
        start_wait_s: float = 180.0,
        on_change: Callable[[LlmServerStatus], None] | None = None,
    ) -> None:
        self.server = server
        self.status_path = Path(status_path) if status_path else None
        self.max_failures = max_failures
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.hang_after_s = hang_after_s
        self.stable_s = stable_s
        self.start_wait_s = start_wait_s
        self.on_change = on_change
        self._status = LlmServerStatus(
            state=STARTING,
            url=server.base_url,
            model=server.model_alias,
            max_failures=max_failures,
            log_path=str(server.log_path or ""),
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._first_attempt = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public

    @property
    def base_url(self) -> str:
        """The OpenAI API root of the supervised server."""
        return self.server.base_url

    def status(self) -> LlmServerStatus:
        """A copy of the current status."""
        with self._lock:
            return LlmServerStatus.from_json(self._status.to_json())

    def start(self, wait_s: float | None = None) -> Self:
        """Start watching; block until the first attempt is ready or has failed (at most ``wait_s``)."""
        if self._thread is None:
            self._publish()
            self._thread = threading.Thread(target=self._run, name="llama-supervisor", daemon=True)
            self._thread.start()
        self._first_attempt.wait(self.start_wait_s + 30 if wait_s is None else wait_s)
        return self

    def retry_now(self) -> None:
        """Cut a restart's backoff short: the next attempt starts at once."""
        self._wake.set()

    def stop(self) -> None:
        """Stop watching and stop the server; the status file says "stopped". Idempotent."""
        self._stop.set()
        self._wake.set()
        self.server.stop()  # also ends a start the watcher may be waiting on
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.server.stop()
        self._update(state=STOPPED, pid=None, next_attempt_at=None)

    def wait(self) -> LlmServerStatus:
        """Block until the supervisor gives up or is stopped; the final status."""
        while not self._stop.wait(0.5):
            if self.status().state == FAILED:
                break
        return self.status()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the watcher

    def _run(self) -> None:
        while not self._stop.is_set():
            failure = self._attempt()
            self._first_attempt.set()
            if failure is None or self._stop.is_set():
                return
            with self._lock:
                failures = self._status.failures + 1
            if failures >= self.max_failures:
                self._update(state=FAILED, failures=failures, last_failure=failure, pid=None,
                             next_attempt_at=None)  # fmt: skip
                self._log(logging.ERROR)
                return
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1))
            self._update(state=RESTARTING, failures=failures, last_failure=failure, pid=None,
                         next_attempt_at=time.time() + delay)  # fmt: skip
            self._log(logging.WARNING)
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                self._status.restarts += 1
            self._update(state=STARTING)

    def _attempt(self) -> LlmFailure | None:
        """Run the server once, until it fails (the failure) or the supervisor stops (None)."""
        self.server.stop()
        self.server.process = None  # a failure below is this attempt's, not the last process's
        stage = "while loading its model"
        try:
            self.server.start(wait_s=self.start_wait_s)
            self._update(pid=self.server.process.pid if self.server.process else None,
                         log_path=str(self.server.log_path or ""))  # fmt: skip
            stage = "during its first generation"
            self._prove_generation()
        except (RagdeckError, httpx.HTTPError) as exc:
            proc = self.server.process
            if proc is not None and proc.poll() is not None:
                return self._failure(f"{describe_exit(proc.returncode)} {stage}")
            self.server.stop(timeout_s=5)
            return self._failure(f"failed {stage}: {_first_line(exc)}")
        self._update(state=READY, next_attempt_at=None)
        self._first_attempt.set()
        self._log(logging.INFO)
        return self._watch()

    def _prove_generation(self) -> None:
        """One token from ``/v1/chat/completions``; raises when the process dies doing it."""
        body = {"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1, "temperature": 0}
        with httpx.Client(timeout=httpx.Timeout(self.start_wait_s, connect=5.0)) as client:
            try:
                response = client.post(f"{self.server.base_url}/chat/completions", json=body)
                response.raise_for_status()
            except httpx.HTTPError:
                if self.server.process is not None:
                    with contextlib.suppress(Exception):
                        self.server.process.wait(timeout=2)
                raise

    def _watch(self) -> LlmFailure | None:
        """Probe until the process exits or has not answered for ``hang_after_s`` (llama.cpp's server
        answers nothing while it reads a long prompt, so a slow probe alone is no hang)."""
        healthy_since = last_answer = time.monotonic()
        with httpx.Client(timeout=httpx.Timeout(self.probe_timeout_s)) as client:
            while not self._stop.wait(self.probe_interval_s):
                code = self.server.process.poll() if self.server.process else -1
                if code is not None:
                    return self._failure(describe_exit(code))
                try:
                    ok = client.get(f"{self.server.base_url}/models").status_code == 200
                except httpx.HTTPError:
                    ok = False
                now = time.monotonic()
                if ok:
                    last_answer = now
                elif now - last_answer >= self.hang_after_s:
                    self.server.stop(timeout_s=5)
                    return self._failure(f"stopped answering /v1/models for {now - last_answer:.0f} s")
                if ok and self._status.failures and now - healthy_since > self.stable_s:
                    self._update(failures=0)  # a stable spell: earlier failures no longer count
        return None

    def _log(self, level: int) -> None:
        if self.on_change is None:  # whoever watches the changes reports them itself
            log.log(level, "local LLM: %s", self.status().summary())

    def _failure(self, reason: str) -> LlmFailure:
        text = tail(self.server.log_path, LOG_TAIL_LINES, skip=PROBE_LOG_LINE)
        return LlmFailure(time.time(), reason, text)

    def _update(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self._status, name, value)
            self._status.updated_at = time.time()
            status = self._write_locked()
        self._notify(status)

    def _publish(self) -> None:
        with self._lock:
            status = self._write_locked()
        self._notify(status)

    def _write_locked(self) -> LlmServerStatus:
        """A copy of the status, written to the status file; called with the lock held, so no reader sees
        a state in memory that the file does not have yet."""
        status = LlmServerStatus.from_json(self._status.to_json())
        if self.status_path is not None:
            try:
                self.status_path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.status_path, status.to_json())
            except OSError as exc:
                log.warning("could not write the LLM status to %s: %s", self.status_path, exc)
        return status

    def _notify(self, status: LlmServerStatus) -> None:
        if self.on_change is not None:
            try:
                self.on_change(status)
            except Exception:  # a reporting callback must never stop the watcher
                log.exception("LLM status callback failed")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
