"""``ragdeck tune``: a retrieval study — trials on tune questions, the best scored once on held-out test
questions against the baseline policy (``console.tuning``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragdeck.cli.common import err
from ragdeck.console.evalsets.files import resolve_eval_set
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.knobs import FUSIONS, RETRIEVAL_MODES
from ragdeck.console.roles import cli_user, require
from ragdeck.console.settings import Settings
from ragdeck.console.tuning.record import Study, new_study_id
from ragdeck.console.tuning.report import draft_summary, html_report, summary_lines
from ragdeck.console.tuning.space import SearchSpace, parse_list, read_bool, read_ef
from ragdeck.console.tuning.split import DEFAULT_SEED, DEFAULT_TEST_FRACTION
from ragdeck.console.tuning.study import StudyDeps, StudyRunner, objective_name, plan_study
from ragdeck.console.wiring import (
    build_audit_log,
    build_policies,
    build_policy_drafts,
    build_stack,
    build_study_files,
)
from ragdeck.errors import InputError
from ragdeck.services.files import write_text_atomic

T = TypeVar("T")
_DEFAULT = SearchSpace()


def _values(text: str | None, read: Callable[[str], T], option: str, default: tuple[T, ...]) -> tuple[T, ...]:
    return default if text is None else parse_list(text, read, option)


def _choice(choices: tuple[str, ...], option: str) -> Callable[[str], str]:
    def read(text: str) -> str:
        if text not in choices:
            raise InputError(f"{option}: {text!r} is not one of {', '.join(choices)}")
        return text

    return read


def _space(
    modes: str | None,
    fusions: str | None,
    rrf_k: str | None,
    dense_weight: str | None,
    top_k: str | None,
    ef: str | None,
    rerank: str | None,
) -> SearchSpace:
    return SearchSpace(
        modes=_values(modes, _choice(RETRIEVAL_MODES, "--modes"), "--modes", _DEFAULT.modes),
        fusions=_values(fusions, _choice(FUSIONS, "--fusions"), "--fusions", _DEFAULT.fusions),
        rrf_ks=_values(rrf_k, int, "--rrf-k", _DEFAULT.rrf_ks),
        dense_weights=_values(dense_weight, float, "--dense-weight", _DEFAULT.dense_weights),
        top_ks=_values(top_k, int, "--top-k", _DEFAULT.top_ks),
        efs=_values(ef, read_ef, "--ef", _DEFAULT.efs),
        rerank=_values(rerank, read_bool, "--rerank", _DEFAULT.rerank),
    )


def tune_cmd(
    set_file: Annotated[Path, typer.Option("--set", "-s", help="Eval set (.jsonl, .csv or TREC qrels).")],
    collection: Annotated[
        str | None, typer.Option("--collection", "--alias", "-c", help="Collection or alias to search.")
    ] = None,
    metric: Annotated[
        str, typer.Option("--metric", "-m", help="Objective, e.g. ndcg@10, recall@5.")
    ] = "ndcg@10",
    level: Annotated[
        str, typer.Option("--level", help="Score the objective over documents or at the gold's own level.")
    ] = "document",
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Baseline policy (default: the control policy).")
    ] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help="Questions file for a qrels set.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the tune/test split.")] = DEFAULT_SEED,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Share of questions held out for the test.")
    ] = DEFAULT_TEST_FRACTION,
    budget_p95_ms: Annotated[
        float | None,
        typer.Option("--budget-p95-ms", help="Only configurations with P95 latency within this."),
    ] = None,
    modes: Annotated[
        str | None, typer.Option("--modes", help="Retrieval modes to try (dense,lexical,hybrid).")
    ] = None,
    fusions: Annotated[
        str | None, typer.Option("--fusions", help="Hybrid fusions to try (rrf,weighted,dbsf).")
    ] = None,
    rrf_k: Annotated[str | None, typer.Option("--rrf-k", help="RRF k values (default 10,60).")] = None,
    dense_weight: Annotated[
        str | None,
        typer.Option("--dense-weight", help="Weighted fusion's dense weights (default 0.3,0.5,0.7)."),
    ] = None,
    top_k: Annotated[str | None, typer.Option("--top-k", help="Candidate depths (default 20,40,80).")] = None,
    ef: Annotated[
        str | None, typer.Option("--ef", help="Search-time ef values; 'default' is the engine's.")
    ] = None,
    rerank: Annotated[
        str | None, typer.Option("--rerank", help="Rerank off,on (only when a reranker is configured).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the study's report as JSON here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the study's report as HTML here.")
    ] = None,
    draft: Annotated[
        str | None,
        typer.Option("--draft", help="Save the chosen configuration as a draft policy by this name."),
    ] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Finish a stopped study by its id.")] = None,
) -> None:
    """Tune retrieval on part of an eval set and test the best configuration on the rest."""
    settings = Settings()
    set_file = resolve_eval_set(set_file)
    user = cli_user(settings)
    require(user, "eval.run", target=set_file.name, log=build_audit_log(settings))
    evalset = read_any(set_file, queries)
    files = build_study_files(settings)
    if resume:
        study = Study.from_json(files.load(resume))
        plan = study.plan
    else:
        policies = build_policies(settings)
        name = policy or settings.control_policy
        if name not in policies:
            raise InputError(f"unknown policy {name!r}: use one of {', '.join(sorted(policies))}")
        baseline = policies[name]
        plan = plan_study(
            evalset,
            baseline,
            collection or baseline.alias,
            objective=objective_name(metric, level),
            space=_space(modes, fusions, rrf_k, dense_weight, top_k, ef, rerank),
            seed=seed,
            test_fraction=test_fraction,
            budget_p95_ms=budget_p95_ms,
            set_path=str(set_file),
        )
        study = Study(new_study_id(), plan)
    stack = build_stack(settings)
    try:
        runner = StudyRunner(StudyDeps(stack.store, stack.embedder, stack.reranker), plan, evalset)
        study = _run(runner, study, files.save)
    finally:
        stack.close()
    report = study.to_json()
    for line in summary_lines(report):
        typer.echo(line)
    if draft and study.chosen_knobs() is not None:
        saved = build_policy_drafts(settings).save_draft(
            draft,
            study.chosen_knobs() or {},
            study_id=study.study_id,
            summary=draft_summary(report),
            actor=user,
        )
        typer.echo(
            f"saved draft policy {saved.name}: try it from the Canary page or `ragdeck policy draft apply`"
        )
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report, indent=2) + "\n")
        err.print(f"wrote {json_out}")
    if html_out is not None:
        write_text_atomic(html_out, html_report(report))
        err.print(f"wrote {html_out}")


def _run(runner: StudyRunner, study: Study, save: Callable[[dict[str, Any]], object]) -> Study:
    cancel = threading.Event()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task(f"study {study.study_id}", total=len(runner.trials))
        try:
            return runner.run(
                study,
                save=lambda s: save(s.to_json()),
                progress=lambda d, t: bar.update(task, completed=d, total=t),
                cancel=cancel,
            )
        except KeyboardInterrupt:
            cancel.set()
            err.print(f"stopped: resume with `ragdeck tune --set ... --resume {study.study_id}`")
            raise


__all__ = ["tune_cmd"]
