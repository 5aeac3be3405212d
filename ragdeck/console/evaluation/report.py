"""What an eval run reports: its Markdown summary, per-query rows, metric@k curves, and the downloads
(CSV, the ``--json`` export, a self-contained HTML report).

A stored per-query result (``EvalRunner.evaluate_query``) holds: ``query_id``, ``question``,
``reference_answer``, ``gold`` (id -> grade), ``level`` ("chunk" or "document"), ``retrieved`` (chunk_id,
doc_id, score, vector_score, rerank_score, best first), ``retrieved_docs``, ``metrics`` (name -> value),
``timings_ms`` (embed, search, rerank, generation, judge, total), ``answer`` (text, mode, model,
no_answer, citations, token counts) or None, ``judge`` (mode, scores, claims, errors) or None, and
``error`` (None, or the stage and message of an outright failure).
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from ragdeck.console.evaluation.gate import GateOutcome
from ragdeck.console.evaluation.metric_names import (
    ANSWER_METRIC_ORDER,
    DOC_PREFIX,
    cutoff_metric,
    is_offline_metric,
    metric_name,
    metric_names,
)
from ragdeck.console.knobs import KNOBS
from ragdeck.services.types import RunRow


def means(summary: dict[str, Any] | None) -> dict[str, float]:
    """Metric name -> mean over the run's finished queries."""
    return {name: float(v["mean"]) for name, v in ((summary or {}).get("metrics") or {}).items()}


def headline_metrics(summary: dict[str, Any] | None) -> list[str]:
    """The metrics worth a first look: each retrieval metric at the largest k (gold level, then document
    level hit rate and recall), then every answer metric the run has."""
    names = list((summary or {}).get("metrics") or {})
    gold_level = [parsed for parsed in map(cutoff_metric, names) if parsed and not parsed.document]
    top = max((parsed.k for parsed in gold_level if parsed.k), default=None)
    chosen = []
    if top is not None:
        chosen += [n for n in metric_names([top]) if n in names]
        doc_level = (metric_name(m, top, document=True) for m in ("hit_rate", "recall"))
        chosen += [n for n in doc_level if n in names]
    chosen += [n for n in ANSWER_METRIC_ORDER if n in names]
    chosen += [n for n in names if is_offline_metric(n)]
    return chosen


def metric_curves(summary: dict[str, Any] | None, prefix: str = "") -> list[dict[str, Any]]:
    """Rows (metric, k, mean, low, high) of every retrieval metric at every k, for metric@k charts;
    ``prefix="doc_"`` (``DOC_PREFIX``) gives the document-level ones."""
    document = prefix == DOC_PREFIX
    rows = []
    for name, value in ((summary or {}).get("metrics") or {}).items():
        parsed = cutoff_metric(name)
        if parsed is None or parsed.document != document:
            continue
        rows.append(
            {
                "metric": parsed.metric,
                "k": parsed.k,
                "mean": value["mean"],
                "low": value["low"],
                "high": value["high"],
            }
        )
    return sorted(rows, key=lambda r: (r["metric"], r["k"]))


def _policy_line(config: dict[str, Any]) -> str:
    policy = config.get("policy", {})
    ef = policy.get("hnsw_ef") or "default"
    return (
        f"policy `{policy.get('name')}` (alias `{policy.get('alias')}`, {retrieval_label(policy)} retrieval, "
        f"top_k {policy.get('top_k')}, top_n {policy.get('top_n')}, ef {ef}, "
        f"rerank {'on' if policy.get('rerank') else 'off'})"
    )


def retrieval_label(policy: dict[str, Any]) -> str:
    """ "dense", "lexical", "hybrid RRF k=60" or "hybrid weighted 0.7 dense" from a policy's fields."""
    mode = policy.get("retrieval") or KNOBS["retrieval"].default
    if mode != "hybrid":
        return mode
    if policy.get("fusion") == "weighted":
        return f"hybrid weighted {policy.get('dense_weight', KNOBS['dense_weight'].default):g} dense"
    return f"hybrid RRF k={policy.get('rrf_k', KNOBS['rrf_k'].default)}"


def markdown_summary(run: RunRow, gate: GateOutcome | None = None) -> str:
    """The run as Markdown: what was evaluated, headline metrics with 95 % intervals, latency, failures,
    and the gate's verdict."""
    summary = run.summary or {}
    config = run.config
    lines = [
        f"## Eval run `{run.run_id}` ({run.status})",
        "",
        f"- eval set `{run.set_name}` sha256:{run.set_hash[:12]}, {summary.get('finished', 0)} of "
        f"{run.total} queries scored, {summary.get('failed', 0)} failed",
        f"- collection `{run.collection}`, {_policy_line(config)}",
        "- answers: "
        + (f"generated, judged by {config.get('judge')}" if config.get("answers") else "not generated"),
    ]
    lines += [f"- note: {n}" for n in config.get("notes", [])]
    metrics = summary.get("metrics") or {}
    if metrics:
        lines += ["", "| metric | mean | 95 % CI | n |", "|---|---:|---|---:|"]
        for name in headline_metrics(summary):
            v = metrics[name]
            lines.append(f"| {name} | {v['mean']:.4f} | [{v['low']:.4f}, {v['high']:.4f}] | {v['n']} |")
    latency = summary.get("latency_ms") or {}
    if latency:
        lines += ["", "| stage | P50 ms | P95 ms |", "|---|---:|---:|"]
        lines += [f"| {stage} | {v['p50']:.1f} | {v['p95']:.1f} |" for stage, v in latency.items()]
    if gate is not None:
        lines.append("")
        if gate.passed:
            lines.append(f"**Gate passed** ({len(gate.checks)} checks).")
        else:
            lines.append("**Gate failed:**")
            lines += [f"- {f}" for f in gate.failures]
    return "\n".join(lines) + "\n"


