"""Answering a question end to end: route to a policy, check the cache, retrieve, generate, judge the canary.

``RagService`` is what the RAG API (and anything else that answers questions) calls. It is plain Python:
the API front turns its outcomes into HTTP and Prometheus metrics, and stage timings into histograms.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from ragdeck.console.answering.answers import DEFAULT_SYSTEM_PROMPT, Answer
from ragdeck.console.answering.cache import AnswerCache
from ragdeck.console.answering.generate import answer_question
from ragdeck.console.answering.ports import KeyValueStore, LlmStatusSource
from ragdeck.console.interfaces import ChatModel
from ragdeck.console.online.guard import CanaryGuard, GuardVerdict
from ragdeck.console.online.routing import Router
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.errors import InputError, RagdeckError, ServiceUnavailable
from ragdeck.services.redact import redact_text
from ragdeck.services.types import ChatMessage

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragdeck.rag")

MAX_QUESTION_CHARS = 2000
RESPONSE_TTL_S = 7 * 24 * 3600  # how long feedback can still name a response id (votes are kept as long)
VOTES = ("up", "down")
_RESPONSE_ID = re.compile(r"([0-9a-f]{8})-[0-9a-f]{24}")


class UnknownResponse(InputError):
    """Feedback names a response id this service never issued (or one already forgotten)."""


class ResponseExpired(InputError):
    """Feedback names a response id issued longer ago than ``RESPONSE_TTL_S``."""


def new_response_id(now: float | None = None) -> str:
    """A fresh response id: the issue time (epoch seconds, 8 hex digits) and 96 random bits."""
    issued = int(time.time() if now is None else now)
    return f"{issued:08x}-{uuid.uuid4().hex[:24]}"


def response_issued_at(response_id: str) -> float | None:
    """When ``response_id`` was issued (epoch seconds); None when it is not of ``new_response_id``'s form."""
    match = _RESPONSE_ID.fullmatch(response_id)
    return None if match is None else float(int(match.group(1), 16))


