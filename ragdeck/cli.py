"""The ``ragdeck`` command: parses arguments and calls ``ragdeck.console``. No logic of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragdeck.console.chunking import ChunkingConfig
from ragdeck.console.demo import ensure_demo
from ragdeck.console.ingest import IngestReport, ingest
from ragdeck.console.retrieval import RetrievalParams, Retriever
from ragdeck.console.settings import Settings
from ragdeck.console.stack import collection_rows
from ragdeck.console.wiring import Stack, build_stack
from ragdeck.errors import InputError, RagdeckError
from ragdeck.services.types import HnswConfig

app = typer.Typer(
    name="ragdeck",
    help="Evaluation and operations console for self-hosted RAG stacks (Qdrant, TEI, vLLM, Prometheus).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", "--alias", "-c", help="Collection or alias (default: the serving alias)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

STAGE_LABELS = {"chunk": "Chunking", "embed": "Embedding", "index": "Indexing"}


@contextmanager
def _stack():
    stack = build_stack(Settings())
    try:
        yield stack
    finally:
        stack.close()


@contextmanager
def _progress_bar():
    """A rich progress bar fed by the domain's ``progress(stage, done, total)`` callback."""
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _print_report(report: IngestReport) -> None:
    redacted = ", ".join(f"{k} {v}" for k, v in sorted(report.redactions.items())) or "nothing"
    target = f" (alias {report.alias} -> {report.collection})" if report.alias else ""
    out.print(
        f"Indexed {report.documents} documents as {report.chunks} chunks into {report.collection}{target} "
        f"in {report.seconds['total']:.1f} s ({report.chunks_per_second:.0f} chunks/s). Redacted: {redacted}."
    )


