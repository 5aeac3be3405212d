"""``ragdeck evalset``: validate eval set files (also against a collection), convert between formats, map a
set's gold onto the chunks of another collection, and size a set (``power``: the questions needed to detect
a difference, from eval runs)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ragdeck.cli.common import EXIT_BAD_INPUT, EXIT_FAILED
from ragdeck.console.evalsets.files import resolve_eval_set
from ragdeck.console.evalsets.gold_mapping import MIN_COVERAGE, MappingReport, SpanIndex, map_evalset
from ragdeck.console.evalsets.io import EvalSetProblems, format_of, lost_fields, read_any, write_any
from ragdeck.console.evalsets.model import EvalSet, Problem, validate
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError, RagdeckError

app = typer.Typer(
    help="Eval sets: validate JSONL / CSV / TREC qrels files, convert them, map gold onto a collection, size "
    "them (power).",
    no_args_is_help=True,
)

QueriesOpt = Annotated[
    Path | None,
    typer.Option(
        "--queries",
        "-q",
        help="Questions for a qrels file: TSV qid<TAB>question or BEIR queries.jsonl "
        "(default: NAME.queries.tsv / .jsonl beside it).",
    ),
]
SkipUnjudgedOpt = Annotated[
    bool,
    typer.Option(
        "--skip-unjudged", help="Qrels: skip queries without judgements (a BEIR queries.jsonl of all splits)."
    ),
]


def _print_problems(file: Path, problems: list[Problem]) -> None:
    """Every problem on stderr, one a line, then the one-line error that ``ragdeck.cli.main`` prints."""
    for problem in problems:
        typer.echo(f"{file}: {problem}", err=True)
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    raise InputError(f"{file}: {count} (listed above); fix them and validate again")


def _read(file: Path, queries: Path | None, skip_unjudged: bool) -> EvalSet:
    try:
        return read_any(resolve_eval_set(file), queries, skip_unjudged=skip_unjudged)
    except EvalSetProblems as exc:
        _print_problems(file, exc.problems)
        raise  # not reached: _print_problems raises


def _collection_ids(evalset: EvalSet, name: str) -> tuple[set[str], set[str]]:
    """The chunk ids and document ids the set names that the collection (or alias) ``name`` holds."""
    from ragdeck.console.evaluation.prepare import CollectionIds
    from ragdeck.console.wiring import build_stack

    stack = build_stack(Settings())
    try:
        found = CollectionIds.of(evalset, stack.store, stack.store.resolve(name))
        return found.chunk_ids, found.doc_ids
    finally:
        stack.close()


@app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="Eval set: .jsonl, .csv, or .qrels/.txt/.tsv (TREC qrels).")],
    queries: QueriesOpt = None,
    collection: Annotated[
        str | None,
        typer.Option("--collection", "--alias", "-c", help="Also check every gold id exists in it."),
    ] = None,
    skip_unjudged: SkipUnjudgedOpt = False,
) -> None:
    """Check an eval set; print every problem (exit 1), else its counts and content hash."""
    evalset = _read(file, queries, skip_unjudged)
    if collection is not None:
        known_ids, known_docs = _collection_ids(evalset, collection)
        problems = validate(evalset, known_ids, known_docs, collection=collection)
        if problems:
            _print_problems(file, problems)
    s = evalset.stats()
    typer.echo(
        f"{file}: ok, {s['records']} records, {s['gold_ids']} gold ids ({s['chunk_ids']} chunk, "
        f"{s['document_ids']} document), {s['graded_records']} graded, {s['records_with_spans']} with spans, "
        f"{s['records_with_answers']} with reference answers"
    )
    if collection is not None:
        typer.echo(f"every gold id is in collection {collection}")
    typer.echo(f"content hash sha256:{evalset.content_hash()}")


@app.command("convert")
def convert_cmd(
    source: Annotated[Path, typer.Argument(help="Input eval set (.jsonl, .csv, .qrels/.txt/.tsv).")],
    target: Annotated[Path, typer.Argument(help="Output file; its extension picks the format.")],
    queries: QueriesOpt = None,
    queries_out: Annotated[
        Path | None,
        typer.Option(
            "--queries-out",
            help="Qrels output: where the questions go (.tsv or BEIR .jsonl; default beside).",
        ),
    ] = None,
    skip_unjudged: SkipUnjudgedOpt = False,
) -> None:
    """Convert between JSONL, CSV and TREC qrels (+ queries file); says what the target format drops."""
    fmt = format_of(target)
    evalset = _read(source, queries, skip_unjudged)
    lost = lost_fields(evalset, fmt)
    if lost:
        typer.echo(f"note: {fmt} has no place for {', '.join(lost)}: left out of {target}", err=True)
    written = write_any(evalset, target, queries_out)
    # Read back what was written: proves the file is readable and gives the hash of what it holds.
    result = read_any(target, written[1] if len(written) > 1 else None)
    same = " (same as the input)" if result.content_hash() == evalset.content_hash() else ""
    files = " and ".join(str(p) for p in written)
    typer.echo(
        f"wrote {files}: {len(result.records)} records, content hash sha256:{result.content_hash()}{same}"
    )


@contextmanager
def _bad_input_exits_2() -> Iterator[None]:
    """An error that stops the mapping (unreadable set, unknown collection, bad option, store unavailable)
    as one ``error:`` line and exit 2 (exit 1 means: mapped in part)."""
    try:
        yield
    except EvalSetProblems as exc:
        for problem in exc.problems:
            typer.echo(f"{exc.file}: {problem}" if exc.file else str(problem), err=True)
        count = f"{len(exc.problems)} problem" + ("s" if len(exc.problems) != 1 else "")
        typer.echo(
            f"error: {exc.file or 'eval set'}: {count} (listed above); fix them and map again", err=True
        )
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except RagdeckError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _default_out(file: Path, collection: str) -> Path:
    """``NAME.mapped-COLLECTION.EXT`` beside the input set."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", collection)
    return file.with_name(f"{file.stem}.mapped-{safe}{file.suffix}")


