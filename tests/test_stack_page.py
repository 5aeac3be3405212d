"""The console's Stack page through Streamlit's AppTest, on a real embedded stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from pages import open_page


@pytest.mark.slow
def test_stack_page_shows_components_collections_and_searches(demo_data_dir: Path) -> None:
    at = open_page().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Stack"
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
