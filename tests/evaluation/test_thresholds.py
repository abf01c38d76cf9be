"""Threshold strategies: exact values on hand-made arrays, oracle against brute force, dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.evaluation.report import ScoreSet, build_report
from fsad.evaluation.spot import grimshaw_fit, spot_threshold
from fsad.evaluation.thresholds import (
    SPOT_INITS,
    THRESHOLD_STRATEGIES,
    apply_threshold,
    check_spot_init,
    compute_threshold,
    oracle_best_f1_threshold,
    paper_percentile,
    spot_init_scores,
    train_percentile,
)

# ------------------------------------------------------------------------------ percentiles


def test_paper_percentile_exact_on_concatenation():
    train = [1.0, 2.0, 3.0, 4.0]
    test = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    # values 1..10, 90th percentile with linear interpolation: 1 + 0.9 * 9
    assert paper_percentile(train, test, anomaly_ratio=10) == pytest.approx(9.1, abs=1e-12)
    # the order of the two sets is irrelevant, only their union
    assert paper_percentile(test, train, anomaly_ratio=10) == pytest.approx(9.1, abs=1e-12)


def test_anomaly_ratio_is_a_percentage():
    scores = np.arange(101, dtype=float)  # 0..100: the p-th percentile is p
    assert train_percentile(scores, anomaly_ratio=1) == pytest.approx(99.0)
    assert train_percentile(scores, anomaly_ratio=5) == pytest.approx(95.0)
    assert train_percentile(scores, anomaly_ratio=0.5) == pytest.approx(99.5)
    assert paper_percentile(scores[:50], scores[50:], anomaly_ratio=1) == pytest.approx(99.0)


def test_paper_sees_test_scores_train_percentile_does_not():
    train = np.linspace(0.0, 1.0, 1000)
    test_a = np.linspace(0.0, 1.0, 1000)
    test_b = test_a + 5.0
    assert paper_percentile(train, test_a, 1) != paper_percentile(train, test_b, 1)
    # train_percentile has no test argument at all; the dispatcher ignores test scores for it
    kw = dict(train_scores=train, anomaly_ratio=1.0)
    assert compute_threshold("train_percentile", test_scores=test_a, **kw) == compute_threshold(
        "train_percentile", test_scores=test_b, **kw
    )
    assert train_percentile(train, 1) == pytest.approx(np.percentile(train, 99))


def test_predictions_are_strict():
    scores = np.array([0.1, 0.5, 0.5, 0.9])
    np.testing.assert_array_equal(apply_threshold(scores, 0.5), [False, False, False, True])
    assert apply_threshold(scores.reshape(2, 2), 0.05).shape == (2, 2)


@pytest.mark.parametrize("ratio", [0, 100, -1, 150, float("nan")])
def test_percentile_rejects_bad_ratio(ratio):
    with pytest.raises(ValueError, match="anomaly_ratio"):
        train_percentile([1.0, 2.0, 3.0], ratio)
    with pytest.raises(ValueError, match="anomaly_ratio"):
        paper_percentile([1.0, 2.0], [3.0], ratio)


def test_percentile_rejects_nan_and_empty():
    with pytest.raises(ValueError, match="train_scores contains NaN"):
        train_percentile([1.0, np.nan, 3.0], 1)
    with pytest.raises(ValueError, match="test_scores contains infinite values"):
        paper_percentile([1.0, 2.0], [np.inf], 1)
    with pytest.raises(ValueError, match="empty"):
        train_percentile([], 1)


# ------------------------------------------------------------------------------ oracle


def _f1(labels: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum(pred & labels)
    fp = np.sum(pred & ~labels)
    fn = np.sum(~pred & labels)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _point_adjust(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Reference PA, written as a plain loop over the anomaly segments."""
    out = pred.copy()
    i = 0
    while i < labels.size:
        if labels[i]:
            j = i
            while j < labels.size and labels[j]:
                j += 1
            if pred[i:j].any():
                out[i:j] = True
            i = j
        else:
            i += 1
    return out


def _brute_force(labels: np.ndarray, scores: np.ndarray, pa: bool) -> float:
    best = 0.0
    for th in np.concatenate([np.unique(scores), [scores.min() - 1.0]]):
        pred = scores > th
        if pa:
            pred = _point_adjust(labels, pred)
        best = max(best, _f1(labels, pred))
    return best


def test_oracle_hand_made_example():
    scores = np.array([0.1, 0.9, 0.8, 0.2])
    labels = np.array([0, 1, 1, 0])
    th, f1 = oracle_best_f1_threshold(labels, scores)
    assert f1 == 1.0
    assert 0.2 <= th < 0.8
    np.testing.assert_array_equal(apply_threshold(scores, th), labels.astype(bool))


