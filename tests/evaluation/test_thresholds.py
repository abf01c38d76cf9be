"""Threshold strategies: exact values on hand-made arrays, oracle against brute force, dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.evaluation.spot import spot_threshold
from fsad.evaluation.thresholds import (
    THRESHOLD_STRATEGIES,
    apply_threshold,
    compute_threshold,
    oracle_best_f1_threshold,
    paper_percentile,
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
