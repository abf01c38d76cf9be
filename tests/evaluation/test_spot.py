"""SPOT (Siffer et al., KDD 2017): GPD fit, extreme quantiles, streaming semantics, errors, speed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import genpareto

from fsad.evaluation.spot import SPOT, GPDFit, grimshaw_fit, spot_threshold

# ------------------------------------------------------------------------------ GPD fit


@pytest.mark.parametrize("gamma", [0.25, -0.25])
def test_grimshaw_recovers_gpd_parameters(gamma):
    y = genpareto.rvs(gamma, scale=1.5, size=20_000, random_state=0)
    fit = grimshaw_fit(y)
    assert fit.gamma == pytest.approx(gamma, abs=0.03)
    assert fit.sigma == pytest.approx(1.5, rel=0.04)
    # it is the maximum-likelihood estimate: at least as likely as scipy's numerical MLE
    c, _, scale = genpareto.fit(y, floc=0)
    assert fit.loglik >= genpareto.logpdf(y, c, 0, scale).sum() - 1e-6
    assert fit.loglik == pytest.approx(genpareto.logpdf(y, fit.gamma, 0, fit.sigma).sum(), rel=1e-10)


def test_grimshaw_on_exponential_sample_is_near_exponential():
    y = np.random.default_rng(1).exponential(2.0, 20_000)
    fit = grimshaw_fit(y)
    assert abs(fit.gamma) < 0.03
    assert fit.sigma == pytest.approx(2.0, rel=0.04)


def test_grimshaw_is_scale_equivariant():
    y = genpareto.rvs(0.2, scale=1.0, size=5000, random_state=2)
    a, b = grimshaw_fit(y), grimshaw_fit(1e-4 * y)
    assert b.gamma == pytest.approx(a.gamma, rel=1e-6)
    assert b.sigma == pytest.approx(1e-4 * a.sigma, rel=1e-6)


def test_legacy_search_misses_heavy_tails():
    """The original positive-root interval starts above the root: a heavy tail falls back to gamma = 0."""
    y = genpareto.rvs(0.3, scale=1.0, size=5000, random_state=3)
    assert grimshaw_fit(y, legacy=True).gamma == 0.0
    assert grimshaw_fit(y).gamma == pytest.approx(0.3, abs=0.06)


def test_equal_peaks_fall_back_to_exponential():
    fit = grimshaw_fit(np.full(50, 0.5))
    assert fit == GPDFit(0.0, 0.5, fit.loglik)


def test_grimshaw_rejects_bad_peaks():
    with pytest.raises(ValueError, match="positive"):
        grimshaw_fit([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        grimshaw_fit([1.0, np.nan])
    with pytest.raises(ValueError, match="at least one"):
        grimshaw_fit([])


# ------------------------------------------------------------------------------ initialisation


def test_initial_threshold_and_peaks_follow_the_order_statistic():
    init = np.random.default_rng(0).permutation(np.arange(1000, dtype=float))
    spot = SPOT(q=1e-3).fit(init)
    spot.initialize(level=0.98)
    assert spot.init_threshold == 980.0  # sorted(init)[int(0.98 * 1000)]
    np.testing.assert_array_equal(np.sort(spot.peaks), np.arange(1.0, 20.0))
    assert spot.n == 1000 and spot.n_peaks == 19


def test_initial_quantile_formula():
    init = np.random.default_rng(4).exponential(1.0, 20_000)
    spot = SPOT(q=1e-3).fit(init)
    z = spot.initialize(0.98)
    g, s, t = spot.gpd.gamma, spot.gpd.sigma, spot.init_threshold
    r = 1e-3 * spot.n / spot.n_peaks
    expected = t + s / g * (r ** (-g) - 1) if g != 0 else t - s * math.log(r)
    assert z == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("q", [1e-3, 1e-4])
def test_initial_quantile_of_exponential_is_close_to_truth(q):
    """Exp(1): P(X > -log q) = q."""
    x = np.random.default_rng(0).exponential(1.0, 100_000)
    assert spot_threshold(x, q=q, stream=False) == pytest.approx(-math.log(q), rel=0.05)


def test_threshold_is_monotone_in_q():
    x = np.random.default_rng(5).exponential(1.0, 50_000)
    qs = [1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6]
    z = [spot_threshold(x, q=q, stream=False) for q in qs]
    assert all(a < b for a, b in zip(z, z[1:]))
    assert z[0] > np.sort(x)[int(0.98 * x.size)]  # above the initial threshold t


def test_threshold_is_scale_equivariant():
    rng = np.random.default_rng(6)
    init, stream = rng.gamma(2.0, 1.0, 20_000), rng.gamma(2.0, 1.0, 5000)
    for use_stream in (False, True):
        a = spot_threshold(init, stream, q=1e-3, stream=use_stream)
        b = spot_threshold(1e-3 * init, 1e-3 * stream, q=1e-3, stream=use_stream)
        assert b == pytest.approx(1e-3 * a, rel=1e-6)


# ------------------------------------------------------------------------------ streaming


def test_stream_false_never_uses_stream_scores():
    init = np.random.default_rng(7).exponential(1.0, 20_000)
    z0 = spot_threshold(init, None, q=1e-3, stream=False)
    assert z0 == spot_threshold(init, np.full(100, 1e6), q=1e-3, stream=False)
    assert z0 == SPOT(q=1e-3).fit(init).initialize(0.98)


def test_stream_below_initial_threshold_keeps_initial_quantile():
    """Values <= t only increment n; z_q is only recomputed at a refit, so it stays the initial one."""
    init = np.random.default_rng(8).exponential(1.0, 20_000)
    z0 = spot_threshold(init, q=1e-3, stream=False)
    spot = SPOT(q=1e-3).fit(init, np.zeros(1000))
    spot.initialize()
    res = spot.run()
    np.testing.assert_array_equal(res.thresholds, np.full(1000, z0))
    assert res.alarms.size == 0 and spot.n == 21_000
    assert spot_threshold(init, np.zeros(1000), q=1e-3, stream=True) == pytest.approx(z0, rel=1e-12)


def test_alarm_is_not_a_peak_and_peak_refits():
    init = np.random.default_rng(9).exponential(1.0, 20_000)
    spot = SPOT(q=1e-3).fit(init, [0.0, 1e3, 0.0])
    z0 = spot.initialize()
    t, n_peaks0 = spot.init_threshold, spot.n_peaks
    res = spot.run()
    np.testing.assert_array_equal(res.alarms, [1])
    np.testing.assert_array_equal(res.thresholds, [z0, z0, z0])
    assert spot.n == 20_002 and spot.n_peaks == n_peaks0  # the alarm did not count

    # a value in (t, z_q] is a new peak: n and N_t grow, the GPD is refitted
    spot = SPOT(q=1e-3).fit(init, [(t + z0) / 2])
    spot.initialize()
    res = spot.run()
    assert res.alarms.size == 0 and spot.n_peaks == n_peaks0 + 1 and spot.n == 20_001
    assert res.thresholds[0] != z0

    # with_alarm=False: values above z_q are treated as peaks (the original's option)
    spot = SPOT(q=1e-3).fit(init, [1e3])
    spot.initialize()
    res = spot.run(with_alarm=False)
    assert res.alarms.size == 0 and spot.n_peaks == n_peaks0 + 1


def test_stream_threshold_is_the_mean_of_per_step_thresholds():
    rng = np.random.default_rng(10)
    init, stream = rng.exponential(1.0, 20_000), rng.exponential(1.0, 5000)
    spot = SPOT(q=1e-3).fit(init, stream)
    z0 = spot.initialize()
    res = spot.run()
    assert res.thresholds.shape == (5000,)
    assert spot_threshold(init, stream, q=1e-3, stream=True) == pytest.approx(res.thresholds.mean(), rel=1e-12)
    # every alarm exceeds the threshold in force when it arrived
    before = np.concatenate([[z0], res.thresholds[:-1]])
    assert np.all(stream[res.alarms] > before[res.alarms])
    # same distribution: streaming moves the threshold little
    assert res.thresholds.mean() == pytest.approx(z0, rel=0.1)


def test_warm_start_matches_full_search():
    rng = np.random.default_rng(11)
    init, stream = rng.exponential(1.0, 10_000), rng.exponential(1.0, 10_000)
    warm = SPOT(q=1e-3).fit(init, stream)
    warm.initialize()
    full = SPOT(q=1e-3, warm_start=False).fit(init, stream)
    full.initialize()
    a, b = warm.run(), full.run()
    np.testing.assert_allclose(a.thresholds, b.thresholds, rtol=1e-5)
    np.testing.assert_array_equal(a.alarms, b.alarms)
    assert warm.n_full_searches < full.n_full_searches


def test_legacy_mode_runs():
    rng = np.random.default_rng(12)
    init, stream = 0.01 * rng.exponential(1.0, 5000), 0.01 * rng.exponential(1.0, 2000)
    z = spot_threshold(init, stream, q=1e-3, stream=True, legacy=True, warm_start=False)
    assert np.isfinite(z) and z > np.sort(init)[int(0.98 * init.size)]


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_q_outside_unit_interval(q):
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\)"):
        SPOT(q=q)
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\)"):
        spot_threshold(np.arange(1000.0), q=q, stream=False)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.98])
def test_level_outside_unit_interval(level):
    with pytest.raises(ValueError, match="level"):
        spot_threshold(np.arange(1000.0), q=1e-3, level=level, stream=False)


def test_nan_scores():
    x = np.arange(1000.0)
    with pytest.raises(ValueError, match="init scores contains 1 NaN"):
        spot_threshold(np.where(x == 5, np.nan, x), stream=False)
    with pytest.raises(ValueError, match="stream scores contains 1 NaN"):
        spot_threshold(x, [0.0, np.nan], stream=True)


def test_too_few_peaks():
    with pytest.raises(ValueError, match="min_peaks"):
        spot_threshold(np.arange(100.0), q=1e-3, stream=False)  # 1 peak above the 98% order statistic
    # lowering the requirement makes it fit
    assert np.isfinite(spot_threshold(np.arange(100.0), q=1e-3, stream=False, min_peaks=1))


def test_q_not_below_peak_fraction():
    with pytest.raises(ValueError, match="fraction of peaks"):
        spot_threshold(np.random.default_rng(0).random(10_000), q=0.05, level=0.98, stream=False)


def test_misuse():
    with pytest.raises(ValueError, match="stream_scores"):
        spot_threshold(np.arange(1000.0), None, stream=True)
    with pytest.raises(ValueError, match="empty stream"):
        spot_threshold(np.arange(1000.0), [], stream=True)
    with pytest.raises(ValueError, match="non-empty"):
        SPOT().fit([])
    with pytest.raises(RuntimeError, match="before"):
        SPOT().fit(np.arange(1000.0), [1.0]).run()
    spot = SPOT(q=1e-3).fit(np.random.default_rng(0).exponential(size=5000), [1.0])
    spot.initialize()
    spot.run()
    with pytest.raises(RuntimeError, match="already"):
        spot.run()
