"""``ragdeck eval``: run a policy over an eval set, print a Markdown summary, and gate CI on the result."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragdeck.cli.common import EXIT_FAILED, err
from ragdeck.cli.retrieval import DenseWeightOpt, FusionOpt, RetrievalOpt, RrfKOpt, retrieval_overrides
from ragdeck.console.evalsets.files import resolve_eval_set
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.evaluation.export import export_json
from ragdeck.console.evaluation.gate import check_gate, parse_gate
from ragdeck.console.evaluation.missing import DEFAULT_MISSING_GOLD, check_choice
from ragdeck.console.evaluation.plan import DEFAULT_KS, EvalPlan
from ragdeck.console.evaluation.report import headline_metrics, markdown_summary, means
from ragdeck.console.retrieval.policies import Policy, default_policy
from ragdeck.console.roles import cli_user, require
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import (
    build_audit_log,
    build_eval_runner,
    build_eval_store,
    build_policies,
    build_stack,
)
from ragdeck.errors import InputError
from ragdeck.services.files import write_text_atomic
from ragdeck.services.inputs import parse_json, special_file


def _ks(text: str | None, k: int | None) -> tuple[int, ...]:
    """Cut-offs: the ones given (comma-separated), else 1, 3, 5, 10; with ``--k`` those up to k, and k."""
    try:
        ks = tuple(int(x) for x in text.split(",") if x.strip()) if text else DEFAULT_KS
    except ValueError:
        raise InputError(f"--ks must be comma-separated integers, e.g. 1,5,10 (got {text!r})") from None
    if k is not None:
        ks = tuple(sorted({x for x in ks if x <= k} | {k}))
    return ks


def _policy(
    settings: Settings,
    name: str | None,
    collection: str | None,
    k: int | None,
    ef: int | None,
    rerank: bool | None,
    retrieval: dict[str, object] | None = None,
) -> Policy:
    """The named policy (or one from the settings' defaults) with the command line's overrides."""
    if name is not None:
        policies = build_policies(settings)
        if name not in policies:
            raise InputError(f"unknown policy {name!r}: use one of {', '.join(sorted(policies))}")
        base = policies[name]
    else:
        base = default_policy("cli", settings)
    values = base.as_dict()
    if collection is not None:
        values["alias"] = collection
    if k is not None:
        values["top_n"] = k
        values["top_k"] = max(values["top_k"], k)
    if ef is not None:
        values["hnsw_ef"] = ef
    if rerank is not None:
        values["rerank"] = rerank
    values.update(retrieval or {})
    return Policy(**values)


def _baseline(reference: str, runs: object, set_hash: str) -> dict[str, float]:
    """Summary means of a baseline: a ``--json`` file, or a run id in the state store."""
    path = Path(reference)
    if path.suffix == ".json" or path.exists():
        if (kind := special_file(path)) is not None:
            raise InputError(f"baseline {reference} is {kind}, not a file: give a `ragdeck eval --json` file")
        try:
            data = parse_json(path.read_text(encoding="utf-8"))
            digest, summary = str(data["eval_set"]["hash"]), dict(data["summary"])
            run_id = data.get("run_id", reference)
            means_given = {str(k): float(v) for k, v in summary.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"baseline {reference}: not a `ragdeck eval --json` file ({exc})") from None
    else:
        run = runs.get_run(reference)  # type: ignore[attr-defined]
        digest, run_id = run.set_hash, run.run_id
        means_given = {k: float(v) for k, v in means(run.summary).items()}
    if digest != set_hash:
        raise InputError(
            f"baseline {run_id} was run on another version of the eval set (sha256:{digest[:12]}…, this "
            f"one is sha256:{set_hash[:12]}…): re-run the baseline on this version"
        )
    return means_given


def eval_cmd(
    set_file: Annotated[Path, typer.Option("--set", "-s", help="Eval set (.jsonl, .csv or TREC qrels).")],
    queries: Annotated[Path | None, typer.Option("--queries", help="Questions file for a qrels set.")] = None,
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="A policy from the settings.")] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "--alias", "-c", help="Collection or alias to search.")
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", min=1, help="Results to retrieve (the largest cut-off).")
    ] = None,
    ks: Annotated[str | None, typer.Option("--ks", help="Cut-offs for metrics@k (default 1,3,5,10).")] = None,
    ef: Annotated[int | None, typer.Option("--ef", min=1, help="Search-time hnsw_ef.")] = None,
    rerank: Annotated[
        bool | None, typer.Option("--rerank/--no-rerank", help="Rerank (when configured).")
    ] = None,
    answers: Annotated[
        bool, typer.Option("--answers/--retrieval-only", help="Also generate, score and judge answers.")
    ] = False,
    retrieval: RetrievalOpt = None,
    fusion: FusionOpt = None,
    rrf_k: RrfKOpt = None,
    dense_weight: DenseWeightOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Queries at once.")] = 4,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run as JSON here.")] = None,
    gate: Annotated[
        str | None, typer.Option("--gate", help='e.g. "recall@10>=0.85,faithfulness>=0.8"')
    ] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="A run id or `--json` file to compare with.")
    ] = None,
    max_regression: Annotated[
        float, typer.Option("--max-regression", min=0.0, help="Largest allowed drop against the baseline.")
    ] = 0.02,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted run by its id.")
    ] = None,
    missing_gold: Annotated[
        str,
        typer.Option(
            "--missing-gold",
            help="Gold ids the collection lacks: fail (refuse the run and list them), skip (drop them; "
            "queries left without gold are excluded and listed) or keep (count them as never retrieved).",
        ),
    ] = DEFAULT_MISSING_GOLD,
) -> None:
    """Evaluate a policy on an eval set: Markdown summary on stdout; exit 1 when the gate fails."""
    conditions = parse_gate(gate) if gate else []
    settings = Settings()
    set_file = resolve_eval_set(set_file)
    require(cli_user(settings), "eval.run", target=set_file.name, log=build_audit_log(settings))
    evalset = read_any(set_file, queries)
    # A baseline that cannot be used is reported before the run, not after it.
    baseline_means = (
        _baseline(baseline, build_eval_store(settings), evalset.content_hash()) if baseline else None
    )
    if resume:
        previous = build_eval_store(settings).get_run(resume)
        plan = EvalPlan.from_json(previous.config)
    else:
        modes = retrieval_overrides(retrieval, fusion, rrf_k, dense_weight)
        plan = EvalPlan(
            _policy(settings, policy, collection, k, ef, rerank, modes),
            _ks(ks, k),
            answers,
            concurrency,
            check_choice(missing_gold.lower()),
        )
    stack = build_stack(settings)
    try:
        runner = build_eval_runner(settings, stack, with_answers=plan.answers, policy=plan.policy)
        if resume:
            run, prepared = previous, runner.resume_set(previous, evalset)
        else:
            run, prepared = runner.start(evalset, plan, source=str(set_file))
        for note in run.config.get("notes", []):
            err.print(f"note: {note}")
        cancel = threading.Event()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task(f"eval {run.run_id}", total=run.total)
            try:
                run = runner.execute(
                    run, prepared, progress=lambda d, t: bar.update(task, completed=d, total=t), cancel=cancel
                )
            except KeyboardInterrupt:
                cancel.set()
                raise
        results = runner.deps.runs.results(run.run_id)
    finally:
        stack.close()
    outcome = None
    if conditions or baseline_means is not None:
        compared = [c.metric for c in conditions] or headline_metrics(run.summary)
        outcome = check_gate(
            means(run.summary),
            conditions,
            baseline=baseline_means,
            max_regression=max_regression,
            compared=compared,
        )
    typer.echo(markdown_summary(run, outcome))
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(export_json(run, results, outcome), indent=2) + "\n")
        err.print(f"wrote {json_out}")
    if outcome is not None and not outcome.passed:
        err.print("[bold red]gate failed:[/] " + "; ".join(outcome.failures), highlight=False)
        raise typer.Exit(EXIT_FAILED)
