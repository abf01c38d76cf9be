"""Exact threshold-free metrics: every distinct score is a threshold, ``score >= t`` is predicted anomalous.

All functions read a :class:`~fsad.evaluation.image.ranked.Ranked` (ascending normal and anomalous scores), so
one sort per class serves AUROC, AP, F1-max and AU-PRO. Only the distinct anomalous scores matter for the
first three (between two of them a threshold adds false positives and no true positive), and at each of them
the normal scores below / at it are found by binary search: ``O((N + P) log N)`` for N normal and P anomalous
samples, integer counts, no (N + P)-long float64 arrays.

Undefined cases return NaN (the caller warns): AUROC without anomalous or without normal samples, AP without
anomalous samples, AU-PRO without defect region or without normal pixel. F1-max without anomalous samples is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsad.evaluation.image.ranked import Ranked

FPR_LIMIT = 0.3


@dataclass(frozen=True)
class Levels:
    """Counts at each distinct anomalous score v (ascending), all int64 arrays of the same length.

    Attributes:
        starts: index of the first occurrence of v in ``positives``.
        counts: number of anomalous samples equal to v.
        pos_ge: number of anomalous samples >= v.
        neg_lt, neg_le: number of normal samples < v and <= v.
    """

    starts: np.ndarray
    counts: np.ndarray
    pos_ge: np.ndarray
    neg_lt: np.ndarray
    neg_le: np.ndarray


def levels(ranked: Ranked) -> Levels:
    """The :class:`Levels` of ``ranked``: one binary search per distinct anomalous score."""
    pos, neg = ranked.positives, ranked.negatives
    starts = np.flatnonzero(np.concatenate(([True], pos[1:] != pos[:-1]))) if len(pos) else np.zeros(0, np.int64)
    values = pos[starts]
    return Levels(
        starts=starts,
        counts=np.diff(np.append(starts, len(pos))),
        pos_ge=len(pos) - starts,
        neg_lt=np.searchsorted(neg, values, side="left").astype(np.int64),
        neg_le=np.searchsorted(neg, values, side="right").astype(np.int64),
    )


def auroc(ranked: Ranked, lv: Levels | None = None) -> float:
    """Area under the ROC curve (exact, ties count 1/2).

    Definition: the trapezoid area under (FPR, TPR) over every distinct score from (0, 0) to (1, 1), equal to
    the Mann-Whitney statistic ``sum_pos (#neg < s + #neg == s / 2) / (P N)``; computed from integer counts, so
    it matches ``sklearn.metrics.roc_auc_score`` to rounding (~1e-16). Reported as is: below 0.5 means the
    scores rank normal samples higher (never flipped to 1 - AUROC).

    Reference: Hanley & McNeil, Radiology 143 (1982); Fawcett, Pattern Recognition Letters 27 (2006).

    Args:
        ranked: sorted normal / anomalous scores; lv: ``levels(ranked)`` when already computed.

    Edge cases: no anomalous or no normal sample -> NaN; constant scores -> 0.5.
    """
    n_pos, n_neg = len(ranked.positives), len(ranked.negatives)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    lv = lv or levels(ranked)
    doubled_wins = int(np.dot(lv.counts, lv.neg_lt + lv.neg_le))
    return doubled_wins / (2.0 * n_pos * n_neg)


def average_precision(ranked: Ranked, lv: Levels | None = None) -> float:
    """Average precision, step-wise: ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct thresholds.

    Same definition and value as ``sklearn.metrics.average_precision_score`` (no interpolation and never a
    trapezoid, which overrates constant scores: anomalib #3781).

    Reference: Davis & Goadrich, ICML 2006; scikit-learn's ``average_precision_score``.

    Edge cases: no anomalous sample -> NaN (scikit-learn returns 0.0 there); every sample anomalous -> 1.0;
    constant scores -> the prevalence.
    """
    n_pos = len(ranked.positives)
    if n_pos == 0:
        return float("nan")
    lv = lv or levels(ranked)
    neg_ge = len(ranked.negatives) - lv.neg_lt
    return float(np.sum(lv.counts / n_pos * (lv.pos_ge / (lv.pos_ge + neg_ge))))


def _f1_curve(ranked: Ranked, lv: Levels) -> np.ndarray:
    neg_ge = len(ranked.negatives) - lv.neg_lt
    return 2.0 * lv.pos_ge / (lv.pos_ge + neg_ge + len(ranked.positives))


def f1_max(ranked: Ranked, lv: Levels | None = None) -> float:
    """Largest F1 over every threshold of the exact precision-recall curve: ``max_t 2 TP / (2 TP + FP + FN)``.

    Equal to the maximum of ``2 P R / (P + R)`` over ``sklearn.metrics.precision_recall_curve`` (ADer's
    ``mF1_max_sp_max``). An oracle: the threshold is chosen on the evaluated labels.

    Edge cases: no anomalous sample -> 0.0 (F1 is 0 at every threshold); every sample anomalous -> 1.0.
    """
    if len(ranked.positives) == 0:
        return 0.0
    return float(np.max(_f1_curve(ranked, lv or levels(ranked))))


def f1_max_threshold(ranked: Ranked) -> tuple[float, float]:
    """``(F1-max, threshold)``: the lowest attained score t at which ``score >= t`` reaches F1-max.

    Without anomalous samples F1 is 0 everywhere: returns ``(0.0, max score)``, a threshold to use with a
    strict ``score > threshold`` so that every (normal) sample stays normal, never the minimum score that an
    arg-max over an all-zero F1 vector would pick (anomalib #2433). NaN threshold when there is no sample.
    """
    if len(ranked.positives) == 0:
        top = ranked.negatives[-1] if len(ranked.negatives) else np.nan
        return 0.0, float(top)
    lv = levels(ranked)
    f1 = _f1_curve(ranked, lv)
    best = int(np.argmax(f1))
    return float(f1[best]), float(ranked.positives[lv.starts[best]])


def area_up_to(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoid area under the polyline (x, y) from x[0] to ``limit``, the point at ``limit`` interpolated.

    ``x`` must be non-decreasing and reach beyond ``limit`` (or end exactly at it).
    """
    end = int(np.searchsorted(x, limit, side="right"))
    xs, ys = x[:end], y[:end]
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1])) / 2.0)
    if end < len(x) and xs[-1] < limit:
        y_at = ys[-1] + (y[end] - ys[-1]) * (limit - xs[-1]) / (x[end] - xs[-1])
        area += (limit - xs[-1]) * (ys[-1] + y_at) / 2.0
    return area


