"""The Annotate page through Streamlit's AppTest, on the real embedded stack with the demo collection."""

from __future__ import annotations

from pathlib import Path

import pytest
from pages import open_page

from ragdeck.console.annotate import highlight, neighbours, query_terms
from ragdeck.console.gold_mapping import ChunkSpan, SpanIndex
from ragdeck.console.settings import Settings
from ragdeck.services.annotation_store import AnnotationStore


@pytest.mark.slow
def test_label_a_question_end_to_end(demo_data_dir: Path) -> None:
    at = open_page("annotate")
    assert at.title[0].value == "Annotate"
    assert any("Type your name" in i.value for i in at.info)
    at.text_input(key="annotator").input("alice").run()
    at.text_area[0].input(
        "How long does Prometheus keep data by default?\nWhat does the /rerank route return?"
    )
    at.button[0].click().run()  # Add
    assert not at.exception, at.exception
    assert at.subheader[0].value == "How long does Prometheus keep data by default?"
    radios = [r for r in at.radio if r.key and r.key.startswith("rel_")]
    assert len(radios) == 20 and all(r.value == "unjudged" for r in radios)
    radios[0].set_value("relevant").run()
    [r for r in at.radio if r.key and r.key.startswith("rel_")][1].set_value("partly relevant").run()
    at.text_area(key=next(k for k in at.session_state if str(k).startswith("answer_"))).input("15 days.")
    next(b for b in at.button if b.label == "Save and next").click().run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "What does the /rerank route return?"

    store = AnnotationStore(Settings().state_db)
    [first, _] = store.questions()
    labels = {label.chunk_id: label.relevance for label in store.labels(first.id, "alice")}
    assert sorted(labels.values()) == [1, 2]
    assert all(label.span is not None for label in store.labels(first.id, "alice"))
    [answer] = store.answers(first.id, "alice")
    assert (answer.reference_answer, answer.status) == ("15 days.", "done")

    # Undo walks back the last change: the question is open again with its answer unsaved.
    next(b for b in at.button if b.label == "Undo my last change").click().run()
    assert not at.exception, at.exception
    assert [a.status for a in store.answers(first.id, "alice")] in ([], ["open"])
    assert at.subheader[0].value == "How long does Prometheus keep data by default?"


@pytest.mark.slow
def test_a_generated_draft_is_reviewed_before_it_is_queued(demo_data_dir: Path) -> None:
    store = AnnotationStore(Settings().state_db)
    [draft_id, _discarded] = store.add_questions(
        [{"question": "What port does TEI use?", "tags": ["from:x#y:0"]}, "Is this a good draft?"],
        source="generated",
        actor="llm",
    )
    at = open_page("annotate")
    at.text_input(key="annotator").input("dora").run()
    assert any("Nothing left in your queue" in s.value for s in at.success)  # drafts are not queued
    assert any("Needs an LLM" in c.value for c in at.caption)
    drafts = [t for t in at.text_input if t.label == "Draft"]
    assert [t.value for t in drafts] == ["What port does TEI use?", "Is this a good draft?"]
    drafts[0].input("Which port does TEI listen on by default?")
    next(b for b in at.button if b.label == "Accept").click().run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.label == "Discard").click().run()
    assert not at.exception, at.exception
    [kept] = store.questions()
    assert (kept.id, kept.question, kept.draft) == (
        draft_id,
        "Which port does TEI listen on by default?",
        False,
    )
    assert at.subheader[0].value == "Which port does TEI listen on by default?"


@pytest.mark.slow
def test_keyword_filter_keeps_only_matching_chunks(demo_data_dir: Path) -> None:
    at = open_page("annotate")
    at.text_input(key="annotator").input("bob").run()
    at.text_area[0].input("How do I compute a 95th percentile latency?")
    at.button[0].click().run()
    kw = next(t for t in at.text_input if t.key and t.key.startswith("kw_"))
    kw.input("histogram_quantile").run()
    assert not at.exception, at.exception
    bodies = [m.value for m in at.markdown if "histogram_quantile" in m.value.casefold()]
    radios = [r for r in at.radio if r.key and r.key.startswith("rel_")]
    assert radios and len(bodies) >= len(radios)


def test_terms_highlighting_and_neighbours() -> None:
    assert query_terms("How do I expose TEI metrics to Prometheus?") == [
        "expose",
        "tei",
        "metrics",
        "prometheus",
    ]
    marked = highlight("TEI exports metrics; teis stay.", ["tei", "metrics"])
    assert marked == ":orange-background[TEI] exports :orange-background[metrics]; teis stay."
    index = SpanIndex.of([ChunkSpan("d#s:1", "d", 500, 900), ChunkSpan("d#s:0", "d", 0, 600)])
    assert neighbours(index, "d#s:0").after == "d#s:1" and neighbours(index, "d#s:0").before is None
    assert neighbours(index, "missing").before is None


@pytest.mark.slow
def test_overlap_sample_is_assigned_from_the_page(demo_data_dir: Path) -> None:
    store = AnnotationStore(Settings().state_db)
    ids = store.add_questions([f"What is metric number {i}?" for i in range(10)], source="typed", actor="x")
    at = open_page("annotate")
    at.text_input(key="annotator").input("lead").run()
    next(t for t in at.text_input if t.label == "Annotators (comma-separated)").input("alice, bob")
    next(s for s in at.slider if s.label == "Overlap share").set_value(0.5)
    next(b for b in at.button if b.label == "Assign").click().run()
    assert not at.exception, at.exception
    assigned = store.assignments()
    both = [q for q in ids if set(assigned.get(q, ())) == {"alice", "bob"}]
    assert len(both) == 5 and all(len(assigned[q]) >= 1 for q in ids)
