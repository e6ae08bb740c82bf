"""The Rescorla-Wagner model of how competing context signals drive the answer."""

from __future__ import annotations

import pytest

from ragarbiter.assessors.rw_steering import fit_rw, predict_quality


@pytest.mark.slow
def test_rw_fit_recovers_the_parameters_of_a_curve_it_generated():
    proportions = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    curve = predict_quality(proportions, 0.2, 0.5, 0.9, n=20)
    fit = fit_rw(proportions, curve, n=20)
    assert fit["rmse"] < 0.01
    assert fit["salience_ratio"] == pytest.approx(2.5, rel=0.15)
    assert fit["q0"] == pytest.approx(0.9, abs=0.02)


def test_equal_saliences_follow_the_proportion():
    # With equal alphas the inappropriate share tracks the proportion; a salient cue overshoots it.
    equal = 1 - predict_quality([0.2], 0.3, 0.3, 1.0, n=20)[0]
    salient = 1 - predict_quality([0.2], 0.3, 0.6, 1.0, n=20)[0]
    assert equal == pytest.approx(0.2, abs=0.05) and salient > equal + 0.1
