"""``ragdeck import beir | trec | hf | csv``: a test collection in one command (the corpus indexed into a
collection, its queries and graded qrels published as an eval set), and a report of what is odd in it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ragdeck.cli.common import open_stack, out
from ragdeck.cli.ingest import check_alias_role, listed, progress_bar, run_ingest
from ragdeck.console.evalsets.publish import check_evalset_name
from ragdeck.console.imports import FieldMap, ImportReport, TestCollection, import_collection
from ragdeck.console.imports.hf import read_datasets
from ragdeck.console.imports.readers import read_beir, read_tables, read_trec
from ragdeck.console.ingest.pipeline import chunking_from, hnsw_from
from ragdeck.console.settings import Settings
from ragdeck.services.common import check_name

app = typer.Typer(
    help="Import a test collection (corpus, queries, graded qrels): a collection and an eval set at once.",
    no_args_is_help=True,
)

Collection = Annotated[str, typer.Option("--collection", "-c", help="Physical collection to create.")]
SetName = Annotated[
    str | None, typer.Option("--set", "-s", help="Eval set name to publish (default: the collection's).")
]
Alias = Annotated[str | None, typer.Option(help="Point this alias at the collection when done.")]
MissingGold = Annotated[
    str,
    typer.Option(
        "--missing-gold",
        help="Judged documents the corpus lacks or that are empty: skip (leave them out of the gold) or keep "
        "(as gold no run can retrieve).",
    ),
]
MinChars = Annotated[int | None, typer.Option(help="Smallest chunk (characters).")]
MaxChars = Annotated[int | None, typer.Option(help="Largest chunk (characters).")]
Overlap = Annotated[float | None, typer.Option(help="Overlap between chunks, as a share (0.1-0.2).")]
PrefixTitle = Annotated[bool, typer.Option(help="Prefix title and section heading to each chunk.")]
BatchSize = Annotated[int | None, typer.Option(help="Chunks embedded per batch.")]
Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
Split = Annotated[str, typer.Option("--split", help="Which qrels split to import (qrels/SPLIT.tsv).")]

DocId = Annotated[str, typer.Option("--doc-id-field", help="Corpus field holding the document id.")]
Title = Annotated[str, typer.Option("--title-field", help="Corpus field holding the title (may be absent).")]
Text = Annotated[str, typer.Option("--text-field", help="Corpus field holding the text.")]
QueryId = Annotated[str, typer.Option("--query-id-field", help="Queries field holding the query id.")]
QueryText = Annotated[str, typer.Option("--query-text-field", help="Queries field holding the query text.")]
QrelsQuery = Annotated[str, typer.Option("--qrels-query-field", help="Qrels field holding the query id.")]
QrelsDoc = Annotated[str, typer.Option("--qrels-doc-field", help="Qrels field holding the document id.")]
QrelsGrade = Annotated[str, typer.Option("--qrels-grade-field", help="Qrels field holding the grade.")]


def _run(
    read: Callable[[Callable[[int], None]], TestCollection],
    collection: str,
    set_name: str | None,
    alias: str | None,
    missing_gold: str,
    chunks: dict[str, object],
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Cheap checks, read the files, build the collection and publish the set, then the report."""
    settings = Settings()
    name = set_name or collection
    check_name(collection)
    check_evalset_name(name)
    chunking = chunking_from(settings, **chunks)  # type: ignore[arg-type]
    hnsw = hnsw_from(settings)
    check_alias_role(settings, alias)
    with open_stack() as stack, progress_bar() as progress:
        found = read(lambda done: progress("read", done, 3))
        report = import_collection(
            found,
            set_name=name,
            sets_dir=settings.eval_sets_dir,
            missing_gold=missing_gold,  # type: ignore[arg-type]
            progress=progress,
            build=lambda docs: run_ingest(
                stack, docs, collection, alias, chunking, hnsw, batch_size=batch_size, progress=progress
            ),
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        print_import(report)


def _chunks(
    min_chars: int | None, max_chars: int | None, overlap: float | None, prefix_title: bool
) -> dict[str, object]:
    return {"min_chars": min_chars, "max_chars": max_chars, "overlap": overlap, "prefix_title": prefix_title}


def print_import(report: ImportReport) -> None:
    """The report, one line per finding (see README: Evaluate on your own data)."""
    f = report.findings
    target = f" (alias {report.alias} -> {report.collection})" if report.alias else ""
    version = f"version {report.version}" + ("" if report.new_version else ", unchanged")
    lines = [
        f"Imported {report.format} collection {report.source} in {report.seconds.get('total', 0.0):.1f} s",
        f"Documents: {report.documents} ({report.documents - len(f.empty_documents)} indexed)",
        f"Empty documents: {len(f.empty_documents)} (no text; not indexed)"
        + (f": {listed(f.empty_documents)}" if f.empty_documents else ""),
        f"Chunks: {report.chunks} in collection {report.collection}{target}",
        f"Queries: {report.queries} ({report.set_queries} in the eval set)",
        f"Queries without judgements: {len(f.queries_without_judgements)} (not in the eval set)"
        + (f": {listed(f.queries_without_judgements)}" if f.queries_without_judgements else ""),
        f"Queries without a relevant document: {len(f.queries_without_relevant)} (not in the eval set)"
        + (f": {listed(f.queries_without_relevant)}" if f.queries_without_relevant else ""),
        f"Judgements: {f.judgements}"
        + (
            f" ({f.dropped_judgements} of missing or empty documents left out)"
            if f.dropped_judgements
            else ""
        ),
        f"Judgements of queries the queries file lacks: {len(f.judgements_for_unknown_queries)}"
        + (f": {listed(f.judgements_for_unknown_queries)}" if f.judgements_for_unknown_queries else ""),
        f"Judged documents missing from the corpus: {len(f.missing_documents)} "
        f"({'left out of the gold' if report.missing_gold == 'skip' else 'kept as gold'})"
        + (f": {listed(f.missing_documents)}" if f.missing_documents else ""),
        f"Judged documents that are empty: {len(f.judged_empty_documents)}"
        + (f": {listed(f.judged_empty_documents)}" if f.judged_empty_documents else ""),
        f"Eval set: {report.eval_set} {version} ({report.eval_set_file}); evaluate with "
        f"`ragdeck eval --set {report.eval_set_file} --collection {report.alias or report.collection}"
        + (" --missing-gold keep`" if report.missing_gold == "keep" and f.missing_documents else "`"),
    ]
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command("beir")
def beir_cmd(
    path: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.")],
    collection: Collection,
    set_name: SetName = None,
    split: Split = "test",
    alias: Alias = None,
    missing_gold: MissingGold = "skip",
    min_chars: MinChars = None,
    max_chars: MaxChars = None,
    overlap: Overlap = None,
    prefix_title: PrefixTitle = True,
    batch_size: BatchSize = None,
    as_json: Json = False,
) -> None:
    """Import a BEIR folder."""
    chunks = _chunks(min_chars, max_chars, overlap, prefix_title)
    _run(lambda step: read_beir(path, split, step), collection, set_name, alias, missing_gold, chunks,
         batch_size, as_json)  # fmt: skip


@app.command("trec")
def trec_cmd(
    topics: Annotated[Path, typer.Option("--topics", help="Topics: SGML <top> blocks, or TSV qid<TAB>text.")],
    qrels: Annotated[Path, typer.Option("--qrels", help="Qrels: 'qid 0 docid grade' lines.")],
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus: BEIR corpus.jsonl (or its folder).")],
    collection: Collection,
    set_name: SetName = None,
    topic_field: Annotated[
        str,
        typer.Option("--topic-field", help="Which part of an SGML topic is the query: title, desc, narr."),
    ] = "title",
    alias: Alias = None,
    missing_gold: MissingGold = "skip",
    min_chars: MinChars = None,
    max_chars: MaxChars = None,
    overlap: Overlap = None,
    prefix_title: PrefixTitle = True,
    batch_size: BatchSize = None,
    as_json: Json = False,
) -> None:
    """Import TREC topics and qrels with their corpus."""
    chunks = _chunks(min_chars, max_chars, overlap, prefix_title)
    _run(lambda step: read_trec(topics, qrels, corpus, topic_field=topic_field, step=step), collection,
         set_name, alias, missing_gold, chunks, batch_size, as_json)  # fmt: skip


@app.command("hf")
def hf_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="Dataset saved with save_to_disk (or data files): the corpus, or a DatasetDict."),
    ],
    collection: Collection,
    queries: Annotated[
        Path | None, typer.Option("--queries", help="Queries dataset (default: PATH's).")
    ] = None,
    qrels: Annotated[Path | None, typer.Option("--qrels", help="Qrels dataset (default: PATH's).")] = None,
    split: Split = "test",
    set_name: SetName = None,
    doc_id: DocId = "_id",
    title: Title = "title",
    text: Text = "text",
    query_id: QueryId = "_id",
    query_text: QueryText = "text",
    qrels_query: QrelsQuery = "query-id",
    qrels_doc: QrelsDoc = "corpus-id",
    qrels_grade: QrelsGrade = "score",
    alias: Alias = None,
    missing_gold: MissingGold = "skip",
    min_chars: MinChars = None,
    max_chars: MaxChars = None,
    overlap: Overlap = None,
    prefix_title: PrefixTitle = True,
    batch_size: BatchSize = None,
    as_json: Json = False,
) -> None:
    """Import a Hugging Face dataset saved with save_to_disk (needs the extra named datasets)."""
    fields = FieldMap(doc_id, title, text, query_id, query_text, qrels_query, qrels_doc, qrels_grade)
    chunks = _chunks(min_chars, max_chars, overlap, prefix_title)

    def read(step: Callable[[int], None]) -> TestCollection:
        return read_datasets(path, queries=queries, qrels=qrels, split=split, fields=fields, step=step)

    _run(read, collection, set_name, alias, missing_gold, chunks, batch_size, as_json)


