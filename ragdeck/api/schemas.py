"""Request bodies of the RAG API (pydantic), strict so that bad input is a 422, never a guess or a 500.

Every model refuses unknown fields (typos do not pass silently), takes JSON types as they are (``true`` is not
a number, ``"0.5"`` is not a float; an integer is accepted where a float is wanted), takes finite numbers only
(``NaN``, ``Infinity`` and ``1e309`` are refused) and refuses control characters in text (tab, newline and
carriage return excepted). ``ErrorBody`` is the one shape of every 4xx answer.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_BODY_BYTES = 64 * 1024
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _printable(value: str) -> str:
    """``value`` unchanged; ValueError naming the first control character or lone surrogate in it."""
    for position, char in enumerate(value):
        if char not in _ALLOWED_CONTROLS and unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(
                f"control character U+{ord(char):04X} at position {position}: send plain text "
                "(tab, newline and carriage return are allowed)"
            )
    return value


Text = Annotated[str, AfterValidator(_printable)]
"""A string without control characters (tab, newline and carriage return allowed) or lone surrogates."""

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ErrorBody(BaseModel):
    """The body of every 4xx (and 5xx) answer: one message that says what went wrong and what to do."""

    error: str = Field(..., min_length=1, description="What went wrong and how to fix the request.")


class QueryRequest(BaseModel):
    """``POST /query``."""

    model_config = STRICT

    question: Text = Field(..., max_length=2000, description="The question to answer.")
    user_id: Text | None = Field(None, max_length=256, description="Stable id for canary routing.")
    policy: Text | None = Field(None, max_length=64, description="Force a policy by name (else routed).")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty: send a non-empty question")
        return value


class FeedbackRequest(BaseModel):
    """``POST /feedback``: a vote on one answer, named by the ``response_id`` that ``/query`` returned.

    One vote per answer: a later vote on the same ``response_id`` replaces the earlier one.
    """

    model_config = STRICT

    response_id: Text = Field(..., min_length=1, max_length=64)
    vote: Literal["up", "down"]
    comment: Text | None = Field(None, max_length=2000)


class WeightUpdate(BaseModel):
    """``PUT /admin/routing/weight``: the share of users (0..1) routed to a policy."""

    model_config = STRICT

    policy: Text = Field(..., min_length=1, max_length=64)
    weight: float = Field(..., ge=0.0, le=1.0)
    reason: Text = Field("", max_length=500)
    actor: Text | None = Field(None, min_length=1, max_length=64)  # who acts, as the token holder says


class ThresholdUpdate(BaseModel):
    """``PUT /admin/routing/thresholds``: any subset of the guard's thresholds."""

    model_config = STRICT

    p95_ms: float | None = Field(None, gt=0)
    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    min_samples: int | None = Field(None, ge=1, le=1_000_000_000)
    window_s: float | None = Field(None, gt=0)
    reason: Text = Field("", max_length=500)
    actor: Text | None = Field(None, min_length=1, max_length=64)  # who acts, as the token holder says

    @field_validator("min_samples", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        """A whole float (``20.0``, as the console sends it) is the integer it names; ``true`` is not."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def values(self) -> dict[str, float]:
        """Only the thresholds that were sent."""
        return {k: float(v) for k, v in self.model_dump(exclude={"reason", "actor"}).items() if v is not None}
