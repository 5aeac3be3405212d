"""Inter-annotator agreement: Cohen's and Fleiss' kappa, Krippendorff's alpha, Jaccard, and per-question /
overall agreement on chunk relevance.

Pure functions on plain Python values. A statistic that is undefined for the data given (no items, or
every rating in one category so that chance agreement is 1) is ``nan``, never an exception; malformed
input (unequal lengths, unequal raters per item where the statistic needs them) raises ``InputError``.

Relevance labels: 0 = not relevant, 1 = partly relevant, 2 = relevant. On a question, the items compared
are the union of the chunks any annotator judged (plus the ``candidates`` shown, when given); a chunk an
annotator did not judge counts as 0 (not relevant) for that annotator, because the annotate page shows the
candidate chunks and an unticked one is a "no".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from ragdeck.errors import InputError

__all__ = [
    "OverallAgreement",
    "QuestionAgreement",
    "cohen_kappa",
    "fleiss_kappa",
    "fleiss_kappa_from_ratings",
    "jaccard",
    "krippendorff_alpha",
    "overall_agreement",
    "question_agreement",
]

NAN = float("nan")
Level = Literal["nominal", "ordinal", "interval", "ratio"]
LabelsByAnnotator = Mapping[str, Mapping[str, int]]


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ordered(values: Iterable[Hashable], *, need_order: bool) -> list[Hashable]:
    """Distinct values, sorted when they can be (required when ``need_order``), else in first-seen order."""
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct)  # type: ignore[type-var]
    except TypeError:
        if need_order:
            raise InputError(
                f"labels {distinct!r} cannot be ordered: weighted / ordinal statistics need comparable labels"
            ) from None
        return distinct


def cohen_kappa(
    a: Sequence[Hashable], b: Sequence[Hashable], weights: Literal["linear", "quadratic"] | None = None
) -> float:
    """Cohen's kappa of two raters who labelled the same items (nominal labels).

    κ = (p_o − p_e) / (1 − p_e), with p_o the share of items both gave the same label and
    p_e = Σ_c p_a(c)·p_b(c) the agreement expected from each rater's own label frequencies.
    With ``weights`` ("linear": w = |i−j|, "quadratic": w = (i−j)², i and j the positions of the labels in
    sorted order, as scikit-learn does): κ = 1 − Σ w·O / Σ w·E. Edge cases: no items, or p_e = 1 (both
    raters used one and the same label throughout) → nan. Different lengths → InputError.
    """
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise InputError(f"the two raters labelled different numbers of items ({len(a)} and {len(b)})")
    if weights not in (None, "linear", "quadratic"):
        raise InputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    n = len(a)
    if n == 0:
        return NAN
    labels = _ordered(a + b, need_order=weights is not None)
    index = {label: i for i, label in enumerate(labels)}
    observed = Counter((index[x], index[y]) for x, y in zip(a, b, strict=True))
    rows, cols = Counter(index[x] for x in a), Counter(index[y] for y in b)

    def weight(i: int, j: int) -> float:
        if weights is None:
            return 0.0 if i == j else 1.0
        return float(abs(i - j) if weights == "linear" else (i - j) ** 2)

    disagree = sum(weight(i, j) * count for (i, j), count in observed.items()) / n
    expected = sum(weight(i, j) * rows[i] * cols[j] for i in rows for j in cols) / (n * n)
    if expected == 0:
        return NAN
    return 1.0 - disagree / expected


def fleiss_kappa(table: Sequence[Sequence[float]]) -> float:
    """Fleiss' kappa from an items × categories table of counts; every item has the same number n of ratings.

    p_j = Σ_i n_ij / (N·n); P_i = (Σ_j n_ij² − n) / (n(n − 1)); P̄ = mean P_i; P_e = Σ_j p_j²;
    κ = (P̄ − P_e) / (1 − P_e). Raters may differ from item to item; only their number is fixed.
    Edge cases: no items, or every rating in one category (P_e = 1) → nan. Rows of unequal sums, fewer
    than 2 ratings per item, negative counts or ragged rows → InputError (use ``krippendorff_alpha`` for
    missing ratings).
    """
    rows = [[float(x) for x in row] for row in table]
    if not rows:
        return NAN
    width, n = len(rows[0]), sum(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputError(f"row {i} of the Fleiss table has {len(row)} categories, expected {width}")
        if any(x < 0 for x in row):
            raise InputError(f"row {i} of the Fleiss table has a negative count: {row}")
        if not math.isclose(sum(row), n):
            raise InputError(
                f"item {i} has {sum(row):g} ratings but item 0 has {n:g}: Fleiss' kappa needs the same "
                "number of ratings per item; use krippendorff_alpha when some ratings are missing"
            )
    if n < 2:
        raise InputError(f"Fleiss' kappa needs at least 2 ratings per item, got {n:g}")
    big_n = len(rows)
    p = [sum(row[j] for row in rows) / (big_n * n) for j in range(width)]
    p_bar = sum((sum(x * x for x in row) - n) / (n * (n - 1)) for row in rows) / big_n
    p_e = sum(x * x for x in p)
    if p_e >= 1.0:
        return NAN
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa_from_ratings(
    ratings: Iterable[Sequence[Hashable]], categories: Sequence[Hashable] | None = None
) -> float:
    """Fleiss' kappa from each item's list of labels (one per rater; the same number of raters per item).

    Builds the items × categories count table over ``categories`` (default: every label seen) and calls
    ``fleiss_kappa``. A missing rating (None) raises InputError: use ``krippendorff_alpha`` then.
    """
    items = [list(item) for item in ratings]
    for i, item in enumerate(items):
        if any(_is_missing(x) for x in item):
            raise InputError(f"item {i} has a missing rating: use krippendorff_alpha for incomplete data")
    cats = (
        list(categories)
        if categories is not None
        else _ordered((x for item in items for x in item), need_order=False)
    )
    index = {c: j for j, c in enumerate(cats)}
    table = []
    for i, item in enumerate(items):
        counts = [0] * len(cats)
        for label in item:
            if label not in index:
                raise InputError(f"item {i} has label {label!r}, which is not among the categories {cats!r}")
            counts[index[label]] += 1
        table.append(counts)
    return fleiss_kappa(table)


def _delta(level: str, domain: list[Hashable], n_v: list[float]) -> list[list[float]]:
    """Squared distance δ²(c, k) between the values of ``domain`` at the given level of measurement."""
    size = len(domain)
    if level == "nominal":
        return [[0.0 if c == k else 1.0 for k in range(size)] for c in range(size)]
    if level == "ordinal":
        prefix = [0.0]
        for count in n_v:
            prefix.append(prefix[-1] + count)

        def ordinal(c: int, k: int) -> float:
            lo, hi = min(c, k), max(c, k)
            return (prefix[hi + 1] - prefix[lo] - (n_v[c] + n_v[k]) / 2) ** 2

        return [[ordinal(c, k) for k in range(size)] for c in range(size)]
    try:
        values = [float(v) for v in domain]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{level} alpha needs numeric values, got {domain!r}") from None
    if level == "interval":
        return [[(x - y) ** 2 for y in values] for x in values]
    return [[((x - y) / (x + y)) ** 2 if x + y != 0 else 0.0 for y in values] for x in values]


def krippendorff_alpha(
    reliability_data: Sequence[Sequence[object]],
    level: Level = "nominal",
    value_domain: Sequence[Hashable] | None = None,
) -> float:
    """Krippendorff's alpha of a raters × items matrix; ``None`` (or NaN) marks a missing rating.

    Items with fewer than 2 ratings are not pairable and are left out. From the coincidence matrix
    o_ck = Σ_u (number of c–k pairs of ratings by different raters in item u) / (m_u − 1), with
    n_c = Σ_k o_ck and n = Σ_c n_c: α = 1 − D_o / D_e, D_o = Σ o_ck δ²(c,k) / n,
    D_e = Σ n_c n_k δ²(c,k) / (n(n − 1)). δ²: nominal 0 if c = k else 1; ordinal
    (Σ_{g=c..k} n_g − (n_c + n_k)/2)² over the ordered ``value_domain`` (default: the sorted values seen);
    interval (c − k)²; ratio ((c − k)/(c + k))². Edge cases: no pairable item, or a single value among the
    pairable ratings (D_e = 0) → nan. Rows of different lengths or an unknown level → InputError.
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise InputError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    rows = [list(row) for row in reliability_data]
    if not rows:
        return NAN
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise InputError(
            f"every rater needs one entry per item (None when missing); lengths {[len(r) for r in rows]}"
        )
    units = [[row[j] for row in rows if not _is_missing(row[j])] for j in range(width)]
    units = [unit for unit in units if len(unit) >= 2]
    if not units:
        return NAN
    seen = (v for unit in units for v in unit)
    domain = list(value_domain) if value_domain is not None else _ordered(seen, need_order=level != "nominal")
    index = {v: i for i, v in enumerate(domain)}
    size = len(domain)
    o = [[0.0] * size for _ in range(size)]
    for unit in units:
        try:
            counts = Counter(index[v] for v in unit)  # type: ignore[index]
        except KeyError as exc:
            raise InputError(f"value {exc.args[0]!r} is not in the value domain {domain!r}") from None
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                o[c][k] += (n_c * n_k - (n_c if c == k else 0)) / (len(unit) - 1)
    n_v = [sum(row) for row in o]
    n = sum(n_v)
    delta = _delta(level, domain, n_v)
    observed = sum(o[c][k] * delta[c][k] for c in range(size) for k in range(size))
    expected = sum(n_v[c] * n_v[k] * delta[c][k] for c in range(size) for k in range(size)) / (n - 1)
    if expected == 0:
        return NAN
    return 1.0 - observed / expected


