"""A run as a file: the ``ragdeck eval --json`` export (``export_json``) and reading one back
(``run_from_export``), so that ``ragdeck compare`` takes run files as well as stored run ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragdeck.console.evalsets.model import doc_id_of
from ragdeck.console.evaluation.gate import GateOutcome
from ragdeck.console.evaluation.report import means
from ragdeck.services.types import RunRow

EXPORT_SUMMARY_KEYS = ("levels", "depth", "rerankers")  # summary fields the export keeps beside the means


def export_json(
    run: RunRow, results: Sequence[dict[str, Any]], gate: GateOutcome | None = None
) -> dict[str, Any]:
    """The ``--json`` export: run id, what was evaluated, summary means (and intervals), and per query its
    id, question, gold, level and depth, ranked chunk and document ids, every metric, and its error if it
    failed. ``run_from_export`` reads it back (``ragdeck compare`` takes these files)."""
    summary = run.summary or {}
    return {
        "run_id": run.run_id,
        "status": run.status,
        "created_at": run.created_at,
        "eval_set": {"name": run.set_name, "hash": run.set_hash},
        "collection": run.collection,
        "total": run.total,
        "config": run.config,
        "summary": means(summary),
        "summary_ci": summary.get("metrics", {}),
        "latency_ms": summary.get("latency_ms", {}),
        "finished": summary.get("finished", 0),
        "failed": summary.get("failed", 0),
        **{key: summary.get(key) for key in EXPORT_SUMMARY_KEYS},
        "gate": None
        if gate is None
        else {"passed": gate.passed, "failures": gate.failures, "checks": gate.checks},
        "queries": [
            {
                "id": r["query_id"],
                "question": r.get("question", ""),
                "gold": r.get("gold") or {},
                "level": r.get("level"),
                "depth": r.get("depth"),
                "retrieved_chunk_ids": [h["chunk_id"] for h in r.get("retrieved", [])],
                "retrieved_doc_ids": list(r.get("retrieved_docs", [])),
                "metrics": r.get("metrics", {}),
                "error": r.get("error"),
            }
            for r in results
        ],
    }


def run_from_export(data: dict[str, Any]) -> tuple[RunRow, list[dict[str, Any]]]:
    """A run and its per-query results from an ``export_json`` object (a ``ragdeck eval --json`` file),
    as the eval store would give them. KeyError, TypeError or ValueError when it is not one."""
    summary = {
        "queries": int(data.get("total") or len(data["queries"])),
        "finished": int(data.get("finished", 0)),
        "failed": int(data.get("failed", 0)),
        "metrics": dict(data.get("summary_ci") or {}),
        "latency_ms": dict(data.get("latency_ms") or {}),
        **{key: data[key] for key in EXPORT_SUMMARY_KEYS if data.get(key) is not None},
    }
    created = float(data.get("created_at") or 0.0)
    run = RunRow(
        run_id=str(data["run_id"]),
        created_at=created,
        updated_at=created,
        status=str(data["status"]),
        set_name=str(data["eval_set"]["name"]),
        set_hash=str(data["eval_set"]["hash"]),
        collection=str(data["collection"]),
        total=int(data.get("total") or len(data["queries"])),
        config=dict(data.get("config") or {}),
        summary=summary,
    )
    results = []
    for q in data["queries"]:
        chunks, docs = list(q.get("retrieved_chunk_ids") or []), list(q.get("retrieved_doc_ids") or [])
        results.append(
            {
                "query_id": str(q["id"]),
                "question": str(q.get("question") or ""),
                "gold": dict(q.get("gold") or {}),
                "level": q.get("level"),
                "depth": q.get("depth"),
                "retrieved": [{"chunk_id": c, "doc_id": doc_id_of(c)} for c in chunks],
                "retrieved_docs": docs,
                "metrics": {str(k): float(v) for k, v in dict(q.get("metrics") or {}).items()},
                "error": q.get("error"),
            }
        )
    return run, results