def _span_indexes(target: str, source: str | None) -> tuple[SpanIndex, SpanIndex | None]:
    """The chunk spans of the target (and source) collection or alias; InputError when one has none."""
    from ragdeck.console.wiring import build_stack

    stack = build_stack(Settings())
    try:
        indexes = {name: SpanIndex.from_store(stack.store, name) for name in (target, source) if name}
    finally:
        stack.close()
    for name, index in indexes.items():
        if not index.by_id:
            raise InputError(
                f"collection {name!r} has no chunks with source spans (doc_id, start, end) to map by: "
                "build it with `ragdeck ingest`, which records them"
            )
    return indexes[target], indexes[source] if source else None


def _outcomes(report: MappingReport) -> dict[str, str]:
    """Record id -> ``full`` (every gold id or span found a chunk), ``partial`` (some did, or document ids
    are left) or ``none`` (no gold left: the record cannot be scored on the target)."""
    result = {}
    for record in report.evalset.records:
        if record.id not in report.unmapped:
            result[record.id] = "full"
        else:
            result[record.id] = "partial" if record.gold_context_ids else "none"
    return result


def _print_mapping(report: MappingReport, collection: str) -> None:
    """Records mapped fully / partly / not at all, then every gold id or span that found no chunk."""
    outcomes = _outcomes(report)
    counts = {kind: sum(1 for o in outcomes.values() if o == kind) for kind in ("full", "partial", "none")}
    typer.echo(
        f"mapped onto {collection}: {counts['full']} records fully, {counts['partial']} partly, "
        f"{counts['none']} not at all ({report.mapped} spans mapped, "
        f"{report.kept_document_ids} document ids kept as they are)"
    )
    for record_id, lost in report.unmapped.items():
        where = "record left out" if outcomes[record_id] == "none" else "rest kept"
        typer.echo(f"  {record_id}: no chunk for {', '.join(lost)} ({where})")


