"""``ragdeck evalset``: validate eval set files (also against a collection) and convert between formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragdeck.console.evalset import EvalSet, Problem, validate
from ragdeck.console.evalset_io import EvalSetProblems, format_of, lost_fields, read_any, write_any
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError

app = typer.Typer(
    help="Eval sets: validate JSONL / CSV / TREC qrels files and convert between them.",
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
        return read_any(file, queries, skip_unjudged=skip_unjudged)
    except EvalSetProblems as exc:
        _print_problems(file, exc.problems)
        raise  # not reached: _print_problems raises


def _collection_ids(name: str) -> tuple[set[str], set[str]]:
    """Chunk ids (point ids) and document ids (``doc_id`` payloads) of a collection or alias."""
    from ragdeck.console.wiring import build_stack

    stack = build_stack(Settings())
    try:
        ids: set[str] = set()
        docs: set[str] = set()
        for point in stack.store.iter_points(name):
            ids.add(point.id)
            if isinstance(point.payload.get("doc_id"), str):
                docs.add(point.payload["doc_id"])
        return ids, docs
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
        known_ids, known_docs = _collection_ids(collection)
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