@app.command("csv")
def csv_cmd(
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus CSV (id, title, text columns).")],
    queries: Annotated[Path, typer.Option("--queries", help="Queries CSV (id, text columns).")],
    qrels: Annotated[Path, typer.Option("--qrels", help="Qrels CSV (query id, document id, grade columns).")],
    collection: Collection,
    set_name: SetName = None,
    doc_id: DocId = "_id",
    title: Title = "title",
    text: Text = "text",
    query_id: QueryId = "_id",
    query_text: QueryText = "text",
    qrels_query: QrelsQuery = "query-id",
    qrels_doc: QrelsDoc = "corpus-id",
    qrels_grade: QrelsGrade = "score",
    alias: Alias = None,
    missing_gold: MissingGold = "skip",
    min_chars: MinChars = None,
    max_chars: MaxChars = None,
    overlap: Overlap = None,
    prefix_title: PrefixTitle = True,
    batch_size: BatchSize = None,
    as_json: Json = False,
) -> None:
    """Import CSV tables: corpus, queries and qrels."""
    fields = FieldMap(doc_id, title, text, query_id, query_text, qrels_query, qrels_doc, qrels_grade)
    chunks = _chunks(min_chars, max_chars, overlap, prefix_title)
    _run(lambda step: read_tables(corpus, queries, qrels, fields, step), collection, set_name, alias,
         missing_gold, chunks, batch_size, as_json)  # fmt: skip
