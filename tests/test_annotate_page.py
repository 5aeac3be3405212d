"""The Annotate page through Streamlit's AppTest, on the real embedded stack with the demo collection."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import openai_fake
import pytest
from openai_fake import run_fake_openai
from pages import open_page

from ragdeck.console import annotation
from ragdeck.console.annotation.candidates import highlight, neighbours, query_terms
from ragdeck.console.annotation.guidelines import guidelines_file
from ragdeck.console.evalsets.gold_mapping import ChunkSpan, SpanIndex
from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.settings import Settings
from ragdeck.services.annotation_store import SqliteAnnotationStore


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

    store = SqliteAnnotationStore(Settings().state_db)
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
    store = SqliteAnnotationStore(Settings().state_db)
    [draft_id, _discarded] = annotation.add_questions(
        store,
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
    bodies = [h.value for h in at.html if "<mark>histogram_quantile</mark>" in h.value.casefold()]
    radios = [r for r in at.radio if r.key and r.key.startswith("rel_")]
    assert radios and len(bodies) >= len(radios)  # each card shows where its keyword is, marked


def test_terms_highlighting_and_neighbours() -> None:
    assert query_terms("How do I expose TEI metrics to Prometheus?") == [
        "expose",
        "tei",
        "metrics",
        "prometheus",
    ]
    marked = highlight("TEI exports metrics; teis stay.", ["tei", "metrics"])
    assert "<mark>TEI</mark> exports <mark>metrics</mark>; teis stay.</div>" in marked
    index = SpanIndex.of([ChunkSpan("d#s:1", "d", 500, 900), ChunkSpan("d#s:0", "d", 0, 600)])
    assert neighbours(index, "d#s:0").after == "d#s:1" and neighbours(index, "d#s:0").before is None
    assert neighbours(index, "missing").before is None


@pytest.mark.slow
def test_overlap_sample_is_assigned_from_the_page(demo_data_dir: Path) -> None:
    store = SqliteAnnotationStore(Settings().state_db)
    ids = annotation.add_questions(
        store, [f"What is metric number {i}?" for i in range(10)], source="typed", actor="x"
    )
    at = open_page("annotate")
    at.text_input(key="annotator").input("lead").run()
    next(t for t in at.text_input if t.label == "Annotators (comma-separated)").input("alice, bob")
    next(s for s in at.slider if s.label == "Overlap share").set_value(0.5)
    next(b for b in at.button if b.label == "Assign").click().run()
    assert not at.exception, at.exception
    assigned = store.assignments()
    both = [q for q in ids if set(assigned.get(q, ())) == {"alice", "bob"}]
    assert len(both) == 5 and all(len(assigned[q]) >= 1 for q in ids)


@pytest.mark.slow
def test_actions_carry_keyboard_shortcuts_and_grade_buttons_save(demo_data_dir: Path) -> None:
    store = SqliteAnnotationStore(Settings().state_db)
    [qid] = annotation.add_questions(
        store, ["How long does Prometheus keep data by default?"], source="typed", actor="x"
    )
    at = open_page("annotate")
    at.text_input(key="annotator").input("erin").run()
    keys = {b.label: b.proto.shortcut for b in at.button if b.proto.shortcut}
    assert {k: keys[k] for k in ("Save and next", "Skip", "Flag for review", "Undo my last change")} == {
        "Save and next": "ctrl+enter",  # shown as Cmd+Enter on a Mac
        "Skip": "s",
        "Flag for review": "f",
        "Undo my last change": "u",
    }
    relevant = [b for b in at.button if b.label == "Mark relevant"]
    partly = [b for b in at.button if b.label == "Mark partly relevant"]
    assert [b.proto.shortcut for b in relevant] == ["1", "2", "3", "4", "5"]
    assert [b.proto.shortcut for b in partly] == ["shift+1", "shift+2", "shift+3", "shift+4", "shift+5"]
    assert any("Ctrl/⌘+Enter" in c.value and "Shift+1–5" in c.value for c in at.caption)

    relevant[0].click().run()
    [b for b in at.button if b.label == "Mark partly relevant"][1].click().run()
    assert not at.exception, at.exception
    radios = [r for r in at.radio if r.key and r.key.startswith("rel_")]
    assert [r.value for r in radios[:3]] == ["relevant", "partly relevant", "unjudged"]
    first, second = (r.key.removeprefix(f"rel_{qid}_") for r in radios[:2])
    labels = {label.chunk_id: label.relevance for label in store.labels(qid, "erin")}
    assert labels == {first: 2, second: 1}


@pytest.mark.slow
def test_draft_questions_with_the_llm_review_and_queue(demo_data_dir: Path, monkeypatch) -> None:
    calls = itertools.count(1)

    def reply(body: dict[str, Any]) -> tuple[str, int, int, str]:
        """What a model says: a labelled question, except a refusal on the third call (no draft)."""
        n = next(calls)
        text = "I cannot think of a question." if n == 3 else f'Question: "Which setting number {n} matters?"'
        return text, 100, len(text.split()), "stop"

    monkeypatch.setattr(openai_fake, "reply_for", reply)  # the fake's answer to a chat body, scripted
    with run_fake_openai(models=["fake-chat-1"]) as llm:
        monkeypatch.setenv("LLM_BASE_URL", llm.url)
        at = open_page("annotate")
        at.text_input(key="annotator").input("dora").run()
        assert not any("Needs an LLM" in c.value for c in at.caption)
        next(n for n in at.number_input if n.label == "Chunks to draft from").set_value(4)
        next(b for b in at.button if b.label == "Draft questions").click().run()
        assert not at.exception, at.exception
        prompts = [r.body["messages"][-1]["content"] for r in llm.state.requests if r.body]
    assert len(prompts) == 4 and all("Passage:" in p for p in prompts)
    drafts = [t for t in at.text_input if t.label == "Draft"]
    assert [t.value for t in drafts] == [f"Which setting number {n} matters?" for n in (1, 2, 4)]
    assert any("Nothing left in your queue" in s.value for s in at.success)  # drafts wait for review

    store = SqliteAnnotationStore(Settings().state_db)
    generated = store.questions()
    assert all(q.draft and q.source == "generated" for q in generated) and len(generated) == 3
    for question in generated:  # each names the demo chunk it was drafted from
        [tag] = question.tags
        assert tag.startswith("from:") and "#" in tag
        assert (DEMO_CORPUS / f"{tag.removeprefix('from:').split('#')[0]}.md").is_file()

    drafts[0].input("Which retention setting matters most?")
    next(b for b in at.button if b.label == "Accept").click().run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.label == "Discard").click().run()  # the second draft
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Which retention setting matters most?"  # queued for labelling
    assert [t.value for t in at.text_input if t.label == "Draft"] == ["Which setting number 4 matters?"]
    kept = {q.question: q.draft for q in store.questions()}
    assert kept == {"Which retention setting matters most?": False, "Which setting number 4 matters?": True}
    assert [q.question for q in annotation.queue(store, "dora")] == ["Which retention setting matters most?"]


@pytest.mark.slow
def test_record_list_previous_next_flag_comment_and_reopening_a_skip(demo_data_dir: Path) -> None:
    store = SqliteAnnotationStore(Settings().state_db)
    texts = (
        "How long does Prometheus keep data by default?",
        "What does the /rerank route return?",
        "How do I write a recording rule?",
    )
    q1, q2, q3 = annotation.add_questions(store, list(texts), source="typed", actor="lead")
    at = open_page("annotate")
    at.text_input(key="annotator").input("kim").run()
    assert any("Relevance grades" in m.value for m in at.markdown)  # the guidelines, open at first
    keys = {b.label: b.proto.shortcut for b in at.button if b.proto.shortcut}
    assert (keys["◀ Previous"], keys["Next ▶"]) == ("p", "n")

    def click(label: str) -> None:
        next(b for b in at.button if b.label == label).click().run()
        assert not at.exception, at.exception

    def statuses() -> dict[str, str]:
        table = at.sidebar.dataframe[0].value
        return dict(zip(table["Question"], table["Status"], strict=True))

    assert at.subheader[0].value == texts[0]
    assert statuses() == dict.fromkeys(texts, "⚪ open")
    next(r for r in at.radio if r.key and r.key.startswith("rel_")).set_value("relevant").run()
    click("Save and next")
    assert at.subheader[0].value == texts[1]
    click("Skip")
    assert at.subheader[0].value == texts[2]
    click("Flag for review")  # no comment: refused, nothing saved
    assert any("say why" in e.value for e in at.error) and at.subheader[0].value == texts[2]
    assert store.answers(q3, "kim") == []
    at.text_input(key=f"flag_{q3}").input("two questions in one")
    click("Flag for review")
    assert any("Nothing left in your queue" in s.value for s in at.success)
    assert statuses() == {texts[0]: "✅ done", texts[1]: "⏭️ skipped", texts[2]: "🚩 flagged"}
    assert list(at.sidebar.dataframe[0].value["Comment"]) == ["", "", "two questions in one"]

    click("◀ Previous")  # nothing open: Previous opens the last record
    assert at.subheader[0].value == texts[2] and any("two questions in one" in c.value for c in at.caption)
    click("◀ Previous")
    assert at.subheader[0].value == texts[1] and any("yours: **skipped**" in c.value for c in at.caption)
    at.text_area(key=f"answer_{q2}").input("A list of scores.")
    click("Save and next")  # the skipped question is finished
    [answer] = store.answers(q2, "kim")
    assert (answer.status, answer.reference_answer) == ("done", "A list of scores.")
    assert statuses()[texts[1]] == "✅ done"

    at.sidebar.selectbox(key="ann_filter").set_value("Flagged").run()
    assert list(at.sidebar.dataframe[0].value["Question"]) == [texts[2]]
    at.sidebar.selectbox(key="ann_pick").set_value(q3).run()  # open it from the list
    assert at.subheader[0].value == texts[2]
    assert at.text_input(key=f"flag_{q3}").value == "two questions in one"
    at.sidebar.selectbox(key="ann_filter").set_value("All").run()
    click("◀ Previous")
    assert at.subheader[0].value == texts[1]
    click("Next ▶")
    assert at.subheader[0].value == texts[2]
    [flagged] = store.answers(q3, "kim")
    assert (flagged.status, flagged.note) == ("flagged", "two questions in one")
    assert [label.relevance for label in store.labels(q1, "kim")] == [2]


@pytest.mark.slow
def test_guidelines_are_edited_on_the_page(demo_data_dir: Path) -> None:
    store = SqliteAnnotationStore(Settings().state_db)
    annotation.add_questions(store, ["How long does Prometheus keep data by default?"], "typed", "lead")
    at = open_page("annotate")
    at.text_input(key="annotator").input("lee").run()
    at.toggle(key="ann_edit_guidelines").set_value(True).run()
    box = next(t for t in at.text_area if t.label.startswith("Guidelines"))
    box.input("**Our rule**: grade 2 only when the chunk answers alone.")
    next(b for b in at.button if b.label == "Save guidelines").click().run()
    assert not at.exception, at.exception
    saved = guidelines_file(Settings().data_dir).read_text(encoding="utf-8")
    assert saved == "**Our rule**: grade 2 only when the chunk answers alone."
    assert any("Our rule" in m.value for m in at.markdown)
