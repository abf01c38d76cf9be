"""Event-based F1: recall over labelled events, precision over points (TSB-AD's ``Event-based-F1``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import f_score, runs, safe_ratio, sums_over_runs
from fsad.evaluation.metrics._validation import labels_and_pred, require_anomaly


def event_based_f1(labels: ArrayLike, pred: ArrayLike) -> float:
    """F1 of event-wise recall and point-wise precision.

    Definition: events are the maximal runs of 1s in ``labels``; ``recall = (#events with at least one
    predicted point) / #events``; ``precision = TP / (TP + FP)`` counted over points (unadjusted);
    ``f1 = 2 P R / (P + R)``. This is TSB-AD 1.5's ``Event-based-F1`` (``metric_EventF1PA``), which follows
    the "event-wise recall, point-wise precision" F1 of Garg et al.

    Reference: Garg, Zhang, Samaran, Savitha, Foo, "An Evaluation of Anomaly Detection and Diagnosis in
    Multivariate Time Series", IEEE TNNLS 33(6), 2022 (composite F-score); TSB-AD (Liu & Paparrizos,
    "The Elephant in the Room", NeurIPS 2024 Datasets and Benchmarks).

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.

    Returns:
        The F1 as a float.

    Edge cases: labels with no anomaly -> ValueError (event recall undefined; TSB-AD divides 0 by 0); no
    predicted point -> 0. Two deliberate differences from TSB-AD 1.5, both invisible unless the labels end
    with an anomaly: TSB-AD's event list drops the last point of an event that reaches the end of the series
    (its ``_get_events``), so a prediction only on that point misses the event there but not here; and TSB-AD
    adds 1e-15 to the denominator of F1 (a 1e-15 relative difference).
    """
    y, p = labels_and_pred(labels, pred)
    require_anomaly(y, "event-based F1")
    starts, stops = runs(y)
    recall = float(np.mean(sums_over_runs(p, starts, stops) > 0))
    precision = safe_ratio(np.count_nonzero(y & p), np.count_nonzero(p))
    return float(f_score(precision, recall))
