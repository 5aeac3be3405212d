"""A test collection from Hugging Face datasets (the optional ``datasets`` package: ``ragdeck[datasets]``).

A path is a dataset saved with ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``), else a local folder of
data files ``datasets.load_dataset`` reads (JSON lines, CSV, Parquet). Nothing is fetched from the Hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragdeck.console.imports.collection import (
    CollectionProblems,
    FieldMap,
    Row,
    TestCollection,
    check_columns,
    documents_from_rows,
    judgements_from_rows,
    queries_from_rows,
)
from ragdeck.console.imports.readers import Step
from ragdeck.errors import InputError
from ragdeck.services.optional import datasets_module

__all__ = ["read_datasets"]


def _load(path: Path) -> Any:
    """The dataset or dataset dict at ``path`` (saved with ``save_to_disk``, else data files)."""
    if not path.exists():
        raise InputError(f"{path}: no such dataset; give a folder written by save_to_disk or of data files")
    datasets = datasets_module()
    saved = path.is_dir() and any(
        (path / name).is_file() for name in ("dataset_dict.json", "dataset_info.json")
    )
    try:
        if saved:
            return datasets.load_from_disk(str(path))
        return datasets.load_dataset(str(path))
    except (OSError, ValueError, FileNotFoundError) as exc:
        raise InputError(f"{path}: not a dataset datasets can read ({exc})") from None


def _split(data: Any, path: Path, wanted: tuple[str, ...], flag: str) -> tuple[Any, str]:
    """One split of a dataset dict: the first of ``wanted`` it has, else its only split."""
    if not hasattr(data, "keys"):  # a Dataset
        return data, str(path)
    names = list(data.keys())
    for name in wanted:
        if name in names:
            return data[name], f"{path}[{name}]"
    if len(names) == 1:
        return data[names[0]], f"{path}[{names[0]}]"
    raise InputError(
        f"{path}: no split named {' or '.join(wanted)}; splits there: {', '.join(names)} ({flag})"
    )


def _rows(dataset: Any, where: str, wanted: dict[str, str], problems: list[str]) -> Iterator[Row]:
    missing = check_columns(dataset.column_names, wanted, where)
    if missing:
        problems.extend(missing)
        return
    for number, row in enumerate(dataset, start=1):
        yield f"{where}, row {number}", row


def read_datasets(
    path: Path,
    *,
    queries: Path | None = None,
    qrels: Path | None = None,
    split: str = "test",
    fields: FieldMap | None = None,
    step: Step | None = None,
) -> TestCollection:
    """A collection from datasets: ``path`` holds the corpus (a dataset, or the ``corpus`` split of a dataset
    dict); the queries and the qrels come from ``queries`` / ``qrels`` when given, else from ``path``'s
    ``queries`` split and its ``split`` split (``test`` by default; else ``qrels``)."""
    f = fields or FieldMap()
    main = _load(path)
    corpus, corpus_at = _split(main, path, ("corpus",), "the corpus split is named corpus")
    if queries is None and not hasattr(main, "keys"):
        raise InputError(
            f"{path} holds one dataset: give the queries and qrels datasets with --queries, --qrels"
        )
    qdata = _load(queries) if queries is not None else main
    rdata = _load(qrels) if qrels is not None else main
    queries_ds, queries_at = _split(qdata, queries or path, ("queries",), "name it queries")
    qrels_ds, qrels_at = _split(rdata, qrels or path, (split, "qrels"), "pick one with --split")
    problems: list[str] = []
    doc_cols = {"--doc-id-field": f.doc_id, "--text-field": f.text}
    documents = documents_from_rows(_rows(corpus, corpus_at, doc_cols, problems), f, problems)
    query_cols = {"--query-id-field": f.query_id, "--query-text-field": f.query_text}
    found, where = queries_from_rows(_rows(queries_ds, queries_at, query_cols, problems), f, problems)
    qrels_cols = {
        "--qrels-query-field": f.qrels_query,
        "--qrels-doc-field": f.qrels_doc,
        "--qrels-grade-field": f.qrels_grade,
    }
    judgements = judgements_from_rows(_rows(qrels_ds, qrels_at, qrels_cols, problems), f, problems)
    if problems:
        raise CollectionProblems(problems)
    if step:
        step(3)
    return TestCollection(str(path), "datasets", documents, found, judgements, where)
