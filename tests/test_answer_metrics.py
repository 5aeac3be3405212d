"""Answer metrics: SQuAD normalisation, exact match and token F1, on worked examples and against the official
SQuAD v1.1 evaluation script's functions (transcribed below)."""

from __future__ import annotations

import re
import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragdeck.console.evaluation.answer_metrics import exact_match, normalize_answer, token_f1


def squad_normalize(s):
    """normalize_answer of the SQuAD v1.1 evaluate script."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction, ground_truth):
    """f1_score of the SQuAD v1.1 evaluate script."""
    prediction_tokens = squad_normalize(prediction).split()
    ground_truth_tokens = squad_normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an  apple a day ", "apple day"),
        ("Theory of the atom", "theory of atom"),  # whole words only: 'Theory' keeps its 'the'
        ("U.S.A.!", "usa"),
        ("rock-'n'-roll", "rocknroll"),
        ("A\tB\nC", "b c"),  # 'a' is an article
        ("«Café»", "«café»"),  # only ASCII punctuation is removed, as in SQuAD
        ("", ""),
        ("The, a; an.", ""),
    ],
)
def test_normalize_answer(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match():
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel  tower!", "the eiffel tower") == 1.0
    assert exact_match("Eiffel Tower in Paris", "Eiffel Tower") == 0.0
    assert exact_match("", "the") == 1.0  # both normalise to ""
    assert exact_match("Paris", "") == 0.0


def test_token_f1_worked_numbers():
    # prediction [cat, sat, on, mat], reference [cat, sat]: overlap 2, P = 2/4, R = 2/2, F1 = 2/3
    assert token_f1("The cat sat on the mat", "a cat sat") == pytest.approx(2 / 3)
    # overlap counts a repeated token only as often as it is in both: [to, to, be] vs [to, be, or]: 2
    assert token_f1("to to be", "to be or") == pytest.approx(2 / 3)
    # [new, york, city] vs [york]: P = 1/3, R = 1, F1 = 0.5
    assert token_f1("New York City", "York") == pytest.approx(0.5)
    assert token_f1("Paris!", "the paris") == 1.0
    assert token_f1("London", "Paris") == 0.0


def test_token_f1_empty_answers():
    assert token_f1("", "") == 1.0
    assert token_f1("the.", "a") == 1.0  # both empty after normalisation
    assert token_f1("", "Paris") == 0.0
    assert token_f1("Paris", "an") == 0.0


text = st.text(alphabet=st.sampled_from(list("abt hena.,!'-ATHE\t")), max_size=30)


@settings(max_examples=150, deadline=None)
@given(prediction=text, reference=text)
def test_equal_to_the_squad_script(prediction, reference):
    assert normalize_answer(prediction) == squad_normalize(prediction)
    assert exact_match(prediction, reference) == float(
        squad_normalize(prediction) == squad_normalize(reference)
    )
    both_empty = not squad_normalize(prediction) and not squad_normalize(reference)
    expected = 1.0 if both_empty else squad_f1(prediction, reference)  # the one documented difference
    assert token_f1(prediction, reference) == pytest.approx(expected, abs=1e-12)
