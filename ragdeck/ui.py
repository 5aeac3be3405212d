"""Shared helpers for the Streamlit pages: the cached stack and user-error rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.answering.service import RagService
from ragdeck.console.evalsets.gold_mapping import SpanIndex
from ragdeck.console.evaluation.ports import EvalRunStore
from ragdeck.console.hnsw.ports import SweepLog
from ragdeck.console.jobs import Job, JobRunner
from ragdeck.console.knobs import FUSIONS, KNOBS, RETRIEVAL_MODES
from ragdeck.console.online.ports import RoutingAdmin
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.retrieval.ports import PolicyOverrideStore
from ragdeck.console.settings import Settings
from ragdeck.console.warmup import WARM_UP_KIND, warm_up
from ragdeck.console.wiring import (
    Stack,
    build_annotation_store,
    build_audit_log,
    build_eval_runner,
    build_eval_store,
    build_feedback_log,
    build_index_ops,
    build_policy_overrides,
    build_rag_service,
    build_routing_admin,
    build_stack,
    build_sweep_log,
)
from ragdeck.errors import RagdeckError
from ragdeck.services.redact import install_log_redaction, redact_text
from ragdeck.widgets import table

if TYPE_CHECKING:
    from ragdeck.api.background import BackgroundApi
    from ragdeck.console.audit import AuditLog
    from ragdeck.console.evaluation.jobs import EvalJobs
    from ragdeck.console.evaluation.runner import EvalRunner
    from ragdeck.console.index_ops.operations import IndexOps
    from ragdeck.console.interfaces import FeedbackLog
    from ragdeck.console.online.replay import ReplayJob
    from ragdeck.console.roles import User


# Cached per settings: keyed by ``Settings.fingerprint()`` (a digest: it changes with any value, secrets
# included, and holds none); the ``_settings`` argument itself is not hashed by Streamlit.
@st.cache_resource(show_spinner="Connecting to the stack…")
def _cached_stack(key: str, _settings: Settings) -> Stack:
    install_log_redaction()
    return build_stack(_settings)


def get_stack() -> Stack:
    """The process-wide stack for the current settings (built once, shared by every session); the first
    call starts warming it up in the background (``warm_up_job``)."""
    settings = Settings()
    key = settings.fingerprint()
    stack = _cached_stack(key, settings)
    jobs = get_jobs()
    if jobs.get(f"{WARM_UP_KIND}:{key}") is None:
        work = partial(warm_up, stack.embedder, stack.store, settings.alias)
        jobs.start(f"{WARM_UP_KIND}:{key}", work, kind=WARM_UP_KIND, label="Warming up the embedding model")
    return stack


def warm_up_job() -> Job | None:
    """The background warm-up of the current stack (None before a page built it)."""
    return get_jobs().get(f"{WARM_UP_KIND}:{Settings().fingerprint()}")


@st.cache_resource(show_spinner="Loading the answering pipeline…")
def _cached_rag(key: str, _settings: Settings) -> RagService:
    service, _ = build_rag_service(_settings, _cached_stack(key, _settings))
    return service


def get_rag_service() -> RagService:
    """The process-wide answering service (policies, cache, LLM or extractive) over the cached stack."""
    settings = Settings()
    return _cached_rag(settings.fingerprint(), settings)


@st.cache_resource
def get_feedback_log() -> FeedbackLog:
    """Thumbs up/down from the Ask page, in the state store (Redis when ``REDIS_URL`` is set)."""
    return build_feedback_log(Settings())


@st.cache_resource
def get_audit_log() -> AuditLog:
    """The audit log in the state store, sealed with the audit key (hand it to actions that audit)."""
    return build_audit_log(Settings())


@st.cache_resource
def get_annotation_store() -> AnnotationRepository:
    """Questions, labels and answers of every annotator, in the state store (hand it to the functions of
    ``ragdeck.console.annotation``)."""
    return build_annotation_store(Settings())


@st.cache_resource(show_spinner="Reading chunk spans…")
def get_span_index(collection: str) -> SpanIndex:
    """Chunk spans of one physical collection (for neighbours); cached per collection name."""
    return SpanIndex.from_store(get_stack().store, collection)


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a ragdeck error as a red box with its message instead of a traceback."""
    try:
        yield
    except RagdeckError as exc:
        st.error(message_lines(redact_text(str(exc))), icon="⚠️")


def message_lines(text: str) -> str:
    """A message of several lines (one problem per line) as Markdown that keeps them apart: Markdown joins
    single newlines into one paragraph, so each becomes a hard break."""
    return "  \n".join(line.rstrip() for line in text.splitlines())


_T = TypeVar("_T")