def jaccard(set_a: Iterable[Hashable], set_b: Iterable[Hashable]) -> float:
    """|A ∩ B| / |A ∪ B|; both empty → 1.0 (two annotators who both found nothing agree)."""
    a, b = set(set_a), set(set_b)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass(frozen=True)
class QuestionAgreement:
    """Agreement of the annotators of one question.

    ``jaccard``: mean over annotator pairs of the Jaccard of their gold sets (relevance ≥ min_relevance);
    ``kappa``: Cohen's (2 annotators) or Fleiss' (3+) kappa on the relevance of ``chunks``; ``alpha``:
    Krippendorff's alpha at ``alpha_level``. All three are nan with fewer than 2 annotators.
    ``disagreements``: chunks that did not get the same relevance from everyone.
    """

    annotators: tuple[str, ...]
    chunks: tuple[str, ...]
    gold_sets: dict[str, frozenset[str]]
    pairwise_jaccard: dict[tuple[str, str], float]
    jaccard: float
    kappa: float
    kappa_method: str
    alpha: float
    alpha_level: str
    disagreements: tuple[str, ...]


@dataclass(frozen=True)
class OverallAgreement:
    """Agreement pooled over every question with 2+ annotators; each (question, chunk) is one item.

    ``kappa_method`` is "cohen" when every pooled item has the same two annotators, "fleiss" when every
    item has the same number of annotators (not necessarily the same people), else "none" (kappa nan; read
    alpha, which allows a varying number of raters). ``mean_jaccard`` averages the per-question Jaccard.
    """

    n_questions: int
    n_items: int
    annotators: tuple[str, ...]
    kappa: float
    kappa_method: str
    alpha: float
    alpha_level: str
    mean_jaccard: float
    per_question: dict[str, QuestionAgreement]


