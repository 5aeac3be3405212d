"""What an eval run reports: its Markdown summary, per-query rows, metric@k curves, and the downloads
(CSV, a self-contained HTML report; the ``--json`` export is ``export``).

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
from dataclasses import replace
from typing import Any

from ragdeck.console.evaluation.gate import GateOutcome
from ragdeck.console.evaluation.metric_names import (
    ANSWER_METRIC_ORDER,
    DOC_PREFIX,
    RETRIEVAL_METRICS,
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
    """The metrics worth a first look: each retrieval metric at the largest k (chunk level, then document
    level hit rate and recall; a run with document-level gold only: each ``doc_`` metric), then every answer
    metric the run has."""
    names = list((summary or {}).get("metrics") or {})
    parsed = [p for p in map(cutoff_metric, names) if p and p.k]
    top = max((p.k for p in parsed if p.k), default=None)
    chosen = []
    if top is not None:
        if any(not p.document for p in parsed):
            chosen += [n for n in metric_names([top]) if n in names]
            doc_level = (metric_name(m, top, document=True) for m in ("hit_rate", "recall"))
            chosen += [n for n in doc_level if n in names]
        else:
            chosen += [n for n in metric_names([top], document=True) if n in names]
    chosen += [n for n in ANSWER_METRIC_ORDER if n in names]
    chosen += [n for n in names if is_offline_metric(n)]
    return chosen


def cutoff_table(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every retrieval metric at every k the run scored: one row per metric and level ("chunks" or
    "documents": what k counts), one column ``@k`` per cut-off holding the mean (None where absent)."""
    metrics = (summary or {}).get("metrics") or {}
    parsed = [(p, metrics[n]["mean"]) for n in metrics if (p := cutoff_metric(n)) is not None and p.k]
    ks = sorted({p.k for p, _ in parsed if p.k})
    rows: dict[tuple[bool, str], dict[str, Any]] = {}
    for p, mean in parsed:
        row = rows.setdefault(
            (p.document, p.metric),
            {
                "metric": str(replace(p, k=None)),
                "k counts": "documents" if p.document else "chunks",
                **{f"@{k}": None for k in ks},
            },
        )
        row[f"@{p.k}"] = mean
    order = {m: i for i, m in enumerate(RETRIEVAL_METRICS)}
    return [rows[key] for key in sorted(rows, key=lambda key: (key[0], order.get(key[1], 99)))]


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


def scoring_lines(run: RunRow) -> list[str]:
    """What a run's header says beyond its policy: the gold level and what k counts, the depth actually
    scored (chunks retrieved, documents scored, queries that could not fill k documents, and how the depth
    was chosen), and the reranker actually used."""
    config, summary = run.config, run.summary or {}
    scoring = config.get("scoring") or {}
    policy = config.get("policy") or {}
    lines = []
    levels = scoring.get("levels") or {}
    if levels:
        ks = ", ".join(map(str, scoring.get("document_cut_offs") or config.get("ks") or []))
        counted = "document metrics (doc_) count k documents of the deduplicated ranking (best chunk each)"
        if "chunk" in levels:
            counted = "chunk metrics count k chunks; " + counted
        held = ", ".join(f"{n} with {level}-level gold" for level, n in levels.items())
        lines.append(f"level: {held}; {counted}; k = {ks}")
    depth = summary.get("depth") or {}
    if depth:
        chunks, docs, wanted = depth["chunks_retrieved"], depth["documents_scored"], depth["documents_wanted"]
        text = (
            f"depth: {chunks['min']}–{chunks['max']} chunks retrieved per query "
            f"(median {chunks['median']:g}), "
            f"{docs['min']}–{docs['max']} documents scored (median {docs['median']:g}) for k up to {wanted}"
        )
        not_filled = depth.get("not_filled") or {}
        if not_filled:
            listed = ", ".join(f"{q} ({why})" for q, why in list(not_filled.items())[:10])
            more = f" … and {len(not_filled) - 10} more" if len(not_filled) > 10 else ""
            text += f"; {len(not_filled)} queries could not fill {wanted} documents: {listed}{more}"
        else:
            text += f"; every query filled {wanted} documents"
        lines.append(text)
    if scoring.get("depth_method"):
        lines.append(f"depth chosen so: {scoring['depth_method']}")
    if not policy.get("rerank"):
        lines.append("reranker: off")
    elif summary.get("rerankers"):
        lines.append(f"reranker: {', '.join(summary['rerankers'])} (used)")
    elif run.summary is not None:
        lines.append("reranker: none used (rerank is on, but no reranker is configured)")
    return lines


def retrieval_label(policy: dict[str, Any]) -> str:
    """ "dense", "lexical", "hybrid RRF k=60" or "hybrid weighted 0.7 dense" from a policy's fields."""
    mode = policy.get("retrieval") or KNOBS["retrieval"].default
    if mode != "hybrid":
        return mode
    if policy.get("fusion") == "dbsf":
        return "hybrid DBSF"
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
        *(f"- {line}" for line in scoring_lines(run)),
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
    table = cutoff_table(summary)
    if table:
        cut_offs = [c for c in table[0] if c.startswith("@")]
        lines += ["", "Every cut-off (means):", ""]
        lines.append("| metric | k counts | " + " | ".join(cut_offs) + " |")
        lines.append("|---|---|" + "---:|" * len(cut_offs))
        for row in table:
            cells = ["–" if row[c] is None else f"{row[c]:.4f}" for c in cut_offs]
            lines.append(f"| {row['metric']} | {row['k counts']} | " + " | ".join(cells) + " |")
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


def table_html(rows: Sequence[dict[str, Any]]) -> str:
    """Rows (dicts with the same keys) as an HTML table, every value escaped, floats to 4 places."""
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
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in scoring_lines(run)) + "</ul>",
        "<h2>Summary (means with bootstrap 95 % intervals)</h2>",
        table_html(metric_rows),
        "<h2>Every cut-off (means)</h2>",
        table_html(cutoff_table(summary)),
        *charts,
        "<h2>Per query</h2>",
        table_html(rows),
    ]
    if failed:
        parts += [
            "<h2>Failed queries</h2>",
            table_html(
                [{"query_id": r["query_id"], "question": r["question"], "error": r["error"]} for r in failed]
            ),
        ]
    parts.append(
        f"<script type='application/json' id='run'>{html.escape(json.dumps(run.to_json()))}</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
