"""The VUS window rule of TSB-AD, against values computed with statsmodels' acf and TSB-AD's find_length_rank.

Expected values: ``statsmodels.tsa.stattools.acf(x, nlags=400, fft=True)`` and TSB-AD 1.5's
``find_length_rank(x, rank=1)`` run on the series below (same generator and seed).
"""

from __future__ import annotations

import numpy as np
import pytest

from fsad.evaluation.period import autocorrelation, find_period


def cases() -> dict[str, np.ndarray]:
    t = np.arange(3000)
    rng = np.random.default_rng(7)
    out = {"sine_50": np.sin(2 * np.pi * t / 50) + 0.1 * rng.normal(size=3000)}
    out["sine_137_noisy"] = np.sin(2 * np.pi * t / 137) + 0.5 * rng.normal(size=3000)
    out["two_periods"] = np.sin(2 * np.pi * t / 24) + 0.6 * np.sin(2 * np.pi * t / 168) + 0.1 * rng.normal(size=3000)
    out["white_noise"] = rng.normal(size=3000)
    out["trend"] = t.astype(float)
    out["long_period_350"] = np.sin(2 * np.pi * np.arange(30000) / 350)
    out["short_400"] = np.sin(2 * np.pi * np.arange(400) / 40)
    return out


TSB_AD_WINDOW = {"sine_50": 50, "sine_137_noisy": 133, "two_periods": 168, "white_noise": 249, "trend": 125,
                 "long_period_350": 125, "short_400": 40}
STATSMODELS_ACF_1_TO_5 = {
    "sine_50": [0.97334098265, 0.950269467941, 0.912503811532, 0.859776011458, 0.793686151796],
    "trend": [0.999, 0.998000000444, 0.997000001778, 0.996000004444, 0.995000008889],
    "white_noise": [-0.006652428849, 0.003405510239, 9.7529764e-05, -0.015864542065, -0.000928115699],
}


@pytest.mark.parametrize("name", sorted(TSB_AD_WINDOW))
def test_window_matches_tsb_ad(name):
    period = find_period(cases()[name])
    assert period.window == TSB_AD_WINDOW[name]
    assert period.found == (name not in ("trend", "long_period_350"))


@pytest.mark.parametrize("name", sorted(STATSMODELS_ACF_1_TO_5))
def test_autocorrelation_matches_statsmodels(name):
    np.testing.assert_allclose(autocorrelation(cases()[name], 400)[1:6], STATSMODELS_ACF_1_TO_5[name], atol=1e-11)


def test_multivariate_uses_the_first_channel_and_constant_series_fall_back():
    x = cases()["sine_50"]
    assert find_period(np.stack([x, np.zeros_like(x)], axis=1)).window == 50
    assert find_period(np.ones(500)) == (125, False)
    with pytest.raises(ValueError, match="empty"):
        find_period(np.zeros(0))
