"""The answer judge of eval runs: scores one RAG answer against its retrieved contexts and the gold reference
with Ragas. Satisfies ``ragdeck.console.evaluation.ports.AnswerJudge``.

Two modes, never mixed in one result:

- ``llm`` (``RagasJudge``): a judge model on any OpenAI-compatible server (vLLM, llama.cpp) scores Ragas'
  LLM metrics from ``ragas.metrics.collections``:
  ``faithfulness`` = supported claims / claims: the judge splits the answer into claims, then gives each a
  verdict (supported by the contexts or not) and a reason; both are returned in ``JudgeResult.claims``.
  ``answer_relevancy``: questions the judge regenerates from the answer, compared with the asked one by
  embedding cosine (only when an embedder is given). ``context_recall``: share of the reference answer's
  statements that the contexts support (needs a reference answer).
- ``offline`` (``OfflineJudge``): no judge model, Ragas' string metrics only: ``answer_similarity_offline``
  (1 - normalised Levenshtein distance, answer vs reference), ``rouge_l_offline`` (ROUGE-L F1, answer vs
  reference), ``context_recall_offline`` (share of the reference contexts that some retrieved context
  matches with string similarity > 0.5). They measure surface overlap, not truth, and carry the
  ``_offline`` suffix so that they are never confused with judged scores.

A metric that cannot be computed (no reference, a timeout, bad JSON from a small judge) is None with a
one-line reason in ``errors``: ``judge`` never raises for one bad metric. ``judge`` is synchronous and safe
to call from several threads at once: each call runs its own event loop with its own HTTP client.
Ragas is imported lazily, with its telemetry off and Hugging Face libraries offline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import math
import os
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from ragdeck.services.llm import openai_base_url
from ragdeck.services.redact import redact_url
from ragdeck.services.types import (
    ANSWER_RELEVANCY,
    ANSWER_SIMILARITY_OFFLINE,
    CONTEXT_RECALL,
    CONTEXT_RECALL_OFFLINE,
    FAITHFULNESS,
    ROUGE_L_OFFLINE,
    ClaimVerdict,
    JudgeResult,
)

SETTING = "JUDGE_BASE_URL"
ERROR_CHARS = 240  # an ``errors`` entry is one line of at most this many characters

Embed = Callable[[list[str]], list[list[float]]]
T = TypeVar("T")
_import_lock = threading.Lock()


class Unscorable(Exception):
    """A metric cannot be computed for this sample (its message says why)."""


def import_ragas() -> None:
    """Import Ragas once, after turning its telemetry off and Hugging Face libraries offline."""
    with _import_lock:
        os.environ["RAGAS_DO_NOT_TRACK"] = "true"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        import ragas  # noqa: F401


def one_line(exc: BaseException) -> str:
    """Why a metric failed, in one line of at most ``ERROR_CHARS`` characters: ``Type: message`` (the
    message alone for Unscorable); a failed structured reply names its attempts and the last error."""
    attempts = getattr(exc, "failed_attempts", None)  # instructor's InstructorRetryException
    if attempts:
        last = attempts[-1].exception
        count = f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}"
        return _clip(f"the judge failed after {count}: {one_line(last)}")
    errors = getattr(exc, "errors", None)  # pydantic's ValidationError: the reply did not fit the schema
    if callable(errors) and hasattr(exc, "title"):
        with contextlib.suppress(Exception):
            first = errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "reply"
            return _clip(f"reply does not fit {exc.title}: {where}: {first.get('msg', '')}")
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if not isinstance(exc, Unscorable):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return _clip(text)


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code: in a new event loop in this thread, or in a
    helper thread when this thread already runs a loop (an async web handler)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _scored(name: str, work: Awaitable[float]) -> tuple[str, float | None, str | None]:
    """``(name, value in [0, 1], None)``, or ``(name, None, why)`` when the metric failed."""
    try:
        value = await work
    except Exception as exc:  # one metric failing must not sink the others
        return name, None, one_line(exc)
    if value is None or not math.isfinite(value):
        return name, None, "the metric gave no value (NaN)"
    return name, min(1.0, max(0.0, float(value))), None


async def _collect(mode: str, work: dict[str, Awaitable[float]], claims: list[ClaimVerdict]) -> JudgeResult:
    outcomes = await asyncio.gather(*(_scored(name, item) for name, item in work.items()))
    result = JudgeResult(mode=mode, scores={}, claims=claims)
    for name, value, error in outcomes:
        result.scores[name] = value
        if error is not None:
            result.errors[name] = error
    return result


def _all_failed(mode: str, names: Sequence[str], why: str) -> JudgeResult:
    return JudgeResult(mode=mode, scores=dict.fromkeys(names), errors=dict.fromkeys(names, why))


@functools.cache
def _embeddings_class() -> type:
    """A Ragas embeddings class over a plain ``texts -> vectors`` callable (built once, after the import)."""
    from ragas.embeddings import BaseRagasEmbedding

    class CallableEmbeddings(BaseRagasEmbedding):
        """Ragas embeddings backed by ragdeck's embedder; batches run in a worker thread."""

        def __init__(self, embed: Embed) -> None:
            super().__init__()
            self._embed = embed

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return [[float(x) for x in vector] for vector in self._embed(list(texts))]

        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_texts([text])[0]

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return await asyncio.to_thread(self.embed_texts, list(texts))

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return (await self.aembed_texts([text]))[0]

    return CallableEmbeddings


