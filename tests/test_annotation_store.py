"""The annotation store on real SQLite files: several processes writing, a writer killed mid-save, undo,
dedupe, queues, overlap samples, gold export rules and bad input."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from ragdeck.console import annotation
from ragdeck.console.annotation import ChunkSpan, majority_grade
from ragdeck.console.annotation.agreement import overall_agreement
from ragdeck.errors import InputError, ServiceUnavailable, StoreBusy
from ragdeck.services.annotation_store import TABLES, SqliteAnnotationStore
from ragdeck.services.routing_state import SqliteRoutingState
from ragdeck.services.text import normalize_question

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ragdeck.sqlite3"


@pytest.fixture
def store(db_path: Path) -> SqliteAnnotationStore:
    return SqliteAnnotationStore(db_path)


def add(store: SqliteAnnotationStore, *texts: str) -> list[str]:
    return annotation.add_questions(store, list(texts), "typed", "lead")


# ------------------------------------------------------------------ file, schema, errors


def test_wal_prefixed_tables_and_a_shared_state_db(db_path: Path, store: SqliteAnnotationStore) -> None:
    routing = SqliteRoutingState(db_path)  # another component's tables in the same file
    routing.set_weight("A", 1.0, actor="ops")
    add(store, "What is WAL?")
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # One schema for the whole file (services/state_schema.py): the annotation store's tables, all prefixed
    # ann_, beside the other components'.
    assert set(TABLES) <= names and all(name.startswith("ann_") for name in TABLES)
    assert {"weights", "thresholds", "events", "eval_runs", "audit_log"} <= names
    assert routing.weights() == {"A": 1.0} and len(SqliteAnnotationStore(db_path).questions()) == 1
    assert store.health().ok


def test_built_by_the_composition_root_as_the_domains_port(tmp_path: Path) -> None:
    from ragdeck.console.settings import Settings
    from ragdeck.console.wiring import build_annotation_store

    store = build_annotation_store(Settings(data_dir=tmp_path))
    assert isinstance(store, SqliteAnnotationStore) and isinstance(store, annotation.AnnotationRepository)
    assert store.path == Settings(data_dir=tmp_path).state_db
    # The domain takes the store as a parameter and never builds one.
    domain = REPO / "ragdeck" / "console" / "annotation"
    assert not [p.name for p in domain.glob("*.py") if "SqliteAnnotationStore(" in p.read_text()]


def test_unusable_path_is_service_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ServiceUnavailable, match="RAGDECK_DATA_DIR"):
        SqliteAnnotationStore(blocker / "state.sqlite3")


def test_a_lock_held_past_the_timeout_is_store_busy(db_path: Path) -> None:
    store = SqliteAnnotationStore(db_path, busy_timeout_s=0.2)
    (qid,) = add(store, "Who holds the lock?")
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy, match="nothing was saved"):
            annotation.set_label(store, qid, "ann", "c1", 2)
        assert time.monotonic() - started >= 0.2
        assert store.questions()[0].id == qid  # readers are not blocked (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    annotation.set_label(store, qid, "ann", "c1", 2)
    assert [label.relevance for label in store.labels(qid)] == [2]


# ------------------------------------------------------------------ questions


def test_add_questions_dedupes_by_normalised_text(store: SqliteAnnotationStore) -> None:
    ids = annotation.add_questions(
        store,
        [
            "What is WAL?",
            "  what   is WAL ",
            {"question": "How do I tune ef?", "id": "q-ef", "tags": ["hnsw"]},
        ],
        "imported",
        "lead",
    )
    assert ids[0] == ids[1] and ids[2] == "q-ef"
    assert ids[0].startswith("q-") and len(ids[0]) == 14
    assert add(store, "WHAT IS WAL!!") == [ids[0]]
    questions = store.questions()
    assert [q.id for q in questions] == [ids[0], "q-ef"]
    assert (
        questions[1].tags == ("hnsw",)
        and questions[1].source == "imported"
        and questions[1].created_by == "lead"
    )
    assert normalize_question(" Ｗhat  is\tWAL ?") == "what is wal"


@pytest.mark.parametrize(
    ("items", "source", "match"),
    [
        (["   "], "typed", "non-empty"),
        ([{"id": "x"}], "typed", "non-empty"),
        (["ok"], "scraped", "source"),
        ([{"question": "ok", "tags": "hnsw"}], "typed", "tags"),
    ],
)
def test_add_questions_rejects_bad_input(
    store: SqliteAnnotationStore, items: list, source: str, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        annotation.add_questions(store, items, source, "lead")
    assert store.questions() == []


def test_add_questions_wants_a_list(store: SqliteAnnotationStore) -> None:
    with pytest.raises(InputError, match="wrap it in a list"):
        annotation.add_questions(
            store, "What is WAL?", "typed", "lead"
        )  # would otherwise add one question per letter
    assert store.questions() == []


def test_a_given_id_cannot_name_two_questions(store: SqliteAnnotationStore) -> None:
    annotation.add_questions(store, [{"question": "first", "id": "q1"}], "imported", "lead")
    with pytest.raises(InputError, match="already names another question"):
        annotation.add_questions(store, [{"question": "second", "id": "q1"}], "imported", "lead")


def test_generated_questions_are_drafts_until_accepted(store: SqliteAnnotationStore) -> None:
    (typed,) = add(store, "Typed question")
    draft, other = annotation.add_questions(store, ["Generated one?", "Generated two?"], "generated", "llm")
    assert [q.id for q in annotation.queue(store, "ann")] == [typed]
    assert [q.id for q in annotation.queue(store, "ann", include_drafts=True)] == [typed, draft, other]
    assert annotation.progress(store, "ann").total == 1
    with pytest.raises(InputError, match="already asks this"):
        annotation.accept_draft(store, draft, "ann", question="typed question")
    accepted = annotation.accept_draft(store, draft, "ann", question="Generated one, edited?")
    assert (accepted.draft, accepted.question) == (False, "Generated one, edited?")
    assert [q.id for q in annotation.queue(store, "ann")] == [typed, draft]
    annotation.set_label(store, other, "ann", "c1", 2)
    annotation.discard_draft(store, other, "ann")
    assert [q.id for q in store.questions()] == [typed, draft] and store.labels(other) == []
    with pytest.raises(InputError, match="only drafts"):
        annotation.discard_draft(store, typed, "ann")
    annotation.undo(store, "ann")  # the discard comes back with its label
    assert store.question(other).draft and [label.chunk_id for label in store.labels(other)] == ["c1"]


# ------------------------------------------------------------------ labels and answers


def test_labels_are_per_annotator_and_keep_their_span(store: SqliteAnnotationStore) -> None:
    (qid,) = add(store, "Where is the span?")
    annotation.set_label(store, qid, "ann", "doc#a#0001", 2, ("doc", 0, 120))
    first = annotation.set_label(store, qid, "ann", "doc#a#0001", 1)  # no span given: the saved one stays
    assert (
        annotation.set_label(store, qid, "ann", "doc#a#0001", 1).updated_at == first.updated_at
    )  # a no-op save
    annotation.set_label(store, qid, "bob", "doc#a#0002", 0, {"doc_id": "doc", "start": 100, "end": 220})
    ann, bob = store.labels(qid, "ann"), store.labels(annotator="bob")
    assert [(x.chunk_id, x.relevance, x.span) for x in ann] == [("doc#a#0001", 1, ChunkSpan("doc", 0, 120))]
    assert [(x.chunk_id, x.relevance, x.span) for x in bob] == [("doc#a#0002", 0, ChunkSpan("doc", 100, 220))]
    assert annotation.clear_label(store, qid, "ann", "doc#a#0001") is True
    assert annotation.clear_label(store, qid, "ann", "doc#a#0001") is False
    assert [x.annotator for x in store.labels(qid)] == ["bob"]


@pytest.mark.parametrize("relevance", [3, -1, True, 1.5, "2", None])
def test_relevance_out_of_range_is_rejected(store: SqliteAnnotationStore, relevance: object) -> None:
    (qid,) = add(store, "Q")
    with pytest.raises(InputError, match="relevance must be 0"):
        annotation.set_label(store, qid, "ann", "c1", relevance)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="relevance must be 0"):
        annotation.adjudicate(store, qid, "c1", relevance, "lead")  # type: ignore[arg-type]
    assert store.labels() == [] and store.adjudications() == []


def test_other_bad_input_is_rejected(store: SqliteAnnotationStore) -> None:
    (qid,) = add(store, "Q")
    with pytest.raises(InputError, match="unknown question id 'nope'"):
        annotation.set_label(store, "nope", "ann", "c1", 1)
    for call in (
        lambda: annotation.set_label(store, qid, "", "c1", 1),
        lambda: annotation.set_label(store, qid, "ann", " ", 1),
        lambda: annotation.set_answer(store, "nope", "ann", "text"),
        lambda: annotation.set_answer(store, qid, "ann", status="finished"),
        lambda: annotation.assign(store, ["nope"], ["ann"]),
        lambda: annotation.adjudicate(store, "nope", "c1", 1, "lead"),
    ):
        with pytest.raises(InputError):
            call()
    for span in (("doc", 5, 1), ("", 0, 1), ("doc", -1, 3), ("doc", 0), "doc:0-5", ("doc", 0.5, 3)):
        with pytest.raises(InputError, match="span"):
            annotation.set_label(store, qid, "ann", "c1", 1, span)  # type: ignore[arg-type]
    assert store.labels() == [] and store.answers() == [] and len(store.history()) == 1


def test_answers_keep_fields_not_given_and_count_in_progress(store: SqliteAnnotationStore) -> None:
    q1, q2, q3, q4 = add(store, "one", "two", "three", "four")
    annotation.set_answer(store, q1, "ann", "The answer.")
    annotation.set_answer(store, q1, "ann", status="skipped")
    (answer,) = store.answers(q1, "ann")
    assert (answer.reference_answer, answer.status, answer.note) == ("The answer.", "skipped", "")
    annotation.set_answer(store, q1, "ann", status="done", note="checked")
    annotation.set_answer(store, q2, "ann", status="flagged", note="ambiguous")
    annotation.set_answer(store, q3, "ann", status="skipped")
    annotation.set_label(store, q4, "ann", "c1", 1)
    annotation.assign(store, [q1, q4], ["ann"])
    progress = annotation.progress(store, "ann")
    assert (progress.total, progress.done, progress.skipped, progress.flagged, progress.open) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert (progress.labelled, progress.assigned, progress.assigned_open) == (1, 2, 1)
    assert annotation.progress(store, "nobody").open == 4


# ------------------------------------------------------------------ queues and overlap samples


def test_queue_puts_own_assignments_first_then_unclaimed_then_the_rest(store: SqliteAnnotationStore) -> None:
    q = add(store, *(f"question {i}" for i in range(6)))
    annotation.assign(store, [q[4], q[2]], ["ann"])
    annotation.assign(store, [q[0]], ["bob"])
    annotation.set_answer(store, q[1], "bob", "done by bob", status="done")
    annotation.set_answer(store, q[5], "ann", status="skipped")
    assert [x.id for x in annotation.queue(store, "ann")] == [q[2], q[4], q[3], q[0], q[1]]
    assert [x.id for x in annotation.queue(store, "ann", limit=2)] == [q[2], q[4]]
    assert [x.id for x in annotation.queue(store, "bob")] == [q[0], q[3], q[5], q[2], q[4]]
    annotation.set_answer(store, q[2], "ann", status="done")
    assert annotation.queue(store, "ann")[0].id == q[4]


def test_overlap_sample_is_stable_balanced_and_proportional(
    store: SqliteAnnotationStore, tmp_path: Path
) -> None:
    qids = add(store, *(f"question {i}" for i in range(40)))
    people = ["ann", "bob", "cy", "dee"]
    plan = annotation.overlap_sample(store, qids, people, k=2, fraction=0.25, seed=42)
    assert len(plan.overlap) == 10 and set(plan.overlap) <= set(qids)
    per_question = Counter(q for assigned in plan.assignments.values() for q in assigned)
    assert all(per_question[q] == 2 for q in plan.overlap)
    assert all(per_question[q] == 1 for q in qids if q not in plan.overlap)
    loads = [len(assigned) for assigned in plan.assignments.values()]
    assert sum(loads) == 50 and max(loads) - min(loads) <= 1
    stored = store.assignments()
    assert {q: set(people) for q, people in stored.items()} == {
        q: {p for p, assigned in plan.assignments.items() if q in assigned} for q in qids
    }
    # Same ids, annotators and seed (in any order) give the same plan, in another store too.
    other = SqliteAnnotationStore(tmp_path / "other.sqlite3")
    annotation.add_questions(other, [f"question {i}" for i in range(40)], "typed", "lead")
    shuffled = qids[:]
    random.Random(1).shuffle(shuffled)
    assert annotation.overlap_sample(other, shuffled, people[::-1], k=2, fraction=0.25, seed=42) == plan
    assert annotation.overlap_sample(store, qids, people, k=2, fraction=0.25, seed=7).overlap != plan.overlap
    three = SqliteAnnotationStore(tmp_path / "three.sqlite3")
    ids = annotation.add_questions(three, [f"q{i}" for i in range(9)], "typed", "lead")
    plan3 = annotation.overlap_sample(
        three, ids, ["a", "b", "c"], k=3, fraction=0.5, seed=0, assign_rest=False
    )
    assert len(plan3.overlap) == 5 and all(set(v) == set(plan3.overlap) for v in plan3.assignments.values())
    # The plan is a pure function of its input: computed without a store, it is what was assigned.
    assert annotation.plan_overlap(shuffled, people, k=2, fraction=0.25, seed=42) == plan
    for k, fraction in ((0, 0.2), (5, 0.2), (2, 1.5), (2, -0.1)):
        with pytest.raises(InputError):
            annotation.overlap_sample(store, qids, people, k=k, fraction=fraction)
    with pytest.raises(InputError, match="at least one annotator"):
        annotation.overlap_sample(store, qids, [], k=1)


# ------------------------------------------------------------------ history and undo


def test_undo_walks_back_one_annotators_changes(store: SqliteAnnotationStore) -> None:
    (qid,) = add(store, "Undo me")
    annotation.set_label(store, qid, "ann", "c1", 2, ("doc", 0, 10))
    annotation.set_label(store, qid, "bob", "c1", 1)
    annotation.set_label(store, qid, "ann", "c1", 0)
    annotation.set_label(store, qid, "ann", "c1", 0)  # no change: not logged
    annotation.set_answer(store, qid, "ann", "draft answer")
    assert [c.action for c in store.history("ann")] == ["set_answer", "set_label", "set_label"]

    undone = annotation.undo(store, "ann")
    assert undone is not None and (undone.action, undone.question_ids) == ("set_answer", (qid,))
    assert store.answers(qid, "ann") == []
    annotation.undo(store, "ann")
    assert [(x.relevance, x.span) for x in store.labels(qid, "ann")] == [(2, ChunkSpan("doc", 0, 10))]
    annotation.undo(store, "ann")
    assert store.labels(qid, "ann") == []
    assert [x.relevance for x in store.labels(qid, "bob")] == [1]  # bob's work is untouched
    assert annotation.undo(store, "ann") is None
    lead_change = annotation.undo(store, "lead")  # the lead's last change was adding the question
    assert lead_change is not None and lead_change.action == "add_questions"
    with pytest.raises(InputError, match="unknown question"):
        store.question(qid)
    history = store.history()
    assert history[0].action == "undo" and history[0].undoes == lead_change.id


def test_undo_refuses_to_overwrite_someone_elses_later_change(store: SqliteAnnotationStore) -> None:
    (qid,) = add(store, "Contested")
    annotation.adjudicate(store, qid, "c1", 2, "lead", "clear answer")
    annotation.adjudicate(store, qid, "c1", 0, "second", "off topic")
    with pytest.raises(InputError, match="was changed after it"):
        annotation.undo(store, "lead")
    (adjudication,) = store.adjudications(qid)
    assert (adjudication.relevance, adjudication.adjudicator) == (0, "second")
    annotation.undo(store, "second")
    assert [a.relevance for a in store.adjudications(qid)] == [2]


# ------------------------------------------------------------------ gold export


def test_majority_grade() -> None:
    cases = ([2], [1], [0], [], [2, 0], [2, 1], [2, 2, 1], [2, 1, 0], [2, 0, 0])
    assert [majority_grade(grades) for grades in cases] == [2, 1, 0, 0, 0, 1, 2, 1, 0]


def test_export_gold_rules(store: SqliteAnnotationStore) -> None:
    solo, pair, trio, adjudicated, skipped, empty = add(store, "solo", "pair", "trio", "adj", "skip", "empty")
    (draft,) = annotation.add_questions(store, ["a draft"], "generated", "llm")
    # One annotator: their labels are the gold (the union).
    annotation.set_label(store, solo, "ann", "s1", 2, ("doc", 0, 50))
    annotation.set_label(store, solo, "ann", "s2", 1, ("doc", 40, 90))
    annotation.set_label(store, solo, "ann", "s3", 0)
    annotation.set_answer(store, solo, "ann", "Solo answer.", status="done")
    # Two annotators: both must call a chunk relevant; the grade is the lower one.
    annotation.set_label(store, pair, "ann", "p1", 2)
    annotation.set_label(store, pair, "bob", "p1", 1)
    annotation.set_label(store, pair, "ann", "p2", 2)
    annotation.set_answer(store, pair, "ann", "Older answer.")
    annotation.set_answer(store, pair, "bob", "Newer answer.", status="done")
    # Three annotators: a majority of two suffices.
    for person, chunks in {
        "ann": {"t1": 2, "t2": 2},
        "bob": {"t1": 2},
        "cy": {"t1": 1, "t2": 1, "t3": 2},
    }.items():
        for chunk, grade in chunks.items():
            annotation.set_label(store, trio, person, chunk, grade)
    # Adjudication wins both ways.
    annotation.set_label(store, adjudicated, "ann", "a1", 2, ("doc", 5, 9))
    annotation.set_label(store, adjudicated, "bob", "a2", 2)
    annotation.adjudicate(store, adjudicated, "a1", 0, "lead", "does not answer it")
    annotation.adjudicate(store, adjudicated, "a2", 1, "lead", "partly", span=("doc", 10, 20))
    annotation.adjudicate(store, adjudicated, "a3", 2, "lead", "missed by both")
    # Labels given before a skip still count (bob's k1 makes it a majority of three); drafts do not; a
    # question nobody found gold for is left out.
    annotation.set_label(store, skipped, "ann", "k1", 2)
    annotation.set_label(store, skipped, "bob", "k1", 2)
    annotation.set_answer(store, skipped, "bob", status="skipped")
    annotation.set_label(store, skipped, "cy", "k2", 2)
    annotation.set_answer(store, skipped, "cy", status="flagged", note="two questions in one")
    annotation.set_label(store, empty, "ann", "e1", 0)
    annotation.set_label(store, draft, "ann", "d1", 2)

    gold = {g.question_id: g for g in annotation.export_gold(store)}
    assert list(gold) == [solo, pair, trio, adjudicated, skipped]
    assert gold[skipped].gold_chunk_ids == ("k1",) and gold[skipped].annotators == ("ann", "bob", "cy")
    assert gold[solo].gold_chunk_ids == ("s1", "s2") and gold[solo].relevance == {"s1": 2, "s2": 1}
    assert gold[solo].spans == {"s1": ChunkSpan("doc", 0, 50), "s2": ChunkSpan("doc", 40, 90)}
    assert (gold[solo].reference_answer, gold[solo].annotators) == ("Solo answer.", ("ann",))
    assert gold[pair].gold_chunk_ids == ("p1",) and gold[pair].relevance == {"p1": 1}
    assert gold[pair].reference_answer == "Newer answer." and gold[pair].annotators == ("ann", "bob")
    assert gold[pair].answers == {"ann": "Older answer.", "bob": "Newer answer."}
    assert gold[trio].gold_chunk_ids == ("t1", "t2") and gold[trio].relevance == {"t1": 2, "t2": 1}
    assert gold[adjudicated].gold_chunk_ids == ("a3", "a2") and gold[adjudicated].adjudicated == (
        "a1",
        "a2",
        "a3",
    )
    assert gold[adjudicated].spans == {"a2": ChunkSpan("doc", 10, 20)}

    strict = {g.question_id: g for g in annotation.export_gold(store, min_relevance=2)}
    assert (
        strict[solo].gold_chunk_ids == ("s1",)
        and pair not in strict
        and strict[trio].gold_chunk_ids == ("t1",)
    )
    everything = {g.question_id: g for g in annotation.export_gold(store, include_empty=True)}
    assert list(everything) == [solo, pair, trio, adjudicated, skipped, empty]
    assert everything[skipped].annotators == ("ann", "bob", "cy")
    assert everything[skipped].flagged_by == ("cy",) and everything[empty].annotators == ("ann",)
    with pytest.raises(InputError, match="min_relevance"):
        annotation.export_gold(store, min_relevance=3)


def test_export_gold_without_include_empty_drops_unanimous_nos(store: SqliteAnnotationStore) -> None:
    (qid,) = add(store, "Nothing relevant")
    annotation.set_label(store, qid, "ann", "c1", 2)
    annotation.set_label(store, qid, "bob", "c2", 2)
    assert annotation.export_gold(store) == []  # 1 of 2 on each chunk: adjudicate
    annotation.adjudicate(store, qid, "c2", 2, "lead")
    assert [g.gold_chunk_ids for g in annotation.export_gold(store)] == [("c2",)]


def test_labels_by_question_feeds_the_agreement_statistics(store: SqliteAnnotationStore) -> None:
    q1, q2, q3 = add(store, "one", "two", "three")
    annotation.set_label(store, q1, "ann", "c1", 2)
    annotation.set_label(store, q1, "bob", "c1", 2)
    annotation.set_label(store, q1, "bob", "c2", 1)
    annotation.set_answer(store, q2, "ann", status="done")  # done, nothing relevant: counts with no labels
    annotation.set_label(store, q2, "bob", "d1", 1)
    annotation.set_label(store, q3, "ann", "e1", 1)
    annotation.set_label(store, q3, "bob", "e1", 1)
    annotation.set_answer(store, q3, "bob", status="skipped")  # labelled, then skipped: still counts
    by_question = annotation.labels_by_question(store)
    assert by_question == {
        q1: {"ann": {"c1": 2}, "bob": {"c1": 2, "c2": 1}},
        q2: {"ann": {}, "bob": {"d1": 1}},
        q3: {"ann": {"e1": 1}, "bob": {"e1": 1}},
    }
    assert annotation.labels_by_question(store, [q2]) == {q2: by_question[q2]}
    overall = overall_agreement(by_question)
    assert (overall.n_questions, overall.n_items, overall.kappa_method) == (3, 4, "cohen")
    assert overall.per_question[q1].disagreements == ("c2",)


# ------------------------------------------------------------------ several processes

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ragdeck.console import annotation
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    path, annotator, qids, count, go = sys.argv[1:6]
    qids, count = qids.split(","), int(count)
    store = SqliteAnnotationStore(path)
    if go != "-":
        Path(f"{go}.{annotator}.ready").touch()
    while go != "-" and not Path(go).exists():
        time.sleep(0.001)
    for i in range(count):
        qid = qids[i % len(qids)]
        annotation.set_label(store, qid, annotator, f"chunk-{i:05d}", i % 3, ("doc", i, i + 10))
        if i % 7 == 0:
            annotation.set_answer(store, qid, annotator, f"answer {i}")
        print(i, flush=True)
    """
)


