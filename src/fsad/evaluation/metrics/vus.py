"""Volume under the range-based ROC / PR surfaces (VUS), as defined by Paparrizos et al. and computed by TSB-AD.

Range-based labels of buffer width ``w`` (Paparrizos et al., VLDB 2022, Sec. 4; TSB-AD 1.5 ``sequencing``):
every labelled anomaly keeps weight 1 and each run ``[s, e]`` (inclusive) adds, to a point ``x`` at distance
``delta = s - x`` or ``x - e`` with ``1 <= delta <= w // 2``, the weight ``sqrt(1 - delta / w)``; weights add
up over runs and are clipped to 1. Writing ``ext_w`` for these weights, ``P`` for the number of labelled
points, ``T`` for the length and ``pred`` for a binary prediction:

- ``TP = sum(ext_w * pred)``; ``P_new = P + C / 2`` with ``C = sum(ext_w * pred * [x not labelled])`` the
  weight credited to predicted buffer points (half-way between P and the ``P + C`` credited positives),
- ``recall = min(TP / P_new, 1)``, ``precision = TP / sum(pred)``, ``FPR = (sum(pred) - TP) / (T - P_new)``,
- ``existence = (#buffered ranges holding a predicted point) / (#buffered ranges)``, where the buffered ranges
  are the runs widened by ``w // 2`` on both sides and merged when they touch, and ``TPR = recall * existence``.

VUS-ROC / VUS-PR average, over ``w = 0 .. window``, the area under the (FPR, TPR) curve (trapezoids, from
(0, 0) to (1, 1)) and the average precision ``sum_k (TPR_k - TPR_{k-1}) precision_k``, with thresholds at
``n_thresholds`` evenly spaced ranks of the sorted scores (``pred = scores >= threshold``), as TSB-AD 1.5's
``RangeAUC_volume_opt`` with ``thre=250``.

Vectorisation: the scores are sorted once; every threshold is a prefix of that order, so every sum above is a
cumulative sum read at the prefix lengths. Only normal points within ``window // 2`` of a run ever get weight,
and a point reached by two runs is always clipped to 1 (each contribution is at least ``sqrt(1/2)``), so the
weights of width ``w`` need only the two nearest run ends on each side of each such point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import f_score, max_over_runs, runs, safe_ratio
from fsad.evaluation.metrics._validation import (
    check_window,
    labels_and_pred,
    labels_and_scores,
    require_anomaly,
    require_normal,
)


@dataclass(frozen=True)
class _Buffer:
    """Normal points within reach of a labelled run, with distances (float, inf when absent) to the nearest
    and second-nearest run end on their left (``x - e``) and run start on their right (``s - x``)."""

    index: np.ndarray  # (B,) int64 positions
    left: np.ndarray  # (B,)
    left2: np.ndarray  # (B,)
    right: np.ndarray  # (B,)
    right2: np.ndarray  # (B,)


def _buffer(labels: np.ndarray, starts: np.ndarray, stops: np.ndarray, reach: int) -> _Buffer:
    """The normal points at distance ``1 .. reach`` of a run ``[starts[k], stops[k])``."""
    normal = np.flatnonzero(~labels)
    last = stops - 1
    n_runs = len(starts)

    def distance(run_index: np.ndarray, anchor: np.ndarray, sign: int) -> np.ndarray:
        valid = (run_index >= 0) & (run_index < n_runs)
        safe = np.clip(run_index, 0, n_runs - 1)
        return np.where(valid, sign * (normal - anchor[safe]), np.inf)

    before = np.searchsorted(last, normal, side="left")  # runs ending before x
    after = np.searchsorted(starts, normal, side="right")  # index of the first run starting after x
    left, left2 = distance(before - 1, last, 1), distance(before - 2, last, 1)
    right, right2 = distance(after, starts, -1), distance(after + 1, starts, -1)
    keep = np.minimum(left, right) <= reach
    return _Buffer(normal[keep], left[keep], left2[keep], right[keep], right2[keep])


def _buffer_weights(buf: _Buffer, width: int) -> np.ndarray:
    """Range-label weight ``ext_w`` of every buffer point for buffer width ``width``; shape (B,)."""
    half = width // 2
    if half == 0:
        return np.zeros(len(buf.index))
    reached = (buf.left <= half).astype(np.int8) + (buf.left2 <= half) + (buf.right <= half) + (buf.right2 <= half)
    with np.errstate(invalid="ignore"):
        from_left = np.where(buf.left <= half, np.sqrt(1.0 - buf.left / width), 0.0)
        from_right = np.where(buf.right <= half, np.sqrt(1.0 - buf.right / width), 0.0)
    return np.where(reached >= 2, 1.0, from_left + from_right)


def _merged_ranges(starts: np.ndarray, stops: np.ndarray, half: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs widened by ``half`` on both sides, merged when they overlap or touch, clipped to ``[0, length)``.

    Returns half-open ``(lo, hi)`` of shape (G,).
    """
    last = stops - 1
    split = np.flatnonzero(last[:-1] + half < starts[1:] - half)
    first_run = np.concatenate(([0], split + 1))
    last_run = np.concatenate((split, [len(starts) - 1]))
    lo = np.maximum(starts[first_run] - half, 0)
    hi = np.minimum(last[last_run] + half, length - 1) + 1
    return lo, hi


