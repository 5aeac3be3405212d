"""Request bodies of the RAG API (pydantic): unknown fields are refused so typos do not pass silently."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_BODY_BYTES = 64 * 1024


class QueryRequest(BaseModel):
    """``POST /query``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., max_length=2000, description="The question to answer.")
    user_id: str | None = Field(None, max_length=256, description="Stable id for canary routing.")
    policy: str | None = Field(None, max_length=64, description="Force a policy by name (else routed).")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty: send a non-empty question")
        return value


class FeedbackRequest(BaseModel):
    """``POST /feedback``: a vote on one answer, named by the ``response_id`` that ``/query`` returned."""

    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(..., min_length=1, max_length=64)
    vote: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class WeightUpdate(BaseModel):
    """``PUT /admin/routing/weight``: the share of users (0..1) routed to a policy."""

    model_config = ConfigDict(extra="forbid")

    policy: str = Field(..., min_length=1, max_length=64)
    weight: float = Field(..., ge=0.0, le=1.0)
    reason: str = Field("", max_length=500)


class ThresholdUpdate(BaseModel):
    """``PUT /admin/routing/thresholds``: any subset of the guard's thresholds."""

    model_config = ConfigDict(extra="forbid")

    p95_ms: float | None = Field(None, gt=0)
    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    min_samples: int | None = Field(None, ge=1)
    window_s: float | None = Field(None, gt=0)

    def values(self) -> dict[str, float]:
        """Only the thresholds that were sent."""
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}
