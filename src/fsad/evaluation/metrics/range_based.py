"""Range-based precision / recall / F1 (Tatbul et al.), with the parameters TSB-AD uses."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import f_score, runs, sums_over_runs
from fsad.evaluation.metrics._validation import labels_and_pred, require_anomaly


def _range_score(real: np.ndarray, other: np.ndarray, alpha: float) -> float:
    """Mean over the runs R of ``real`` of ``alpha * existence + (1 - alpha) * overlap * cardinality``.

    For a run R: existence = 1 if ``other`` holds a 1 in R; overlap = fraction of R's points that are 1 in
    ``other`` (flat positional bias); cardinality = 1 / (number of runs of ``other`` intersecting R), 0 when
    none. Returns 0 when ``real`` has no run.
    """
    starts, stops = runs(real)
    if len(starts) == 0:
        return 0.0
    other_starts, other_stops = runs(other)
    covered = sums_over_runs(other, starts, stops)
    crossing = np.searchsorted(other_starts, stops, side="left") - np.searchsorted(other_stops, starts, side="right")
    cardinality = np.where(crossing > 0, 1.0 / np.maximum(crossing, 1), 0.0)
    overlap = covered / (stops - starts) * cardinality
    return float(np.mean(alpha * (covered > 0) + (1.0 - alpha) * overlap))


def range_based_f1(labels: ArrayLike, pred: ArrayLike) -> float:
    """Range-based F1 of Tatbul et al. with TSB-AD's parameters.

    Definition: range recall = mean over labelled runs R of ``0.2 * Existence(R) + 0.8 * Overlap(R)``; range
    precision = mean over predicted runs P of ``Overlap(P)`` (alpha = 0). ``Existence`` is 1 if the other
    side hits the run; ``Overlap`` = (fraction of the run's points covered by the other side, flat bias)
    times the cardinality factor ``1 / (#runs of the other side intersecting it)``. ``f1 = 2 P R / (P + R)``.
    This is TSB-AD 1.5's ``R-based-F1`` (``metric_RF1``: ``alpha = 0.2``, ``bias = "flat"``, gamma = 1/x).

    Reference: Tatbul, Lee, Zdonik, Alam, Gottschlich, "Precision and Recall for Time Series", NeurIPS 2018.

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.

    Returns:
        The F1 as a float.

    Edge cases: labels with no anomaly -> ValueError (range recall undefined); no predicted point -> 0.
    Deliberate difference from TSB-AD 1.5: its run finder returns no run for an all-ones array, so there an
    all-ones ``labels`` gives recall 0 and an all-ones ``pred`` precision 0; here an all-ones array is one run.
    """
    y, p = labels_and_pred(labels, pred)
    require_anomaly(y, "range-based F1")
    recall = _range_score(y, p, alpha=0.2)
    precision = _range_score(p, y, alpha=0.0)
    return float(f_score(precision, recall))