def spawn_writer(path: Path, annotator: str, qids: list[str], count: int, go: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), annotator, ",".join(qids), str(count), go],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_saving_at_once_lose_nothing(
    db_path: Path, store: SqliteAnnotationStore, tmp_path: Path
) -> None:
    qids = add(store, "shared one", "shared two", "shared three")
    go = tmp_path / "go"
    writers = [spawn_writer(db_path, name, qids, 300, str(go)) for name in ("ann", "bob")]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{name}.ready").exists() for name in ("ann", "bob")):  # both open and waiting
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers)
        time.sleep(0.01)
    go.touch()
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert out.split() == [str(i) for i in range(300)]
    for name in ("ann", "bob"):
        labels = store.labels(annotator=name)
        assert sorted(x.chunk_id for x in labels) == [f"chunk-{i:05d}" for i in range(300)]
        assert all(x.relevance == int(x.chunk_id[-5:]) % 3 for x in labels)
    # The two really wrote at the same time: their save times interleave.
    times = {name: [x.updated_at for x in store.labels(annotator=name)] for name in ("ann", "bob")}
    assert min(times["ann"]) < max(times["bob"]) and min(times["bob"]) < max(times["ann"])
    assert len(store.history(limit=10_000)) == 600 + 2 * 43 + 1


@pytest.mark.slow
def test_a_writer_killed_mid_save_leaves_every_reported_label(
    db_path: Path, store: SqliteAnnotationStore
) -> None:
    qids = add(store, "crash one", "crash two")
    rng = random.Random(os.getpid())
    for round_ in range(3):
        writer = spawn_writer(db_path, f"killed{round_}", qids, 1_000_000, "-")
        assert writer.stdout is not None
        reported = []
        stop_after = rng.randint(20, 300)
        while len(reported) < stop_after:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else ""
            reported.append(int(line))
        time.sleep(rng.random() * 0.01)  # land somewhere inside a save
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
        reported += [int(x) for x in rest.split()]
        assert writer.returncode == -signal.SIGKILL

        with contextlib.closing(sqlite3.connect(db_path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        saved = {x.chunk_id for x in SqliteAnnotationStore(db_path).labels(annotator=f"killed{round_}")}
        assert {f"chunk-{i:05d}" for i in reported} <= saved
        assert len(saved) <= len(reported) + 1  # at most the save in flight when it was killed
    annotation.set_label(store, qids[0], "after", "c1", 2)  # still writable
    assert [x.relevance for x in store.labels(annotator="after")] == [2]
