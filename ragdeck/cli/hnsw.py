"""``ragdeck hnsw``: sweep m / ef_construct / ef on a collection, and apply a choice (policy ef, index m)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragdeck.cli.common import CollectionOpt, err, out
from ragdeck.console.evalsets.files import resolve_eval_set
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.hnsw import (
    LATENCY_KEYS,
    RECALL_KEYS,
    StoredVectors,
    SweepResult,
    apply_hnsw,
    apply_policy_ef,
    check_apply,
    check_sweep,
    eval_queries,
    parse_ints,
    remove_temporary,
    run_sweep,
    sample_queries,
)
from ragdeck.console.roles import cli_user
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log, build_policy_overrides, build_stack
from ragdeck.errors import InputError
from ragdeck.services.files import write_text_atomic

app = typer.Typer(
    help="HNSW tuning: sweep m, ef_construct and search-time ef on a collection; apply the choice.",
    no_args_is_help=True,
)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def _table(result: SweepResult) -> Table:
    gold = any(r.recall_gold is not None for r in result.rows)
    table = Table(title=f"{result.collection}: recall@{result.k} and search latency", title_justify="left")
    for name in ("m", "ef_construct", "ef", "recall exact"):
        table.add_column(name, justify="right")
    if gold:
        table.add_column(result.gold_label, justify="right")
    for name in ("P50 ms", "P95 ms", "build s", "index bytes", "index", ""):
        table.add_column(name, justify="right")
    for r in result.rows:
        mark = "recommended" if r.recommended else ("front" if r.on_front else "")
        cells = [str(r.m), str(r.ef_construct), str(r.ef), f"{r.recall_exact:.3f}"]
        if gold:
            cells.append("" if r.recall_gold is None else f"{r.recall_gold:.3f}")
        cells += [
            f"{r.p50_ms:.3f}",
            f"{r.p95_ms:.3f}",
            "" if r.build_s is None else f"{r.build_s:.2f}",
            "" if r.index_bytes is None else f"{r.index_bytes:,}",
            r.index,
            mark,
        ]
        table.add_row(*cells, style="bold green" if r.recommended else None)
    return table


@app.command("sweep")
def sweep_cmd(
    collection: CollectionOpt = None,
    m: Annotated[str, typer.Option("--m", help="m values, comma-separated.")] = "4,16,32",
    ef_construct: Annotated[str, typer.Option("--ef-construct", help="ef_construct values.")] = "100",
    ef: Annotated[
        str, typer.Option("--ef", help="Search-time ef values (the engine uses max(ef, k)).")
    ] = "10,16,32,64,128",
    set_file: Annotated[
        Path | None,
        typer.Option("--set", "-s", help="Eval set: its questions are the queries (gold recall)."),
    ] = None,
    queries: Annotated[
        int, typer.Option("--queries", min=1, help="Without --set: stored vectors sampled as queries.")
    ] = 200,
    noise: Annotated[
        float, typer.Option("--noise", min=0.0, help="Without --set: relative noise added to each query.")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Without --set: sampling seed.")] = 7,
    k: Annotated[int, typer.Option("--k", min=1, help="Recall@k and results per search.")] = 10,
    target: Annotated[
        float, typer.Option("--target", min=0.0, max=1.0, help="Recall target of the recommendation.")
    ] = 0.95,
    budget_ms: Annotated[
        float | None, typer.Option("--budget-ms", min=0.0, help="Latency budget of the recommendation.")
    ] = None,
    recall: Annotated[
        str | None, typer.Option("--recall", help="recall_exact or recall_gold (default: gold with --set).")
    ] = None,
    latency: Annotated[str, typer.Option("--latency", help="p50_ms or p95_ms.")] = "p95_ms",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write one JSON row per configuration here.")
    ] = None,
) -> None:
    """Measure recall@k (vs exact search, vs gold) and P50/P95 latency of every configuration; temporary
    copies are built from the stored vectors and always deleted. Table on stdout, progress on stderr."""
    ms, efcs, efs = (
        parse_ints(m, "--m", 0),
        parse_ints(ef_construct, "--ef-construct", 4),
        parse_ints(ef, "--ef"),
    )
    if recall is not None and recall not in RECALL_KEYS:
        raise InputError(f"--recall must be one of {', '.join(RECALL_KEYS)}, got {recall!r}")
    if latency not in LATENCY_KEYS:
        raise InputError(f"--latency must be one of {', '.join(LATENCY_KEYS)}, got {latency!r}")
    if recall == "recall_gold" and set_file is None:
        raise InputError("--recall recall_gold needs gold: give an eval set with --set")
    settings = Settings()
    evalset = read_any(resolve_eval_set(set_file)) if set_file is not None else None
    stack = build_stack(settings)
    try:
        store = stack.store
        name = collection or settings.alias
        for left in remove_temporary(store):
            err.print(f"removed a temporary copy left by an interrupted sweep: {left}")
        physical = store.resolve(name)
        check_sweep(cli_user(settings), physical, log=build_audit_log(settings))
        points = None
        if evalset is not None:
            query_set = eval_queries(evalset, stack.embedder, store, physical)
        else:
            points = StoredVectors.read(store, physical)
            query_set = sample_queries(points, queries, seed=seed, noise=noise)
        err.print(f"queries: {query_set.source}")
        with _progress() as bar:
            task = bar.add_task("sweep", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            result = run_sweep(
                store, physical, query_set, ms=ms, ef_constructs=efcs, efs=efs, k=k, target=target,
                budget_ms=budget_ms, recall_key=recall, latency_key=latency, points=points, progress=progress,
            )  # fmt: skip
    finally:
        stack.close()
    # Piped output would be cut to 80 columns; the table needs about 130.
    (out if out.is_terminal else Console(width=max(out.width, 132))).print(_table(result))
    out.print(f"queries: {result.query_source}; total {result.total_s:.1f} s")
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    out.print(f"recommendation: {result.recommendation.sentence}", highlight=False)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result.to_json(), indent=2) + "\n")
        err.print(f"wrote {json_out}")


@app.command("apply")
def apply_cmd(
    collection: CollectionOpt = None,
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Policy whose default search-time ef to set.")
    ] = None,
    ef: Annotated[int | None, typer.Option("--ef", min=1, help="The policy's new default ef.")] = None,
    m: Annotated[int | None, typer.Option("--m", min=0, help="New m of the collection's index.")] = None,
    ef_construct: Annotated[
        int | None, typer.Option("--ef-construct", min=4, help="New ef_construct of the collection's index.")
    ] = None,
) -> None:
    """Apply a choice live (operator role; audited): --policy P --ef N sets a policy's default ef (every
    process picks it up); --m / --ef-construct rebuild the collection's index without stopping searches."""
    if (policy is None) != (ef is None):
        raise InputError("--policy and --ef go together: e.g. ragdeck hnsw apply --policy A --ef 64")
    if policy is None and m is None and ef_construct is None:
        raise InputError("nothing to apply: give --policy P --ef N, and/or --m / --ef-construct")
    settings = Settings()
    actor, log = cli_user(settings), build_audit_log(settings)
    if policy is not None:
        before, after = apply_policy_ef(
            settings, policy, ef, actor=actor, overrides=build_policy_overrides(settings), log=log
        )
        out.print(f"policy {policy}: hnsw_ef {before} -> {after}")
    if m is not None or ef_construct is not None:
        stack = build_stack(settings)
        try:
            current = stack.store.collection_info(collection or settings.alias)
            check_apply(actor, current.name, log=log)
            with _progress() as bar:
                task = bar.add_task("apply", total=2)

                def progress(stage: str, done: int, total: int) -> None:
                    bar.update(task, description=stage, completed=done, total=total)

                old, new = apply_hnsw(
                    stack.store,
                    current.name,
                    m if m is not None else current.hnsw.m,
                    ef_construct if ef_construct is not None else current.hnsw.ef_construct,
                    actor=actor,
                    log=log,
                    progress=progress,
                )
        finally:
            stack.close()
        out.print(
            f"collection {current.name}: m {old.m} -> {new.m}, ef_construct {old.ef_construct} -> "
            f"{new.ef_construct}"
        )
