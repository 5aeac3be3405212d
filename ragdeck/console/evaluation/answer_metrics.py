"""Answer metrics against a reference answer: SQuAD exact match and token F1.

The normalisation and the token overlap are those of the official SQuAD v1.1 evaluation script; one edge case
follows the SQuAD v2.0 script instead: a prediction and a reference that are both empty after normalisation
score F1 1.0 (v1.1 gives 0.0), so an answer of "The." to a reference of "a" is not counted as wrong.
"""

from __future__ import annotations

import re
import string
from collections import Counter

__all__ = ["exact_match", "normalize_answer", "token_f1"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, ASCII punctuation removed, articles a/an/the removed, runs of
    whitespace made one space, ends stripped. ``"The  Cat's hat!"`` → ``"cats hat"``."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of the normalised answers split on whitespace.

    overlap = size of the multiset intersection of the tokens; precision = overlap / prediction tokens,
    recall = overlap / reference tokens, F1 = 2PR / (P + R). Both empty → 1.0; one empty → 0.0.
    """
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return 2 * precision * recall / (precision + recall)
