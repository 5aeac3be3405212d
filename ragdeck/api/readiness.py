"""Ready means warm: the API warms its models and stores in the background and ``/readyz`` answers from a
cached self-test, so readiness costs milliseconds under any load and the first user meets a warm process.

At start a daemon thread runs one real retrieval per policy (loading the embedding model, opening the
collection behind each alias, touching its index) and then ``RagService.ready()`` (an embedding, a store
lookup, a 5-token answer when an LLM is configured). Until that has run, ``/readyz`` says "warming" (503).
Afterwards the self-test is repeated every ``refresh_s`` seconds in the background; a request never runs it,
except when the supervised LLM's state (a cheap read) differs from the one the cached test saw: then the test
runs again at once, so a crash or a restart shows on the next ``/readyz``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ragdeck.console.answering.service import RagService, ReadinessCheck

log = logging.getLogger("ragdeck.api")

WARM_QUESTION = "How is this service warmed up before its first request?"


@dataclass(frozen=True)
class SelfTest:
    """One run of the self-test: its checks, when it finished (monotonic) and the LLM state it saw."""

    checks: list[ReadinessCheck]
    at: float
    llm_state: tuple[str | None, str | None]
    warm_ms: float | None = None  # the warm-up before the first test, when this is the first


class Readiness:
    """The cached self-test of one API process (see the module docstring)."""

    def __init__(self, service: RagService, refresh_s: float = 10.0) -> None:
        self.service = service
        self.refresh_s = refresh_s
        self._latest: SelfTest | None = None
        self._lock = threading.Lock()  # one self-test at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warm_ms: float | None = None

    def start(self) -> None:
        """Warm up and keep the self-test fresh from a daemon thread (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (a self-test in progress finishes)."""
        self._stop.set()

    def latest(self) -> SelfTest | None:
        """The newest self-test, run again first when the LLM's state changed since; None while warming.

        Requests that see the change together run one self-test: the others find it done under the lock."""
        latest = self._latest
        if latest is None or latest.llm_state == self._llm_state():
            return latest
        with self._lock:
            latest = self._latest
            if latest is not None and latest.llm_state != self._llm_state():
                latest = self._self_test()
            return latest

    def refresh(self) -> SelfTest:
        """Run the self-test now and cache it."""
        with self._lock:
            return self._self_test()

    def _self_test(self) -> SelfTest:  # the caller holds the lock
        state = self._llm_state()
        self._latest = SelfTest(self.service.ready(), time.monotonic(), state, self.warm_ms)
        return self._latest

    def _llm_state(self) -> tuple[str | None, str | None]:
        status = self.service.llm_status() if self.service.llm_status is not None else None
        return self.service._llm_down(), status.summary() if status is not None else None

    def _warm_up(self) -> None:
        t0 = time.perf_counter()
        for name, policy in self.service.policies.items():
            try:
                self.service.retriever.search(WARM_QUESTION, policy.alias, policy.retrieval_params())
            except Exception as exc:  # the self-test that follows reports what is wrong
                log.warning("warm-up of policy %s failed: %s", name, type(exc).__name__)
        self.warm_ms = (time.perf_counter() - t0) * 1000

    def _run(self) -> None:
        self._warm_up()
        while True:
            try:
                test = self.refresh()
                if any(not c.ok for c in test.checks):
                    log.warning("self-test: %s", ", ".join(c.component for c in test.checks if not c.ok))
            except Exception:  # never let the thread die: the next round tries again
                log.exception("self-test crashed")
            if self._stop.wait(self.refresh_s):
                return
