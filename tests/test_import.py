"""``ragdeck import``: a small test collection (graded qrels, an empty document, a judged document the
corpus lacks, a query without judgements) in each format gives a collection, an eval set and a report that
names each oddity; ``ragdeck eval`` then scores the set on the collection at document level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import assert_one_line_error, run_cli
from collections_data import (
    EMPTY_DOC,
    MISSING_DOC,
    QRELS,
    UNJUDGED_QUERY,
    write_beir,
    write_csv,
    write_dataset,
    write_trec,
)
from test_metrics import ranx_scores

from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evalsets.publish import versions
from ragdeck.console.evaluation.metric_names import RETRIEVAL_METRICS
from ragdeck.console.evaluation.metrics import document_qrels
from ragdeck.console.imports import evalset_from
from ragdeck.console.imports.readers import read_beir, read_tables, read_topics
from ragdeck.errors import InputError

RAGDECK = Path(sys.executable).parent / "ragdeck"


def ragdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RAGDECK), *args], capture_output=True, text=True, timeout=600)


def check_findings(report: dict) -> None:
    """The oddities of the shared test collection, each found."""
    assert report["documents"] == 5 and report["indexed_documents"] == 4
    assert report["empty_documents"] == [EMPTY_DOC]
    assert report["queries"] == 4 and report["set_queries"] == 3
    assert report["queries_without_judgements"] == [UNJUDGED_QUERY]
    assert report["missing_documents"] == [MISSING_DOC]
    assert report["judged_empty_documents"] == [EMPTY_DOC]
    assert report["judgements"] == len(QRELS) and report["dropped_judgements"] == 2
    assert report["chunks"] >= 4


def check_set(path: Path) -> None:
    """Document-level, graded gold: grade 2 and grade 0 kept in relevance; missing and empty ids left out."""
    records = read_jsonl(path).by_id()
    assert set(records) == {"q1", "q2", "q3"}
    assert records["q1"].gold_context_ids == ["storage"]
    assert records["q1"].relevance == {"storage": 2, "install": 0}
    assert records["q2"].gold_context_ids == ["install"]
    assert records["q3"].gold_context_ids == ["cpu", "models"]


def test_beir_import_then_eval(data_dir: Path, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "mini")
    done = ragdeck("import", "beir", str(beir), "--collection", "mini_v1", "--set", "mini", "--alias", "mini")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Documents: 5 (4 indexed)" in text
    assert f"Empty documents: 1 (no text; not indexed): {EMPTY_DOC}" in text
    assert "in collection mini_v1 (alias mini -> mini_v1)" in text
    assert "Queries: 4 (3 in the eval set)" in text
    assert f"Queries without judgements: 1 (not in the eval set): {UNJUDGED_QUERY}" in text
    assert f"Judged documents missing from the corpus: 1 (left out of the gold): {MISSING_DOC}" in text
    assert "Eval set: mini version 1" in text
    for stage in ("reading", "chunking", "embedding", "indexing", "eval set"):
        assert f"{stage} " in done.stderr, done.stderr  # progress on both steps (plain lines when piped)
    check_set(tmp_path / "eval_sets" / "mini.jsonl")
    assert versions(tmp_path / "eval_sets", "mini")[-1].version == 1

    run = tmp_path / "run.json"
    scored = ragdeck(
        "eval",
        "--set",
        "eval_sets/mini.jsonl",
        "--collection",
        "mini",
        "--ks",
        "1,10,100",
        "--json",
        str(run),
    )
    assert scored.returncode == 0, scored.stderr
    exported = json.loads(run.read_text())
    summary = exported["summary"]
    for name in ("doc_recall@10", "doc_ndcg@10", "doc_mrr@10"):
        assert 0.0 <= summary[name] <= 1.0, name
    assert summary["doc_hit_rate@10"] == 1.0  # 4 documents, every query's gold among them
    # Document-level metrics equal ranx on the deduplicated document ranking cut at k documents.
    queries = exported["queries"]
    assert len(queries) == 3 and all(q["level"] == "document" for q in queries)
    rankings = [q["retrieved_doc_ids"] for q in queries]
    assert all(len(r) == len(set(r)) == 4 for r in rankings)  # every indexed document, each once
    names = [f"{m}@{k}" for m in RETRIEVAL_METRICS for k in (1, 10, 100)]
    theirs = ranx_scores(rankings, [document_qrels(q["gold"]) for q in queries], names)
    for name in names:
        ours = np.array([q["metrics"][f"doc_{name}"] for q in queries])
        np.testing.assert_allclose(ours, theirs[name], rtol=0, atol=1e-9, err_msg=name)


def test_datasets_import(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    saved = write_dataset(tmp_path / "saved")
    done = ragdeck("import", "hf", str(saved), "-c", "mini_hf", "--set", "mini_hf", "--json")
    assert done.returncode == 0, done.stderr
    check_findings(json.loads(done.stdout))
    check_set(tmp_path / "eval_sets" / "mini_hf.jsonl")


def test_trec_import(data_dir: Path, tmp_path: Path) -> None:
    files = write_trec(tmp_path / "trec")
    done = ragdeck(
        "import", "trec", "--topics", str(files["topics"]), "--qrels", str(files["qrels"]),
        "--corpus", str(files["corpus"]), "-c", "mini_trec", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    check_findings(json.loads(done.stdout))
    check_set(tmp_path / "eval_sets" / "mini_trec.jsonl")  # the set is named after the collection


def test_csv_import_with_mapped_columns(data_dir: Path, tmp_path: Path) -> None:
    files = write_csv(tmp_path / "tables")
    done = ragdeck(
        "import", "csv", "--corpus", str(files["corpus"]), "--queries", str(files["queries"]),
        "--qrels", str(files["qrels"]), "-c", "mini_csv", "--set", "mini_csv", "--json",
        "--doc-id-field", "doc_id", "--text-field", "body", "--query-id-field", "qid",
        "--query-text-field", "query", "--qrels-query-field", "qid", "--qrels-doc-field", "docid",
        "--qrels-grade-field", "grade",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    check_findings(json.loads(done.stdout))
    check_set(tmp_path / "eval_sets" / "mini_csv.jsonl")


# ---------------------------------------------------------------- no embedding: the cheap checks


def test_csv_columns_missing_are_named_with_the_flag_to_use(data_dir, tmp_path, monkeypatch, capsys) -> None:
    files = write_csv(tmp_path / "tables")
    code, _, err = run_cli(
        monkeypatch, capsys, "import", "csv", "--corpus", str(files["corpus"]), "--queries",
        str(files["queries"]), "--qrels", str(files["qrels"]), "-c", "never_built",
    )  # fmt: skip
    assert_one_line_error(code, err, "corpus.csv, line 1: no column 'text'", "--text-field body")
    assert "--qrels-grade-field grade" in err
    assert not list((tmp_path / "data").rglob("never_built*"))


def test_a_bad_qrels_line_is_named_before_anything_is_embedded(data_dir, tmp_path, monkeypatch, capsys):
    beir = write_beir(tmp_path / "mini")
    qrels = beir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q2\tcpu\tvery\n")
    code, _, err = run_cli(monkeypatch, capsys, "import", "beir", str(beir), "-c", "never_built")
    line = f"line {len(QRELS) + 2}"  # the header, then one line per judgement
    assert_one_line_error(code, err, "test.tsv", line, "rel", "'very' is not a whole number")
    assert not list((tmp_path / "data").rglob("never_built*"))


def test_a_missing_split_names_the_splits_there(data_dir, tmp_path, monkeypatch, capsys) -> None:
    beir = write_beir(tmp_path / "mini")
    code, _, err = run_cli(monkeypatch, capsys, "import", "beir", str(beir), "-c", "x_v1", "--split", "dev")
    assert_one_line_error(code, err, "no qrels for split 'dev'", "splits there: test", "--split")


def test_a_bad_set_name_fails_first(data_dir, tmp_path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(
        monkeypatch, capsys, "import", "beir", str(tmp_path / "nowhere"), "-c", "x_v1", "--set", "x.versions"
    )
    assert_one_line_error(code, err, "x.versions")


def test_findings_and_missing_gold_keep(tmp_path: Path) -> None:
    collection = read_beir(write_beir(tmp_path / "mini"))
    skipped, found = evalset_from(collection, "mini")
    assert found.missing_documents == [MISSING_DOC] and found.judged_empty_documents == [EMPTY_DOC]
    assert found.queries_without_judgements == [UNJUDGED_QUERY] and found.dropped_judgements == 2
    kept, found_kept = evalset_from(collection, "mini", "keep")
    assert found_kept.dropped_judgements == 0
    assert kept.by_id()["q2"].gold_context_ids == ["install", MISSING_DOC]
    assert skipped.by_id()["q2"].gold_context_ids == ["install"]
    with pytest.raises(InputError, match="--missing-gold must be one of skip, keep"):
        evalset_from(collection, "mini", "drop")  # type: ignore[arg-type]


def test_a_query_left_without_relevant_documents_is_listed(tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "mini")
    qrels = beir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + f"{UNJUDGED_QUERY}\t{MISSING_DOC}\t1\nq9\tcpu\t1\n")
    evalset, found = evalset_from(read_beir(beir), "mini")
    assert found.queries_without_relevant == [UNJUDGED_QUERY]
    assert found.judgements_for_unknown_queries == ["q9"]
    assert UNJUDGED_QUERY not in evalset.by_id()


def test_trec_topics_sgml_and_tsv(tmp_path: Path) -> None:
    files = write_trec(tmp_path / "trec")
    queries, where = read_topics(files["topics"])
    assert queries["q1"] == "How does Prometheus store time series data on local disk?"
    assert where["q2"].endswith("topics.txt, line 9")  # its <top> line: each topic takes 8 lines
    described, _ = read_topics(files["topics"], "desc")
    assert described["q1"].startswith("A user asks: How does")
    tsv = tmp_path / "topics.tsv"
    tsv.write_text("301\tinternational organized crime\n302\tpoliomyelitis and post-polio\n")
    topics = {"301": "international organized crime", "302": "poliomyelitis and post-polio"}
    assert read_topics(tsv)[0] == topics


def test_a_repeated_judgement_in_a_table_names_both_rows(tmp_path: Path) -> None:
    files = write_csv(tmp_path / "tables")
    with files["qrels"].open("a") as handle:
        handle.write("q1,storage,1\n")
    from ragdeck.console.imports import FieldMap

    fields = FieldMap("doc_id", "title", "body", "qid", "query", "qid", "docid", "grade")
    with pytest.raises(InputError, match=r"qrels.csv, line 9: second judgement of 'storage' for query 'q1' "
                       r"\(first at .*qrels.csv, line 2\)"):  # fmt: skip
        read_tables(files["corpus"], files["queries"], files["qrels"], fields)


def test_ingest_names_the_empty_documents_it_leaves_out(tmp_path: Path) -> None:
    from ragdeck.console.ingest.chunking import ChunkingConfig
    from ragdeck.console.ingest.pipeline import prepare_chunks

    documents = read_beir(write_beir(tmp_path / "mini")).documents
    count, chunks, _, empty = prepare_chunks(documents, ChunkingConfig())
    assert count == 5 and empty == [EMPTY_DOC]
    assert {c.doc_id for c in chunks} == {"storage", "install", "cpu", "models"}
