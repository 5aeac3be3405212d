"""Label the demo gold set through the annotation workspace's own code, then publish it.

Usage: python eval_sets/sources/build_demo_gold.py --data-dir DIR   (DIR holds the demo collection)

The questions, their reference answers and an answer key phrase were written by a person from one source
chunk each (``demo_gold_questions.jsonl``). For each question this script does what the Annotate page does:
it takes the dense candidates over ``rag_chunks`` (top 20), and labels the source chunk relevant (2) and
every other candidate whose text contains the key phrase partly relevant (1) unless a person excluded it
after reading it (``exclude``), saving each label with its source span in an annotation store; then it
exports the gold and publishes ``ragdeck/demo_eval_sets/demo_gold`` (shipped with the package).
A key phrase missing from its source chunk stops the script (the question would be unanswerable).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ragdeck.console import annotation
from ragdeck.console.annotation.candidates import candidates
from ragdeck.console.evalsets.publish import gold_to_evalset, publish
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.services.annotation_store import SqliteAnnotationStore
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

HERE = Path(__file__).resolve().parent
ANNOTATOR = "ragdeck-maintainers"


def squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=HERE.parent.parent / "ragdeck" / "demo_eval_sets")
    args = parser.parse_args()
    items = [
        json.loads(line) for line in (HERE / "demo_gold_questions.jsonl").read_text().splitlines() if line
    ]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedQdrantStore(args.data_dir / "qdrant") as store:
        ann_store = SqliteAnnotationStore(Path(tmp) / "state.sqlite3")
        retriever = Retriever(store, LocalEmbedder())
        ids = annotation.add_questions(
            ann_store, [i["question"] for i in items], source="typed", actor=ANNOTATOR
        )
        extra = 0
        for qid, item in zip(ids, items, strict=True):
            [source] = store.retrieve("rag_chunks", [item["source"]])
            body = str(source.payload["body"])
            if squash(item["key"]) not in squash(body):
                raise SystemExit(f"key phrase {item['key']!r} is not in {item['source']}")
            payload = source.payload
            annotation.set_label(
                ann_store,
                qid,
                ANNOTATOR,
                source.id,
                2,
                (payload["doc_id"], payload["start"], payload["end"]),
            )
            for hit in candidates(retriever, item["question"], "rag_chunks", k=20):
                if hit.chunk_id in item.get("exclude", ()) or hit.chunk_id == source.id:
                    continue  # a person read it: it mentions the key phrase but does not answer
                if squash(item["key"]) in squash(hit.body or hit.text):
                    annotation.set_label(
                        ann_store, qid, ANNOTATOR, hit.chunk_id, 1, (hit.doc_id, hit.start, hit.end)
                    )
                    extra += 1
            annotation.set_answer(ann_store, qid, ANNOTATOR, item["answer"], "done")
        evalset = gold_to_evalset("demo_gold", annotation.export_gold(ann_store))
        version, new = publish(evalset, args.out, annotators=[ANNOTATOR], note="demo gold set")
    print(f"{len(evalset.records)} questions, {extra} partly relevant chunks besides the sources")
    print(f"demo_gold v{version.version} {version.hash} ({'new' if new else 'unchanged'})")


if __name__ == "__main__":
    main()
