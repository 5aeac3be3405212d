"""The ``ragdeck`` command as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig


@pytest.mark.slow
def test_search_json_on_demo(demo_data_dir: Path, monkeypatch, capsys) -> None:
    code, out, _ = run_cli(
        monkeypatch, capsys, "search", "How does Prometheus store samples on disk?", "--json", "--k", "5"
    )
    assert code == 0
    result = json.loads(out)
    assert result["collection"] == "rag_chunks_v1"
    assert len(result["hits"]) == 5
    for hit in result["hits"]:
        assert {"chunk_id", "doc_id", "score", "text"} <= hit.keys()
    assert [h["score"] for h in result["hits"]] == sorted((h["score"] for h in result["hits"]), reverse=True)
    assert {"embed", "search", "rerank", "total"} <= result["timings_ms"].keys()
    assert any("storage" in h["doc_id"] for h in result["hits"])


@pytest.mark.slow
def test_search_filter_exact_and_table(demo_data_dir: Path, monkeypatch, capsys) -> None:
    doc = "prometheus-server/docs/storage"
    code, out, _ = run_cli(
        monkeypatch, capsys, "search", "retention", "--json", "--filter", f"doc_id={doc}", "--exact"
    )
    assert code == 0
    hits = json.loads(out)["hits"]
    assert hits and {h["doc_id"] for h in hits} == {doc}
    code, out, _ = run_cli(monkeypatch, capsys, "search", "retention", "--ef", "16")
    assert code == 0 and "total" in out and "rag_chunks_v1" in out


@pytest.mark.slow
def test_collections_and_demo_idempotent(demo_data_dir: Path, monkeypatch, capsys) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "collections", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["collection"] == "rag_chunks_v1" and row["aliases"] == "rag_chunks"
    assert row["points"] > 1000 and row["indexed_share"] == 1.0 and row["hnsw_m"] == 16
    code, out, _ = run_cli(monkeypatch, capsys, "demo")
    assert code == 0 and "ready" in out


def test_search_unknown_collection(data_dir: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "search", "anything", "--collection", "nope")
    assert_one_line_error(code, err, "nope")


def test_search_dimension_mismatch(data_dir: Path, monkeypatch, capsys) -> None:
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        store.create_collection("wide", 768, HnswConfig())
    code, _, err = run_cli(monkeypatch, capsys, "search", "anything", "--collection", "wide")
    assert_one_line_error(code, err, "768", "384")


def test_ingest_missing_path(data_dir: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "ingest", "no/such/dir", "--collection", "x")
    assert_one_line_error(code, err, "no/such/dir")


def test_ingest_empty_corpus(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "ingest", str(tmp_path / "empty"), "--collection", "x")
    assert_one_line_error(code, err, "no documents")
    assert not (data_dir / "qdrant" / "collections" / "x").exists()


def test_ingest_unreadable_file(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "corpus" / "latin1.md"
    bad.parent.mkdir()
    bad.write_bytes(b"# Title\n\nCaf\xe9 au lait\n")
    code, _, err = run_cli(monkeypatch, capsys, "ingest", str(bad.parent), "--collection", "x")
    assert_one_line_error(code, err, "latin1.md")
    assert not (data_dir / "qdrant" / "collections" / "x").exists()


def test_ingest_jsonl_line_not_object(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "ok"}\n42\n')
    code, _, err = run_cli(monkeypatch, capsys, "ingest", str(corpus), "--collection", "x")
    assert code == 1 and "line 2" in err and "Traceback" not in err
    assert not (data_dir / "qdrant" / "collections" / "x").exists()


def test_ingest_then_search_through_installed_command(data_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "kb"
    corpus.mkdir()
    (corpus / "tls.md").write_text(
        "# TLS\n\nServe the web UI over HTTPS with a web config file and a certificate.\n"
    )
    (corpus / "remote.md").write_text(
        "# Remote write\n\nForward samples to long-term storage with remote_write.\n"
    )
    ragdeck = Path(sys.executable).parent / "ragdeck"
    done = subprocess.run(
        [str(ragdeck), "ingest", str(corpus), "--collection", "kb_v1", "--alias", "kb"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Indexed 2 documents" in done.stdout
    found = subprocess.run(
        [str(ragdeck), "search", "send samples to long term storage", "--alias", "kb", "--json", "--k", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["doc_id"] == "remote"


def test_ingest_reports_redactions_per_kind(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    corpus = tmp_path / "kb"
    corpus.mkdir()
    (corpus / "billing.md").write_text(
        "# Billing\n\nThe customer paid with 4111 1111 1111 1111 from IBAN GB82 WEST 1234 5698 7654 32. "
        "Their SSN is 536-22-1234 and the API key is 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c; reach them at "
        "ann@example.org. Order 1234 5678 9012 3456 of 2024-03-01 is not a card.\n"
    )
    code, out, err = run_cli(monkeypatch, capsys, "ingest", str(corpus), "--collection", "kb_v1")
    assert code == 0, err
    assert "Redacted: API_KEY 1, CARD 1, EMAIL 1, IBAN 1, NATIONAL_ID 1." in " ".join(out.split())
    code, out, err = run_cli(monkeypatch, capsys, "ingest", str(corpus), "--collection", "kb_v2", "--json")
    assert code == 0, err
    assert json.loads(out)["redactions"] == {"API_KEY": 1, "CARD": 1, "EMAIL": 1, "IBAN": 1, "NATIONAL_ID": 1}
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        text = " ".join(p.payload["text"] for p in store.iter_points("kb_v1"))
    assert "4111" not in text and "536-22" not in text and "1234 5678 9012 3456" in text


def test_ingest_refuses_a_fifo_and_a_bad_alias_before_any_work(
    data_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    fifo = tmp_path / "stream.md"
    os.mkfifo(fifo)  # reading it would hang until a writer came
    code, _, err = run_cli(monkeypatch, capsys, "ingest", str(fifo), "--collection", "x")
    assert_one_line_error(code, err, "stream.md is a named pipe (FIFO), not a file")
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    code, _, err = run_cli(
        monkeypatch, capsys, "ingest", str(tmp_path / "a.md"), "--collection", "x", "--alias", "bad alias!"
    )
    assert_one_line_error(code, err, "invalid alias name 'bad alias!'")
    assert "Chunking" not in err and "Embedding" not in err  # refused before the progress bars began
    assert not (data_dir / "qdrant" / "collections" / "x").exists()


def test_help_is_whole_when_piped() -> None:
    """``ragdeck eval --help | less``: every option name and every help text whole, nothing cut with '…'."""
    import re

    import typer

    from ragdeck.cli import app

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ragdeck"), "eval", "--help"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    flat = re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", done.stdout))
    command = typer.main.get_command(app).commands["eval"]  # type: ignore[attr-defined]
    params = [p for p in command.params if p.opts[0].startswith("-")]
    assert len(params) > 15
    for param in params:
        for name in (*param.opts, *param.secondary_opts):
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flat), name
        assert re.sub(r"\s+", " ", param.help or "") in flat, param.help


def test_a_numeric_doc_id_filter_finds_its_document(
    data_dir: Path, local_embedder, monkeypatch, capsys
) -> None:
    """``--filter doc_id=2024``: the document named "2024" (doc ids are stored as text), not the number."""
    from ragdeck.console.ingest.pipeline import ingest

    corpus = data_dir.parent / "corpus"
    corpus.mkdir()
    (corpus / "2024.md").write_text("# Release notes\n\nThe 2024 release adds native histograms. " * 3)
    (corpus / "guide.md").write_text("# Guide\n\nScrape targets over HTTP at an interval. " * 3)
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="notes_v1", alias="rag_chunks")
    code, out, err = run_cli(monkeypatch, capsys, "search", "histograms", "--json", "--filter", "doc_id=2024")
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert hits and {h["doc_id"] for h in hits} == {"2024"}
    code, out, err = run_cli(monkeypatch, capsys, "search", "histograms", "--json", "--filter", "ordinal=0")
    assert code == 0, err
    assert {h["doc_id"] for h in json.loads(out)["hits"]} == {
        "2024",
        "guide",
    }  # a number field stays a number