@app.command("ingest")
def ingest_cmd(
    path: Annotated[
        Path, typer.Argument(help="A folder of Markdown/text files, one file, or a BEIR corpus.jsonl.")
    ],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Physical collection to create.")],
    alias: Annotated[str | None, typer.Option(help="Point this alias at the collection when done.")] = None,
    append: Annotated[
        bool, typer.Option(help="Add to an existing collection instead of creating one.")
    ] = False,
    min_chars: Annotated[int | None, typer.Option(help="Smallest chunk (characters).")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Largest chunk (characters).")] = None,
    overlap: Annotated[
        float | None, typer.Option(help="Overlap between chunks, as a share (0.1-0.2).")
    ] = None,
    prefix_title: Annotated[
        bool, typer.Option(help="Prefix title and section heading to each chunk.")
    ] = True,
    m: Annotated[int | None, typer.Option("--m", help="HNSW m (edges per node).")] = None,
    ef_construct: Annotated[int | None, typer.Option(help="HNSW ef_construct.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Chunks embedded per batch.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Chunk, embed and index a corpus into a collection."""
    settings = Settings()
    chunking = ChunkingConfig(
        min_chars=min_chars or settings.chunk_min_chars,
        max_chars=max_chars or settings.chunk_max_chars,
        overlap=settings.chunk_overlap if overlap is None else overlap,
        prefix_title=prefix_title,
        prefix_section=prefix_title,
    )
    hnsw = HnswConfig(m=m or settings.hnsw_m, ef_construct=ef_construct or settings.hnsw_ef_construct)
    if not path.exists():
        raise InputError(f"{path} does not exist: give a folder, a .md/.txt file or a BEIR corpus.jsonl")
    with _stack() as stack, _progress_bar() as progress:
        report = ingest(
            path,
            stack.store,
            stack.embedder,
            collection=collection,
            alias=alias,
            chunking=chunking,
            hnsw=hnsw,
            append=append,
            batch_size=batch_size or settings.embed_batch_size,
            progress=progress,
        )
    if as_json:
        out.print_json(data={**asdict(report), "chunks_per_second": report.chunks_per_second})
    else:
        _print_report(report)


def _parse_filters(values: list[str]) -> dict[str, str | int | bool] | None:
    parsed: dict[str, str | int | bool] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(
                f"--filter '{item}': expected KEY=VALUE, e.g. --filter doc_id=tei/docs/source/en/quick_tour"
            )
        value: str | int | bool = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif raw.lstrip("-").isdigit():
            value = int(raw)
        parsed[key] = value
    return parsed or None


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question to retrieve contexts for.")],
    collection: CollectionOpt = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Results to return (top-N).")] = None,
    candidates: Annotated[int | None, typer.Option(help="Candidates from the vector store (top-K).")] = None,
    ef: Annotated[int | None, typer.Option("--ef", help="HNSW ef at search time.")] = None,
    exact: Annotated[bool, typer.Option(help="Exact (brute-force) search instead of HNSW.")] = False,
    rerank: Annotated[bool, typer.Option(help="Rerank when a reranker is configured.")] = True,
    filter_: Annotated[
        list[str], typer.Option("--filter", help="Payload filter KEY=VALUE (repeatable).")
    ] = [],  # noqa: B006
    as_json: JsonOpt = False,
) -> None:
    """Run the retrieval pipeline for one question."""
    settings = Settings()
    params = RetrievalParams(
        top_k=candidates or settings.top_k,
        top_n=k or settings.top_n,
        hnsw_ef=ef if ef is not None else settings.hnsw_ef,
        exact=exact,
        rerank=rerank,
        payload_filter=_parse_filters(filter_),
    )
    with _stack() as stack:
        result = Retriever(stack.store, stack.embedder, stack.reranker).search(
            question, collection or settings.alias, params
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    table = Table(title=f"{result.collection}: {question}", show_lines=False)
    for column in ("#", "score", "chunk", "source"):
        table.add_column(column)
    for hit in result.hits:
        where = f"{hit.title} > {hit.section}" if hit.section else hit.title
        table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.chunk_id, where)
    out.print(table)
    t = result.timings_ms
    out.print(
        f"embed {t['embed']:.1f} ms · search {t['search']:.1f} ms · rerank {t['rerank']:.1f} ms · "
        f"total {t['total']:.1f} ms"
    )


@app.command()
def collections(as_json: JsonOpt = False) -> None:
    """List collections and aliases with counts and HNSW config."""
    with _stack() as stack:
        rows = collection_rows(stack.store)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print("No collections yet: run `ragdeck demo` or `ragdeck ingest PATH --collection NAME`.")
        return
    table = Table()
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@app.command("stack")
def stack_cmd(as_json: JsonOpt = False) -> None:
    """Show each component's mode, health, version and model."""
    with _stack() as stack:
        rows = [asdict(h) for h in stack.health()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        columns = ("component", "mode", "ok", "version", "model", "dimension", "detail")
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        out.print(table)
    if not all(row["ok"] for row in rows):
        raise typer.Exit(1)


def _build_demo(stack: Stack) -> None:
    with _progress_bar() as progress:
        report = ensure_demo(stack, progress)
    if report is None:
        alias = stack.settings.alias
        out.print(f"Demo collection ready: alias {alias} -> {stack.store.resolve(alias)}.")
    else:
        _print_report(report)


@app.command()
def demo() -> None:
    """Build the demo collection (shipped Prometheus and TEI docs) behind the serving alias if missing."""
    with _stack() as stack:
        _build_demo(stack)


@app.command()
def console(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    build_demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Build the demo collection first.")
    ] = True,
) -> None:
    """Start the web console (building the demo collection first unless --no-demo)."""
    if build_demo:
        with _stack() as stack:
            _build_demo(stack)
    app_file = Path(__file__).resolve().parent / "app.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    out.print(f"ragdeck console on http://{address}:{port}  (Ctrl+C to stop)")
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))


def main() -> None:
    """Entry point: user mistakes print one line and exit 1; bugs keep their traceback."""
    try:
        app()
    except RagdeckError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
