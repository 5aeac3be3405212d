"""``ragdeck ingest`` and ``ragdeck demo``: chunk, embed and index a corpus (or the shipped demo corpus)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragdeck.cli.common import JsonOpt, err, open_stack, out
from ragdeck.cli.demo_evals import run_demo_evals
from ragdeck.console import audit
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.demo import ensure_demo
from ragdeck.console.ingest.documents import Document
from ragdeck.console.ingest.pipeline import IngestReport, chunking_from, hnsw_from, ingest
from ragdeck.console.roles import cli_user, require
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack, build_audit_log, build_index_ops, build_ingest_journal
from ragdeck.errors import InputError
from ragdeck.services.types import HnswConfig

STAGE_LABELS = {
    "read": "Reading",
    "chunk": "Chunking",
    "embed": "Embedding",
    "index": "Indexing",
    "evalset": "Eval set",
}
LISTED = 10  # ids spelled out in a report line; --json lists all


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar fed by the domain's ``progress(stage, done, total)`` callback; on a stderr that
    is not a terminal (a log, a pipe), plain lines instead: ``embed 64/310``, at most one a second per
    stage, besides each stage's first and last."""
    if not err.is_terminal:
        yield plain_progress()
        return
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


def plain_progress() -> Callable[[str, int, int], None]:
    """``progress(stage, done, total)`` as plain stderr lines (see ``progress_bar``)."""
    last: dict[str, float] = {}

    def update(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage in last and done < total and now - last[stage] < 1.0:
            return
        last[stage] = now
        err.print(f"{STAGE_LABELS.get(stage, stage).lower()} {done}/{total}", highlight=False, markup=False)

    return update


def listed(ids: list[str], limit: int = LISTED) -> str:
    """The first ``limit`` ids, comma-separated, and how many more there are."""
    more = f" ... and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def print_report(report: IngestReport) -> None:
    redacted = ", ".join(f"{k} {v}" for k, v in sorted(report.redactions.items())) or "nothing"
    target = f" (alias {report.alias} -> {report.collection})" if report.alias else ""
    indexed = report.documents - len(report.empty_documents)
    out.print(
        f"Indexed {indexed} documents as {report.chunks} chunks into {report.collection}{target} "
        f"in {report.seconds['total']:.1f} s ({report.chunks_per_second:.0f} chunks/s). "
        f"Redacted: {redacted}.",
        highlight=False,
    )
    if report.empty_documents:
        out.print(
            f"Not indexed: {len(report.empty_documents)} empty documents (no text): "
            f"{listed(report.empty_documents)}",
            highlight=False,
            markup=False,
        )


def say_cleared(report: IngestReport) -> None:
    """Tell on stderr that a partial collection a killed ingest left was deleted first."""
    stale = report.cleared_stale
    if stale is not None:
        err.print(
            f"cleared the partial collection {stale.get('collection', report.collection)} left by an ingest "
            f"that stopped mid-way (pid {stale.get('pid')} on {stale.get('host')})",
            highlight=False,
        )


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
    chunking = chunking_from(
        settings, min_chars=min_chars, max_chars=max_chars, overlap=overlap, prefix_title=prefix_title
    )
    hnsw = hnsw_from(settings, m=m, ef_construct=ef_construct)
    if not path.exists():
        raise InputError(f"{path} does not exist: give a folder, a .md/.txt file or a BEIR corpus.jsonl")
    check_alias_role(settings, alias)
    with open_stack() as stack, progress_bar() as progress:
        report = run_ingest(
            stack, path, collection, alias, chunking, hnsw, append=append, batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
    if as_json:
        out.print_json(data={**asdict(report), "chunks_per_second": report.chunks_per_second})
    else:
        print_report(report)


def check_alias_role(settings: Settings, alias: str | None) -> None:
    """Moving an alias is an index operation: operators only, audited (``ragdeck index swap`` gates it)."""
    if alias:
        require(cli_user(settings), "ingest.alias", target=alias, log=build_audit_log(settings))


def run_ingest(
    stack: Stack,
    source: Path | Sequence[Document],
    collection: str,
    alias: str | None,
    chunking: ChunkingConfig,
    hnsw: HnswConfig,
    *,
    append: bool = False,
    batch_size: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestReport:
    """The ingest pipeline with the stack's journal (a killed ingest's partial is cleared, and said so) and
    the alias move audited; ``check_alias_role`` first."""
    settings = stack.settings
    report = ingest(
        source,
        stack.store,
        stack.embedder,
        collection=collection,
        alias=alias,
        chunking=chunking,
        hnsw=hnsw,
        append=append,
        batch_size=batch_size or settings.embed_batch_size,
        progress=progress,
        journal=build_ingest_journal(settings),
    )
    say_cleared(report)
    if alias:
        before, after = {"collection": report.alias_before}, {"collection": collection}
        audit.record(cli_user(settings), "ingest.alias", alias, before, after, log=build_audit_log(settings))
    return report


def build_demo(stack: Stack, *, evals: bool = True) -> None:
    """Build the demo collection behind the serving alias if it is missing; say what is there. Then, with
    ``evals``, run the demo gold set over it once per retrieval mode unless already done (``demo_evals``)."""
    with progress_bar() as progress:
        report = ensure_demo(stack, progress, journal=build_ingest_journal(stack.settings))
    if report is not None:
        say_cleared(report)
        record_demo_version(stack, report.collection)
    if report is None:
        alias = stack.settings.alias
        out.print(f"Demo collection ready: alias {alias} -> {stack.store.resolve(alias)}.")
    else:
        print_report(report)
    if evals:
        try:
            run_demo_evals(stack)
        except Exception as exc:  # the console still starts: its pages say what is missing
            err.print(
                f"note: the demo eval runs failed ({type(exc).__name__}: {exc}); the next start (or "
                "`ragdeck demo`) tries again",
                highlight=False,
                markup=False,
            )


def record_demo_version(stack: Stack, collection: str) -> None:
    """Keep the demo build ``collection`` in the index registry as a version ragdeck built (Index Ops lists
    who and how)."""
    settings = stack.settings
    spec = {
        "corpus": "ragdeck demo corpus (packaged)",
        "chunking": asdict(chunking_from(settings)),
        "embedding_model": stack.embedder.model_name,
        "batch_size": settings.embed_batch_size,
    }
    build_index_ops(settings, stack).catalog.adopt(collection, created_by="ragdeck demo", spec=spec)


def demo_cmd() -> None:
    """Build the demo collection (shipped Prometheus and TEI docs) behind the serving alias if missing, and
    run the shipped demo gold set over it once with dense and once with hybrid retrieval if not done yet."""
    with open_stack() as stack:
        build_demo(stack)
