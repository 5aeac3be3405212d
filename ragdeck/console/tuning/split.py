"""Splitting an eval set's questions into tune and test questions, reproducibly from a recorded seed."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragdeck.errors import InputError

DEFAULT_TEST_FRACTION = 0.3
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Which questions a study tunes on and which it tests on: disjoint, and the same for the same ids,
    seed and fraction."""

    seed: int
    test_fraction: float
    tune_ids: tuple[str, ...]
    test_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The split as a study's report records it."""
        return {
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "tune_ids": list(self.tune_ids),
            "test_ids": list(self.test_ids),
        }


def split_questions(
    ids: Sequence[str], *, seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION
) -> Split:
    """Shuffle the (distinct) ids with ``random.Random(seed)`` and hold out ``round(test_fraction × n)`` of
    them (at least one on each side) as test questions; both sides keep the set's order. InputError for a
    fraction outside (0, 1), repeated ids, or fewer than 2 questions."""
    if not 0 < test_fraction < 1:
        raise InputError(f"the test fraction must be between 0 and 1 (e.g. 0.3), got {test_fraction}")
    if len(set(ids)) != len(ids):
        raise InputError("the eval set repeats a question id: give every question its own id")
    if len(ids) < 2:
        raise InputError(
            f"a study needs at least 2 questions (one to tune on, one to test on); the set has {len(ids)}"
        )
    test_size = min(len(ids) - 1, max(1, math.floor(test_fraction * len(ids) + 0.5)))
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    held_out = set(shuffled[:test_size])
    return Split(
        seed=seed,
        test_fraction=test_fraction,
        tune_ids=tuple(i for i in ids if i not in held_out),
        test_ids=tuple(i for i in ids if i in held_out),
    )
