"""Shared pieces of the index-operations tests: a small corpus, an eval set on it, a stack over it."""

from __future__ import annotations

import shutil
from pathlib import Path

from ragdeck.console.evalsets.model import EvalRecord, EvalSet

TEI_DOCS = (
    Path(__file__).resolve().parent.parent / "ragdeck" / "demo_corpus" / "tei" / "docs" / "source" / "en"
)
SMALL_DOCS = ("custom_container", "examples", "local_cpu", "local_gpu", "local_metal", "private_models")

# Questions with document-level gold: they hold for any chunking of the corpus.
QUESTIONS = {
    "custom_container": "How do I build a custom TEI container image with Docker for my GPU?",
    "local_cpu": "How do I install and run text-embeddings-inference on a CPU with cargo?",
    "local_gpu": "Which CUDA version and compute capability do I need to run TEI locally on a GPU?",
    "local_metal": "How do I run text embeddings inference on Apple silicon with Metal?",
    "private_models": "How can I use a private or gated model from the Hugging Face Hub with a token?",
    "examples": "Where can I find example notebooks and tutorials for TEI?",
}


def small_corpus(folder: Path) -> Path:
    """Six short TEI pages (about 11 kB) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SMALL_DOCS:
        shutil.copy(TEI_DOCS / f"{name}.md", folder / f"{name}.md")
    return folder


def small_evalset() -> EvalSet:
    """One question per document of ``small_corpus``, gold at document level."""
    return EvalSet(
        name="small-tei",
        records=[
            EvalRecord(id=f"q-{doc}", question=q, gold_context_ids=[doc]) for doc, q in QUESTIONS.items()
        ],
    )
