"""Exact values on hand-made arrays, edge cases, and checks against slow direct implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata

from fsad.evaluation import metrics as M

LABELS = np.array([0, 1, 1, 0, 0, 1])  # events [1, 3) and [5, 6)
PRED = np.array([0, 1, 0, 0, 0, 0])  # hits the first event once


# ---------------------------------------------------------------- input checks


SCORE_FUNCS = [
    lambda y, s: M.auc_roc(y, s),
    lambda y, s: M.auc_pr(y, s),
    lambda y, s: M.vus_roc(y, s, window=2),
    lambda y, s: M.vus_pr(y, s, window=2),
    lambda y, s: M.best_f1(y, s),
    lambda y, s: M.best_f1_pa(y, s),
]
PRED_FUNCS = [
    M.precision_recall_f1, M.point_adjust, M.affiliation, M.range_based_f1, M.event_based_f1,
    lambda y, p: M.vus_pred(y, p, window=2),
]


@pytest.mark.parametrize("func", SCORE_FUNCS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_raise_naming_scores(func, bad):
    scores = np.array([0.1, 0.9, bad, 0.2, 0.3, 0.8])
    with pytest.raises(ValueError, match="scores"):
        func(LABELS, scores)


@pytest.mark.parametrize("func", SCORE_FUNCS)
def test_score_funcs_reject_bad_labels_and_lengths(func):
    scores = np.linspace(0, 1, 6)
    with pytest.raises(ValueError, match="labels"):
        func(np.array([0, 2, 1, 0, 0, 1]), scores)
    with pytest.raises(ValueError, match="labels"):
        func(np.array([0, np.nan, 1, 0, 0, 1]), scores)
    with pytest.raises(ValueError, match="labels"):
        func(LABELS.reshape(2, 3), scores)
    with pytest.raises(ValueError, match="5"):
        func(LABELS, scores[:5])


@pytest.mark.parametrize("func", PRED_FUNCS)
def test_pred_funcs_reject_bad_pred(func):
    with pytest.raises(ValueError, match="pred"):
        func(LABELS, np.array([0, 1, 0.5, 0, 0, 0]))
    with pytest.raises(ValueError, match="pred"):
        func(LABELS, PRED[:4])
    with pytest.raises(ValueError, match="labels"):
        func([], [])


@pytest.mark.parametrize("func", SCORE_FUNCS + PRED_FUNCS[2:])
def test_labels_without_anomaly_raise(func):
    second = np.linspace(0, 1, 6) if func in SCORE_FUNCS else PRED
    with pytest.raises(ValueError, match="no anomaly"):
        func(np.zeros(6, dtype=int), second)


@pytest.mark.parametrize("func", [M.auc_roc, lambda y, s: M.vus_roc(y, s, window=1)])
def test_roc_without_normal_point_raises(func):
    with pytest.raises(ValueError, match="no normal point"):
        func(np.ones(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]))


@pytest.mark.parametrize("window", [-1, 1.5, True])
def test_bad_window_raises(window):
    with pytest.raises(ValueError, match="window"):
        M.vus_pr(LABELS, np.linspace(0, 1, 6), window=window)


def test_bool_and_float_binary_inputs_are_accepted():
    expected = M.precision_recall_f1(LABELS, PRED)
    assert M.precision_recall_f1(LABELS.astype(bool), PRED.astype(float)) == expected


# ---------------------------------------------------------------- point-wise


def test_precision_recall_f1_hand_values():
    assert M.precision_recall_f1(LABELS, PRED) == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5})
    out = M.precision_recall_f1(LABELS, [1, 1, 0, 1, 0, 1])
    assert out == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7})
    assert all(type(v) is float for v in out.values())


def test_precision_recall_f1_zero_divisions_are_zero():
    assert M.precision_recall_f1(LABELS, np.zeros(6)) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert M.precision_recall_f1(np.zeros(6), PRED) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_point_adjust_fills_only_hit_segments():
    adjusted = M.point_adjust(LABELS, PRED)
    assert adjusted.tolist() == [0, 1, 1, 0, 0, 0]
    assert adjusted.dtype == np.int64
    assert M.precision_recall_f1(LABELS, adjusted) == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8})
    # false positives stay, an unhit segment stays 0, a hit point segment stays 1
    assert M.point_adjust(LABELS, [1, 0, 0, 0, 1, 1]).tolist() == [1, 0, 0, 0, 1, 1]


def test_point_adjust_edges_of_the_series():
    # a segment starting at index 0 is adjusted entirely (TSB-AD 1.5 leaves index 0 at 0 here)
    assert M.point_adjust([1, 1, 1, 0], [0, 0, 1, 0]).tolist() == [1, 1, 1, 0]
    assert M.point_adjust([0, 1, 1, 1], [0, 1, 0, 0]).tolist() == [0, 1, 1, 1]
    assert M.point_adjust([0, 0, 0], [0, 1, 0]).tolist() == [0, 1, 0]
    assert M.point_adjust([1, 1, 1], [0, 0, 0]).tolist() == [0, 0, 0]


# ---------------------------------------------------------------- threshold-free, point-wise


def test_auc_hand_values():
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert M.auc_roc(labels, scores) == pytest.approx(0.75)
    # thresholds 0.8, 0.4, 0.35, 0.1: (R, P) = (.5, 1), (.5, .5), (1, 2/3), (1, .5)
    assert M.auc_pr(labels, scores) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_auc_extremes_and_ties():
    labels = [0, 1, 0, 1, 0]
    assert M.auc_roc(labels, [0, 1, 0, 1, 0]) == 1.0
    assert M.auc_roc(labels, [1, 0, 1, 0, 1]) == 0.0
    assert M.auc_roc(labels, np.full(5, 3.0)) == 0.5
    assert M.auc_pr(labels, np.full(5, 3.0)) == pytest.approx(0.4)  # the anomaly ratio
    assert M.auc_pr(np.ones(3), [0.1, 0.5, 0.2]) == pytest.approx(1.0)
    # one tie between an anomaly and a normal point counts one half
    assert M.auc_roc([0, 1, 0], [0.5, 0.5, 0.1]) == pytest.approx(0.75)


def test_auc_roc_equals_mann_whitney_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.1
    scores = np.round(rng.normal(size=500) + labels, 1)  # many ties
    ranks = rankdata(scores)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    expected = (ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert M.auc_roc(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_auc_pr_equals_definition_by_loop():
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + 0.3 * labels, 2)
    ap, prev_recall = 0.0, 0.0
    for t in np.unique(scores)[::-1]:
        pred = scores >= t
        recall = (pred & labels).sum() / labels.sum()
        ap += (recall - prev_recall) * (pred & labels).sum() / pred.sum()
        prev_recall = recall
    assert M.auc_pr(labels, scores) == pytest.approx(ap, abs=1e-12)


# ---------------------------------------------------------------- VUS


def _reference_vus_curves(labels: np.ndarray, scores: np.ndarray, window: int, n_thresholds: int | None):
    """Slow, literal implementation of the definition in ``fsad.evaluation.metrics.vus``."""
    labels = np.asarray(labels, dtype=bool)
    length, n_labelled = len(labels), labels.sum()
    edges = np.diff(np.r_[0, labels.astype(int), 0])
    run_list = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))  # inclusive
    desc = np.sort(scores)[::-1]
    if n_thresholds is None:
        cuts = np.unique(scores)[::-1]
    else:
        cuts = desc[np.linspace(0, length - 1, n_thresholds).astype(int)]
    curves = []
    for width in range(window + 1):
        half = width // 2
        ext = labels.astype(float)
        for s, e in run_list:
            for delta in range(1, half + 1):
                if e + delta < length:
                    ext[e + delta] += math.sqrt(1 - delta / width)
                if s - delta >= 0:
                    ext[s - delta] += math.sqrt(1 - delta / width)
        ext = np.minimum(ext, 1.0)
        merged = []
        for s, e in run_list:
            lo, hi = max(s - half, 0), min(e + half, length - 1)
            if merged and merged[-1][1] >= lo:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        rows = []
        for t in cuts:
            pred = scores >= t
            tp = (ext * pred).sum()
            p_new = (n_labelled + n_labelled + (ext * pred * ~labels).sum()) / 2
            exist = np.mean([pred[lo:hi + 1].any() for lo, hi in merged])
            rows.append((min(tp / p_new, 1) * exist, (pred.sum() - tp) / (length - p_new), tp / pred.sum()))
        curves.append(np.array(rows))
    return curves


def _reference_vus(labels, scores, window, n_thresholds=250):
    aucs, aps = [], []
    for rows in _reference_vus_curves(labels, scores, window, n_thresholds):
        tpr, fpr, prec = np.r_[0, rows[:, 0], 1], np.r_[0, rows[:, 1], 1], rows[:, 2]
        aucs.append(sum((fpr[k + 1] - fpr[k]) * (tpr[k + 1] + tpr[k]) / 2 for k in range(len(tpr) - 1)))
        aps.append(sum((tpr[k + 1] - tpr[k]) * prec[k] for k in range(len(prec))))
    return float(np.mean(aucs)), float(np.mean(aps))


def test_vus_pr_hand_value():
    # run [3, 5) of length 2; width 2 credits points 2 and 5 with sqrt(1/2)
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    scores = np.array([0.6, 0.1, 0.8, 0.9, 0.7, 0.2, 0.3, 0.4])  # order 3, 2, 4, 0, 7, 6, 5, 1
    r = math.sqrt(0.5)
    ap_narrow = 0.5 * 1 + 0.5 * 2 / 3  # widths 0 and 1: no buffer
    recall_2 = (1 + r) / (2 + r / 2)  # top-2 {3, 2} at width 2
    ap_2 = 0.5 * 1 + (recall_2 - 0.5) * (1 + r) / 2 + (1 - recall_2) * (2 + r) / 3
    assert M.vus_pr(labels, scores, window=2, n_thresholds=None) == pytest.approx((2 * ap_narrow + ap_2) / 3)


def test_vus_equals_auc_for_one_segment_and_width_zero():
    rng = np.random.default_rng(2)
    labels = np.zeros(120, dtype=int)
    labels[40:55] = 1
    scores = np.round(rng.random(120) + 0.5 * labels, 2)
    assert M.vus_roc(labels, scores, window=0, n_thresholds=None) == pytest.approx(M.auc_roc(labels, scores))
    assert M.vus_pr(labels, scores, window=0, n_thresholds=None) == pytest.approx(M.auc_pr(labels, scores))


@pytest.mark.parametrize("seed", range(6))
def test_vus_matches_literal_definition(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(30, 90))
    labels = np.zeros(length, dtype=int)
    for _ in range(4):  # close segments: buffers overlap, merge, and reach the series ends
        start = int(rng.integers(0, length))
        labels[start:start + int(rng.integers(1, 6))] = 1
    labels[0] = seed % 2
    scores = np.round(rng.random(length) + 0.4 * labels, 1 + seed % 2)
    window = int(rng.integers(0, 16))
    for n_thresholds in (250, 7, None):
        roc, pr = _reference_vus(labels, scores, window, n_thresholds)
        both = M.vus(labels, scores, window=window, n_thresholds=n_thresholds)
        assert both == pytest.approx({"roc": roc, "pr": pr}, abs=1e-12)
        assert M.vus_roc(labels, scores, window, n_thresholds) == both["roc"]
        assert M.vus_pr(labels, scores, window, n_thresholds) == both["pr"]


def test_vus_full_thresholds_equal_250_on_short_series():
    rng = np.random.default_rng(3)
    labels = (rng.random(200) < 0.1).astype(int)
    scores = rng.random(200)
    assert M.vus(labels, scores, 10) == pytest.approx(M.vus(labels, scores, 10, n_thresholds=None), abs=1e-12)


def test_vus_edge_cases():
    labels = np.array([0, 1, 1, 0, 0, 1, 0, 0])
    assert M.vus_pr(np.ones(8), np.arange(8.0), window=3) == pytest.approx(1.0)
    constant = M.vus(labels, np.zeros(8), window=4)
    assert 0.0 < constant["pr"] < 1.0 and 0.0 < constant["roc"] < 1.0
    assert M.vus(labels, np.zeros(8), window=4) == M.vus(labels, np.full(8, 7.0), window=4)
    # a window longer than the series is fine
    assert M.vus(labels, np.arange(8.0), window=40) == pytest.approx(
        dict(zip(("roc", "pr"), _reference_vus(labels, np.arange(8.0), 40))), abs=1e-12)


def test_vus_pred_hand_value():
    labels, pred = [0, 0, 0, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0]
    r = math.sqrt(0.5)  # weight of point 2 at width 2
    precision_2 = (1 + r) / 2
    out = M.vus_pred(labels, pred, window=2)
    assert out["recall"] == pytest.approx(1.0)
    assert out["precision"] == pytest.approx((0.5 + 0.5 + precision_2) / 3)
    assert out["f1"] == pytest.approx((2 / 3 + 2 / 3 + 2 * precision_2 / (precision_2 + 1)) / 3)
    assert M.vus_pred(labels, np.zeros(7), window=2) == {"recall": 0.0, "precision": 0.0, "f1": 0.0}


# ---------------------------------------------------------------- event- and range-based


def test_event_based_f1_hand_values():
    assert M.event_based_f1(LABELS, PRED) == pytest.approx(2 * 0.5 * 1 / 1.5)  # recall 1/2, precision 1
    assert M.event_based_f1(LABELS, [1, 1, 0, 0, 0, 1]) == pytest.approx(0.8)  # recall 1, precision 2/3
    assert M.event_based_f1(LABELS, np.zeros(6)) == 0.0
    # an event reaching the end of the series is hit by its last point (TSB-AD 1.5 misses it)
    assert M.event_based_f1([0, 0, 1, 1], [0, 0, 0, 1]) == 1.0


def test_range_based_f1_hand_values():
    # recall: event 1 = 0.2 * 1 + 0.8 * (1/2 covered * 1 crossing) = 0.6, event 2 = 0 -> 0.3; precision 1
    assert M.range_based_f1(LABELS, PRED) == pytest.approx(2 * 0.3 / 1.3)
    # two predicted runs inside one event: cardinality 1/2 -> recall 0.2 + 0.8 * 0.5 * 0.5 = 0.4
    assert M.range_based_f1([1, 1, 1, 1, 0], [1, 0, 1, 0, 0]) == pytest.approx(2 * 0.4 / 1.4)
    # one predicted run across two events: recall 1, precision = 2/5 covered * 1/2 cardinality = 0.2
    assert M.range_based_f1([1, 0, 0, 0, 1], [1, 1, 1, 1, 1]) == pytest.approx(2 * 0.2 / 1.2)
    assert M.range_based_f1(LABELS, np.zeros(6)) == 0.0
    assert M.range_based_f1(LABELS, LABELS) == 1.0


# ---------------------------------------------------------------- affiliation


def test_affiliation_hand_values():
    # zones [0, 4) and [4, 6); the prediction [1, 2) lies inside event [1, 3): precision 1. Recall of event 1:
    # [1, 2) covered (1) + [2, 3) at distance d in [0, 1) from the prediction: mean of 1 - 2d/4 = 0.75
    # -> (1 + 0.75) / 2; event 2 has no prediction in its zone: 0.
    out = M.affiliation(LABELS, PRED)
    assert out == pytest.approx({"precision": 1.0, "recall": 0.4375, "f1": 14 / 23})


def test_affiliation_far_prediction():
    # J = [0, 1), E = [0, 4), I = [3, 4): precision mean of (3 - d) / 4 for d in [2, 3) = 1/8;
    # recall: every y in J gets 1 - (y + 3 - y) / 4 = 1/4
    out = M.affiliation([1, 0, 0, 0], [0, 0, 0, 1])
    assert out == pytest.approx({"precision": 0.125, "recall": 0.25, "f1": 1 / 6})


@pytest.mark.parametrize("flip", [False, True])
def test_affiliation_recall_near_the_zone_border(flip):
    # J = [0, 6), E = [0, 10), I = [8, 9). Recall: for y < 4 the zone border is nearer than I, so
    # min(d, m_y) + d = y + (8 - y) = 8; for 4 <= y < 6 it is 2 (8 - y): integral 32 + 12 = 44 ->
    # (6 - 44 / 10) / 6 = 4/15. Precision: d in [2, 3), m = 0: mean of 1 - (d + 6) / 10 = 0.15.
    labels, pred = np.r_[np.ones(6), np.zeros(4)], np.zeros(10)
    pred[8] = 1
    if flip:  # the mirror image exercises the "prediction before the event" formulas
        labels, pred = labels[::-1], pred[::-1]
    out = M.affiliation(labels, pred)
    assert out == pytest.approx({"precision": 0.15, "recall": 4 / 15, "f1": 2 * 0.15 * (4 / 15) / (0.15 + 4 / 15)})


def test_affiliation_edge_cases():
    assert M.affiliation(LABELS, LABELS) == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0})
    assert M.affiliation(LABELS, np.zeros(6)) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    everything = M.affiliation(np.ones(5), np.ones(5))
    assert everything == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0})


def _intervals(binary: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, np.asarray(binary, dtype=int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _distance(points: np.ndarray, intervals: list[tuple[float, float]]) -> np.ndarray:
    return np.min([np.maximum(np.maximum(lo - points, points - hi), 0) for lo, hi in intervals], axis=0)


def _numeric_affiliation(labels: np.ndarray, pred: np.ndarray, step: float = 1 / 100) -> tuple[float, float]:
    """Affiliation precision / recall from their probabilistic definition, integrated on a fine grid.

    Precision of zone E around event J: mean over predicted instants x in E of P(dist(X, J) >= dist(x, J));
    recall: mean over y in J of P(|X - y| >= dist(y, prediction within E)); X uniform on E.
    """
    grid = np.arange(0, len(labels), step) + step / 2
    events, predicted = _intervals(labels), _intervals(pred)
    borders = [0.0] + [(b + a) / 2 for (_, b), (a, _) in zip(events[:-1], events[1:])] + [float(len(labels))]
    precisions, recalls = [], []
    for (a, b), e0, e1 in zip(events, borders[:-1], borders[1:]):
        zone = grid[(grid >= e0) & (grid < e1)]
        pieces = [(max(lo, e0), min(hi, e1)) for lo, hi in predicted if max(lo, e0) < min(hi, e1)]
        if not pieces:
            recalls.append(0.0)
            continue
        x = zone[_distance(zone, pieces) == 0]
        far = _distance(zone, [(a, b)])
        precisions.append(np.mean((far[None, :] >= _distance(x, [(a, b)])[:, None]).mean(axis=1)))
        y = zone[(zone >= a) & (zone < b)]
        recalls.append(np.mean((np.abs(zone[None, :] - y[:, None]) >= _distance(y, pieces)[:, None]).mean(axis=1)))
    return float(np.mean(precisions)), float(np.mean(recalls))


@pytest.mark.parametrize("seed", range(4))
def test_affiliation_matches_brute_force_probabilities(seed):
    rng = np.random.default_rng(seed)
    labels, pred = np.zeros(40, dtype=int), np.zeros(40, dtype=int)
    for start in rng.choice(40, 3, replace=False):
        labels[start:start + int(rng.integers(1, 5))] = 1
    for start in rng.choice(40, 4, replace=False):
        pred[start:start + int(rng.integers(1, 4))] = 1
    precision, recall = _numeric_affiliation(labels, pred)
    out = M.affiliation(labels, pred)
    assert out["precision"] == pytest.approx(precision, abs=2e-3)
    assert out["recall"] == pytest.approx(recall, abs=2e-3)


# ---------------------------------------------------------------- oracles


def test_best_f1_hand_value_and_threshold():
    labels, scores = np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.3, 0.5])
    best = M.best_f1(labels, scores)
    assert best == pytest.approx({"f1": 0.8, "precision": 2 / 3, "recall": 1.0, "threshold": 0.3})
    assert best["threshold"] < 0.3  # the largest float below 0.3: ``scores > threshold`` keeps 0.3
    assert M.precision_recall_f1(labels, scores > best["threshold"])["f1"] == pytest.approx(0.8)
    assert M.best_f1(labels, scores, eps=1e-5)["f1"] == pytest.approx(2 * (2 / 3) / (5 / 3 + 1e-5))
    # explicit thresholds predict strictly above them: > 0.3 keeps {0.9, 0.5} only
    assert M.best_f1(labels, scores, thresholds=[0.3]) == pytest.approx(
        {"f1": 0.5, "precision": 0.5, "recall": 0.5, "threshold": 0.3})


def test_best_f1_pa_hand_value():
    scores = np.array([0.2, 0.9, 0.1, 0.8, 0.3, 0.05])  # event maxima 0.9 and 0.05
    best = M.best_f1_pa(LABELS, scores)
    assert best["f1"] == pytest.approx(0.8)  # scores >= 0.9: adjusted TP 2, FP 0
    assert M.best_f1_pa(LABELS, scores, thresholds=[0.85, 0.0])["f1"] == pytest.approx(0.8)
    assert M.best_f1_pa(LABELS, scores, thresholds=[0.0])["f1"] == pytest.approx(2 / 3)  # all: P 1/2, R 1
    assert M.best_f1_pa(LABELS, scores, thresholds=[0.9])["f1"] == 0.0  # nothing is above 0.9


@pytest.mark.parametrize("seed", range(4))
def test_oracles_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = np.zeros(150, dtype=int)
    for start in rng.choice(150, 5, replace=False):
        labels[start:start + int(rng.integers(1, 12))] = 1
    scores = np.round(rng.random(150) + 0.3 * labels, 2)
    every = [(scores >= t).astype(int) for t in np.unique(scores)]
    grid = M.threshold_grid(scores, 30)
    on_grid = [(scores > t).astype(int) for t in grid]
    f1 = [M.precision_recall_f1(labels, p)["f1"] for p in every]
    pa = [M.precision_recall_f1(labels, M.point_adjust(labels, p))["f1"] for p in every]
    pa_grid = [M.precision_recall_f1(labels, M.point_adjust(labels, p))["f1"] for p in on_grid]
    assert M.best_f1(labels, scores)["f1"] == pytest.approx(max(f1), abs=1e-12)
    assert M.best_f1_pa(labels, scores)["f1"] == pytest.approx(max(pa), abs=1e-12)
    assert M.best_f1_pa(labels, scores, thresholds=grid)["f1"] == pytest.approx(max(pa_grid), abs=1e-12)
    best = M.best_f1_pa(labels, scores)
    adjusted = M.point_adjust(labels, scores > best["threshold"])
    assert M.precision_recall_f1(labels, adjusted)["f1"] == pytest.approx(best["f1"], abs=1e-12)
    event = M.best_over_thresholds(M.event_based_f1, labels, scores, grid)
    assert event["value"] == pytest.approx(max(M.event_based_f1(labels, p) for p in on_grid))


def test_best_over_thresholds_skips_nan_and_reports_threshold():
    scores = np.array([0.0, 1.0, 2.0, 3.0])

    def metric(labels, pred):
        return math.nan if pred.sum() == 0 else pred.sum() / 10

    assert M.best_over_thresholds(metric, [1, 0, 0, 0], scores, [3.0, 0.5, 1.5]) == {"value": 0.3, "threshold": 0.5}
    with pytest.raises(ValueError, match="NaN"):
        M.best_over_thresholds(metric, [1, 0, 0, 0], scores, [3.0])
    assert len(M.threshold_grid(scores)) == 100 and M.threshold_grid(scores)[[0, -1]].tolist() == [0.0, 3.0]
