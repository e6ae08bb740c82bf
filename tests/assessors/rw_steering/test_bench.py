"""`bench rw`: the answer metrics and the behaviour curve under mixed contexts."""

from __future__ import annotations

import random

import pytest

from ragarbiter.assessors.metrics import cleanliness, consistency, ngram_leakage, token_f1
from ragarbiter.assessors.rw_steering import from_pool_record

from .pool import RECORD


def test_metrics():
    assert token_f1("Tarrow", "Tarrow is the capital of Norland.") == pytest.approx(2 * (1 * 1 / 5) / (1 + 1 / 5))
    assert token_f1("The Tarrow!", "tarrow") == 1.0
    leaked = ngram_leakage("It is Vesk, where Norland is governed from.", RECORD["Synonym Sentence"])
    assert leaked == pytest.approx(4 / 6)  # 4 of the 6 bigrams of the second false sentence
    assert cleanliness("Tarrow is the capital.", RECORD["Synonym Sentence"]) == 1.0
    assert consistency("Tarrow", "Tarrow")["token_f1"] == 1.0


def test_behaviour_curve_scores_quality_and_leakage_per_proportion():
    from ragarbiter.assessors.rw_steering.bench import behaviour_curve

    rng = random.Random(0)
    mixtures = [from_pool_record(RECORD, p, n=10, rng=rng) for p in (0.0, 0.0, 0.5, 0.5)]
    answers = [
        "Tarrow is the capital of Norland.",
        "Tarrow",
        "Vesk is where Norland is governed from.",
        "Tarrow is the capital of Norland.",
    ]
    curve = behaviour_curve(mixtures, answers)
    assert curve["proportions"] == [0.0, 0.5] and curve["n_per_point"] == 2
    assert curve["quality"][0] == pytest.approx((1.0 + token_f1("Tarrow", RECORD["Simple Answer"])) / 2, abs=1e-4)
    # One answer at 50% repeats a false sentence whole; the other shares only the question's words with one.
    assert curve["leakage"] == [0.0, 0.5]
