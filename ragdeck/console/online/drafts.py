"""Draft policies: a retrieval study's chosen configuration, kept by name until someone tries it as the
canary, and the one-step try and undo.

A draft is a name, the retrieval knobs it sets (``console.knobs.KNOBS``: top_k, top_n, hnsw_ef, rerank,
retrieval, fusion, rrf_k, dense_weight; each checked by its knob, so a fusion the knobs accept is accepted
here), the study it came from and a small summary of the study's verdict (e.g. the metric, the test means of
the chosen and the baseline configuration, their paired difference with its interval and p-value, the
optimism), who saved it and when. ``PolicyDrafts`` (``wiring.build_policy_drafts``) saves, lists, reads and
deletes them; ``apply_draft`` makes a draft's knobs the canary policy's run-time overrides (the ones the RAG
API's ``LivePolicies`` reads live), remembering what those fields held, and ``undo_draft`` puts that back.
Both need the operator role when the actor is a user and leave an audit entry naming the draft and study.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ragdeck.console import audit
from ragdeck.console.knobs import KNOBS, knob_problem
from ragdeck.console.online.ports import DraftStore
from ragdeck.console.retrieval.policies import load_policies
from ragdeck.console.retrieval.ports import PolicyOverrideStore
from ragdeck.console.roles import User, require
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, InputError

__all__ = [
    "Draft",
    "DraftApplication",
    "PolicyDrafts",
    "apply_draft",
    "check_knobs",
    "standing_draft",
    "summary_text",
    "undo_draft",
]

DRAFT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Draft:
    """A saved draft policy."""

    name: str
    knobs: dict[str, Any]
    study_id: str | None
    summary: dict[str, Any]
    created_by: str
    created_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Draft:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def knobs_text(self) -> str:
        """ "top_k=60, fusion=rrf, ..." in the knobs' order."""
        return ", ".join(f"{name}={self.knobs[name]}" for name in KNOBS if name in self.knobs)


def summary_text(summary: Mapping[str, Any]) -> str:
    """One line of a study summary: metric, test means chosen vs baseline, difference [interval], p,
    optimism (the keys present; others are left to the JSON)."""

    def num(key: str, fmt: str = ".4f") -> str | None:
        value = summary.get(key)
        return format(value, fmt) if isinstance(value, int | float) and math.isfinite(value) else None

    parts = []
    if summary.get("metric"):
        parts.append(str(summary["metric"]))
    chosen, baseline = num("test_mean_chosen"), num("test_mean_baseline")
    if chosen and baseline:
        parts.append(f"test: chosen {chosen} vs baseline {baseline}")
    if (diff := num("diff", "+.4f")) is not None:
        low, high = num("low", "+.4f"), num("high", "+.4f")
        parts.append(f"Δ {diff}" + (f" [{low}, {high}]" if low and high else ""))
    if (p := num("p_value", ".3g")) is not None:
        parts.append(f"p = {p}")
    if (optimism := num("optimism", "+.4f")) is not None:
        parts.append(f"optimism {optimism}")
    return " · ".join(parts) or "no summary"


