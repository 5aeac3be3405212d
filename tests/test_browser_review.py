"""Review and Publish in a real headless Chromium, on a store seeded through ``console.annotation``: two
annotators, one disputed chunk, one flagged question. Review shows the chunk text and the answers and
records a decision; Publish writes a new set, then shows the diff and needs a confirmation and a reason
to replace it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from console_process import running_console
from index_helpers import small_corpus
from test_browser import CHROMIUM, CHROMIUM_ARGS, _idle, _require_browser, _wait_for

from ragdeck.console import annotation
from ragdeck.console.annotation.review import first_lines
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.settings import Settings
from ragdeck.services.annotation_store import SqliteAnnotationStore
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTIONS = [
    "How do I run TEI on a CPU?",
    "How do I use a private model with TEI?",
    "Where are the TEI examples?",
]
ANSWERS = {"alice": "Build it with cargo, without CUDA.", "bob": "Use the CPU Docker image."}


def _snippet(body: str) -> str:
    """A piece of a chunk's text the page shows before "Full text" is opened (its last shown line)."""
    short, _ = first_lines(body)
    line = short.removesuffix(" …").splitlines()[-1].strip()
    return " ".join(line.split())[:40]


@pytest.fixture
def seeded(data_dir: Path, tmp_path: Path, local_embedder) -> dict[str, object]:
    """A small corpus behind rag_chunks and the annotation store seeded by the API (nothing by the page)."""
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(small_corpus(tmp_path / "corpus"), store, local_embedder, collection="rag_chunks_v1",
               alias="rag_chunks")  # fmt: skip
        points = {
            p.id: str(p.payload.get("body") or p.payload.get("text")) for p in store.iter_points("rag_chunks")
        }
    ids = sorted(points)
    agreed, disputed, other, flagged_chunk = ids[0], ids[1], ids[2], ids[3]
    store = SqliteAnnotationStore(Settings().state_db)
    q1, q2, q3 = annotation.add_questions(store, QUESTIONS, source="typed", actor="ann")
    for person, grade in (("alice", 0), ("bob", 2)):
        annotation.set_label(store, q1, person, agreed, 2)
        annotation.set_label(store, q1, person, disputed, grade)  # the one disagreement
        annotation.set_answer(store, q1, person, ANSWERS[person], "done")
        annotation.set_label(store, q2, person, other, 2)
        annotation.set_answer(store, q2, person, "", "done")
    annotation.set_label(store, q3, "bob", flagged_chunk, 2)
    annotation.set_answer(store, q3, "bob", "", "flagged", "is this page current?")
    return {"store": store, "ids": (q1, q2, q3), "disputed": disputed, "text": points}


def test_review_then_publish_new_then_replace_in_chromium(
    seeded: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    sets = tmp_path / "sets"
    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(sets))
    store: SqliteAnnotationStore = seeded["store"]
    q1, q2, q3 = seeded["ids"]
    disputed = seeded["disputed"]
    with running_console(tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(url)
        expect(page.get_by_text("Signed in as")).to_be_visible(timeout=90_000)
        page.get_by_role("link", name="Review", exact=True).click()
        expect(page.get_by_role("heading", name="Review")).to_be_visible(timeout=90_000)
        _idle(page)
        # the disputed question comes first: its chunks' text, who said what, and both answers
        expect(page.get_by_text("Needs a reviewer: 1 chunk(s) graded differently, 0 decided")).to_be_visible()
        # the chunk text comes after the stack is built (the first page to need it builds it)
        expect(page.get_by_text(_snippet(seeded["text"][disputed])).first).to_be_visible(timeout=90_000)
        expect(page.get_by_text("alice: not relevant · bob: relevant")).to_be_visible(timeout=60_000)
        _idle(page)
        for answer in ANSWERS.values():
            expect(page.get_by_text(answer)).to_be_visible()
        expect(page.get_by_text("used as the reference answer")).to_have_count(1)
        page.get_by_text("Merge rule: how several annotators' labels become gold").click()
        expect(
            page.get_by_text("with two annotators a chunk gets the lower of their two grades")
        ).to_be_visible()

        form = page.locator("[data-testid=stForm]")
        expect(form).to_have_count(1)  # one decision form: the disputed chunk
        form.get_by_text("relevant", exact=True).click()
        page.get_by_label("Reason", exact=True).fill("it names the CPU build")
        page.get_by_label("Reviewer", exact=True).fill("carol")
        page.get_by_role("button", name="Record decision").click()
        _wait_for(lambda: store.adjudications(q1), "the decision in the store")
        expect(page.get_by_text("Decided by carol: relevant")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        [decision] = store.adjudications(q1)
        assert (decision.chunk_id, decision.relevance, decision.reason) == (
            disputed,
            2,
            "it names the CPU build",
        )

        # Publish to a new name: the preview, the flagged question held back, the file written
        page.get_by_role("link", name="Publish", exact=True).click()
        expect(page.get_by_role("heading", name="Publish")).to_be_visible(timeout=90_000)
        _idle(page)
        name = page.get_by_label("Eval set name", exact=True)
        name.fill("team_gold")
        name.press("Enter")
        expect(page.get_by_text("What will be published")).to_be_visible(timeout=60_000)
        _idle(page)
        expect(page.get_by_text(f"1 flagged question(s) held back: {QUESTIONS[2]}")).to_be_visible()
        expect(page.get_by_role("heading", name="Held back")).to_be_visible()
        page.get_by_role("combobox", name="Read the gold chunks of").click()
        page.get_by_role("option", name=QUESTIONS[0]).click()
        expect(page.get_by_text(_snippet(seeded["text"][disputed])).first).to_be_visible(timeout=60_000)
        _idle(page)
        page.screenshot(path=str(tmp_path / "publish.png"), full_page=True)
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_text("Published team_gold v1")).to_be_visible(timeout=60_000)
        records = [json.loads(line) for line in (sets / "team_gold.jsonl").read_text().splitlines()]
        assert [r["id"] for r in records] == [q1, q2]  # the flagged question held back
        assert disputed in records[0]["gold_context_ids"] and records[0]["reference_answer"] == ANSWERS["bob"]

        # bob resolves his flag; publishing over team_gold now shows the diff and needs consent and a reason
        annotation.set_answer(store, q3, "bob", None, "done")
        page.reload()
        expect(page.get_by_role("heading", name="Publish")).to_be_visible(timeout=90_000)
        _idle(page)
        name = page.get_by_label("Eval set name", exact=True)
        name.fill("team_gold")
        name.press("Enter")
        expect(
            page.get_by_text("v1 holds 2 questions. Publishing makes v2 with 3", exact=False)
        ).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Added (1):")).to_be_visible()
        button = page.get_by_role("button", name="Publish", exact=True)
        expect(button).to_be_disabled()
        page.get_by_text("Replace team_gold v1 with these 3 questions").click()
        _idle(page)
        expect(button).to_be_enabled()
        button.click()
        expect(page.get_by_text("say why team_gold gets a new version")).to_be_visible(timeout=60_000)
        assert len((sets / "team_gold.versions.jsonl").read_text().splitlines()) == 1  # nothing replaced
        page.get_by_label("Note for this version (required: why replace it)").fill("bob's flag resolved")
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_text("Published team_gold v2")).to_be_visible(timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        browser.close()
    records = [json.loads(line) for line in (sets / "team_gold.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [q1, q2, q3]
    log = [json.loads(line) for line in (sets / "team_gold.versions.jsonl").read_text().splitlines()]
    assert [(v["version"], v["note"]) for v in log] == [(1, ""), (2, "bob's flag resolved")]