@app.command("map")
def map_cmd(
    file: Annotated[Path, typer.Argument(help="Eval set to map: .jsonl, .csv, or .qrels/.txt/.tsv.")],
    collection: Annotated[
        str, typer.Option("--collection", "--alias", "-c", help="Collection or alias to map the gold onto.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Mapped set; its extension picks the format (default: NAME.mapped-COLL.EXT)."
        ),
    ] = None,
    min_coverage: Annotated[
        float,
        typer.Option(
            "--min-coverage",
            help="Share of the gold span a chunk must cover, or of the chunk the span must cover (0-1].",
        ),
    ] = MIN_COVERAGE,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help="Collection the set was labelled on: gives gold chunk ids without gold_spans their span.",
        ),
    ] = None,
    queries: QueriesOpt = None,
) -> None:
    """Map gold onto another chunking by source span. Exit 0: all mapped; 1: some not (the rest is
    written); 2: nothing done (bad input, unknown collection, store unavailable)."""
    with _bad_input_exits_2():
        if not 0 < min_coverage <= 1:
            raise InputError(
                f"--min-coverage {min_coverage} is out of range: give a share in (0, 1], e.g. 0.5"
            )
        target_file = out or _default_out(file, collection)
        format_of(target_file)  # an unknown extension fails before any work
        evalset = read_any(resolve_eval_set(file), queries)  # the output stays beside the path given
        target, origin = _span_indexes(collection, source)
        report = map_evalset(evalset, target, origin, min_coverage=min_coverage)
        outcomes = _outcomes(report)
        # A record with no gold left is not a valid eval record: it stays in the input only.
        kept = [r for r in report.evalset.records if outcomes[r.id] != "none"]
        mapped_set = EvalSet(report.evalset.name, kept, dict(report.evalset.meta))
        written = write_any(mapped_set, target_file)
    _print_mapping(report, collection)
    files = " and ".join(str(p) for p in written)
    typer.echo(f"wrote {files}: {len(kept)} records, content hash sha256:{mapped_set.content_hash()}")
    if not report.complete:
        raise typer.Exit(EXIT_FAILED)


@app.command("power")
def power_cmd(
    run: Annotated[
        list[str],
        typer.Option(
            "--run",
            "-r",
            help="An eval run (id or `ragdeck eval --json` file). Twice: A then B, their paired differences; "
            "once: that run's spread, with the paired one assumed (see --rho).",
        ),
    ],
    metric: Annotated[
        str | None, typer.Option("--metric", "-m", help="Metric (default: the first headline one of A).")
    ] = None,
    delta: Annotated[
        float, typer.Option("--delta", "-d", help="The difference to detect, in the metric's units.")
    ] = 0.02,
    power: Annotated[float, typer.Option("--power", help="Wanted power (0-1).")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    method: Annotated[
        str, typer.Option("--method", help="normal (paired normal approximation) or simulation (resampling).")
    ] = "normal",
    rho: Annotated[
        float,
        typer.Option("--rho", help="One run: assumed correlation of two policies' per-question values."),
    ] = 0.5,
    simulations: Annotated[int, typer.Option("--simulations", help="Simulation: draws per n.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Simulation: random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sample size: questions needed to detect a difference at a power and α, and the smallest difference
    the current set detects, from two runs' paired differences or one run's spread. Says its method."""
    from ragdeck.cli.compare import load_run
    from ragdeck.console.evaluation import power as sizing
    from ragdeck.console.evaluation.report import headline_metrics
    from ragdeck.console.wiring import build_eval_store

    if len(run) > 2:
        raise InputError(f"give --run once (one run) or twice (A then B), not {len(run)} times")
    store = build_eval_store(Settings())
    loaded = [load_run(reference, store) for reference in run]
    (run_a, results_a) = loaded[0]
    if metric is None:
        metric = next(iter(headline_metrics(run_a.summary)), None)
        if metric is None:
            raise InputError(f"run {run_a.run_id} has no scored metric: give --metric")
    if len(loaded) == 2:
        spread = sizing.spread_of_pair(run_a, results_a, *loaded[1], metric)
    else:
        spread = sizing.spread_of_run(run_a, results_a, metric, rho=rho)
    report = sizing.sample_size(
        spread, delta, power=power, alpha=alpha, method=method, simulations=simulations, seed=seed
    )
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        for line in report.lines():
            typer.echo(line)