def test_oracle_point_adjusted_hand_made_example():
    # segments: [1, 2] (max 0.9) and [4] (max 0.05); normal points 0.1 and 0.2
    scores = np.array([0.1, 0.9, 0.1, 0.2, 0.05])
    labels = np.array([0, 1, 1, 0, 1])
    th, f1 = oracle_best_f1_threshold(labels, scores, point_adjusted=True)
    # threshold in [0.2, 0.9): segment 1 fully detected (TP 2), no FP, FN 1 -> 4 / 5
    assert f1 == pytest.approx(0.8)
    assert 0.2 <= th < 0.9
    th_pw, f1_pw = oracle_best_f1_threshold(labels, scores)
    assert f1_pw == pytest.approx(_brute_force(labels.astype(bool), scores, pa=False))
    assert f1 >= f1_pw


@pytest.mark.parametrize("pa", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oracle_matches_brute_force(pa, seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = np.zeros(n, dtype=bool)
    for start in rng.choice(n - 20, size=6, replace=False):
        labels[start : start + rng.integers(1, 15)] = True
    # rounded scores: many ties; anomalies slightly higher on average
    scores = np.round(rng.normal(size=n) + 1.2 * labels, 1)
    th, f1 = oracle_best_f1_threshold(labels.astype(int), scores, point_adjusted=pa)
    assert f1 == pytest.approx(_brute_force(labels, scores, pa), abs=1e-12)
    # the returned threshold reproduces its F1 with strict predictions
    pred = apply_threshold(scores, th)
    if pa:
        pred = _point_adjust(labels, pred)
    assert _f1(labels, pred) == pytest.approx(f1, abs=1e-12)


def test_oracle_all_anomalous_predicts_everything():
    scores = np.array([0.3, 0.1, 0.2])
    th, f1 = oracle_best_f1_threshold([1, 1, 1], scores)
    assert f1 == 1.0 and th < 0.1
    assert apply_threshold(scores, th).all()


def test_oracle_errors():
    with pytest.raises(ValueError, match="no anomaly"):
        oracle_best_f1_threshold([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="labels has 2 points but scores has 3"):
        oracle_best_f1_threshold([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="labels must contain only 0 and 1"):
        oracle_best_f1_threshold([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        oracle_best_f1_threshold([0, 1, 1], [0.1, np.nan, 0.3])


def test_oracle_is_fast_on_large_input():
    rng = np.random.default_rng(0)
    labels = rng.random(500_000) < 0.05
    scores = rng.normal(size=500_000) + labels
    th, f1 = oracle_best_f1_threshold(labels, scores, point_adjusted=True)
    assert 0.0 < f1 <= 1.0 and np.isfinite(th)


# ------------------------------------------------------------------------------ dispatcher


@pytest.fixture
def score_sets():
    rng = np.random.default_rng(7)
    train = rng.exponential(1.0, 5000)
    val = rng.exponential(2.0, 5000)
    test = rng.exponential(1.0, 3000)
    labels = (rng.random(3000) < 0.05).astype(int)
    test = test + 3.0 * labels
    return train, val, test, labels


def test_dispatcher_matches_direct_calls(score_sets):
    train, val, test, labels = score_sets
    kw = dict(train_scores=train, val_scores=val, test_scores=test, labels=labels, anomaly_ratio=1.0)
    assert compute_threshold("paper", **kw) == paper_percentile(train, test, 1.0)
    assert compute_threshold("train_percentile", **kw) == train_percentile(train, 1.0)
    assert compute_threshold("oracle", **kw) == oracle_best_f1_threshold(labels, test)[0]
    assert compute_threshold("oracle", oracle_point_adjusted=True, **kw) == (
        oracle_best_f1_threshold(labels, test, point_adjusted=True)[0]
    )
    # spot: init on validation scores when given, else on training scores
    assert compute_threshold("spot", spot_q=1e-3, **kw) == spot_threshold(val, q=1e-3, stream=False)
    kw_no_val = dict(kw, val_scores=None)
    assert compute_threshold("spot", spot_q=1e-3, **kw_no_val) == spot_threshold(train, q=1e-3, stream=False)
    assert compute_threshold("spot", spot_q=1e-3, spot_stream=True, **kw) == spot_threshold(
        val, test, q=1e-3, stream=True
    )


def test_dispatcher_errors(score_sets):
    train, val, test, labels = score_sets
    with pytest.raises(ValueError) as err:
        compute_threshold("best", train_scores=train)
    for name in THRESHOLD_STRATEGIES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="test_scores"):
        compute_threshold("paper", train_scores=train)
    with pytest.raises(ValueError, match="labels"):
        compute_threshold("oracle", test_scores=test)
    with pytest.raises(ValueError, match="train_scores"):
        compute_threshold("spot", test_scores=test)
    with pytest.raises(ValueError, match="test_scores"):
        compute_threshold("spot", val_scores=val, spot_stream=True)


# ------------------------------------------------------------------------------ SPOT init: train vs val


def _z_q(t: float, peaks: np.ndarray, n: int, q: float) -> float:
    """SPOT's initial extreme quantile by its formula: z_q = t + sigma / gamma ((q n / N_t)^-gamma - 1)."""
    fit = grimshaw_fit(peaks)
    r = q * n / peaks.size
    if fit.gamma == 0.0:
        return t - fit.sigma * np.log(r)
    return t + fit.sigma / fit.gamma * (r ** (-fit.gamma) - 1.0)


def test_spot_init_train_vs_val_by_hand():
    """Training scores 0..199, validation scores 0, 0.5, .., 149.5, q = 1e-2, level 0.98.

    val init: n = 300, t = sorted(val)[294] = 147, peaks 0.5, 1, .., 2.5 (5 values);
    train init: train and val together, n = 500, t = sorted(all)[490] = 190 (the 10th largest, a training score),
    peaks 1, 2, .., 9. Both thresholds follow from these by SPOT's z_q formula with Grimshaw's GPD fit.
    """
    train, val = np.arange(200.0), 0.5 * np.arange(300.0)
    q = 1e-2
    val_z = _z_q(147.0, 0.5 * np.arange(1.0, 6.0), 300, q)
    train_z = _z_q(190.0, np.arange(1.0, 10.0), 500, q)
    got_val = compute_threshold("spot", train_scores=train, val_scores=val, spot_q=q, spot_init="val")
    got_train = compute_threshold("spot", train_scores=train, val_scores=val, spot_q=q, spot_init="train")
    assert got_val == pytest.approx(val_z, rel=1e-9)
    assert got_train == pytest.approx(train_z, rel=1e-9)
    assert got_val < 150.0 < 190.0 < got_train  # the init set moves the threshold past the other's whole range
    # the default keeps the validation init; without validation scores both read the training scores
    assert compute_threshold("spot", train_scores=train, val_scores=val, spot_q=q) == got_val
    alone = _z_q(float(np.sort(train)[196]), np.arange(1.0, 4.0), 200, q)  # t = 196, peaks 1, 2, 3
    for init in SPOT_INITS:
        assert compute_threshold("spot", train_scores=train, spot_q=q, spot_init=init) == pytest.approx(alone)


def test_spot_init_train_streams_the_test_scores_like_d3r():
    rng = np.random.default_rng(3)
    train, val = rng.exponential(1.0, 4000), rng.exponential(1.5, 1000)
    test = rng.exponential(1.2, 3000)
    both = np.concatenate([train, val])
    np.testing.assert_array_equal(spot_init_scores("train", train, val), both)
    assert spot_init_scores("val", train, val) is val
    kw = dict(train_scores=train, val_scores=val, test_scores=test, spot_q=1e-2, spot_stream=True)
    assert compute_threshold("spot", spot_init="train", **kw) == spot_threshold(both, test, q=1e-2, stream=True)
    assert compute_threshold("spot", spot_init="val", **kw) == spot_threshold(val, test, q=1e-2, stream=True)
    assert compute_threshold("spot", spot_init="train", **{**kw, "spot_stream": False}) == spot_threshold(
        both, q=1e-2, stream=False
    )


def test_spot_init_errors():
    with pytest.raises(ValueError, match="evaluation.spot.init must be one of val, train"):
        compute_threshold("spot", train_scores=np.arange(100.0), spot_init="test")
    with pytest.raises(ValueError, match="evaluation.spot.init"):
        check_spot_init("validation")
    assert check_spot_init("train") == "train"
    with pytest.raises(ValueError, match="train_scores"):
        compute_threshold("spot", val_scores=np.arange(100.0), spot_init="train")


def test_build_report_threads_spot_init():
    rng = np.random.default_rng(5)
    train, val, test = np.arange(200.0), 0.5 * np.arange(300.0), rng.uniform(0.0, 220.0, 400)
    labels = (test > 200.0).astype(np.int64)
    scores = ScoreSet(train=train, train_windows=train, test=test, test_labels=labels, val=val)
    kw = dict(strategies=["spot"], anomaly_ratio=1.0, vus_window=2, spot_q=1e-2)
    for init in SPOT_INITS:
        expected = compute_threshold("spot", train_scores=train, val_scores=val, spot_q=1e-2, spot_init=init)
        assert build_report(scores, spot_init=init, **kw)["threshold/spot"] == expected
    assert build_report(scores, **kw)["threshold/spot"] == compute_threshold(
        "spot", train_scores=train, val_scores=val, spot_q=1e-2
    )