class RagasJudge:
    """Ragas' LLM metrics with a judge model on an OpenAI-compatible server (``mode`` "llm").

    ``model`` is a name, or a callable that finds one (e.g. the server's first model), called once on first
    use. ``embed`` turns texts into vectors for ``answer_relevancy``; without it that metric is left out of
    ``metric_names``. Completions use temperature 0 and at most ``max_tokens`` tokens; ``timeout_s`` bounds
    one completion (one retry on timeouts and 5xx). ``relevancy_questions`` is Ragas' ``strictness``: how
    many questions are regenerated from the answer (one completion each). ``reasks``: how many times a
    reply that is not the JSON asked for is asked again. ``per_claim`` sends each claim to Ragas' verdict
    prompt on its own (claims + 1 completions instead of 2): small judges get far more verdicts right.
    """

    mode = "llm"

    def __init__(
        self,
        base_url: str,
        model: str | Callable[[], str],
        api_key: str | None = None,
        timeout_s: float = 120.0,
        embed: Embed | None = None,
        *,
        max_tokens: int = 1024,
        relevancy_questions: int = 3,
        reasks: int = 1,
        per_claim: bool = False,
    ) -> None:
        import_ragas()
        self.base_url = openai_base_url(base_url, SETTING)
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.embed = embed
        self.max_tokens = max_tokens
        self.relevancy_questions = relevancy_questions
        self.reasks = reasks
        self.per_claim = per_claim
        self._model = model.strip() if isinstance(model, str) else None
        self._resolve = None if isinstance(model, str) else model
        if not self._model and self._resolve is None:
            raise ValueError("RagasJudge needs a model name or a callable that finds one")
        self._lock = threading.Lock()
        names = [FAITHFULNESS, ANSWER_RELEVANCY, CONTEXT_RECALL]
        if embed is None:
            names.remove(ANSWER_RELEVANCY)
        self.metric_names: tuple[str, ...] = tuple(names)

    @property
    def model_name(self) -> str:
        """The judge model, once known (never calls the server)."""
        return self._model or f"first model at {redact_url(self.base_url)}"

    def model(self) -> str:
        """The judge model, found on first use (the callable's errors propagate)."""
        with self._lock:
            if not self._model:
                assert self._resolve is not None
                self._model = self._resolve()
            return self._model

    def judge(
        self,
        question: str,
        answer: str,
        contexts: Sequence[str],
        reference: str = "",
        reference_contexts: Sequence[str] = (),
    ) -> JudgeResult:
        """Faithfulness (with per-claim verdicts), answer relevancy and context recall of one answer.
        ``reference_contexts`` is not used by the LLM metrics."""
        try:
            model = self.model()
        except Exception as exc:
            return _all_failed(self.mode, self.metric_names, f"no judge model: {one_line(exc)}")
        contexts = [c for c in contexts if c and c.strip()]
        try:
            return run_sync(lambda: self._ajudge(model, question, answer, contexts, reference))
        except Exception as exc:  # e.g. the client could not be built: every metric fails the same way
            return _all_failed(self.mode, self.metric_names, one_line(exc))

    async def _ajudge(
        self, model: str, question: str, answer: str, contexts: list[str], reference: str
    ) -> JudgeResult:
        from openai import AsyncOpenAI
        from ragas.llms import llm_factory

        client = AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key or "none", timeout=self.timeout_s, max_retries=1
        )
        try:
            llm = llm_factory(
                model,
                client=client,
                temperature=0.0,
                max_tokens=self.max_tokens,
                max_retries=self.reasks,  # instructor: re-asks after a reply that does not fit the schema
            )
            claims: list[ClaimVerdict] = []
            work: dict[str, Awaitable[float]] = {
                FAITHFULNESS: self._faithfulness(llm, question, answer, contexts, claims, self.per_claim)
            }
            if self.embed is not None:
                work[ANSWER_RELEVANCY] = self._answer_relevancy(llm, question, answer)
            work[CONTEXT_RECALL] = self._context_recall(llm, question, contexts, reference)
            return await _collect(self.mode, work, claims)
        finally:
            await client.close()

    @staticmethod
    async def _faithfulness(
        llm: Any,
        question: str,
        answer: str,
        contexts: list[str],
        claims: list[ClaimVerdict],
        per_claim: bool = False,
    ) -> float:
        """Ragas' two faithfulness prompts, called here so the claims come back with the score: statements
        from the answer, then a verdict per statement (all in one completion, or one completion per
        statement with ``per_claim``); score = supported / verdicts, as Ragas computes it."""
        from ragas.metrics.collections import Faithfulness
        from ragas.metrics.collections.faithfulness.util import (
            NLIStatementInput,
            NLIStatementOutput,
            StatementGeneratorInput,
            StatementGeneratorOutput,
        )

        if not answer.strip():
            raise Unscorable("the answer is empty")
        if not contexts:
            raise Unscorable("no retrieved contexts to check the answer against")
        metric = Faithfulness(llm=llm)
        prompt = metric.statement_generator_prompt.to_string(
            StatementGeneratorInput(question=question or "(none)", answer=answer)
        )
        extracted = await llm.agenerate(prompt, StatementGeneratorOutput)
        statements = [s.strip() for s in extracted.statements if s and s.strip()]
        if not statements:
            raise Unscorable("the judge found no claims in the answer")
        context = "\n".join(contexts)

        async def verdicts_for(batch: list[str]) -> list[Any]:
            prompt = metric.nli_statement_prompt.to_string(
                NLIStatementInput(context=context, statements=batch)
            )
            return (await llm.agenerate(prompt, NLIStatementOutput)).statements

        if per_claim:
            answers = await asyncio.gather(*(verdicts_for([statement]) for statement in statements))
            if not all(answers):
                raise Unscorable("the judge gave no verdict for a claim")
            found = [
                ClaimVerdict(statement, bool(verdicts[0].verdict), verdicts[0].reason)
                for statement, verdicts in zip(statements, answers, strict=True)
            ]
        else:
            verdicts = await verdicts_for(statements)
            if not verdicts:
                raise Unscorable("the judge gave no verdicts")
            found = [ClaimVerdict(v.statement, bool(v.verdict), v.reason) for v in verdicts]
        claims.extend(found)
        return sum(c.verdict for c in found) / len(found)

    async def _answer_relevancy(self, llm: Any, question: str, answer: str) -> float:
        from ragas.metrics.collections import AnswerRelevancy

        if not question.strip() or not answer.strip():
            raise Unscorable("answer relevancy needs a question and a non-empty answer")
        assert self.embed is not None
        metric = AnswerRelevancy(
            llm=llm, embeddings=_embeddings_class()(self.embed), strictness=self.relevancy_questions
        )
        return (await metric.ascore(user_input=question, response=answer)).value

    @staticmethod
    async def _context_recall(llm: Any, question: str, contexts: list[str], reference: str) -> float:
        from ragas.metrics.collections import ContextRecall

        if not reference.strip():
            raise Unscorable("no reference answer: context recall needs one")
        if not contexts:
            return 0.0  # nothing retrieved, nothing of the reference recalled
        result = await ContextRecall(llm=llm).ascore(
            user_input=question or "(none)", retrieved_contexts=contexts, reference=reference
        )
        return result.value

    def close(self) -> None:
        """Nothing to release: every ``judge`` call opens and closes its own client."""

    def __repr__(self) -> str:
        shown = redact_url(self.base_url)
        return f"RagasJudge({shown!r}, model={self.model_name!r}, metrics={self.metric_names})"


