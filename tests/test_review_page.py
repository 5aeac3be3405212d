"""The Review page through AppTest: agreement figures, who said what per chunk with the chunk's text from the
vector store, each annotator's reference answer, the merge rule, and adjudication saved."""

from __future__ import annotations

from pathlib import Path

from pages import open_page
from review_data import html_bodies, seed_chunks

from ragdeck.console import annotation
from ragdeck.console.annotation.gold import MERGE_RULE, MERGE_SUMMARY
from ragdeck.console.settings import Settings
from ragdeck.services.annotation_store import SqliteAnnotationStore


def test_empty_state_explains_what_to_do(data_dir: Path) -> None:
    at = open_page("review")
    assert any("two annotators" in i.value for i in at.info)
    assert any(c.value == MERGE_SUMMARY for c in at.caption)  # the rule is stated even before any label


def disputed_store() -> tuple[SqliteAnnotationStore, str, str]:
    store = SqliteAnnotationStore(Settings().state_db)
    q1, q2 = annotation.add_questions(
        store, ["What is a recording rule?", "What is TEI?"], source="typed", actor="ann"
    )
    for annotator, grades in (("alice", {"c1": 2, "c2": 0}), ("bob", {"c1": 2, "c2": 2})):
        for chunk, grade in grades.items():
            annotation.set_label(store, q1, annotator, chunk, grade, ("doc", 0, 10))
        annotation.set_label(store, q2, annotator, "c9", 2, ("doc", 20, 30))
    annotation.set_answer(store, q1, "alice", "It precomputes <i>an</i> expression.", "done")
    annotation.set_answer(store, q1, "bob", "A stored query result.", "done")
    return store, q1, q2


def test_disagreement_is_shown_with_chunk_text_and_answers_and_adjudicated(data_dir: Path) -> None:
    seed_chunks()
    store, q1, _ = disputed_store()
    at = open_page("review")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions labelled by 2+"] == "2"
    assert metrics["Mean Jaccard of gold sets"] == "0.750"  # (1/2 + 1) / 2
    assert next(s for s in at.selectbox if s.label == "Question to review").value == q1  # the open one first
    overview = at.dataframe[0].value
    assert "None" not in overview.astype(str).to_numpy().ravel().tolist()
    row = overview.set_index("question").loc["What is a recording rule?"]
    assert row["why it is here"] == "1 chunk(s) graded differently, 0 decided"

    who = at.dataframe[1].value  # who said what, per chunk
    assert list(who.index) == ["c1", "c2"]
    assert who.loc["c2", "alice"] == "not relevant" and who.loc["c2", "bob"] == "relevant"
    assert who.loc["c2", "gold (merged)"] == "not relevant"  # a tie of two: the lower grade stands
    assert who.loc["c2", "decided by"] == "—"

    bodies = html_bodies(at)
    assert any("It precomputes &lt;i&gt;an&lt;/i&gt; expression." in b for b in bodies)  # alice's answer
    assert any("A stored query result." in b for b in bodies)
    answers = [m.value for m in at.markdown if m.value.startswith(("**alice**", "**bob**"))]
    assert answers == ["**alice** · done", "**bob** · done · **used as the reference answer**"]  # the newest
    # chunk text from the store, escaped, first lines only; the rest one click away
    assert any(
        "A recording rule precomputes an expression.\nIts result is a new series." in b for b in bodies
    )
    short = next(b for b in bodies if "&lt;b&gt;bold?&lt;/b&gt; :red[not red]" in b)
    assert "line three" in short and "only in full" not in short and "<b>" not in short
    assert any(e.label == "Full text" for e in at.expander)
    assert any("line four, only in full" in b for b in bodies)  # inside the expander
    assert any("Merge rule" in e.label for e in at.expander)
    assert any(m.value == MERGE_RULE for m in at.markdown)

    assert len(at.radio) == 1  # only the disputed chunk c2 gets a decision form
    at.radio[0].set_value("relevant")
    at.text_input(key=f"reason_{q1}_c2").input("it defines the rule")
    next(t for t in at.text_input if t.label == "Reviewer").input("carol")
    next(b for b in at.button if b.label == "Record decision").click().run()
    assert not at.exception, at.exception
    [decision] = store.adjudications(q1)
    assert (decision.chunk_id, decision.relevance, decision.adjudicator) == ("c2", 2, "carol")
    [gold] = [g for g in annotation.export_gold(store) if g.question_id == q1]
    assert set(gold.gold_chunk_ids) == {"c1", "c2"}
    who = at.dataframe[1].value
    assert who.loc["c2", "gold (merged)"] == "relevant" and who.loc["c2", "decided by"] == "carol"
    assert any("Decided by carol: relevant" in c.value for c in at.caption)


def test_a_flagged_question_is_reviewed_even_with_one_annotator(data_dir: Path) -> None:
    seed_chunks()
    store = SqliteAnnotationStore(Settings().state_db)
    (qid,) = annotation.add_questions(store, ["What is TEI?"], source="typed", actor="ann")
    annotation.set_label(store, qid, "bob", "c9", 2, ("doc", 0, 10))
    annotation.set_answer(store, qid, "bob", "An embedding server.", "flagged", "is c9 outdated?")
    at = open_page("review")
    assert not at.exception, at.exception
    assert any("Needs a reviewer: flagged by bob: is c9 outdated?" in w.value for w in at.warning)
    bodies = html_bodies(at)
    assert any("TEI serves embeddings over HTTP." in b for b in bodies)
    assert any("Note: is c9 outdated?" in b for b in bodies)
    assert len(at.radio) == 1  # every chunk of a flagged question can be decided


def test_chunk_text_missing_from_the_store_is_said(data_dir: Path) -> None:
    disputed_store()  # no collection at all
    at = open_page("review")
    assert any("the vector store has no collection yet" in c.value for c in at.caption)


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
