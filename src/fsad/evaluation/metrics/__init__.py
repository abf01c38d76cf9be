"""Time-series anomaly-detection metrics: numpy arrays in, Python floats / dicts out.

Threshold-free (scores): :func:`auc_roc`, :func:`auc_pr`, :func:`vus_roc`, :func:`vus_pr` (:func:`vus` gives
both in one pass). One binary prediction: :func:`precision_recall_f1`, :func:`point_adjust`,
:func:`affiliation`, :func:`range_based_f1`, :func:`event_based_f1`, :func:`vus_pred`. Oracles that see the
labels (upper bounds, never results): :func:`best_f1`, :func:`best_f1_pa`, :func:`best_over_thresholds`,
with :func:`threshold_grid`.

Where a metric shares a name with TSB-AD 1.5 (``TSB_AD.evaluation.metrics.get_metrics`` /
``get_metrics_pred``) it reproduces TSB-AD's numbers; each docstring states the deliberate differences.
Inputs: ``labels`` / ``pred`` of 0/1 (or bool) and finite ``scores``, all 1-D of the same length; anything
else raises ``ValueError`` naming the argument. Valid labels for which a metric is undefined (no anomaly; for
ROC-type metrics also no normal point) raise :class:`UndefinedMetricError`, a ``ValueError``.
"""

from fsad.evaluation.metrics._validation import UndefinedMetricError
from fsad.evaluation.metrics.affiliation import affiliation
from fsad.evaluation.metrics.event_based import event_based_f1
from fsad.evaluation.metrics.oracle import best_f1, best_f1_pa, best_over_thresholds, threshold_grid
from fsad.evaluation.metrics.pointwise import point_adjust, precision_recall_f1
from fsad.evaluation.metrics.range_based import range_based_f1
from fsad.evaluation.metrics.ranking import auc_pr, auc_roc
from fsad.evaluation.metrics.vus import vus, vus_pr, vus_pred, vus_roc

__all__ = [
    "UndefinedMetricError",
    "affiliation",
    "auc_pr",
    "auc_roc",
    "best_f1",
    "best_f1_pa",
    "best_over_thresholds",
    "event_based_f1",
    "point_adjust",
    "precision_recall_f1",
    "range_based_f1",
    "threshold_grid",
    "vus",
    "vus_pr",
    "vus_pred",
    "vus_roc",
]
