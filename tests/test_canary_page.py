"""The Canary page through AppTest against the real RAG API: the weight set on the page routes the API's
users, and the guard's rollback after injected latency shows on the panel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai_fake import run_fake_openai
from pages import open_page
from servers import serve_asgi

from ragdeck.console import audit
from ragdeck.console.online.routing import stable_bucket
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log

TOKEN = "canary-page-token"


def test_weight_set_on_the_page_routes_the_hosted_api(demo_data_dir: Path) -> None:
    import ragdeck.ui as ui

    ui._hosted_api.clear()
    at = open_page("canary")
    assert any("RAGDECK_API_URL" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Start the RAG API in this console").click().run()
    assert not at.exception, at.exception
    hosted = ui.hosted_api()
    assert hosted is not None and hosted.url.startswith("http://127.0.0.1:")
    try:
        assert [m.value for m in at.metric][:3] == ["A", "B", "0%"]
        at.text_input(key="canary_reason").input("B reranks better offline")
        at.number_input(key="canary_percent").set_value(40)
        next(b for b in at.button if b.label == "Apply weight").click().run()
        assert not at.exception, at.exception
        assert [m.value for m in at.metric][2] == "40%"
        admin = ui.get_routing_admin()
        assert admin is not None and admin.routing()["weights"]["B"] == 0.4
        users = [f"page-user-{i}" for i in range(12)]
        with httpx.Client(base_url=hosted.url, timeout=60) as client:
            for user in users[:4]:
                body = client.post("/query", json={"question": "What is PromQL?", "user_id": user}).json()
                assert body["policy"] == ("B" if stable_bucket(user) < 0.4 else "A")
        assert [admin.assign(u) for u in users] == ["B" if stable_bucket(u) < 0.4 else "A" for u in users]
        entry = audit.entries(action="canary.weight", log=build_audit_log(Settings()))[0]
        assert entry.after == 0.4 and entry.reason == "B reranks better offline"
        at.run()  # the live table counts the four answers
        live = next(d.value for d in at.dataframe if "P95 ms" in d.value.columns)
        assert int(live["requests"].sum()) == 4
        next(b for b in at.button if b.label == "Roll back to A (0 %)").click().run()
        assert admin.routing()["weights"]["B"] == 0.0
        assert audit.entries(action="canary.rollback", log=build_audit_log(Settings()))[0].before == 0.4
    finally:
        hosted.stop()
        ui._hosted_api.clear()


@pytest.fixture
def slow_canary_api(api_data: Path, local_embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The RAG API (own data copy) answering through an OpenAI-compatible fake LLM that takes 0.3 s, with
    every routed user on B and a guard that trips at P95 > 150 ms after 5 requests."""
    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    with run_fake_openai(models=["fake-chat-1"]) as llm:
        llm.state.delay_s = 0.3
        settings = Settings(
            data_dir=api_data,
            llm_base_url=llm.url,
            admin_token=TOKEN,
            canary_weight=1.0,
            guard_p95_ms=150,
            guard_min_samples=5,
        )
        runtime = build_runtime(settings, embedder=local_embedder)
        try:
            with serve_asgi(create_app(runtime), "rag-api") as url:
                monkeypatch.setenv("RAGDECK_API_URL", url)
                monkeypatch.setenv("RAGDECK_ADMIN_TOKEN", TOKEN)
                yield url
        finally:
            runtime.close()


def test_guard_rollback_after_injected_latency_shows_on_the_panel(
    demo_data_dir: Path, slow_canary_api: str
) -> None:
    policies = []
    with httpx.Client(base_url=slow_canary_api, timeout=60) as client:
        for i in range(8):
            body = client.post(
                "/query", json={"question": f"What is a recording rule? {i}", "user_id": f"u{i}"}
            )
            assert body.status_code == 200, body.text
            policies.append(body.json()["policy"])
    assert (
        policies[:5] == ["B"] * 5 and policies[5:] == ["A"] * 3
    )  # five slow answers, the trip, then control

    at = open_page("canary")
    assert not at.exception, at.exception
    banner = " ".join(e.value for e in at.error)
    assert "guard rolled B back to 0 %" in banner and "P95" in banner
    assert [m.value for m in at.metric][2:4] == ["0%", "1"]  # B's share, guard rollbacks
    events = next(d.value for d in at.dataframe if "event" in getattr(d.value, "columns", []))
    assert events["event"].iloc[0] == "guard rollback" and events["policy"].iloc[0] == "B"
    live = next(d.value for d in at.dataframe if "P95 ms" in getattr(d.value, "columns", []))
    b = live.set_index("policy").loc["B"]
    assert b["requests"] == 5 and b["P95 ms"] >= 250  # the 0.3 s answers, to bucket resolution
