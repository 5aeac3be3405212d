"""Retrieval policies: named bundles of retrieval and generation knobs that the API routes users between.

A policy says which collection (or alias) to search, how (``retrieval``: dense, lexical or hybrid, with its
``fusion``, ``rrf_k`` and ``dense_weight``), how many candidates to take (``top_k``), how many to
keep after reranking (``top_n``), the search-time ``hnsw_ef``, whether to rerank, and how to generate
(system prompt, model, ``max_tokens``), and whether to answer extractively while the LLM is down
(``fallback``). Policies come from TOML ``[policies.<name>]`` tables; without
any, two identical defaults exist: "A" (control) and "B" (canary), so a user changes one knob in B.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ragdeck.console.knobs import KNOBS, RetrievalKnobs
from ragdeck.console.retrieval.pipeline import RetrievalParams
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, InputError

# Policy names travel as Prometheus label values and Redis hash fields: keep them plain.
POLICY_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}", re.ASCII)


@dataclass(frozen=True)
class Policy(RetrievalKnobs):
    """One retrieval-and-generation policy; invalid values raise InputError naming the policy and field.

    The retrieval knobs (``top_k``, ``top_n``, ``hnsw_ef``, ``rerank``, ``retrieval``, ``fusion``, ``rrf_k``,
    ``dense_weight``) with their defaults and checks come from ``console.knobs.RetrievalKnobs``; a policy
    also wants ``top_n`` at most ``top_k``. ``alias`` is the collection or alias to search; ``system_prompt``
    None means the answerer's default; ``model`` None means the LLM server's default model.
    """

    name: str
    alias: str = "rag_chunks"
    system_prompt: str | None = None
    model: str | None = None
    max_tokens: int = 384
    fallback: bool | None = None  # extractive answers while the LLM is down; None = the settings' default

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not POLICY_NAME_RE.fullmatch(self.name):
            raise InputError(f"invalid policy name {self.name!r}: use 1-64 letters, digits, '_', '-' or '.'")
        self._check(isinstance(self.alias, str) and bool(self.alias.strip()), "alias", "a non-empty name")
        problem = self.knob_problem()
        if problem:
            raise self._invalid(problem)
        self._check(self.top_n <= self.top_k, "top_n", f"at most top_k ({self.top_k})")
        self._check(
            self.system_prompt is None or isinstance(self.system_prompt, str), "system_prompt", "text"
        )
        self._check(
            self.model is None or (isinstance(self.model, str) and bool(self.model)), "model", "a name"
        )
        self._check(_is_int(self.max_tokens) and self.max_tokens >= 1, "max_tokens", "an integer >= 1")
        self._check(
            self.fallback is None or isinstance(self.fallback, bool), "fallback", "true, false or unset"
        )

    def _check(self, ok: bool, field: str, expected: str) -> None:
        if not ok:
            raise self._invalid(f"{field} must be {expected}, got {getattr(self, field)!r}")

    def _invalid(self, problem: str) -> InputError:
        return InputError(f"policy '{self.name}': {problem}; fix [policies.{self.name}] in ragdeck.toml")

    @classmethod
    def from_mapping(cls, name: str, values: Mapping[str, Any], defaults: Policy | None = None) -> Policy:
        """A policy from a TOML table; keys not given come from ``defaults`` (unknown keys: InputError)."""
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"policy '{name}': unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        base = {f: getattr(defaults, f) for f in known} if defaults is not None else {}
        return cls(name=name, **{**base, **dict(values)})

    def as_dict(self) -> dict[str, Any]:
        """Every field, name and alias first (JSON-ready), e.g. for the API's ``GET /admin/routing``."""
        return {"name": self.name, "alias": self.alias, **asdict(self)}

    def retrieval_params(self) -> RetrievalParams:
        """The retrieval knobs of this policy as ``RetrievalParams``."""
        return RetrievalParams(**{**self.knobs(), "dense_weight": float(self.dense_weight)})

    @property
    def cache_id(self) -> str:
        """The name plus a digest of every knob: cached answers of a policy end when any knob changes."""
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.name}@{digest}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def default_policy(name: str, settings: Settings) -> Policy:
    """A policy with the settings' alias, retrieval knobs (top_n capped at top_k) and max tokens."""
    knobs = {knob: getattr(settings, knob) for knob in KNOBS if knob in Settings.model_fields}
    return Policy(
        name=name,
        alias=settings.alias,
        max_tokens=settings.llm_max_tokens,
        **{**knobs, "top_n": min(settings.top_n, settings.top_k)},
    )


def load_policies(settings: Settings, overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Policy]:
    """Policies by name from ``settings.policies``, else "A" and "B" built from the retrieval settings.

    Each TOML table starts from the settings' defaults and overrides what it names. Then the run-time
    ``overrides`` apply (policy -> {field: value}, e.g. a default ``hnsw_ef`` applied from the Tune page;
    ``wiring.build_policies`` reads them from the state database; overrides of unknown policies are
    ignored). Raises ConfigError when
    ``control_policy`` or ``canary_policy`` names no policy, or when they are the same one.
    """
    tables = settings.policies or {}
    if tables:
        policies = {}
        for name, values in tables.items():
            policies[name] = Policy.from_mapping(name, values, default_policy(name, settings))
    else:
        policies = {name: default_policy(name, settings) for name in ("A", "B")}
    for name, values in overrides.items():
        if name in policies and values:
            policies[name] = Policy.from_mapping(name, values, policies[name])
    for role, name in (
        ("control_policy", settings.control_policy),
        ("canary_policy", settings.canary_policy),
    ):
        if name not in policies:
            raise ConfigError(
                f"{role} is '{name}' but the policies are {', '.join(sorted(policies))}: "
                f"set RAGDECK_{role.upper()} to one of them or add a [policies.{name}] table"
            )
    if settings.control_policy == settings.canary_policy:
        raise ConfigError(
            f"control_policy and canary_policy are both '{settings.control_policy}': name two policies"
        )
    return policies


class LivePolicies(Mapping[str, Policy]):
    """The policies of ``load_policies`` for a long-running process (the RAG API, the console's answering
    service): the run-time overrides are read again with ``read`` (``wiring.build_rag_service`` hands it the
    state database's) at most every ``refresh_s`` seconds, so a default ef applied with ``ragdeck hnsw
    apply`` or the Tune page reaches it live. A read that fails, or an override that makes a policy invalid,
    keeps the policies as they were."""

    def __init__(
        self,
        settings: Settings,
        read: Callable[[], Mapping[str, Mapping[str, Any]]],
        *,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._settings = settings
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._overrides = self._read()
        self._policies = load_policies(settings, self._overrides)
        self._checked = clock()

    def _current(self) -> dict[str, Policy]:
        if self._clock() - self._checked >= self._refresh_s:
            with self._lock:
                if self._clock() - self._checked >= self._refresh_s:
                    self._checked = self._clock()
                    try:
                        overrides = self._read()
                        if overrides != self._overrides:
                            self._policies = load_policies(self._settings, overrides)
                            self._overrides = overrides
                    except Exception:  # keep serving with the policies as they were
                        pass
        return self._policies

    def __getitem__(self, name: str) -> Policy:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())