def bounded_int(
    container: Any,
    label: str,
    value: int,
    *,
    minimum: int,
    maximum: int,
    disabled: bool = False,
    help: str | None = None,
) -> tuple[int, str | None]:
    """An integer input whose range is checked here, not by the browser (which paints an out-of-range value
    red and quietly keeps the old one): out of range, the reason shows under the field and is returned, so
    the page blocks its action with it."""
    number = int(container.number_input(label, value=int(value), step=1, disabled=disabled, help=help))
    if minimum <= number <= maximum:
        return number, None
    problem = f"{label} must be from {minimum} to {maximum}, got {number}"
    container.error(problem, icon="⛔")
    return number, problem


def or_stop(call: Callable[[], _T]) -> _T:
    """``call()``; a ragdeck error (a server down) is shown as a red box and the page stops there, since
    nothing below it can work without what ``call`` returns."""
    try:
        return call()
    except RagdeckError as exc:
        st.error(redact_text(str(exc)), icon="⚠️")
        st.stop()
        raise  # not reached: st.stop() raises


def progress_callback(bar: st.delta_generator.DeltaGenerator) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback that drives a Streamlit progress bar."""

    def update(stage: str, done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{stage}: {done}/{total}")

    return update


@st.cache_resource
def get_jobs() -> JobRunner:
    """Long work running in this process's background threads (eval runs, rebuilds, gates), shared by every
    session, so any page view can follow it and cancel it."""
    return JobRunner()


def start_job(key: str, work: Callable[[Job], Any], *, kind: str, label: str, scope: str) -> Job:
    """Run ``work`` as a background job on ``get_jobs()`` (the job under ``key`` while one works) and
    remember, in this session, to report how it ends: ``finished_jobs(scope)``."""
    job = get_jobs().start(key, work, kind=kind, label=label)
    st.session_state.setdefault(f"{scope}_jobs", {})[key] = job.started_at
    return job


def finished_jobs(scope: str) -> list[Job]:
    """The jobs this session started under ``scope`` that have ended since the last call."""
    watched: dict[str, float] = st.session_state.setdefault(f"{scope}_jobs", {})
    ended = []
    for key, started in list(watched.items()):
        job = get_jobs().get(key)
        mine = job is not None and job.started_at == started
        if mine and job.running:
            continue
        del watched[key]
        if mine:
            ended.append(job)
    return ended


def job_error(job: Job) -> str:
    """What a failed job's error says: a ragdeck error's message, else its type and message."""
    return str(job.exception) if isinstance(job.exception, RagdeckError) else (job.error or "")


def job_progress(job: Job, *, can_cancel: bool = True) -> None:
    """A running job's progress bar and its Cancel button (the work stops at its next check)."""
    cols = st.columns([5, 1])
    note = " (cancelling…)" if job.cancel.is_set() else ""
    cols[0].progress(job.fraction, text=f"{job.label}: {job.progress_text}{note}")
    if cols[1].button("Cancel", key=f"cancel-{job.key}", disabled=job.cancel.is_set() or not can_cancel):
        job.cancel.set()


@st.cache_resource
def get_eval_jobs() -> EvalJobs:
    """Eval runs working in this process, by run id (on ``get_jobs()``)."""
    from ragdeck.console.evaluation.jobs import EvalJobs

    return EvalJobs(get_jobs())


@st.cache_resource
def _cached_index_ops(key: str, _settings: Settings) -> IndexOps:
    return build_index_ops(_settings, _cached_stack(key, _settings))


def get_index_ops() -> IndexOps:
    """Index operations on the serving alias of the cached stack (registry and audit log in the state
    database), built once per process."""
    settings = Settings()
    return _cached_index_ops(settings.fingerprint(), settings)


@st.cache_resource
def get_eval_store() -> EvalRunStore:
    """Eval runs and their per-query results, in the state store."""
    return build_eval_store(Settings())


@st.cache_resource
def _cached_overrides(key: str, _settings: Settings) -> PolicyOverrideStore:
    return build_policy_overrides(_settings)


def get_policy_overrides() -> PolicyOverrideStore:
    """Run-time policy overrides in the state store (a policy's default ef applied from the Tune page)."""
    settings = Settings()
    return _cached_overrides(settings.fingerprint(), settings)


@st.cache_resource
def _cached_sweep_log(key: str, _settings: Settings) -> SweepLog:
    return build_sweep_log(_settings)


def get_sweep_log() -> SweepLog:
    """HNSW sweeps and their measured configurations in the state store (a partial one resumes after a
    restart)."""
    settings = Settings()
    return _cached_sweep_log(settings.fingerprint(), settings)


def get_eval_runner(with_answers: bool, policy: Policy | None) -> EvalRunner:
    """An eval runner over the cached stack (with the LLM and a judge when answers are asked for)."""
    return build_eval_runner(Settings(), get_stack(), with_answers=with_answers, policy=policy)


