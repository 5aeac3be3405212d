"""Agreement between the demo gold set's annotator and an independent second annotator on an overlap sample.

Usage: python eval_sets/sources/demo_agreement.py [--store STATE_DB] [--check-pool DATA_DIR]

Annotator A is ``demo_gold.jsonl`` (labelled by ``build_demo_gold.py``: the source chunk of each question
relevant (2), other top-20 dense candidates containing a key phrase partly relevant (1), every other
candidate it showed not relevant (0)). Annotator B is ``demo_gold_annotator_b.jsonl``, judged independently
by a second annotator, an AI assistant (not a person: weigh the figures accordingly), as follows:

- Sample: ``SAMPLE_SIZE`` (15) of the 43 record ids, ``sorted(random.Random(SEED).sample(sorted(ids), 15))``
  with ``SEED = 2025`` (``sample_ids``):
  q-0264b62331d5 q-19361105cbc2 q-1d789ade690b q-251ab0facba8 q-29182d986089 q-4fdde0cc9dd4 q-70ff4de1f0ac
  q-965b1ed0a1e2 q-9b03ee15e896 q-9fed8ddb3756 q-bc4b99a351d2 q-c6de1cdc9a6a q-d13def695b37 q-f33b7ba4a0b5
  q-fbb716719b79.
- Pool: for each sampled question the top-10 dense candidates over ``rag_chunks`` of the demo collection,
  drawn exactly as the Annotate page does (``console.annotate.candidates(retriever, question,
  "rag_chunks", k=10)``, local all-MiniLM-L6-v2, no reranker); 150 (question, chunk) pairs, one line each in
  B's file, all graded, 0 included. ``--check-pool DATA_DIR`` draws them again from a data directory
  holding the demo collection and checks they are the same chunks.
- Grades: B read each question and chunk text (the chunk body the Annotate page shows) and graded 2 (the
  chunk answers the question), 1 (partly relevant: helps but does not answer on its own) or 0, with a
  one-line note for every grade >= 1, before opening A's labels for those questions (only the ``id`` and
  ``question`` fields of ``demo_gold.jsonl`` were read to draw the sample).

Both annotators are compared on the same pool, on the same scale: A's grade of a pooled chunk is
``EvalRecord.grade`` (its ``relevance`` entry, else 1 for a gold id, else 0: A's procedure went over every
top-20 candidate, so an unlabelled one is a no). A's gold chunks outside B's top-10 pool (the source chunk
may rank lower, and A looked at the top 20) are not compared; the figure ``a_gold_outside_pool`` counts
them. Statistics come from ``ragdeck.console.annotation.agreement``, pooling every (question, chunk) pair
as one item:

- 3-level (0/1/2): Cohen's kappa (unweighted, and linearly weighted), Krippendorff's alpha (ordinal);
- binary (relevant = grade >= 1): Cohen's kappa, Krippendorff's alpha (nominal);
- mean over questions of the Jaccard of the two gold sets, at grade >= 1 and at grade 2 only (two
  empty sets count 1.0);
- per question: share of pairs with the same grade, Jaccard (grade >= 1), Cohen's kappa (3-level).

``RECORDED`` holds the figures as computed on the shipped files (``tests/test_demo_agreement.py`` checks
them). ``--store STATE_DB`` also saves both annotators' labels on the pool into an annotation store (the
console's state database), so the Review page shows the same comparison and its disagreements.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ragdeck.console.annotation.agreement import cohen_kappa, jaccard, overall_agreement
from ragdeck.console.evalsets.io import read_jsonl

HERE = Path(__file__).resolve().parent
GOLD = HERE.parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"
ANNOTATOR_B_FILE = HERE / "demo_gold_annotator_b.jsonl"
SEED = 2025
SAMPLE_SIZE = 15
POOL_DEPTH = 10
ANNOTATOR_A = "ragdeck-maintainers"  # the name build_demo_gold.py labels under
ANNOTATOR_B = "annotator-b"

RECORDED = {
    "n_questions": 15,
    "n_pairs": 150,
    "a_gold_outside_pool": 4,
    "agreement_3": 0.8133333333333334,
    "agreement_binary": 0.8533333333333334,
    "kappa_3": 0.46202126296913026,
    "kappa_3_linear": 0.5997736093143596,
    "alpha_3_ordinal": 0.6080155370398332,
    "kappa_binary": 0.5565708142972319,
    "alpha_binary_nominal": 0.5431944444444445,
    "mean_jaccard": 0.5911111111111111,
    "mean_jaccard_relevant": 0.7277777777777777,
}

Labels = dict[str, dict[str, dict[str, int]]]  # question id -> annotator -> chunk id -> grade


@dataclass(frozen=True)
class QuestionRow:
    """One sampled question: pool size, gold sizes (grade >= 1), same-grade share, Jaccard, kappa."""

    record_id: str
    pairs: int
    gold_a: int
    gold_b: int
    agreement: float
    jaccard: float
    kappa: float
    disagreements: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    """The agreement figures of the sample (the keys of ``RECORDED``) and the per-question rows."""

    values: dict[str, float]
    per_question: list[QuestionRow]


def sample_ids(record_ids: list[str], seed: int = SEED, size: int = SAMPLE_SIZE) -> list[str]:
    """The overlap sample: ``size`` ids drawn with ``random.Random(seed)`` from the sorted ids, sorted."""
    return sorted(random.Random(seed).sample(sorted(record_ids), size))


def read_annotator_b(path: Path = ANNOTATOR_B_FILE) -> list[dict]:
    """B's judged pairs in file order (question by question, candidates by rank)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def labels_on_pool(gold_path: Path = GOLD, b_path: Path = ANNOTATOR_B_FILE) -> tuple[Labels, int]:
    """Both annotators' grades on B's pool, and how many of A's gold ids lie outside that pool."""
    records = {r.id: r for r in read_jsonl(gold_path).records}
    pool: dict[str, dict[str, int]] = {}
    for pair in read_annotator_b(b_path):
        pool.setdefault(pair["record_id"], {})[pair["chunk_id"]] = int(pair["grade"])
    labels: Labels = {}
    outside = 0
    for qid, graded in pool.items():
        record = records[qid]
        labels[qid] = {ANNOTATOR_A: {c: record.grade(c) for c in graded}, ANNOTATOR_B: dict(graded)}
        outside += sum(1 for c in record.gold_context_ids if c not in graded)
    return labels, outside