def check_knobs(knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs as a plain dict; InputError naming an unknown knob or the first value its knob refuses."""
    if not isinstance(knobs, Mapping) or not knobs:
        raise InputError(f"a draft sets at least one knob ({', '.join(KNOBS)}), got {knobs!r}")
    unknown = [name for name in knobs if name not in KNOBS]
    if unknown:
        raise InputError(
            f"unknown knob {', '.join(map(repr, unknown))}: a draft sets only {', '.join(KNOBS)}"
        )
    problem = knob_problem(knobs)
    if problem:
        raise InputError(f"draft knob {problem}")
    return dict(knobs)


class PolicyDrafts:
    """Draft policies in a ``DraftStore`` (the state database), audited in ``log``."""

    def __init__(self, store: DraftStore, log: audit.AuditLog) -> None:
        self.store = store
        self.log = log

    def save_draft(
        self,
        name: str,
        knobs: Mapping[str, Any],
        *,
        study_id: str | None,
        summary: Mapping[str, Any] | None = None,
        actor: User | str,
    ) -> Draft:
        """Save (or replace) draft ``name`` setting ``knobs``; a user needs the engineer role. InputError
        for a bad name, an unknown knob, a value out of range or a summary that is not JSON."""
        if not isinstance(name, str) or not DRAFT_NAME_RE.fullmatch(name):
            raise InputError(
                f"invalid draft name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a "
                "letter or digit"
            )
        checked = check_knobs(knobs)
        if isinstance(actor, User):
            require(actor, "policy.draft", target=f"draft:{name}", log=self.log)
        try:
            row = self.store.put(name, checked, study_id, dict(summary or {}), _name(actor))
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"the summary of draft {name!r} must be JSON (numbers, text, lists): {exc}"
            ) from None
        audit.record(
            actor,
            "policy.draft",
            f"draft:{name}",
            after={"knobs": checked, "study_id": study_id},
            log=self.log,
        )
        return Draft.from_row(row)

    def list_drafts(self) -> list[Draft]:
        """Every draft, newest first."""
        return [Draft.from_row(r) for r in self.store.list()]

    def get_draft(self, name: str) -> Draft:
        """Draft ``name``; InputError naming the drafts there are when it does not exist."""
        row = self.store.get(name)
        if row is None:
            names = [r["name"] for r in self.store.list()]
            raise InputError(
                f"no draft named {name!r}: "
                + (f"use one of {', '.join(names)}" if names else "no draft is saved yet (a study saves one)")
            )
        return Draft.from_row(row)

    def delete_draft(self, name: str, actor: User | str) -> Draft:
        """Delete draft ``name`` (its applications stay on record, and an applied one can still be undone);
        a user needs the engineer role. Returns what was deleted."""
        draft = self.get_draft(name)
        if isinstance(actor, User):
            require(actor, "policy.draft", target=f"draft:{name}", log=self.log)
        self.store.delete(name)
        audit.record(
            actor, "policy.draft.delete", f"draft:{name}", before={"knobs": draft.knobs}, log=self.log
        )
        return draft


def _name(actor: User | str) -> str:
    return actor if isinstance(actor, str) else actor.name


@dataclass(frozen=True)
class DraftApplication:
    """What trying (or undoing) a draft did to a policy: each knob's effective value before and after."""

    draft: str
    study_id: str | None
    policy: str
    changes: list[tuple[str, Any, Any]]  # (knob, before, after), every knob the draft sets
    kept: list[str] = field(default_factory=list)  # undo: fields changed by someone since, left as they are
    at: float = field(default_factory=time.time)

    @property
    def changed(self) -> list[tuple[str, Any, Any]]:
        """The knobs whose value moved."""
        return [c for c in self.changes if c[1] != c[2]]

    def lines(self) -> list[str]:
        """ "knob: old → new" per changed knob (or "no knob changed")."""
        return [f"{k}: {b} → {a}" for k, b, a in self.changed] or [
            "no knob changed: the policy had these values"
        ]


def _policy_after(settings: Settings, overrides: dict[str, dict[str, Any]], policy: str) -> Any:
    try:
        policies = load_policies(settings, overrides)
    except (InputError, ConfigError) as exc:
        raise InputError(f"policy {policy!r} would not load with these values: {exc}") from None
    if policy not in policies:
        raise InputError(f"unknown policy {policy!r}: use one of {', '.join(sorted(policies))}")
    return policies[policy]


def apply_draft(
    settings: Settings,
    name: str,
    policy: str,
    *,
    actor: User | str,
    drafts: PolicyDrafts,
    overrides: PolicyOverrideStore,
    log: audit.AuditLog,
) -> DraftApplication:
    """Make draft ``name``'s knobs the run-time overrides of ``policy`` (the canary), in one transaction,
    after checking the policy still loads with them (else InputError, nothing written); remember what
    those fields held for ``undo_draft``; audit ``canary.draft`` naming the draft and study. A user needs
    the operator role."""
    draft = drafts.get_draft(name)
    if isinstance(actor, User):
        require(actor, "canary.draft", target=f"policy:{policy}", log=log)
    current = overrides.all()
    before = _policy_after(settings, current, policy)
    knobs = check_knobs(draft.knobs)  # a draft saved by an older ragdeck may name a knob gone since
    wanted = {**current, policy: {**current.get(policy, {}), **knobs}}
    # The API's LivePolicies keeps the old policies when new overrides fail to load, so check here first.
    after = _policy_after(settings, wanted, policy)
    previous = overrides.set_fields(policy, knobs, actor=_name(actor))
    drafts.store.record_application(
        draft=name, study_id=draft.study_id, policy=policy, knobs=knobs, previous=previous, actor=_name(actor)
    )
    changes = [(k, getattr(before, k), getattr(after, k)) for k in KNOBS if k in knobs]
    audit.record(
        actor,
        "canary.draft",
        f"policy:{policy}",
        before={k: b for k, b, _ in changes},
        after={k: a for k, _, a in changes},
        reason=f"draft {name} from study {draft.study_id or '(none)'}",
        log=log,
    )
    return DraftApplication(name, draft.study_id, policy, changes)


def standing_draft(drafts: PolicyDrafts, policy: str) -> dict[str, Any] | None:
    """The newest draft application to ``policy`` not undone yet (draft, study_id, knobs, applied_by,
    applied_at, ...), or None."""
    return drafts.store.standing(policy)


def undo_draft(
    settings: Settings,
    policy: str,
    *,
    actor: User | str,
    drafts: PolicyDrafts,
    overrides: PolicyOverrideStore,
    log: audit.AuditLog,
) -> DraftApplication:
    """Put back the overrides of ``policy`` that the newest standing draft application replaced: a field
    that had an override gets it again, one that had none is cleared. A field someone changed since (it no
    longer holds the draft's value) is left as it is and listed in ``kept``. InputError when no draft
    application stands; a user needs the operator role; audited as ``canary.draft.undo``."""
    standing = drafts.store.standing(policy)
    if standing is None:
        raise InputError(f"no draft is applied to policy {policy!r}: nothing to undo")
    if isinstance(actor, User):
        require(actor, "canary.draft.undo", target=f"policy:{policy}", log=log)
    current = overrides.all()
    now = current.get(policy, {})
    before = _policy_after(settings, current, policy)
    previous: dict[str, Any] = standing["previous"]
    ours = [k for k, v in standing["knobs"].items() if k in now and now[k] == v]
    kept = [k for k in standing["knobs"] if k not in ours]
    restore = {k: previous[k] for k in ours if k in previous}
    clear = tuple(k for k in ours if k not in previous)
    wanted = {**current, policy: {**{k: v for k, v in now.items() if k not in clear}, **restore}}
    after = _policy_after(settings, wanted, policy)
    if restore or clear:
        overrides.set_fields(policy, restore, clear=clear, actor=_name(actor))
    drafts.store.mark_undone(int(standing["id"]), _name(actor))
    changes = [(k, getattr(before, k), getattr(after, k)) for k in KNOBS if k in standing["knobs"]]
    audit.record(
        actor,
        "canary.draft.undo",
        f"policy:{policy}",
        before={k: b for k, b, _ in changes},
        after={k: a for k, _, a in changes},
        reason=f"undo draft {standing['draft']} from study {standing['study_id'] or '(none)'}"
        + (f"; left as changed since: {', '.join(kept)}" if kept else ""),
        log=log,
    )
    return DraftApplication(standing["draft"], standing["study_id"], policy, changes, kept)