@dataclass
class QueryOutcome:
    """One answered question: the answer, where it came from, and what each stage cost."""

    response_id: str
    policy: str
    routing_reason: str
    index_version: str  # the physical collection that answered (changes when the alias moves)
    answer: Answer
    timings_ms: dict[str, float]  # retrieval, rerank, generation, total (cached: lookup only)
    cached: bool = False
    prompt_ctx_tokens: int = 0
    cost_usd: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``POST /query`` response body."""
        body = self.answer.to_json()
        return {
            "response_id": self.response_id,
            "policy": self.policy,
            "routing_reason": self.routing_reason,
            "index_version": self.index_version,
            "cached": self.cached,
            "answer": body["text"],
            "mode": body["mode"],
            "model": body["model"],
            "no_answer": body["no_answer"],
            "citations": body["citations"],
            "citation_source": body["citation_source"],
            "fallback_reason": body["fallback_reason"],
            "contexts": body["contexts"],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "tokens": {
                "prompt": self.answer.prompt_tokens,
                "completion": self.answer.completion_tokens,
                "context_estimate": self.prompt_ctx_tokens,
            },
            "cost_usd": self.cost_usd,
        }


@dataclass
class ReadinessCheck:
    """One component probed by ``ready()``."""

    component: str
    ok: bool
    detail: str
    ms: float
    degraded: bool = False  # down, but requests are still answered (extractive fallback)


@dataclass
class RagService:
    """The answering pipeline over one stack, with policies, canary routing, guard and cache."""

    retriever: Retriever
    chat_models: dict[str, ChatModel | None]  # per policy; None = the extractive answerer
    policies: dict[str, Policy]
    router: Router
    guard: CanaryGuard | None = None
    cache: AnswerCache | None = None
    responses: KeyValueStore | None = None  # response id -> policy, for feedback
    cost_of: Any = None  # callable(model, prompt_tokens, completion_tokens) -> float | None
    max_context_chars: int = 4000  # prompt budget for retrieved contexts
    fallback_default: bool = False  # a policy with fallback unset answers extractively while the LLM is down
    llm_status: LlmStatusSource | None = None  # the supervised local LLM's status; None: not supervised
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def policy(self, name: str) -> Policy:
        """A policy by name; InputError listing the known ones."""
        try:
            return self.policies[name]
        except KeyError:
            known = ", ".join(sorted(self.policies))
            raise InputError(f"unknown policy {name!r}: use one of {known}") from None

    def query(self, question: str, *, user_id: str | None = None, policy: str | None = None) -> QueryOutcome:
        """Answer ``question`` under the policy the router picks for ``user_id`` (or the one named)."""
        question = (question or "").strip()
        if not question:
            raise InputError("the question is empty: send a non-empty 'question'")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
            )
        if policy is not None:
            self.policy(policy)  # unknown -> InputError before any work
        decision = self.router.choose(user_id, policy)
        chosen = self.policy(decision.policy)
        started = time.perf_counter()
        try:
            outcome = self._serve(chosen, decision.reason, question, started)
        except Exception as exc:
            exc.policy = chosen.name  # type: ignore[attr-defined]  # lets the front label its metrics
            raise
        self._remember(outcome)
        return outcome

    def _serve(self, chosen: Policy, reason: str, question: str, started: float) -> QueryOutcome:
        with tracer.start_as_current_span("rag.query") as span:
            span.set_attribute("rag.policy", chosen.name)
            index_version = self.retriever.store.resolve(chosen.alias)
            cached = self._cached(chosen, question, index_version)
            if cached is not None:
                outcome = QueryOutcome(
                    response_id=new_response_id(),
                    policy=chosen.name,
                    routing_reason=reason,
                    index_version=index_version,
                    answer=cached,
                    timings_ms={"total": (time.perf_counter() - started) * 1000},
                    cached=True,
                )
            else:
                outcome = self._answer(chosen, reason, question, index_version, started)
            span.set_attribute("rag.cached", outcome.cached)
            span.set_attribute("rag.no_answer", outcome.answer.no_answer)
        return outcome

    def _cached(self, policy: Policy, question: str, index_version: str) -> Answer | None:
        if self.cache is None:
            return None
        value = self.cache.get(policy.cache_id, question, index_version)
        if value is None:
            return None
        try:
            return Answer.from_json(value)
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a cached answer that does not parse")
            return None

    def _answer(
        self, policy: Policy, reason: str, question: str, index_version: str, started: float
    ) -> QueryOutcome:
        params = dataclasses.replace(policy.retrieval_params(), list_ranks=False)  # answers show none
        with tracer.start_as_current_span("rag.retrieve"):
            result = self.retriever.search(question, index_version, params)
        t_gen = time.perf_counter()
        with tracer.start_as_current_span("rag.generate") as span:
            answer = self._generate(policy, question, result.hits)
            span.set_attribute("rag.mode", answer.mode)
            span.set_attribute("rag.fallback", answer.fallback_reason is not None)
        generation_ms = (time.perf_counter() - t_gen) * 1000
        timings = {
            "retrieval": result.timings_ms["embed"] + result.timings_ms["search"],
            "rerank": result.timings_ms["rerank"],
            "generation": generation_ms,
            "total": (time.perf_counter() - started) * 1000,
        }
        cost = None
        if self.cost_of is not None and answer.mode == "llm":
            cost = self.cost_of(answer.model, answer.prompt_tokens, answer.completion_tokens)
        if self.cache is not None and answer.fallback_reason is None:  # a stand-in answer is not kept
            self.cache.put(policy.cache_id, question, index_version, answer.to_json())
        return QueryOutcome(
            response_id=new_response_id(),
            policy=policy.name,
            routing_reason=reason,
            index_version=index_version,
            answer=answer,
            timings_ms=timings,
            prompt_ctx_tokens=answer.context_tokens,
            cost_usd=cost,
        )

    def falls_back(self, policy: Policy) -> bool:
        """Whether ``policy`` answers extractively while its LLM is down (its own ``fallback``, else the
        service's default)."""
        return self.fallback_default if policy.fallback is None else policy.fallback

    def _generate(self, policy: Policy, question: str, hits: list[Any]) -> Answer:
        """The policy's LLM answer; while the LLM is down, an extractive one that says why (when the
        policy falls back), else ServiceUnavailable naming the LLM and the reason."""
        chat_model = self.chat_models.get(policy.name)
        down = self._llm_down() if chat_model is not None else None
        try:
            if down is not None:
                raise ServiceUnavailable(down)
            return answer_question(
                question,
                hits,
                chat_model,
                system_prompt=policy.system_prompt or DEFAULT_SYSTEM_PROMPT,
                max_tokens=policy.max_tokens,
                max_context_chars=self.max_context_chars,
            )
        except ServiceUnavailable as exc:
            reason = self._llm_down() or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if chat_model is None or not self.falls_back(policy):
                raise ServiceUnavailable(
                    f"The LLM of policy '{policy.name}' is unavailable: {reason} (policy fallback is off: "
                    f"set fallback = true in [policies.{policy.name}] or RAGDECK_LLM_FALLBACK=true to "
                    "answer extractively meanwhile)"
                ) from exc
            log.warning("policy %s: LLM unavailable, answering extractively: %s", policy.name, reason)
            from ragdeck.console.answering.extractive import extractive_answer

            answer = extractive_answer(question, hits)
            answer.fallback_reason = reason
            return answer

    def _llm_down(self) -> str | None:
        """Why the supervised local LLM cannot answer now (crashed, restarting, gave up); None when it can
        or when nothing supervises it."""
        status = self.llm_status() if self.llm_status is not None else None
        return None if status is None or status.ready else status.summary()

    def _remember(self, outcome: QueryOutcome) -> None:
        if self.responses is None:
            return
        try:
            self.responses.set(f"response:{outcome.response_id}", outcome.policy, ttl_s=RESPONSE_TTL_S)
        except RagdeckError as exc:  # feedback for this response will be refused; the answer still goes out
            log.warning("could not record response %s: %s", outcome.response_id, exc)

    def observe(self, policy: str, seconds: float, ok: bool) -> GuardVerdict | None:
        """Feed one finished request to the canary guard; its verdict when the request was the canary's."""
        if self.guard is None or policy != self.guard.policy:
            return None
        with self._lock:
            self.guard.record(policy, seconds, ok)
            verdict = self.guard.check()
        if verdict.tripped:
            self.router.refresh()  # route away from the canary now, not after the weight cache expires
        return verdict

    def feedback_policy(self, response_id: str, vote: str, *, now: float | None = None) -> str:
        """The policy that served ``response_id``: ResponseExpired when it was issued more than
        ``RESPONSE_TTL_S`` ago, UnknownResponse when it was never issued, InputError for a bad vote."""
        if vote not in VOTES:
            raise InputError(f"vote must be 'up' or 'down', got {vote!r}")
        policy = self.responses.get(f"response:{response_id}") if self.responses is not None else None
        if policy is not None:
            return policy
        days = RESPONSE_TTL_S // 86400
        issued = response_issued_at(response_id)
        if issued is not None and (time.time() if now is None else now) - issued > RESPONSE_TTL_S:
            raise ResponseExpired(
                f"response_id {response_id!r} has expired: feedback is taken for {days} days after an "
                "answer; ask the question again and vote on the new response_id"
            )
        raise UnknownResponse(
            f"unknown response_id {response_id!r}: send the response_id a /query answer returned "
            f"(ids are kept {days} days)"
        )

    def ready(self, alias: str | None = None) -> list[ReadinessCheck]:
        """Probe each component the way a request uses it: one embedding, a store lookup, a 5-token answer."""
        checks = [
            self._check("embedder", lambda: self._probe_embedder()),
            self._check("vector store", lambda: self._probe_store(alias)),
            self._check("llm", lambda: self._probe_llm()),
        ]
        llm = checks[-1]
        if not llm.ok and all(self.falls_back(p) for p in self.policies.values()):
            llm.degraded = True
            llm.detail += " (answers are extractive meanwhile)"
        return checks

    def _probe_embedder(self) -> str:
        vector = self.retriever.embedder.embed_query("readiness probe")
        return f"{self.retriever.embedder.model_name}, {len(vector)}-d"

    def _probe_store(self, alias: str | None) -> str:
        names = {alias} if alias else {p.alias for p in self.policies.values()}
        parts = []
        for name in sorted(names):
            info = self.retriever.store.collection_info(name)
            parts.append(f"{name} -> {info.name} ({info.points} points)")
        return "; ".join(parts)

    def _probe_llm(self) -> str:
        models = {id(m): m for m in self.chat_models.values() if m is not None}
        if not models:
            return "no LLM configured: answers are extractive (set LLM_BASE_URL or run `ragdeck llm serve`)"
        down = self._llm_down()
        if down is not None:
            raise ServiceUnavailable(down)
        parts = []
        for model in models.values():
            result = model.chat([ChatMessage("user", "Say OK.")], max_tokens=5)
            parts.append(f"{result.model}: {result.completion_tokens} tokens in {result.latency_ms:.0f} ms")
        status = self.llm_status() if self.llm_status is not None else None
        if status is not None:
            parts.append(status.summary())
        return "; ".join(parts)

    @staticmethod
    def _check(component: str, probe: Any) -> ReadinessCheck:
        t0 = time.perf_counter()
        try:
            detail, ok = probe(), True
        except Exception as exc:  # readiness reports every failure, never raises
            detail, ok = redact_text(f"{type(exc).__name__}: {exc}"), False
        return ReadinessCheck(component, ok, detail, (time.perf_counter() - t0) * 1000)
