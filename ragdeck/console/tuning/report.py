"""A study's report: readable lines (the CLI, the page) and a self-contained HTML page, both from the
study's JSON (``Study.to_json``)."""

from __future__ import annotations

import html
import json
from typing import Any

from ragdeck.console.evaluation.report import table_html


def _f(value: Any, places: int = 4) -> str:
    return "–" if value is None else f"{value:.{places}f}" if isinstance(value, float) else str(value)


def trial_rows(study: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per trial: its label, tune score, P95 and whether it was chosen."""
    chosen = (study.get("chosen") or {}).get("label")
    return [
        {
            "trial": t["label"],
            "tune score": t["tune_score"],
            "P95 ms": t["p95_ms"],
            "within budget": {True: "yes", False: "no", None: "–"}[t.get("within_budget")],
            "chosen": "◀" if t["label"] == chosen else "",
            "error": t.get("error") or "",
        }
        for t in study.get("trials") or []
    ]


def summary_lines(study: dict[str, Any]) -> list[str]:
    """What the study found, in a few lines: the split, the choice, the held-out comparison, the decision."""
    split, objective = study["split"], study["objective"]
    lines = [
        f"study {study['study_id']} ({study['status']}): {objective} on eval set {study['eval_set']['name']} "
        f"(sha256:{study['eval_set']['version'][:12]}), collection {study['collection']}",
        f"split: {len(split['tune_ids'])} tune / {len(split['test_ids'])} test questions, "
        f"seed {split['seed']}",
    ]
    timing = study.get("timing") or {}
    if timing:
        lines.append(
            f"{timing.get('trials', 0)} trials in {timing.get('seconds', 0):.1f} s "
            f"({timing.get('trials_per_s') or '–'} trials/s after embedding the questions in "
            f"{timing.get('embed_seconds', 0):.1f} s); engine calls {timing.get('engine_calls') or {}}"
        )
    base, chosen, test = study.get("baseline_scores"), study.get("chosen"), study.get("test")
    if base:
        lines.append(f"baseline on tune: {_f(base['tune_score'])} (P95 {_f(base['p95_ms'], 1)} ms)")
    if chosen:
        lines.append(
            f"chosen on tune: {chosen['label']}: {_f(chosen['tune_score'])} "
            f"(P95 {_f(chosen['p95_ms'], 1)} ms)"
        )
    if test:
        lines += [
            f"on the {test['questions']} held-out test questions: chosen {_f(test['chosen_mean'])}, "
            f"baseline {_f(test['baseline_mean'])}",
            f"held-out gain {test['difference']:+.4f}, 95 % interval [{test['ci_low']:+.4f}, "
            f"{test['ci_high']:+.4f}], permutation p = {test['p_value']:.3g}",
            f"tune gain {test['tune_gain']:+.4f}; optimism (tune gain − held-out gain) "
            f"{test['optimism']:+.4f}",
        ]
    if study.get("decision"):
        lines.append(f"decision: {study['decision']}")
    return lines


def draft_summary(study: dict[str, Any]) -> dict[str, Any]:
    """What a draft policy keeps of its study (the Canary page shows it): the objective, the held-out
    means, the paired difference with its interval and p-value, the optimism and the decision."""
    test = study.get("test") or {}
    return {
        "metric": study["objective"],
        "test_mean_chosen": test.get("chosen_mean"),
        "test_mean_baseline": test.get("baseline_mean"),
        "diff": test.get("difference"),
        "low": test.get("ci_low"),
        "high": test.get("ci_high"),
        "p_value": test.get("p_value"),
        "optimism": test.get("optimism"),
        "decision": study.get("decision"),
    }


def html_report(study: dict[str, Any], charts: tuple[str, ...] = ()) -> str:
    """A self-contained HTML page: the summary, ``charts`` (HTML fragments), every trial, the test
    questions' pairs, and the whole study as JSON. Opens offline; nothing is fetched."""
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}"
        "table{border-collapse:collapse;font-size:0.85rem;margin:1rem 0}"
        "td,th{border:1px solid #ddd;padding:0.25rem 0.5rem;vertical-align:top}th{background:#f4f4f4}"
    )
    test = study.get("test") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ragdeck study {html.escape(study['study_id'])}</title><style>{style}</style></head><body>",
        f"<h1>Retrieval study {html.escape(study['study_id'])}</h1>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(study)) + "</ul>",
        *charts,
        "<h2>Trials (scored on the tune questions only)</h2>",
        table_html(trial_rows(study)),
    ]
    if test:
        parts += ["<h2>Held-out test questions</h2>", table_html(test.get("per_question") or [])]
    payload = html.escape(json.dumps(study))
    parts += [f"<script type='application/json' id='study'>{payload}</script>", "</body></html>"]
    return "".join(parts)
