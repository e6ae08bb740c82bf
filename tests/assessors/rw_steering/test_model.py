"""The Rescorla-Wagner models of how competing context signals drive the answer."""

from __future__ import annotations

import pytest

from ragarbiter.assessors.rw_steering import fit_rw, predict_quality
from ragarbiter.assessors.rw_steering.model import predicted_share

PROPORTIONS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95]


@pytest.mark.parametrize(
    ("alpha_a", "alpha_i", "q0"),
    [(0.15, 0.45, 0.9), (0.3, 0.3, 0.95), (0.1, 0.6, 0.8), (0.4, 0.1, 0.85)],
)
def test_per_signal_fit_recovers_the_parameters_of_a_curve_it_generated(alpha_a, alpha_i, q0):
    curve = predict_quality(PROPORTIONS, alpha_a, alpha_i, q0, n=20)
    fit = fit_rw(PROPORTIONS, curve, n=20)
    assert fit["form"] == "per_signal" and fit["regime"] == "full RW dynamics"
    assert fit["rmse"] < 1e-3
    assert fit["alpha_appropriate"] == pytest.approx(alpha_a, rel=0.05)
    assert fit["alpha_inappropriate"] == pytest.approx(alpha_i, rel=0.05)
    assert fit["q0"] == pytest.approx(q0, abs=0.005)


def test_per_signal_fit_recovers_parameters_through_noise():
    clean = predict_quality(PROPORTIONS, 0.2, 0.5, 0.9, n=20)
    noise = [0.01, -0.012, 0.008, -0.01, 0.011, -0.009, 0.01, -0.008, 0.009]
    fit = fit_rw(PROPORTIONS, [c + e for c, e in zip(clean, noise)], n=20)
    assert fit["alpha_appropriate"] == pytest.approx(0.2, rel=0.35)
    assert fit["alpha_inappropriate"] == pytest.approx(0.5, rel=0.35)
    assert fit["rmse"] < 0.015


def test_the_rare_signal_is_over_weighted_at_equal_saliences():
    # One bad sentence of 20, both alphas 0.3: V_I = 0.3, V_A = 1 - 0.7**19.
    share = predicted_share(0.05, 0.3, 0.3, n=20)
    assert share == pytest.approx(0.3 / (0.3 + 1 - 0.7**19), abs=1e-9)
    assert share > 4 * 0.05
    # Symmetric: whichever signal is rare gets more than its share.
    assert predicted_share(0.95, 0.3, 0.3, n=20) == pytest.approx(1 - share, abs=1e-9)
    fit = fit_rw(PROPORTIONS, predict_quality(PROPORTIONS, 0.3, 0.3, 0.9, n=20), n=20)
    assert fit["rare_signal_gain"] == pytest.approx(share / 0.05, rel=0.02)


def test_small_alphas_identify_only_the_ratio():
    curve = predict_quality(PROPORTIONS, 0.001, 0.003, 0.9, n=20)
    fit = fit_rw(PROPORTIONS, curve, n=20)
    assert fit["rmse"] < 0.005
    if fit["regime"].startswith("small"):
        assert fit["salience_ratio"] == pytest.approx(3.0, rel=0.1)


def test_equal_saliences_follow_the_proportion_only_in_the_shared_form():
    # Shared error: the inappropriate share tracks the proportion; a salient cue overshoots it.
    equal = 1 - predict_quality([0.2], 0.3, 0.3, 1.0, n=20, form="shared")[0]
    salient = 1 - predict_quality([0.2], 0.3, 0.6, 1.0, n=20, form="shared")[0]
    assert equal == pytest.approx(0.2, abs=0.05) and salient > equal + 0.1
    per_signal = 1 - predict_quality([0.2], 0.3, 0.3, 1.0, n=20)[0]
    assert per_signal > equal + 0.15  # the per-signal form over-weights the rarer signal


@pytest.mark.slow
def test_shared_fit_recovers_the_parameters_of_a_curve_it_generated():
    proportions = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    curve = predict_quality(proportions, 0.2, 0.5, 0.9, n=20, form="shared")
    fit = fit_rw(proportions, curve, n=20, form="shared")
    assert fit["rmse"] < 0.01
    assert fit["salience_ratio"] == pytest.approx(2.5, rel=0.15)
    assert fit["q0"] == pytest.approx(0.9, abs=0.02)


def test_bad_form_and_too_few_points_are_named():
    with pytest.raises(ValueError, match="form='paper' is not an RW form"):
        predict_quality([0.1], 0.1, 0.1, 1.0, n=10, form="paper")
    with pytest.raises(ValueError, match="needs >= 3"):
        fit_rw([0.0, 0.5], [0.9, 0.5], n=10)
