"""What evaluation needs from outside: ``EvalRunStore`` (eval runs and their per-query results) and
``AnswerJudge`` (scores for one answer).

``services.eval_store`` and ``services.judge`` satisfy them; ``console.wiring`` builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ragdeck.services.types import JudgeResult, RunRow

__all__ = ["AnswerJudge", "EvalRunStore"]


@runtime_checkable
class EvalRunStore(Protocol):
    """Eval runs and their per-query results (``services.eval_store.EvalStore``, SQLite)."""

    def create_run(self, row: RunRow) -> None:
        """Insert a new run (InputError when its id exists)."""

    def get_run(self, run_id: str) -> RunRow:
        """A run by id (InputError when unknown)."""

    def list_runs(self, *, limit: int = 100, set_name: str | None = None) -> list[RunRow]:
        """Runs, newest first."""

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Set a run's status, summary or error."""

    def save_result(
        self, run_id: str, query_id: str, position: int, ok: bool, result: dict[str, Any]
    ) -> None:
        """Store one query's result durably before returning."""

    def save_results(self, run_id: str, results: Sequence[tuple[str, int, bool, dict[str, Any]]]) -> None:
        """Store several results, ``(query_id, position, ok, result)`` each, in one transaction: all are
        durable when it returns, or none."""

    def results(self, run_id: str) -> list[dict[str, Any]]:
        """A run's per-query results in eval-set order."""

    def finished_ids(self, run_id: str) -> set[str]:
        """Query ids finished without error."""


@runtime_checkable
class AnswerJudge(Protocol):
    """Scores one answer against its contexts and reference (Ragas with a judge model, or offline string
    metrics); ``judge`` may be called from several threads at once."""

    mode: str  # "llm" | "offline"
    metric_names: tuple[str, ...]

    def judge(
        self,
        question: str,
        answer: str,
        contexts: Sequence[str],
        reference: str = "",
        reference_contexts: Sequence[str] = (),
    ) -> JudgeResult:
        """Every metric of ``metric_names`` (None plus an ``errors`` entry when one fails); never raises for
        one bad metric."""

    def close(self) -> None:
        """Release connections."""