def _check_min_relevance(min_relevance: int) -> None:
    if min_relevance not in (1, 2):
        raise InputError(f"min_relevance must be 1 (partly relevant) or 2 (relevant), got {min_relevance!r}")


def _items(labels: LabelsByAnnotator, candidates: Iterable[str] | None) -> tuple[str, ...]:
    judged = {chunk for by_chunk in labels.values() for chunk in by_chunk}
    return tuple(sorted(judged | set(candidates or ())))


def question_agreement(
    labels_by_annotator: LabelsByAnnotator,
    candidates: Iterable[str] | None = None,
    *,
    min_relevance: int = 1,
    level: Level = "ordinal",
) -> QuestionAgreement:
    """Agreement on one question: ``labels_by_annotator`` maps annotator → {chunk id: relevance 0/1/2}.

    Items: the union of judged chunks and ``candidates``; an unjudged chunk is 0 for that annotator.
    An annotator with an empty mapping judged nothing relevant (gold set empty) and still counts.
    """
    _check_min_relevance(min_relevance)
    annotators = tuple(sorted(labels_by_annotator))
    chunks = _items(labels_by_annotator, candidates)
    grades = {a: [int(labels_by_annotator[a].get(c, 0)) for c in chunks] for a in annotators}
    gold = {
        a: frozenset(c for c, r in labels_by_annotator[a].items() if r >= min_relevance) for a in annotators
    }
    pairwise = {(x, y): jaccard(gold[x], gold[y]) for x, y in combinations(annotators, 2)}
    disagreements = tuple(c for i, c in enumerate(chunks) if len({grades[a][i] for a in annotators}) > 1)
    if len(annotators) < 2:
        kappa, method, alpha = NAN, "none", NAN
    elif len(annotators) == 2:
        kappa, method = cohen_kappa(grades[annotators[0]], grades[annotators[1]]), "cohen"
        alpha = krippendorff_alpha([grades[a] for a in annotators], level)
    else:
        per_item = [[grades[a][i] for a in annotators] for i in range(len(chunks))]
        kappa, method = fleiss_kappa_from_ratings(per_item, categories=[0, 1, 2]), "fleiss"
        alpha = krippendorff_alpha([grades[a] for a in annotators], level)
    return QuestionAgreement(
        annotators=annotators,
        chunks=chunks,
        gold_sets=gold,
        pairwise_jaccard=pairwise,
        jaccard=sum(pairwise.values()) / len(pairwise) if pairwise else NAN,
        kappa=kappa,
        kappa_method=method,
        alpha=alpha,
        alpha_level=level,
        disagreements=disagreements,
    )