def per_query_rows(results: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One flat row per query: id, question, status, the named metrics, hits, answer and latency."""
    rows = []
    for r in results:
        retrieved = [h["chunk_id"] for h in r.get("retrieved", [])]
        gold = {g for g, grade in (r.get("gold") or {}).items() if grade > 0}
        row: dict[str, Any] = {
            "query_id": r["query_id"],
            "question": r["question"],
            "status": "failed" if r.get("error") else "ok",
        }
        row.update({m: r.get("metrics", {}).get(m) for m in metrics})
        row["gold_found"] = f"{len(gold & set(retrieved))}/{len(gold)}"
        row["answer"] = (r.get("answer") or {}).get("text", "")
        row["total_ms"] = (r.get("timings_ms") or {}).get("total")
        row["error"] = r.get("error") or ""
        rows.append(row)
    return rows


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV text (header from the first row)."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export_json(
    run: RunRow, results: Sequence[dict[str, Any]], gate: GateOutcome | None = None
) -> dict[str, Any]:
    """The ``--json`` export: run id, what was evaluated, summary means (and intervals), and per query its
    id, ranked chunk and document ids, every metric, and its error if it failed."""
    summary = run.summary or {}
    return {
        "run_id": run.run_id,
        "status": run.status,
        "eval_set": {"name": run.set_name, "hash": run.set_hash},
        "collection": run.collection,
        "config": run.config,
        "summary": means(summary),
        "summary_ci": summary.get("metrics", {}),
        "latency_ms": summary.get("latency_ms", {}),
        "finished": summary.get("finished", 0),
        "failed": summary.get("failed", 0),
        "gate": None
        if gate is None
        else {"passed": gate.passed, "failures": gate.failures, "checks": gate.checks},
        "queries": [
            {
                "id": r["query_id"],
                "retrieved_chunk_ids": [h["chunk_id"] for h in r.get("retrieved", [])],
                "retrieved_doc_ids": list(r.get("retrieved_docs", [])),
                "metrics": r.get("metrics", {}),
                "error": r.get("error"),
            }
            for r in results
        ],
    }


def _table_html(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No rows.</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = []
    for row in rows:
        cells = []
        for value in row.values():
            text = f"{value:.4f}" if isinstance(value, float) else "" if value is None else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_report(run: RunRow, results: Sequence[dict[str, Any]], charts: Sequence[str] = ()) -> str:
    """A self-contained HTML page: the summary, ``charts`` (HTML fragments, e.g. plotly figures with their
    script inlined), and the per-query table. Opens offline; nothing is fetched."""
    summary = run.summary or {}
    metric_rows = [
        {"metric": n, **{k: summary["metrics"][n][k] for k in ("mean", "low", "high", "n")}}
        for n in headline_metrics(summary)
    ]
    rows = per_query_rows(results, headline_metrics(summary))
    failed = [r for r in results if r.get("error")]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}"
        "table{border-collapse:collapse;font-size:0.85rem;margin:1rem 0}"
        "td,th{border:1px solid #ddd;padding:0.25rem 0.5rem;vertical-align:top}th{background:#f4f4f4}"
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ragdeck eval {html.escape(run.run_id)}</title><style>{style}</style></head><body>",
        f"<h1>Eval run {html.escape(run.run_id)}</h1>",
        f"<p>Eval set <b>{html.escape(run.set_name)}</b> sha256:{run.set_hash[:12]} &middot; collection "
        f"<b>{html.escape(run.collection)}</b> &middot; {html.escape(_policy_line(run.config))} &middot; "
        f"status {html.escape(run.status)} &middot; {summary.get('finished', 0)} of {run.total} queries "
        f"scored, {summary.get('failed', 0)} failed</p>",
        "<h2>Summary (means with bootstrap 95 % intervals)</h2>",
        _table_html(metric_rows),
        *charts,
        "<h2>Per query</h2>",
        _table_html(rows),
    ]
    if failed:
        parts += [
            "<h2>Failed queries</h2>",
            _table_html(
                [{"query_id": r["query_id"], "question": r["question"], "error": r["error"]} for r in failed]
            ),
        ]
    parts.append(
        f"<script type='application/json' id='run'>{html.escape(json.dumps(run.to_json()))}</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
