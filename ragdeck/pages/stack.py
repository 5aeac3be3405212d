"""Stack page: each component's health, every collection, and a search box over the pipeline (dense, lexical
or hybrid retrieval, with each chunk's ranks in both lists)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ragdeck.console.retrieval.collections import collection_rows, hit_rows, score_breakdown, search_targets
from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever, SearchResult
from ragdeck.console.warmup import warm_up_status
from ragdeck.ui import get_stack, hit_table, retrieval_inputs, user_errors, warm_up_job
from ragdeck.widgets import table

st.title("Stack")
stack = get_stack()
settings = stack.settings
st.caption(f"Data directory `{settings.data_dir}` · serving alias `{settings.alias}`")

st.subheader("Components")
with user_errors():
    health = pd.DataFrame([asdict(h) for h in stack.health()])
    health.insert(0, "status", health.pop("ok").map({True: "● up", False: "○ DOWN"}))
    table(
        health[["status", "component", "mode", "version", "model", "dimension", "endpoint", "detail"]],
        hide_index=True,
        width="stretch",
    )
level, warm_text = warm_up_status(warm_up_job())
{"info": st.info, "success": st.caption, "error": st.error}.get(level, st.caption)(warm_text)
llm_status = stack.llm_status() if stack.llm_status is not None else None
if llm_status is not None and (not llm_status.ready or llm_status.last_failure is not None):
    show = st.info if llm_status.ready else st.error
    show(f"**Local LLM** ({llm_status.url}): {llm_status.summary()}.", icon="🩺")
    if llm_status.last_failure is not None:
        st.caption(
            f"Last lines of its log (`{llm_status.log_path}`) after it {llm_status.last_failure.reason}:"
        )
        st.code(llm_status.last_failure.log_tail or "(empty)", language=None)

st.subheader("Collections")
rows: list[dict] = []
with user_errors():
    rows = collection_rows(stack.store)
if rows:
    table(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "indexed_share": st.column_config.ProgressColumn(
                "indexed", min_value=0.0, max_value=1.0, format="percent"
            ),
        },
    )
else:
    st.info(
        "No collections yet. Build the demo collection with `ragdeck demo`, or index your own corpus with "
        "`ragdeck ingest PATH --collection NAME --alias rag_chunks`.",
        icon="📭",
    )

st.subheader("Search")
targets = search_targets(stack.store) if rows else []
if not targets:
    st.caption("Search appears here once a collection exists.")
    st.stop()

# Outside the form, so that choosing hybrid shows its fusion inputs at once.
modes = retrieval_inputs(settings.retrieval, settings.fusion, settings.rrf_k, settings.dense_weight)

with st.form("search", enter_to_submit=True, border=True):
    question = st.text_input(
        "Question", placeholder="How do I compute a 95th percentile latency from a histogram?"
    )
    col1, col2, col3, col4, col5 = st.columns(5)
    default = targets.index(settings.alias) if settings.alias in targets else 0
    target = col1.selectbox("Collection or alias", targets, index=default)
    top_n = col2.number_input("Results (top-N)", min_value=1, max_value=200, value=settings.top_n)
    top_k = col3.number_input("Candidates (top-K)", min_value=1, max_value=1000, value=settings.top_k)
    ef = col4.number_input("HNSW ef (0 = default)", min_value=0, max_value=4096, value=settings.hnsw_ef or 0)
    exact = col5.toggle(
        "Exact search", value=False, help="Brute force instead of HNSW: the recall reference."
    )
    submitted = st.form_submit_button("Search", type="primary")

if submitted:
    with user_errors():
        params = RetrievalParams(
            top_k=int(top_k),
            top_n=int(top_n),
            hnsw_ef=int(ef) or None,
            exact=exact,
            **modes,
        )
        st.session_state["stack_search"] = Retriever(stack.store, stack.embedder, stack.reranker).search(
            question, target, params
        )

result: SearchResult | None = st.session_state.get("stack_search")
if result is not None:
    timings = result.timings_ms
    stages = ["embed", "search", "rerank"]
    fig = go.Figure(
        [go.Bar(x=[timings[s]], y=["pipeline"], name=s, orientation="h", hovertemplate=f"{s}: %{{x:.1f}} ms")
         for s in stages]
    )  # fmt: skip
    fig.update_layout(barmode="stack", height=140, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="ms")
    left, right = st.columns([1, 3])
    left.metric("Total", f"{timings['total']:.1f} ms")
    order = f"reranked by {result.reranker}" if result.reranker else f"{result.params.retrieval} order"
    left.caption(f"{len(result.hits)} chunks from `{result.collection}`, {order}")
    right.plotly_chart(fig, width="stretch")
    hits = [asdict(hit) for hit in result.hits]
    hit_table(hit_rows(hits))
    for hit, fields in zip(result.hits, hits, strict=True):
        heading = f"**{hit.rank}.** `{hit.score:.3f}` · {hit.title}" + (
            f" › {hit.section}" if hit.section else ""
        )
        with st.expander(heading, expanded=hit.rank <= 3):
            st.caption(
                f"`{hit.chunk_id}` · document `{hit.doc_id}` · characters {hit.start}–{hit.end}"
                + (f" · {hit.source}" if hit.source else "")
            )
            breakdown = score_breakdown(fields)
            if breakdown:
                st.caption(f"{result.params.retrieval} retrieval: {breakdown}")
            st.markdown(hit.body or hit.text)
    st.download_button(
        "Download results (JSON)",
        data=json.dumps(result.to_json(), indent=2),
        file_name="ragdeck-search.json",
        mime="application/json",
    )
