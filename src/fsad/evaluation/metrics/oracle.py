"""Oracle helpers: the best score over thresholds, chosen with the labels.

Everything here *sees the labels* to pick the threshold: an upper bound on what a detector could reach with
a perfect threshold, never a number to report as a detector's result.

Conventions: a threshold t predicts ``scores > t`` everywhere in this module. ``thresholds=None`` means the
exact oracle, over every distinct cut of the sorted scores (every non-empty "score >= s" set; the threshold
returned is then the largest float below s). An array of thresholds evaluates exactly those, as TSB-AD does
with :func:`threshold_grid` (100 evenly spaced values from min to max).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import (
    confusion_at_thresholds,
    f_score,
    max_over_runs,
    runs,
    safe_ratio,
    weight_above,
)
from fsad.evaluation.metrics._validation import labels_and_scores, require_anomaly


def threshold_grid(scores: ArrayLike, n: int = 100) -> np.ndarray:
    """``n`` evenly spaced thresholds from ``min(scores)`` to ``max(scores)``, shape (n,) (TSB-AD's oracle grid)."""
    s = np.asarray(scores, dtype=np.float64)
    return np.linspace(s.min(), s.max(), n)


def _as_strict(thresholds: np.ndarray, inclusive: bool) -> np.ndarray:
    """Thresholds for ``scores > t``; inclusive ones (``scores >= s``) become the largest float below s."""
    return np.nextafter(thresholds, -np.inf) if inclusive else thresholds


def _best(f1: np.ndarray, precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """The entries of the (first) threshold with the highest F1."""
    k = int(np.argmax(f1))
    return {"f1": float(f1[k]), "precision": float(precision[k]), "recall": float(recall[k]),
            "threshold": float(thresholds[k])}


def best_f1(
    labels: ArrayLike, scores: ArrayLike, *, thresholds: ArrayLike | None = None, eps: float = 0.0
) -> dict[str, float]:
    """Best point-wise F1 over thresholds (an oracle that sees the labels).

    Definition: ``max_t 2 P(t) R(t) / (P(t) + R(t) + eps)`` with point-wise precision / recall of
    ``scores > t``. TSB-AD 1.5's oracle ``Standard-F1`` is ``best_f1(labels, scores, eps=1e-5)`` (it takes
    every distinct score from ``precision_recall_curve`` and adds 1e-5 to the denominator, so its value is
    about 1e-5 below the true best F1; the default ``eps=0`` gives the true best).

    Reference: the F1 of van Rijsbergen (1979) maximised over thresholds, as in e.g. Xu et al., WWW 2018.

    Args:
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores.
        thresholds: (K,) thresholds to try, or None for every distinct cut (exact).
        eps: added to the F1 denominator.

    Returns:
        ``{"f1", "precision", "recall", "threshold"}`` at the best threshold (``pred = scores > threshold``).

    Edge cases: labels with no anomaly -> ValueError; constant scores -> the F1 of predicting everything;
    NaN / infinite scores -> ValueError naming ``scores``.
    """
    y, s = labels_and_scores(labels, scores)
    require_anomaly(y, "best F1")
    given = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    cuts, tp, fp = confusion_at_thresholds(y, s, given)
    precision, recall = safe_ratio(tp, tp + fp), tp / np.count_nonzero(y)
    return _best(f_score(precision, recall, eps), precision, recall, _as_strict(cuts, given is None))


def best_f1_pa(labels: ArrayLike, scores: ArrayLike, *, thresholds: ArrayLike | None = None) -> dict[str, float]:
    """Best point-adjusted F1 over thresholds (an oracle that sees the labels).

    Definition: ``max_t`` of the point-wise F1 of ``point_adjust(labels, scores > t)``. A labelled segment
    counts as wholly detected at threshold t when its highest score exceeds t, so the adjusted true positives
    are the lengths of the segments whose maximum exceeds t, and the false positives the normal points above
    t. TSB-AD 1.5's oracle ``PA-F1`` is ``best_f1_pa(labels, scores, thresholds=threshold_grid(scores))``.

    Point adjustment lets a random score reach a high F1 on long segments: never report it alone.

    Reference: Xu et al., WWW 2018 (point adjustment); Kim et al., "Towards a Rigorous Evaluation of
    Time-Series Anomaly Detection", AAAI 2022 (why PA-F1 overestimates).

    Args:
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores.
        thresholds: (K,) thresholds to try, or None for every distinct cut (exact).

    Returns:
        ``{"f1", "precision", "recall", "threshold"}`` (adjusted precision / recall) at the best threshold.

    Edge cases: as :func:`best_f1`.
    """
    y, s = labels_and_scores(labels, scores)
    require_anomaly(y, "best PA-F1")
    given = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    cuts = np.unique(s)[::-1] if given is None else given
    starts, stops = runs(y)
    inclusive = given is None
    tp = weight_above(max_over_runs(s, starts, stops), (stops - starts).astype(np.float64), cuts, inclusive)
    fp = weight_above(s[~y], None, cuts, inclusive)
    precision, recall = safe_ratio(tp, tp + fp), tp / np.count_nonzero(y)
    return _best(f_score(precision, recall), precision, recall, _as_strict(cuts, given is None))


def best_over_thresholds(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels: ArrayLike,
    scores: ArrayLike,
    thresholds: ArrayLike | None = None,
) -> dict[str, float]:
    """Best value of any prediction metric over thresholds (an oracle that sees the labels).

    Definition: ``max_t metric(labels, scores > t)`` over ``thresholds`` (default :func:`threshold_grid`, as
    TSB-AD 1.5's oracles for ``Event-based-F1``, ``R-based-F1`` and ``Affiliation-F``); NaN values are
    skipped. Costs one metric call per threshold.

    Args:
        metric: ``metric(labels, pred) -> float`` with (T,) arrays, e.g. :func:`event_based_f1` or
            ``lambda y, p: affiliation(y, p)["f1"]``.
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores.
        thresholds: (K,) thresholds, default ``threshold_grid(scores)``.

    Returns:
        ``{"value", "threshold"}`` at the best threshold (the first one on ties).

    Edge cases: every value NaN -> ValueError; NaN / infinite scores -> ValueError naming ``scores``.
    """
    y, s = labels_and_scores(labels, scores)
    cuts = threshold_grid(s) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    values = np.array([metric(y.astype(np.int64), (s > t).astype(np.int64)) for t in cuts], dtype=np.float64)
    if np.isnan(values).all():
        raise ValueError("metric is NaN at every threshold")
    k = int(np.nanargmax(values))
    return {"value": float(values[k]), "threshold": float(cuts[k])}
