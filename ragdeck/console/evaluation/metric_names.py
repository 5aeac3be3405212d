"""Metric names, in one place: which metrics there are, the ``name@k`` form and its parsing.

- **Retrieval metrics** (``RETRIEVAL_METRICS``, computed by ``metrics``): ``metric`` (the whole ranking) or
  ``metric@k`` with a cut-off k, an integer >= 1: ``recall@10``, ``ndcg@5``, ``mrr``. At document level
  (the ranking and the gold mapped to documents) the name is prefixed with ``doc_``: ``doc_recall@10``.
- **Answer metrics** carry no cut-off: ``exact_match`` and ``token_f1`` (the runner's, against the reference
  answer), then the judge's ``faithfulness``, ``answer_relevancy`` and ``context_recall``; the offline
  judge's end in ``_offline`` so that they are never taken for judged scores.

``parse_metric_name`` reads any retrieval metric name (``MetricNameError``, which is an ``InputError`` and a
``ValueError``, for a bad one), ``metric_name`` writes one, ``metric_names`` lists them at several cut-offs.
Everything that reads or writes a metric name (the runner, the gate, reports and comparisons, the HNSW
sweep, the CLI and the pages) goes through this module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragdeck.errors import InputError
from ragdeck.services.types import (
    ANSWER_RELEVANCY,
    CONTEXT_RECALL,
    FAITHFULNESS,
    OFFLINE_METRIC_SUFFIX,
)

__all__ = [
    "ANSWER_METRICS",
    "ANSWER_METRIC_ORDER",
    "CUTOFF",
    "DEFAULT_KS",
    "DOC_PREFIX",
    "GATE_NAME_PATTERN",
    "JUDGE_METRICS",
    "RETRIEVAL_METRICS",
    "MetricName",
    "MetricNameError",
    "cut_offs_up_to",
    "cutoff_metric",
    "cutoff_text",
    "document_name",
    "is_answer_metric",
    "is_offline_metric",
    "metric_name",
    "metric_names",
    "parse_metric",
    "parse_metric_name",
]

RETRIEVAL_METRICS = ("recall", "precision", "hit_rate", "mrr", "ndcg", "map")
CUTOFF = "@"  # between a metric and its cut-off: recall@10
DOC_PREFIX = "doc_"  # before a document-level retrieval metric: doc_recall@10
DEFAULT_KS = (1, 3, 5, 10)  # the cut-offs of an eval run unless it names others

ANSWER_METRICS = ("exact_match", "token_f1")  # scored by the runner against the reference answer
JUDGE_METRICS = (FAITHFULNESS, ANSWER_RELEVANCY, CONTEXT_RECALL)  # scored by the judge model
ANSWER_METRIC_ORDER = ANSWER_METRICS + JUDGE_METRICS  # the order reports show them in

# What a gate condition may name: any metric a run can have, answer metrics included (checked against the
# run when the gate is checked, not here).
GATE_NAME_PATTERN = r"[A-Za-z_][\w@.]*"


class MetricNameError(InputError, ValueError):
    """A metric name that is not ``metric`` or ``metric@k`` with a known metric and k >= 1."""


@dataclass(frozen=True)
class MetricName:
    """A parsed retrieval metric name: the metric, its cut-off (None: the whole ranking), and whether it is
    the document-level one. ``str()`` writes it back."""

    metric: str
    k: int | None = None
    document: bool = False

    def __str__(self) -> str:
        prefix = DOC_PREFIX if self.document else ""
        return f"{prefix}{self.metric}" if self.k is None else f"{prefix}{self.metric}{CUTOFF}{self.k}"


def _unknown(name: str, *, document_level: bool) -> MetricNameError:
    hint = f" (and '{DOC_PREFIX}' before it for document level)" if document_level else ""
    return MetricNameError(
        f"unknown metric {name!r}: use one of {', '.join(RETRIEVAL_METRICS)}, "
        f"optionally with a cut-off such as 'ndcg@10'{hint}"
    )


def parse_metric_name(name: str) -> MetricName:
    """``"recall@10"`` → ``MetricName("recall", 10)``; ``"doc_ndcg@5"`` → ``MetricName("ndcg", 5, True)``;
    ``"mrr"`` → ``MetricName("mrr")``. ``MetricNameError`` names what is wrong with a bad name."""
    return _parse(name, document_level=True)


def parse_metric(name: str) -> tuple[str, int | None]:
    """A gold-level retrieval metric name as ``(metric, k)``: ``"recall@10"`` → ``("recall", 10)``,
    ``"mrr"`` → ``("mrr", None)``. MetricNameError for a bad name, a ``doc_`` one included: the metrics
    score the rankings they are given, so the document level is the caller's choice of rankings."""
    parsed = _parse(name, document_level=False)
    return parsed.metric, parsed.k


