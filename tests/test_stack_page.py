"""The console's Stack page through Streamlit's AppTest, on a real embedded stack."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pages import open_page

from ragdeck.console.retrieval.collections import hit_rows, score_breakdown


@pytest.mark.slow
def test_stack_page_shows_components_collections_and_searches(demo_data_dir: Path) -> None:
    import ragdeck.ui as ui

    at = open_page().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Stack"
    warm = ui.warm_up_job()  # the first page to build the stack started loading the model in the background
    assert warm is not None and warm.wait(300) and warm.state == "done", warm and warm.error
    at.run()
    assert any("Embedding model loaded" in c.value for c in at.caption), [c.value for c in at.caption]
    components = at.dataframe[0].value
    assert set(components["component"]) >= {"vector store", "embedder", "reranker"}
    assert components.loc[components["component"] == "vector store", "mode"].item() == "embedded"
    assert components.loc[components["component"] == "embedder", "dimension"].item() == 384
    collections = at.dataframe[1].value
    assert list(collections["collection"]) == ["rag_chunks_v1"]
    assert collections["aliases"].item() == "rag_chunks"
    assert collections["points"].item() > 1000

    at.text_input[0].input("How long does Prometheus keep data by default?")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    result = at.session_state["stack_search"]
    assert result.collection == "rag_chunks_v1" and len(result.hits) == 10
    titles = [e.label for e in at.expander]
    assert len(titles) == 10 and titles[0].startswith("**1.**")
    assert any("storage" in hit.doc_id for hit in result.hits[:3])


def test_stack_page_empty_state(data_dir: Path) -> None:
    at = open_page().run()
    assert not at.exception, at.exception
    assert any("No collections yet" in info.value for info in at.info)
    assert len(at.text_input) == 0  # no search box without a collection


def test_stack_page_empty_question_is_a_clear_error(demo_data_dir: Path) -> None:
    at = open_page().run()
    at.selectbox[0].select("rag_chunks_v1")
    at.text_input[0].input("")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert "empty" in at.error[0].value


@pytest.mark.slow
def test_stack_page_hybrid_search_shows_each_chunks_ranks(demo_data_dir: Path) -> None:
    at = open_page().run()
    assert not at.exception, at.exception
    mode = next(r for r in at.radio if r.label == "Retrieval")
    assert mode.value == "dense"  # the settings' default
    assert not any(r.label == "Fusion" for r in at.radio)
    mode.set_value("hybrid").run()
    fusion = next(r for r in at.radio if r.label == "Fusion")
    assert fusion.value == "rrf"
    assert next(n for n in at.number_input if n.label == "RRF k").value == 60

    at.text_input[0].input("How long does Prometheus keep data by default?")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    result = at.session_state["stack_search"]
    assert result.params.retrieval == "hybrid" and result.params.fusion == "rrf" and result.params.rrf_k == 60
    table = at.dataframe[2].value
    assert list(table["rank"]) == list(range(1, 11))
    assert {"dense_rank", "lexical_rank", "fused_score"} <= set(table.columns)
    assert list(table["chunk"]) == [hit.chunk_id for hit in result.hits]
    # Each chunk came from at least one list, and the table shows the ranks the retriever gave it.
    for row, hit in zip(table.to_dict("records"), result.hits, strict=True):
        assert hit.dense_rank is not None or hit.lexical_rank is not None
        assert hit.fused_score is not None and row["fused_score"] == pytest.approx(hit.fused_score)
        for key in ("dense_rank", "lexical_rank"):
            expected = getattr(hit, key)
            assert pd.isna(row[key]) if expected is None else row[key] == expected, (key, row, hit)
    assert table["dense_rank"].notna().any() and table["lexical_rank"].notna().any()
    captions = [c.value for c in at.caption]
    first = result.hits[0]
    assert any(
        c.startswith("hybrid retrieval: ") and f"fused {first.fused_score:.4f}" in c for c in captions
    ), captions

    # Weighted fusion: the slider replaces RRF k and reaches the search.
    next(r for r in at.radio if r.label == "Fusion").set_value("weighted").run()
    assert not any(n.label == "RRF k" for n in at.number_input)
    next(s for s in at.slider if s.label == "Dense weight").set_value(0.8).run()
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    result = at.session_state["stack_search"]
    assert result.params.fusion == "weighted" and result.params.dense_weight == pytest.approx(0.8)
    assert all(0.0 <= hit.fused_score <= 1.0 for hit in result.hits)


@pytest.mark.slow
def test_stack_page_lexical_search_finds_a_rare_term_first(demo_data_dir: Path) -> None:
    at = open_page().run()
    next(r for r in at.radio if r.label == "Retrieval").set_value("lexical").run()
    assert not any(r.label == "Fusion" for r in at.radio)  # fusion inputs only for hybrid
    at.text_input[0].input("arctangent")  # once in the corpus: PromQL's atan() in functions.md
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    result = at.session_state["stack_search"]
    assert result.params.retrieval == "lexical"
    top = result.hits[0]
    assert "arctangent" in top.text.lower() and "functions" in top.doc_id
    assert top.lexical_rank == 1 and top.dense_rank is None and top.fused_score is None
    table = at.dataframe[2].value
    assert table["chunk"].iloc[0] == top.chunk_id
    assert "lexical_rank" in table.columns  # only the columns that apply
    assert "dense_rank" not in table.columns and "fused_score" not in table.columns
    assert table["lexical_rank"].iloc[0] == 1


def test_stack_page_lexical_search_of_a_collection_without_bm25_is_a_clear_error(data_dir: Path) -> None:
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
    from ragdeck.services.types import HnswConfig

    with EmbeddedQdrantStore(data_dir / "qdrant") as store:  # as built before hybrid retrieval
        store.create_collection("old_v1", 384, HnswConfig(), lexical=False)
    at = open_page().run()
    assert not at.exception, at.exception
    next(r for r in at.radio if r.label == "Retrieval").set_value("lexical").run()
    at.text_input[0].input("arctangent")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert at.error and "no lexical (BM25) index" in at.error[0].value and "rebuild" in at.error[0].value


def test_hit_rows_show_the_breakdown_columns_that_apply() -> None:
    dense = [{"chunk_id": "a#0", "doc_id": "a", "score": 0.9, "dense_rank": 1, "lexical_rank": None}]
    assert hit_rows(dense) == [{"rank": 1, "chunk": "a#0", "document": "a", "score": 0.9, "dense_rank": 1}]
    hybrid = [
        {"rank": 1, "chunk_id": "b#2", "doc_id": "b", "score": 0.03, "dense_rank": None, "lexical_rank": 1,
         "fused_score": 0.0167, "title": "B"},
        {"rank": 2, "chunk_id": "a#0", "doc_id": "a", "score": 0.02, "dense_rank": 1, "lexical_rank": None,
         "fused_score": 0.0164, "title": ""},
    ]  # fmt: skip
    rows = hit_rows(hybrid, marks=["✅", ""])
    assert list(rows[0]) == ["rank", "hit", "chunk", "document", "title", "score", "dense_rank",
                             "lexical_rank", "fused_score"]  # fmt: skip
    assert rows[0]["dense_rank"] is None and rows[1]["lexical_rank"] is None and rows[0]["hit"] == "✅"
    # An eval run stored before hybrid retrieval: no rank keys at all, no breakdown columns, no error.
    old = [{"chunk_id": "a#0", "doc_id": "a", "score": 0.9, "vector_score": 0.9, "rerank_score": None}]
    expected = [{"rank": 1, "hit": "", "chunk": "a#0", "document": "a", "score": 0.9}]
    assert hit_rows(old, marks=[""]) == expected
    assert score_breakdown(old[0]) == ""
    hybrid_hit = {
        "dense_rank": 3,
        "dense_score": 0.5,
        "lexical_rank": 1,
        "lexical_score": 7.25,
        "fused_score": 0.03226,
        "rerank_score": None,
    }
    assert score_breakdown(hybrid_hit) == "dense #3 (0.500) · lexical #1 (BM25 7.25) · fused 0.0323"