def _binary(labels: Labels) -> Labels:
    return {
        q: {a: {c: int(g >= 1) for c, g in by.items()} for a, by in people.items()}
        for q, people in labels.items()
    }


def _share_equal(pairs: list[tuple[int, int]]) -> float:
    return sum(1 for x, y in pairs if x == y) / len(pairs) if pairs else math.nan


def compute(gold_path: Path = GOLD, b_path: Path = ANNOTATOR_B_FILE) -> Figures:
    """Every figure of ``RECORDED`` from the two files (no embedding: the pool is the chunks in B's file)."""
    labels, outside = labels_on_pool(gold_path, b_path)
    pools = {q: list(people[ANNOTATOR_B]) for q, people in labels.items()}
    three = overall_agreement(labels, pools, min_relevance=1, level="ordinal")
    binary = overall_agreement(_binary(labels), pools, min_relevance=1, level="nominal")
    strict = overall_agreement(labels, pools, min_relevance=2, level="ordinal")
    pairs = [
        (people[ANNOTATOR_A][c], people[ANNOTATOR_B][c]) for q, people in labels.items() for c in pools[q]
    ]
    values = {
        "n_questions": three.n_questions,
        "n_pairs": three.n_items,
        "a_gold_outside_pool": outside,
        "agreement_3": _share_equal(pairs),
        "agreement_binary": _share_equal([(int(x >= 1), int(y >= 1)) for x, y in pairs]),
        "kappa_3": three.kappa,
        "kappa_3_linear": cohen_kappa([x for x, _ in pairs], [y for _, y in pairs], weights="linear"),
        "alpha_3_ordinal": three.alpha,
        "kappa_binary": binary.kappa,
        "alpha_binary_nominal": binary.alpha,
        "mean_jaccard": three.mean_jaccard,
        "mean_jaccard_relevant": strict.mean_jaccard,
    }
    rows = []
    for qid, qa in three.per_question.items():
        a, b = labels[qid][ANNOTATOR_A], labels[qid][ANNOTATOR_B]
        rows.append(
            QuestionRow(
                record_id=qid,
                pairs=len(qa.chunks),
                gold_a=len(qa.gold_sets[ANNOTATOR_A]),
                gold_b=len(qa.gold_sets[ANNOTATOR_B]),
                agreement=_share_equal([(a[c], b[c]) for c in qa.chunks]),
                jaccard=jaccard(qa.gold_sets[ANNOTATOR_A], qa.gold_sets[ANNOTATOR_B]),
                kappa=qa.kappa,
                disagreements=qa.disagreements,
            )
        )
    return Figures(values=values, per_question=rows)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def markdown(figures: Figures) -> str:
    """The figures and the per-question rows as two Markdown tables."""
    v = figures.values
    lines = [
        f"Overlap sample: {v['n_questions']} questions, {v['n_pairs']} (question, chunk) pairs "
        f"(top-{POOL_DEPTH} dense candidates); {v['a_gold_outside_pool']} of A's gold ids lie outside "
        "the pool.",
        "",
        "| Statistic | Value |",
        "|---|---|",
        f"| Observed agreement, 3-level (0/1/2) | {_fmt(v['agreement_3'])} |",
        f"| Observed agreement, binary (grade >= 1) | {_fmt(v['agreement_binary'])} |",
        f"| Cohen's kappa, 3-level | {_fmt(v['kappa_3'])} |",
        f"| Cohen's kappa, 3-level, linear weights | {_fmt(v['kappa_3_linear'])} |",
        f"| Krippendorff's alpha, 3-level, ordinal | {_fmt(v['alpha_3_ordinal'])} |",
        f"| Cohen's kappa, binary | {_fmt(v['kappa_binary'])} |",
        f"| Krippendorff's alpha, binary, nominal | {_fmt(v['alpha_binary_nominal'])} |",
        f"| Mean Jaccard of the gold sets, gold = grade >= 1 | {_fmt(v['mean_jaccard'])} |",
        f"| Mean Jaccard of the gold sets, gold = grade 2 | {_fmt(v['mean_jaccard_relevant'])} |",
        "",
        "| Question | Pairs | A gold | B gold | Same grade | Jaccard | Kappa (3-level) | Disagreements |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in figures.per_question:
        lines.append(
            f"| {row.record_id} | {row.pairs} | {row.gold_a} | {row.gold_b} | {_fmt(row.agreement)} "
            f"| {_fmt(row.jaccard)} | {_fmt(row.kappa)} | {len(row.disagreements)} |"
        )
    return "\n".join(lines)


def save_to_store(state_db: Path, gold_path: Path = GOLD, b_path: Path = ANNOTATOR_B_FILE) -> int:
    """Save both annotators' grades on the pool (0 included) into the annotation store at ``state_db``, each
    question marked done by both, so the Review page compares them; returns how many labels were saved."""
    from ragdeck.console import annotation
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    labels, _ = labels_on_pool(gold_path, b_path)
    records = {r.id: r for r in read_jsonl(gold_path).records}
    store = SqliteAnnotationStore(state_db)
    ids = annotation.add_questions(
        store,
        [{"id": qid, "question": records[qid].question} for qid in labels],
        source="typed",
        actor=ANNOTATOR_A,
    )
    saved = 0
    for store_id, (qid, people) in zip(ids, labels.items(), strict=True):
        spans = {s.chunk_id: (s.doc_id, s.start, s.end) for s in records[qid].gold_spans}
        for annotator, grades in people.items():
            for chunk_id, grade in grades.items():
                annotation.set_label(store, store_id, annotator, chunk_id, grade, spans.get(chunk_id))
                saved += 1
            annotation.set_answer(store, store_id, annotator, status="done")
    return saved


def pool_from_collection(data_dir: Path, questions: Mapping[str, str]) -> dict[str, list[str]]:
    """The top-``POOL_DEPTH`` dense candidates of each question, drawn as the Annotate page draws them."""
    from ragdeck.console.annotation.candidates import candidates
    from ragdeck.console.retrieval.pipeline import Retriever
    from ragdeck.services.embedders import LocalEmbedder
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        retriever = Retriever(store, LocalEmbedder())
        return {
            qid: [h.chunk_id for h in candidates(retriever, question, "rag_chunks", k=POOL_DEPTH)]
            for qid, question in questions.items()
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, help="also save both annotators' labels into this state DB")
    parser.add_argument("--check-pool", type=Path, metavar="DATA_DIR", help="redraw the pool and compare")
    args = parser.parse_args()
    pairs = read_annotator_b()
    if args.check_pool:
        questions = {p["record_id"]: p["question"] for p in pairs}
        drawn = pool_from_collection(args.check_pool, questions)
        shipped: dict[str, list[str]] = {}
        for p in pairs:
            shipped.setdefault(p["record_id"], []).append(p["chunk_id"])
        differ = [q for q in shipped if shipped[q] != drawn[q]]
        same = len(shipped) - len(differ)
        print(f"pool: {same} of {len(shipped)} questions draw the same top-{POOL_DEPTH} candidates")
        if differ:
            raise SystemExit(f"the candidates differ for {', '.join(differ)}")
    print(markdown(compute()))
    if args.store:
        print(f"\nsaved {save_to_store(args.store)} labels into {args.store}")


if __name__ == "__main__":
    main()
