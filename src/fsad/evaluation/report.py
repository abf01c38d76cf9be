"""From per-step scores and labels to one flat, self-describing report.

Keys (all floats):
- ``test/auc_roc``, ``test/auc_pr``, ``test/vus_roc``, ``test/vus_pr``: threshold-free.
- for each threshold strategy ``s``: ``threshold/s`` and ``test/s/{precision,recall,f1}`` (point-wise, no
  adjustment), ``test/s/{precision_pa,recall_pa,f1_pa}`` (point-adjusted), ``test/s/{aff_precision,aff_recall,
  aff_f1}`` (affiliation), ``test/s/range_f1``, ``test/s/event_f1``.

Strategies (see :mod:`fsad.evaluation.thresholds`): ``paper`` sees test scores (not labels), ``train_percentile``
and ``spot`` see only training / validation scores, ``oracle`` sees test labels and is an upper bound only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fsad.evaluation import metrics as M
from fsad.evaluation.thresholds import compute_threshold


@dataclass
class ScoreSet:
    """Scores of one model on one benchmark.

    Attributes:
        train: (T_train,) per-step scores of the training series.
        train_windows: (n * W,) scores of every position of every scored training window (the papers' "train
            energy"; equals ``train`` up to order when training windows do not overlap).
        test: (T_test,) per-step test scores.
        test_labels: (T_test,) 0/1 labels.
        val: (T_val,) per-step validation scores, or None.
    """

    train: np.ndarray
    train_windows: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    val: np.ndarray | None = None


def thresholded_metrics(labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Point-wise, point-adjusted, affiliation, range-based and event-based scores of one binary prediction."""
    out: dict[str, float] = {}
    out.update(M.precision_recall_f1(labels, pred))
    pa = M.precision_recall_f1(labels, M.point_adjust(labels, pred))
    out.update({f"{k}_pa": v for k, v in pa.items()})
    out.update({f"aff_{k}": v for k, v in M.affiliation(labels, pred).items()})
    out["range_f1"] = M.range_based_f1(labels, pred)
    out["event_f1"] = M.event_based_f1(labels, pred)
    return {k: float(v) for k, v in out.items()}


log = logging.getLogger(__name__)


def build_report(
    scores: ScoreSet,
    strategies: list[str],
    anomaly_ratio: float,
    vus_window: int = 100,
    spot_q: float = 1e-3,
    spot_level: float = 0.98,
    spot_stream: bool = False,
) -> dict[str, float | str]:
    """Compute every metric of the module docstring; returns a flat dict of floats (plus ``error/<s>`` strings).

    A strategy that cannot produce a threshold (e.g. SPOT with too few peaks) gets ``threshold/<s> = NaN`` and
    ``error/<s>`` = the reason, and the other strategies are still evaluated.
    """
    labels, test = scores.test_labels.astype(np.int64), scores.test
    if len(labels) != len(test):
        raise ValueError(f"test labels have {len(labels)} steps but test scores have {len(test)}")
    if not np.isfinite(test).all():
        raise ValueError(f"test scores contain {int((~np.isfinite(test)).sum())} NaN/inf values")
    report: dict[str, float | str] = {
        "test/auc_roc": M.auc_roc(labels, test),
        "test/auc_pr": M.auc_pr(labels, test),
        "test/vus_roc": M.vus_roc(labels, test, window=vus_window),
        "test/vus_pr": M.vus_pr(labels, test, window=vus_window),
        "test/anomaly_ratio": float(labels.mean()),
    }
    for strategy in strategies:
        try:
            threshold = compute_threshold(
                strategy,
                train_scores=scores.train_windows if strategy == "paper" else scores.train,
                val_scores=scores.val, test_scores=test, labels=labels, anomaly_ratio=anomaly_ratio,
                spot_q=spot_q, spot_level=spot_level, spot_stream=spot_stream,
            )
        except ValueError as err:  # e.g. too few peaks for SPOT on a short validation series
            log.warning("threshold strategy %r failed: %s", strategy, err)
            report[f"threshold/{strategy}"] = float("nan")
            report[f"error/{strategy}"] = str(err)
            continue
        report[f"threshold/{strategy}"] = float(threshold)
        pred = (test > threshold).astype(np.int64)
        report[f"test/{strategy}/predicted_ratio"] = float(pred.mean())
        report.update({f"test/{strategy}/{k}": v for k, v in thresholded_metrics(labels, pred).items()})
    return report
