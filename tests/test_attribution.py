"""Post-hoc attribution of uncited answers, on real text from the demo corpus."""

from __future__ import annotations

from ragdeck.console.answering.attribution import content_words, infer_citations
from ragdeck.console.ingest.demo import DEMO_CORPUS


def demo_paragraphs(name: str) -> list[str]:
    path = next(DEMO_CORPUS.rglob(name))
    return [p for p in path.read_text(encoding="utf-8").split("\n\n") if len(p) > 200]


def test_answer_is_attributed_to_the_paragraph_it_paraphrases() -> None:
    contexts = demo_paragraphs("storage.md")[:8]
    target = next(i for i, p in enumerate(contexts, 1) if "--storage.tsdb.retention.time" in p)
    answer = "Use --storage.tsdb.retention.time to set when old data is removed; it defaults to 15d."
    assert infer_citations(answer, contexts)[0] == target


def test_no_guess_without_overlap_and_bounds() -> None:
    contexts = demo_paragraphs("storage.md")[:5]
    assert infer_citations("Paris hosted the 1998 final.", contexts) == []
    assert infer_citations("", contexts) == []
    assert infer_citations("the and of", contexts) == []  # nothing but stop words
    assert len(infer_citations(contexts[0], contexts * 3)) <= 2
    assert content_words("The --storage.tsdb.path flag, 15d!") == {"storage.tsdb.path", "flag", "15d"}