def overall_agreement(
    labels_by_question: Mapping[str, LabelsByAnnotator],
    candidates: Mapping[str, Iterable[str]] | None = None,
    *,
    min_relevance: int = 1,
    level: Level = "ordinal",
) -> OverallAgreement:
    """Agreement over all questions: question id → annotator → {chunk id: relevance}.

    Questions with fewer than 2 annotators are left out (nothing to agree on). Items are (question, chunk)
    pairs over each question's union of judged chunks (plus its candidates); unjudged = 0. Alpha uses a
    raters × items matrix with a missing entry where an annotator did not annotate that question.
    """
    _check_min_relevance(min_relevance)
    candidates = candidates or {}
    per_question = {
        qid: question_agreement(labels, candidates.get(qid), min_relevance=min_relevance, level=level)
        for qid, labels in labels_by_question.items()
        if len(labels) >= 2
    }
    annotators = tuple(sorted({a for qa in per_question.values() for a in qa.annotators}))
    items: list[dict[str, int]] = []
    for qid, qa in per_question.items():
        labels = labels_by_question[qid]
        items.extend({a: int(labels[a].get(c, 0)) for a in qa.annotators} for c in qa.chunks)
    rater_sets = {tuple(sorted(item)) for item in items}
    sizes = {len(item) for item in items}
    if not items:
        kappa, method = NAN, "none"
    elif len(rater_sets) == 1 and sizes == {2}:
        x, y = next(iter(rater_sets))
        kappa, method = cohen_kappa([i[x] for i in items], [i[y] for i in items]), "cohen"
    elif len(sizes) == 1:
        kappa, method = fleiss_kappa_from_ratings([list(i.values()) for i in items], [0, 1, 2]), "fleiss"
    else:
        kappa, method = NAN, "none"
    matrix = [[item.get(a) for item in items] for a in annotators]
    jaccards = [qa.jaccard for qa in per_question.values()]
    return OverallAgreement(
        n_questions=len(per_question),
        n_items=len(items),
        annotators=annotators,
        kappa=kappa,
        kappa_method=method,
        alpha=krippendorff_alpha(matrix, level) if items else NAN,
        alpha_level=level,
        mean_jaccard=sum(jaccards) / len(jaccards) if jaccards else NAN,
        per_question=per_question,
    )