def _parse(name: str, *, document_level: bool) -> MetricName:
    if not isinstance(name, str):
        raise MetricNameError(f"a metric name must be text such as 'ndcg@10', got {name!r}")
    return _parse_text(name, document_level)


@functools.lru_cache(maxsize=4096)
def _parse_text(name: str, document_level: bool) -> MetricName:
    """``_parse`` of a string, remembered: an eval run names the same few dozen metrics for every query
    (errors are not cached: each bad name raises again)."""
    document = document_level and name.startswith(DOC_PREFIX)
    metric, at, k_text = (name.removeprefix(DOC_PREFIX) if document else name).partition(CUTOFF)
    if metric not in RETRIEVAL_METRICS:
        raise _unknown(name, document_level=document_level)
    if not at:
        return MetricName(metric, None, document)
    if not (k_text.isascii() and k_text.isdigit()) or int(k_text) < 1:
        bare = f"{DOC_PREFIX}{metric}" if document else metric
        raise MetricNameError(
            f"bad cut-off in {name!r}: k must be an integer >= 1 (write {bare!r} for no cut-off)"
        )
    return MetricName(metric, int(k_text), document)


def metric_name(metric: str, k: int | None = None, *, document: bool = False) -> str:
    """The name of a retrieval metric: ``metric_name("recall", 10)`` → ``"recall@10"``,
    ``metric_name("hit_rate", 5, document=True)`` → ``"doc_hit_rate@5"``; MetricNameError for a bad one."""
    name = str(MetricName(metric, k, document))
    parse_metric_name(name)  # the one place the rules are checked
    return name


def metric_names(ks: Sequence[int] = DEFAULT_KS, *, document: bool = False) -> list[str]:
    """Every retrieval metric at every cut-off in ``ks``: ``["recall@1", "recall@3", ..., "map@10"]``
    (``doc_`` ones with ``document``)."""
    return [metric_name(metric, k, document=document) for metric in RETRIEVAL_METRICS for k in ks]


def document_name(name: str) -> str:
    """The document-level name of a gold-level retrieval metric: ``"recall@10"`` → ``"doc_recall@10"``."""
    parsed = parse_metric_name(name)
    return str(MetricName(parsed.metric, parsed.k, document=True))


def cutoff_metric(name: str) -> MetricName | None:
    """The parsed name when ``name`` has a cut-off (``recall@10``, ``doc_ndcg@5``); None for a name without
    one (an answer metric, ``mrr``). MetricNameError for a malformed name with a cut-off."""
    return parse_metric_name(name) if CUTOFF in name else None


def cutoff_text(name: str) -> str | None:
    """What follows the ``@`` of any name, as written (not checked); None without one."""
    _, at, k_text = name.partition(CUTOFF)
    return k_text if at else None


def is_answer_metric(name: str) -> bool:
    """True for the answer metrics that reports show (exact_match, token_f1 and the judge's three)."""
    return name in ANSWER_METRIC_ORDER


def is_offline_metric(name: str) -> bool:
    """True for the offline judge's string metrics (``*_offline``)."""
    return name.endswith(OFFLINE_METRIC_SUFFIX)


def cut_offs_up_to(ks: Iterable[int], k: int | None) -> tuple[int, ...]:
    """The cut-offs a run of depth ``k`` scores: those of ``ks`` up to k, and k itself (sorted, each once);
    ``ks`` as they are when ``k`` is None."""
    ks = tuple(ks)
    if k is None:
        return ks
    return tuple(sorted({x for x in ks if x <= k} | {k}))
