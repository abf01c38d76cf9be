"""Point-wise precision / recall / F1 of a binary prediction, and point adjustment."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import f_score, runs, runs_mask, safe_ratio, sums_over_runs
from fsad.evaluation.metrics._validation import labels_and_pred


def precision_recall_f1(labels: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """Point-wise precision, recall and F1 of the anomalous class.

    Definition: ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``f1 = 2 P R / (P + R)``, counting
    points. Same as TSB-AD's ``Standard-F1`` for a given prediction (``sklearn`` with ``zero_division=0``).

    Reference: van Rijsbergen, "Information Retrieval", 2nd ed., 1979 (F-measure).

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.

    Returns:
        ``{"precision", "recall", "f1"}``.

    Edge cases: every 0/0 is defined as 0: no predicted positive -> precision 0; no anomaly in labels ->
    recall 0; precision = recall = 0 -> f1 0. Values other than 0/1 -> ValueError naming the argument.
    """
    y, p = labels_and_pred(labels, pred)
    tp = float(np.count_nonzero(y & p))
    precision = safe_ratio(tp, np.count_nonzero(p))
    recall = safe_ratio(tp, np.count_nonzero(y))
    return {"precision": float(precision), "recall": float(recall), "f1": float(f_score(precision, recall))}


def point_adjust(labels: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """Point-adjusted prediction: a labelled anomaly segment hit at any point counts as entirely detected.

    Definition: for every maximal run of 1s in ``labels``, if ``pred`` is 1 anywhere in the run, set ``pred``
    to 1 on the whole run; points outside runs are unchanged. ``precision_recall_f1(labels,
    point_adjust(labels, pred))`` is TSB-AD's ``PA-F1`` for a given prediction.

    Point adjustment inflates scores (a random prediction reaches high PA-F1 on long segments); never report
    it alone.

    Reference: Xu et al., "Unsupervised Anomaly Detection via Variational Auto-Encoder for Seasonal KPIs in
    Web Applications", WWW 2018.

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.

    Returns:
        (T,) int64 adjusted prediction.

    Edge cases: no anomaly in labels -> ``pred`` unchanged; all anomalies -> all 1 if any point is predicted.
    Differs from TSB-AD 1.5 (``_adjust_predicts``) in one corner: TSB-AD never back-fills index 0, so a
    segment starting at index 0 and first hit later keeps ``pred[0] = 0`` there; here it is adjusted too.
    """
    y, p = labels_and_pred(labels, pred)
    starts, stops = runs(y)
    hit = sums_over_runs(p, starts, stops) > 0
    return (p | runs_mask(len(y), starts[hit], stops[hit])).astype(np.int64)