def current_user() -> User:
    """The console's user: trusted proxy header, login, or the local user (see ``ragdeck/login.py``).

    Check a permission with ``ragdeck.console.roles.require(current_user(), "action", log=get_audit_log())``
    (the role each action needs is in ``roles.PERMISSIONS``).
    """
    from ragdeck.login import current_user as resolve

    return resolve()


NAME_KEY = "ragdeck_person"  # the name typed on any page, kept for the session (widget keys are dropped)


def person_name(container: Any, label: str, *, key: str, help: str | None = None) -> str:
    """Who labels or reviews. With a login (or a trusted proxy header) it is the signed-in user, shown, not
    typed: nobody labels as someone else. Without one, a name typed once and kept for the whole session,
    on every page (Streamlit forgets a widget's value when a page without it is shown)."""
    user = current_user()
    if user.source in ("login", "header"):
        container.caption(f"{label}: **{user.name}** (signed in)")
        return user.name
    typed = container.text_input(
        label, key=key, value=st.session_state.get(NAME_KEY, ""), placeholder="e.g. alice", help=help
    ).strip()
    if typed:
        st.session_state[NAME_KEY] = typed
    return typed


@st.cache_resource
def _hosted_api() -> dict[str, BackgroundApi]:
    return {}


def hosted_api() -> BackgroundApi | None:
    """The RAG API this console serves itself (see ``start_hosted_api``), if started."""
    return _hosted_api().get(Settings().fingerprint())


def start_hosted_api() -> BackgroundApi:
    """Serve the RAG API from this console process over its cached stack (loopback; the embedded store
    allows one process per data directory, so a separate API process could not open it)."""
    from ragdeck.api.background import start_background_api

    key = Settings().fingerprint()
    hosted = _hosted_api()
    if key not in hosted:
        hosted[key] = start_background_api(Settings(), get_stack())
    return hosted[key]


def get_routing_admin() -> RoutingAdmin | None:
    """The RAG API to drive: RAGDECK_API_URL (+ RAGDECK_ADMIN_TOKEN), else the one hosted here, else None."""
    settings = Settings()
    if settings.api_url:
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        return build_routing_admin(settings.api_url, token)
    hosted = hosted_api()
    return build_routing_admin(hosted.url, hosted.token) if hosted else None


@st.cache_resource
def get_replay_jobs() -> dict[str, ReplayJob]:
    """Replays started from the console, by target URL (one at a time per target)."""
    return {}


def retrieval_inputs(
    retrieval: str, fusion: str, rrf_k: int, dense_weight: float, *, help: str | None = None
) -> dict[str, Any]:
    """Retrieval mode radio, and for hybrid its fusion and k or dense weight, starting from the values given;
    returns them by their ``RetrievalParams`` / ``Policy`` field names. Put it outside a form: choosing hybrid
    must show the fusion inputs at once."""
    mode_col, fusion_col, knob_col = st.columns([2, 2, 3])
    chosen = mode_col.radio(
        "Retrieval",
        RETRIEVAL_MODES,
        index=RETRIEVAL_MODES.index(retrieval),
        horizontal=True,
        help=help or "dense: nearest embeddings · lexical: BM25 over the words · hybrid: both lists, fused",
    )
    if chosen == "hybrid":
        fusion = fusion_col.radio(
            "Fusion",
            FUSIONS,
            index=FUSIONS.index(fusion),
            horizontal=True,
            format_func=lambda f: {"rrf": "RRF", "weighted": "weighted", "dbsf": "DBSF"}[f],
        )
        k, weight = KNOBS["rrf_k"], KNOBS["dense_weight"]  # their bounds
        if fusion == "dbsf":
            knob_col.caption("Each list's scores scaled by their mean ± 3 standard deviations, then summed.")
        elif fusion == "rrf":
            rrf_k = knob_col.number_input("RRF k", min_value=int(k.minimum), max_value=1000, value=rrf_k)
        else:
            low, high = float(weight.minimum), float(weight.maximum)
            dense_weight = knob_col.slider("Dense weight", low, high, float(dense_weight), 0.05)
    return {"retrieval": chosen, "fusion": fusion, "rrf_k": int(rrf_k), "dense_weight": float(dense_weight)}


def hit_table(rows: list[dict[str, Any]]) -> None:
    """Ranked chunks (``console.retrieval.collections.hit_rows``) as a dataframe with the scores formatted."""
    table(
        rows,
        width="stretch",
        column_config={
            "score": st.column_config.NumberColumn(format="%.4f"),
            "fused_score": st.column_config.NumberColumn(format="%.4f"),
            "rerank_score": st.column_config.NumberColumn(format="%.3f"),
        },
    )