def _vus_curves(
    labels: np.ndarray, scores: np.ndarray, window: int, n_thresholds: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TPR, FPR, precision) of every buffer width and threshold, each of shape (window + 1, K)."""
    length = len(scores)
    n_labelled = float(labels.sum())
    starts, stops = runs(labels)

    order = np.argsort(-scores, kind="stable")
    rank = np.empty(length, dtype=np.int64)
    rank[order] = np.arange(length)
    desc = scores[order]
    if n_thresholds is None:
        n_pred = np.concatenate((np.flatnonzero(np.diff(desc) != 0), [length - 1])) + 1
    else:
        picks = np.linspace(0, length - 1, n_thresholds).astype(np.int64)
        n_pred = np.searchsorted(-desc, -desc[picks], side="right")  # points with score >= threshold
    tp_labelled = np.cumsum(labels[order])[n_pred - 1].astype(np.float64)

    buf = _buffer(labels, starts, stops, window // 2)
    buf_order = np.argsort(rank[buf.index], kind="stable")
    buf_in_pred = np.searchsorted(rank[buf.index][buf_order], n_pred, side="left")
    neg_rank = -rank

    shape = (window + 1, len(n_pred))
    tpr, fpr, precision = np.empty(shape), np.empty(shape), np.empty(shape)
    for width in range(window + 1):
        weights = _buffer_weights(buf, width)[buf_order]
        credited = np.concatenate(([0.0], np.cumsum(weights)))[buf_in_pred]
        tp = tp_labelled + credited
        p_new = n_labelled + credited / 2.0

        lo, hi = _merged_ranges(starts, stops, width // 2, length)
        first_rank = np.sort(-max_over_runs(neg_rank, lo, hi))
        existence = np.searchsorted(first_rank, n_pred, side="left") / len(lo)

        tpr[width] = np.minimum(tp / p_new, 1.0) * existence
        fpr[width] = safe_ratio(n_pred - tp, length - p_new)
        precision[width] = tp / n_pred
    return tpr, fpr, precision


def _vus(
    labels: ArrayLike, scores: ArrayLike, window: int, n_thresholds: int | None, need_roc: bool
) -> dict[str, float]:
    """Checked inputs -> ``{"roc": VUS-ROC, "pr": VUS-PR}``."""
    y, s = labels_and_scores(labels, scores)
    window = check_window(window)
    require_anomaly(y, "VUS")
    if need_roc:
        require_normal(y, "VUS-ROC")
    if n_thresholds is not None and n_thresholds < 1:
        raise ValueError(f"n_thresholds must be a positive integer or None, got {n_thresholds!r}")
    tpr, fpr, precision = _vus_curves(y, s, window, n_thresholds)
    zeros, ones = np.zeros((window + 1, 1)), np.ones((window + 1, 1))
    roc_t, roc_f = np.hstack((zeros, tpr, ones)), np.hstack((zeros, fpr, ones))
    auc = np.sum(np.diff(roc_f, axis=1) * (roc_t[:, 1:] + roc_t[:, :-1]), axis=1) / 2.0
    ap = np.sum(np.diff(np.hstack((zeros, tpr)), axis=1) * precision, axis=1)
    return {"roc": float(auc.mean()), "pr": float(ap.mean())}


def vus(labels: ArrayLike, scores: ArrayLike, window: int = 100, n_thresholds: int | None = 250) -> dict[str, float]:
    """VUS-ROC and VUS-PR from one pass over the data: ``{"roc": ..., "pr": ...}``.

    Same definitions, arguments and edge cases as :func:`vus_roc` (so labels need a normal point) and
    :func:`vus_pr`; half the cost of calling both.
    """
    return _vus(labels, scores, window, n_thresholds, need_roc=True)


def vus_roc(labels: ArrayLike, scores: ArrayLike, window: int = 100, n_thresholds: int | None = 250) -> float:
    """Volume under the range-based ROC surface (mean range-AUC-ROC over buffer widths 0..window).

    Definition: see the module docstring; reproduces TSB-AD 1.5 ``get_metrics(..., version="opt")``
    ``VUS-ROC`` (``RangeAUC_volume_opt`` with ``windowSize = window``, ``thre = 250``).

    Reference: Paparrizos, Boniol, Palpanas, Tsay, Elmore, Franklin, "Volume Under the Surface: A New
    Accuracy Evaluation Measure for Time-Series Anomaly Detection", PVLDB 15(11), 2022.

    Args:
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores, higher = more anomalous.
        window: largest buffer width; the surface spans widths ``0 .. window`` (TSB-AD's ``slidingWindow``).
        n_thresholds: thresholds per curve, at evenly spaced ranks of the sorted scores (TSB-AD: 250); None
            for every distinct score (the exact curve; differs from TSB-AD).
    Edge cases: labels with no anomaly or no normal point -> ValueError (undefined); constant scores -> every
    threshold predicts everything: one operating point per width, (FPR, TPR) = ((T - TP) / (T - P_new), 1),
    so the value lies in (0.5, 1) and not at 0.5 as for AUC-ROC; NaN / infinite scores -> ValueError naming
    ``scores``.
    """
    return _vus(labels, scores, window, n_thresholds, need_roc=True)["roc"]


def vus_pr(labels: ArrayLike, scores: ArrayLike, window: int = 100, n_thresholds: int | None = 250) -> float:
    """Volume under the range-based precision-recall surface (mean range-AP over buffer widths 0..window).

    Definition: see the module docstring; reproduces TSB-AD 1.5 ``get_metrics(..., version="opt")``
    ``VUS-PR``.

    Reference: Paparrizos et al., "Volume Under the Surface", PVLDB 15(11), 2022.

    Args:
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores, higher = more anomalous.
        window: largest buffer width; the surface spans widths ``0 .. window`` (TSB-AD's ``slidingWindow``).
        n_thresholds: thresholds per curve, at evenly spaced ranks of the sorted scores (TSB-AD: 250); None
            for every distinct score (the exact curve; differs from TSB-AD).
    Edge cases: labels with no anomaly -> ValueError (recall undefined); all anomalies -> 1.0; constant scores
    -> every threshold predicts everything (the range precision of the full prediction); NaN / infinite
    scores -> ValueError naming ``scores``.
    """
    return _vus(labels, scores, window, n_thresholds, need_roc=False)["pr"]


def vus_pred(labels: ArrayLike, pred: ArrayLike, window: int = 100) -> dict[str, float]:
    """Range-based recall, precision and F of one binary prediction, averaged over buffer widths 0..window.

    Definition: per width ``w``, ``recall = min(TP / P_new, 1)`` (no existence factor),
    ``precision = TP / sum(pred)``, ``f = 2 PR / (P + R)``, with ``TP`` and ``P_new`` of the module docstring;
    the three are averaged over the widths (F is the mean of the per-width F, not the F of the means).
    This is TSB-AD 1.5 ``metric_VUS_pred`` (``VUS-Recall``, ``VUS-Precision``, ``VUS-F`` of
    ``get_metrics_pred``) *as intended*: TSB-AD 1.5 overwrites its ``labels`` variable inside the loop over
    widths, so that width ``w`` extends the previous width's *masked* labels; a predicted normal point then
    accumulates the weights of all widths up to ``w`` (clipped to 1) instead of ``ext_w``, which inflates its
    numbers. This function uses ``ext_w`` of each width, as the paper defines it.

    Reference: Paparrizos et al., "Volume Under the Surface", PVLDB 15(11), 2022.

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.
        window: largest buffer width.

    Returns:
        ``{"recall", "precision", "f1"}``.

    Edge cases: labels with no anomaly -> ValueError; a prediction with no positive -> precision 0 (0/0),
    recall 0, f1 0.
    """
    y, p = labels_and_pred(labels, pred)
    window = check_window(window)
    require_anomaly(y, "VUS")
    starts, stops = runs(y)
    buf = _buffer(y, starts, stops, window // 2)
    predicted_buffer = p[buf.index]
    n_labelled, tp_labelled, n_pred = float(y.sum()), float((y & p).sum()), float(p.sum())
    recall, precision = np.empty(window + 1), np.empty(window + 1)
    for width in range(window + 1):
        credited = float(_buffer_weights(buf, width) @ predicted_buffer)
        recall[width] = min((tp_labelled + credited) / (n_labelled + credited / 2.0), 1.0)
        precision[width] = safe_ratio(tp_labelled + credited, n_pred)
    return {
        "recall": float(recall.mean()),
        "precision": float(precision.mean()),
        "f1": float(f_score(precision, recall).mean()),
    }
