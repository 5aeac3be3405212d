"""A small test collection in every import format, built from the demo corpus's text: graded qrels, one
empty document, one judged document the corpus lacks, one query without judgements."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ragdeck.console.ingest.demo import DEMO_CORPUS

SOURCES = {  # doc id -> (title, demo file); the first 900 characters of each file's text
    "storage": ("Storage", "prometheus-server/docs/storage.md"),
    "install": ("Installation", "prometheus-server/docs/installation.md"),
    "cpu": ("Local CPU", "tei/docs/source/en/local_cpu.md"),
    "models": ("Supported models", "tei/docs/source/en/supported_models.md"),
}
EMPTY_DOC = "blank"
MISSING_DOC = "ghost"
UNJUDGED_QUERY = "q4"
QUERIES = {
    "q1": "How does Prometheus store time series data on local disk?",
    "q2": "How do I install Prometheus?",
    "q3": "How do I run text embeddings inference on a CPU?",
    UNJUDGED_QUERY: "Which embedding models are supported?",
}
QRELS = [  # (query, document, grade)
    ("q1", "storage", 2),
    ("q1", "install", 0),
    ("q2", "install", 2),
    ("q2", MISSING_DOC, 1),
    ("q3", "cpu", 1),
    ("q3", "models", 1),
    ("q3", EMPTY_DOC, 1),
]


def corpus_rows() -> list[dict[str, str]]:
    rows = []
    for doc_id, (title, rel) in SOURCES.items():
        text = (DEMO_CORPUS / rel).read_text(encoding="utf-8")
        body = "\n".join(line for line in text.splitlines() if not line.startswith(("---", "title:", "<!--")))
        rows.append({"_id": doc_id, "title": title, "text": body.strip()[:900]})
    rows.append({"_id": EMPTY_DOC, "title": "Nothing here", "text": ""})
    return rows


def write_beir(folder: Path) -> Path:
    """corpus.jsonl, queries.jsonl, qrels/test.tsv under ``folder``."""
    (folder / "qrels").mkdir(parents=True)
    lines = [json.dumps(row) for row in corpus_rows()]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    queries = [json.dumps({"_id": q, "text": t}) for q, t in QUERIES.items()]
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    qrels = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{g}" for q, d, g in QRELS)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def write_trec(folder: Path) -> dict[str, Path]:
    """SGML topics, ``qid 0 docid grade`` qrels and a BEIR corpus.jsonl under ``folder``."""
    folder.mkdir(parents=True)
    topics = "".join(
        f"<top>\n<num> Number: {q}\n<title> {t}\n\n<desc> Description:\nA user asks: {t}\n</top>\n\n"
        for q, t in QUERIES.items()
    )
    (folder / "topics.txt").write_text(topics)
    (folder / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, d, g in QRELS))
    (folder / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus_rows()))
    return {"topics": folder / "topics.txt", "qrels": folder / "qrels.txt", "corpus": folder / "corpus.jsonl"}


def write_csv(folder: Path) -> dict[str, Path]:
    """corpus.csv (doc_id, title, body), queries.csv (qid, query), qrels.csv (qid, docid, grade)."""
    folder.mkdir(parents=True)
    paths = {name: folder / f"{name}.csv" for name in ("corpus", "queries", "qrels")}
    tables = {
        "corpus": (["doc_id", "title", "body"], [[r["_id"], r["title"], r["text"]] for r in corpus_rows()]),
        "queries": (["qid", "query"], [[q, t] for q, t in QUERIES.items()]),
        "qrels": (["qid", "docid", "grade"], [list(row) for row in QRELS]),
    }
    for name, (header, rows) in tables.items():
        with paths[name].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    return paths


def write_dataset(folder: Path) -> Path:
    """A DatasetDict saved with ``save_to_disk``: splits corpus, queries, test (the qrels, integer grades)."""
    import datasets

    data = datasets.DatasetDict(
        {
            "corpus": datasets.Dataset.from_list(corpus_rows()),
            "queries": datasets.Dataset.from_list([{"_id": q, "text": t} for q, t in QUERIES.items()]),
            "test": datasets.Dataset.from_list(
                [{"query-id": q, "corpus-id": d, "score": g} for q, d, g in QRELS]
            ),
        }
    )
    data.save_to_disk(str(folder))
    return folder