def au_pro(ranked: Ranked, limit: float = FPR_LIMIT, lv: Levels | None = None) -> float:
    """Normalised area under the per-region-overlap (PRO) curve up to a false-positive rate of ``limit``.

    Definition (MVTec AD, Bergmann et al., IJCV 129 (2021), Sec. 4.2): regions are the 8-connected components
    of each image's mask. At a threshold t every pixel with score >= t is predicted anomalous;
    FPR(t) = predicted normal pixels / all normal pixels of the class (normal images included);
    PRO(t) = mean over all regions of the class of the fraction of the region predicted. Every distinct score
    is a threshold (tied pixels enter together), the curve runs from (0, 0) to (1, 1), is integrated with the
    trapezoid rule up to FPR = ``limit`` (the point at ``limit`` linearly interpolated) and divided by
    ``limit``, so it lies in [0, 1]; uninformative scores give ``limit / 2`` (0.15).

    Computed from the distinct defect-pixel scores: between two of them only normal pixels cross the threshold
    (a horizontal stretch of the curve), so the curve is the polyline through, for each distinct defect score
    v (descending), the points just above and at v.

    Edge cases: no defect region or no normal pixel -> NaN; a perfect ranking -> 1.0.
    """
    n_neg = len(ranked.negatives)
    if ranked.n_regions == 0 or n_neg == 0:
        return float("nan")
    lv = lv or levels(ranked)
    starts, counts, neg_lt, neg_le = lv.starts, lv.counts, lv.neg_lt, lv.neg_le
    weight = 1.0 / ranked.areas
    # suffix[i] = sum of the region weights of the positives i, i+1, ... (scores >= positives[i]).
    suffix = np.append(np.cumsum(weight[::-1])[::-1], 0.0)
    pro_ge = suffix[starts] / ranked.n_regions
    pro_gt = suffix[starts + counts] / ranked.n_regions
    fpr_ge = (n_neg - neg_lt) / n_neg
    fpr_gt = (n_neg - neg_le) / n_neg
    # Descending thresholds: (fpr_gt, pro_gt) just above v, then (fpr_ge, pro_ge) at v.
    x = np.concatenate(([0.0], np.column_stack((fpr_gt, fpr_ge))[::-1].ravel(), [1.0]))
    y = np.concatenate(([0.0], np.column_stack((pro_gt, pro_ge))[::-1].ravel(), [1.0]))
    np.minimum(y, 1.0, out=y)
    return area_up_to(x, y, limit) / limit


def all_metrics(ranked: Ranked) -> dict[str, float]:
    """``auroc``, ``ap``, ``f1_max`` and (with regions) ``au_pro`` of ``ranked`` from one :func:`levels`."""
    lv = levels(ranked)
    out = {"auroc": auroc(ranked, lv), "ap": average_precision(ranked, lv), "f1_max": f1_max(ranked, lv)}
    if ranked.n_regions:
        out["au_pro"] = au_pro(ranked, FPR_LIMIT, lv)
    return out