class OfflineJudge:
    """Ragas' string metrics, no judge model (``mode`` "offline"): answer vs reference by Levenshtein
    similarity and ROUGE-L, retrieved vs reference contexts by string-similarity recall (a reference
    context counts as recalled when some retrieved context has similarity above ``context_threshold``)."""

    mode = "offline"
    metric_names: tuple[str, ...] = (ANSWER_SIMILARITY_OFFLINE, ROUGE_L_OFFLINE, CONTEXT_RECALL_OFFLINE)

    def __init__(self, *, context_threshold: float = 0.5) -> None:
        import_ragas()
        with warnings.catch_warnings():
            # Ragas 0.4 has no collections version of the non-LLM context recall yet and warns on import.
            warnings.simplefilter("ignore", DeprecationWarning)
            from ragas.metrics import NonLLMContextRecall
        self._context_recall_class = NonLLMContextRecall
        self.context_threshold = context_threshold

    @property
    def model_name(self) -> str:
        """No model: what scores the answers."""
        return "ragas string metrics"

    def judge(
        self,
        question: str,
        answer: str,
        contexts: Sequence[str],
        reference: str = "",
        reference_contexts: Sequence[str] = (),
    ) -> JudgeResult:
        """The three offline metrics; the answer ones need ``reference``, the context one
        ``reference_contexts``. ``question`` is not used."""
        retrieved = [c for c in contexts if c and c.strip()]
        gold = [c for c in reference_contexts if c and c.strip()]
        try:
            return run_sync(lambda: self._ajudge(answer, retrieved, reference, gold))
        except Exception as exc:
            return _all_failed(self.mode, self.metric_names, one_line(exc))

    async def _ajudge(
        self, answer: str, retrieved: list[str], reference: str, gold: list[str]
    ) -> JudgeResult:
        work = {
            ANSWER_SIMILARITY_OFFLINE: self._similarity(answer, reference),
            ROUGE_L_OFFLINE: self._rouge_l(answer, reference),
            CONTEXT_RECALL_OFFLINE: self._context_recall(retrieved, gold),
        }
        return await _collect(self.mode, work, [])

    @staticmethod
    async def _similarity(answer: str, reference: str) -> float:
        from ragas.metrics.collections import NonLLMStringSimilarity

        if not reference.strip():
            raise Unscorable("no reference answer to compare with")
        return (await NonLLMStringSimilarity().ascore(reference=reference, response=answer)).value

    @staticmethod
    async def _rouge_l(answer: str, reference: str) -> float:
        from ragas.metrics.collections import RougeScore

        if not reference.strip():
            raise Unscorable("no reference answer to compare with")
        metric = RougeScore(rouge_type="rougeL", mode="fmeasure")
        return (await metric.ascore(reference=reference, response=answer)).value

    async def _context_recall(self, retrieved: list[str], gold: list[str]) -> float:
        from ragas import SingleTurnSample

        if not gold:
            raise Unscorable("no reference contexts to recall")
        if not retrieved:
            return 0.0
        metric = self._context_recall_class(threshold=self.context_threshold)
        sample = SingleTurnSample(retrieved_contexts=retrieved, reference_contexts=gold)
        return await metric.single_turn_ascore(sample)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"OfflineJudge(metrics={self.metric_names})"
