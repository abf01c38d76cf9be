"""Point-wise, threshold-free ranking metrics: AUC-ROC and AUC-PR (average precision)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import confusion_at_thresholds
from fsad.evaluation.metrics._validation import labels_and_scores, require_anomaly, require_normal


def auc_roc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the point-wise ROC curve.

    Definition: sweep the threshold t over every distinct score (``pred = scores >= t``), take the curve of
    (FPR, TPR) from (0, 0) to (1, 1) and integrate it with the trapezoidal rule. Equals the probability that a
    random anomalous point scores above a random normal one, ties counting 1/2 (Mann-Whitney U / (P N)).
    Same as ``sklearn.metrics.roc_auc_score`` and TSB-AD's ``AUC-ROC``.

    Reference: Fawcett, "An introduction to ROC analysis", Pattern Recognition Letters 27 (2006).

    Args:
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores, higher = more anomalous.

    Edge cases: labels with no anomaly or no normal point -> ValueError (undefined); constant scores -> 0.5;
    NaN / infinite scores -> ValueError naming ``scores``.
    """
    y, s = labels_and_scores(labels, scores)
    require_anomaly(y, "AUC-ROC")
    require_normal(y, "AUC-ROC")
    _, tp, fp = confusion_at_thresholds(y, s)
    tpr = np.concatenate(([0.0], tp / tp[-1]))
    fpr = np.concatenate(([0.0], fp / fp[-1]))
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def auc_pr(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the point-wise precision-recall curve, as average precision (step-wise, no interpolation).

    Definition: with thresholds t_1 > t_2 > ... the distinct scores and ``pred = scores >= t_k``,
    ``AP = sum_k (R_k - R_{k-1}) P_k`` with ``R_0 = 0``. Same as ``sklearn.metrics.average_precision_score``
    and TSB-AD's ``AUC-PR``.

    Reference: Davis & Goadrich, "The relationship between precision-recall and ROC curves", ICML 2006.

    Args:
        labels: (T,) 0/1 ground truth.
        scores: (T,) anomaly scores, higher = more anomalous.

    Edge cases: labels with no anomaly -> ValueError (recall undefined); all anomalies -> 1.0; constant
    scores -> the anomaly ratio; NaN / infinite scores -> ValueError naming ``scores``.
    """
    y, s = labels_and_scores(labels, scores)
    require_anomaly(y, "AUC-PR")
    _, tp, fp = confusion_at_thresholds(y, s)
    recall = tp / tp[-1]
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
