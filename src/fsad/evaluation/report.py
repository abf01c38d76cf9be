"""From per-step scores and labels to one flat, self-describing report.

Keys (all floats):
- ``test/auc_roc``, ``test/auc_pr``, ``test/vus_roc``, ``test/vus_pr``: threshold-free.
- for each threshold strategy ``s``: ``threshold/s`` and ``test/s/{precision,recall,f1}`` (point-wise, no
  adjustment), ``test/s/{precision_pa,recall_pa,f1_pa}`` (point-adjusted), ``test/s/{aff_precision,aff_recall,
  aff_f1}`` (affiliation), ``test/s/range_f1``, ``test/s/event_f1``.

- ``test/all_positive/<metric>``: the thresholded metrics of predicting every test step anomalous, a reference
  that needs no model (affiliation F1 is often 0.6-0.7 there; point-adjusted F1 is high too).

- with ``entities`` (e.g. the machines of SMD): ``entity/<name>/<metric>`` for every metric above except the
  thresholds, computed on that entity's test steps with the global thresholds, and ``entity_mean/<metric>``, their
  mean over the entities that contain anomalies (entities without any are listed in ``entity/skipped``).

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
    entities: list[tuple[str, int, int]] | None = None,
) -> dict[str, float | str]:
    """Compute every metric of the module docstring; returns a flat dict of floats (plus ``error/<s>`` strings).

    A strategy that cannot produce a threshold (e.g. SPOT with too few peaks) gets ``threshold/<s> = NaN`` and
    ``error/<s>`` = the reason, and the other strategies are still evaluated. ``entities``: ``(name, start, end)``
    test ranges (end exclusive) for per-entity metrics.
    """
    labels, test = scores.test_labels.astype(np.int64), scores.test
    if len(labels) != len(test):
        raise ValueError(f"test labels have {len(labels)} steps but test scores have {len(test)}")
    if not np.isfinite(test).all():
        raise ValueError(f"test scores contain {int((~np.isfinite(test)).sum())} NaN/inf values")
    report: dict[str, float | str] = {f"test/{k}": v for k, v in ranking_metrics(labels, test, vus_window).items()}
    everything = np.ones_like(labels)  # the trivial reference: what "every step is anomalous" already scores
    report.update({f"test/all_positive/{k}": v for k, v in thresholded_metrics(labels, everything).items()})
    thresholds: dict[str, float] = {}
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
        report[f"threshold/{strategy}"] = thresholds[strategy] = float(threshold)
        report.update({f"test/{strategy}/{k}": v for k, v in strategy_metrics(labels, test, threshold).items()})
    if entities:
        report.update(entity_metrics(labels, test, thresholds, entities, vus_window))
    return report


def ranking_metrics(labels: np.ndarray, scores: np.ndarray, vus_window: int) -> dict[str, float]:
    """Threshold-free metrics of (T,) scores against (T,) 0/1 labels, plus the anomaly ratio."""
    return {
        "auc_roc": M.auc_roc(labels, scores),
        "auc_pr": M.auc_pr(labels, scores),
        "vus_roc": M.vus_roc(labels, scores, window=vus_window),
        "vus_pr": M.vus_pr(labels, scores, window=vus_window),
        "anomaly_ratio": float(labels.mean()),
    }


def strategy_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """The predicted ratio and :func:`thresholded_metrics` of ``scores > threshold``."""
    pred = (scores > threshold).astype(np.int64)
    return {"predicted_ratio": float(pred.mean()), **thresholded_metrics(labels, pred)}


def entity_metrics(labels: np.ndarray, scores: np.ndarray, thresholds: dict[str, float],
                   entities: list[tuple[str, int, int]], vus_window: int) -> dict[str, float | str]:
    """Per-entity metrics (keys ``entity/<name>/...``) and their mean (``entity_mean/...``), see module docstring."""
    out: dict[str, float | str] = {}
    per_entity, skipped = [], []
    for name, start, end in entities:
        y, s = labels[start:end], scores[start:end]
        if not y.any():
            skipped.append(name)
            continue
        values = dict(ranking_metrics(y, s, vus_window))
        for strategy, threshold in thresholds.items():
            values.update({f"{strategy}/{k}": v for k, v in strategy_metrics(y, s, threshold).items()})
        out.update({f"entity/{name}/{k}": v for k, v in values.items()})
        per_entity.append(values)
    for key in per_entity[0] if per_entity else ():
        out[f"entity_mean/{key}"] = float(np.mean([values[key] for values in per_entity]))
    out["entity/count"] = float(len(per_entity))
    if skipped:
        out["entity/skipped"] = ",".join(skipped)
    return out
