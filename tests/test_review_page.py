"""The Review page through AppTest: agreement figures, disagreements side by side, adjudication saved."""

from __future__ import annotations

from pathlib import Path

from pages import open_page

from ragdeck.console import annotation
from ragdeck.console.settings import Settings
from ragdeck.services.annotation_store import SqliteAnnotationStore


def test_empty_state_explains_what_to_do(data_dir: Path) -> None:
    at = open_page("review")
    assert any("two annotators" in i.value for i in at.info)


def test_disagreement_is_shown_and_adjudicated(data_dir: Path) -> None:
    store = SqliteAnnotationStore(Settings().state_db)
    q1, q2 = annotation.add_questions(
        store, ["What is a recording rule?", "What is TEI?"], source="typed", actor="ann"
    )
    for annotator, grades in (("alice", {"c1": 2, "c2": 0}), ("bob", {"c1": 2, "c2": 2})):
        for chunk, grade in grades.items():
            annotation.set_label(store, q1, annotator, chunk, grade, ("doc", 0, 10))
        annotation.set_label(store, q2, annotator, "c9", 2, ("doc", 20, 30))
    at = open_page("review")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions labelled by 2+"] == "2"
    assert metrics["Mean Jaccard of gold sets"] == "0.750"  # (1/2 + 1) / 2
    grades = at.dataframe[1].value
    assert list(grades.index) == ["c1", "c2"] and list(grades.columns) == ["alice", "bob"]
    assert at.markdown[-1].value == "`c2`"  # the only disputed chunk gets a decision form
    at.radio[0].set_value("relevant")
    at.text_input[0].input("it defines the rule")
    at.text_input[1].input("carol")
    at.button[0].click().run()
    assert not at.exception, at.exception
    [decision] = store.adjudications(q1)
    assert (decision.chunk_id, decision.relevance, decision.adjudicator) == ("c2", 2, "carol")
    [gold] = [g for g in annotation.export_gold(store) if g.question_id == q1]
    assert set(gold.gold_chunk_ids) == {"c1", "c2"}


def _disputed(store: SqliteAnnotationStore) -> str:
    (qid,) = annotation.add_questions(store, ["What is a recording rule?"], source="typed", actor="ann")
    for annotator, grade in (("alice", 2), ("bob", 0)):
        annotation.set_label(store, qid, annotator, "c1", grade, ("doc", 0, 10))
    return qid


def test_the_name_typed_on_annotate_is_the_reviewer_on_review(data_dir: Path) -> None:
    _disputed(SqliteAnnotationStore(Settings().state_db))
    at = open_page("annotate")  # one browser session, going from page to page
    at.text_input(key="annotator").input("carol").run()
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert next(t for t in at.text_input if t.label == "Reviewer").value == "carol"
    at.switch_page("pages/annotate.py").run()  # back on Annotate: the name was not forgotten
    assert at.text_input(key="annotator").value == "carol"


def test_with_a_trusted_login_the_reviewer_is_the_signed_in_user(data_dir: Path, monkeypatch) -> None:
    import ragdeck.login

    store = SqliteAnnotationStore(Settings().state_db)
    qid = _disputed(store)
    monkeypatch.setenv("RAGDECK_AUTH_HEADER", "X-Forwarded-User")
    monkeypatch.setenv("RAGDECK_AUTH_TRUST_HEADER", "true")
    monkeypatch.setattr(ragdeck.login, "request_header", lambda name: "dana")
    at = open_page("review")
    assert not any(t.label == "Reviewer" for t in at.text_input)  # nobody reviews as someone else
    assert any("Reviewer: **dana** (signed in)" in c.value for c in at.caption)
    at.radio[0].set_value("relevant")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert [d.adjudicator for d in store.adjudications(qid)] == ["dana"]
