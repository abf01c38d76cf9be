"""From per-step scores and labels to one flat, self-describing report.

Keys (values are floats unless stated):
- ``test/auc_roc``, ``test/auc_pr``, ``test/vus_roc``, ``test/vus_pr``: threshold-free; ``test/anomaly_ratio``.
- for each threshold strategy ``s``: ``threshold/s``, ``test/s/predicted_ratio``, ``test/s/{precision,recall,f1}``
  (point-wise, no adjustment), ``test/s/{precision_pa,recall_pa,f1_pa}`` (point-adjusted),
  ``test/s/{aff_precision,aff_recall,aff_f1}`` (affiliation), ``test/s/range_f1``, ``test/s/event_f1``.

- ``test/all_positive/<metric>``: the thresholded metrics of predicting every test step anomalous, a reference
  that needs no model (affiliation F1 is often 0.6-0.7 there; point-adjusted F1 is high too).
- ``test/random/<metric>`` (threshold-free, uniformly random scores) and ``test/random/<s>/<metric>`` (random
  steps at strategy ``s``'s predicted ratio): what chance scores on these labels, mean over the seeds in
  ``reference/random_seeds`` (:mod:`fsad.evaluation.references`).

- with ``entities`` (e.g. the machines of SMD): ``entity/<name>/<metric>`` for every metric above except the
  thresholds, computed on that entity's test steps with the global thresholds, and ``entity_mean/<metric>``, their
  mean over the entities that contain anomalies (entities without any are listed in ``entity/skipped``, a
  string; ``entity/count`` is the number averaged).

Undefined values: a metric that is undefined for these labels (e.g. AUC-ROC of a test split without anomaly, or
with only anomalies; see :class:`~fsad.evaluation.metrics.UndefinedMetricError`), or a threshold a strategy cannot
produce (e.g. SPOT with too few peaks), is ``None`` (``null`` in ``metrics.json``), and ``error/<key>`` holds the
reason as a string: ``test/auc_roc = None`` comes with ``error/test/auc_roc``, ``threshold/spot = None`` with
``error/threshold/spot`` (and that strategy has no ``test/spot/...`` keys). Every defined metric is still
computed. An ``entity_mean`` value is ``None`` as soon as one averaged entity leaves it undefined. Metrics that
define their 0/0 cases (point-wise precision / recall / F1: 0) stay numbers.

Strategies (see :mod:`fsad.evaluation.thresholds`): ``paper`` sees test scores (not labels), ``train_percentile``
and ``spot`` see only training / validation scores, ``oracle`` sees test labels and is an upper bound only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from fsad.evaluation import metrics as M
from fsad.evaluation.references import random_reference
from fsad.evaluation.thresholds import compute_threshold

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Undefined:
    """A metric these labels leave undefined, with the reason (the message of the metric's error)."""

    reason: str


Value = float | Undefined  # one metric before it is written into the report
_PRF = ("precision", "recall", "f1")
RANKING_KEYS = ("auc_roc", "auc_pr", "vus_roc", "vus_pr")  # the metrics reported for each score form


def _guarded(compute: Callable[[], float | dict[str, float]], names: tuple[str, ...]) -> dict[str, Value]:
    """``{name: value}`` of ``compute()``: a float (for one name) or a dict holding ``names``.

    When the metric is undefined for the labels (:class:`~fsad.evaluation.metrics.UndefinedMetricError`), every
    name maps to :class:`Undefined`; any other error propagates.
    """
    try:
        result = compute()
    except M.UndefinedMetricError as err:
        return dict.fromkeys(names, Undefined(str(err)))
    values = result if isinstance(result, dict) else {names[0]: result}
    return {name: float(values[name]) for name in names}


def _flatten(values: dict[str, Value], prefix: str = "") -> dict[str, float | str | None]:
    """Report entries ``prefix + key``: floats as they are, an :class:`Undefined` as ``None`` beside
    ``error/<prefix + key>`` = its reason."""
    out: dict[str, float | str | None] = {}
    for key, value in values.items():
        if isinstance(value, Undefined):
            out[f"{prefix}{key}"] = None
            out[f"error/{prefix}{key}"] = value.reason
        else:
            out[f"{prefix}{key}"] = value
    return out


def thresholded_metrics(labels: np.ndarray, pred: np.ndarray) -> dict[str, Value]:
    """Point-wise, point-adjusted, affiliation, range-based and event-based scores of one binary prediction.

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.

    Returns:
        ``precision``, ``recall``, ``f1``, their ``_pa`` variants, ``aff_precision``, ``aff_recall``, ``aff_f1``,
        ``range_f1``, ``event_f1``; those undefined for the labels (affiliation, range and event scores without
        any anomaly) are :class:`Undefined`. Malformed inputs raise ``ValueError``.
    """
    adjusted = M.point_adjust(labels, pred)
    out = _guarded(partial(M.precision_recall_f1, labels, pred), _PRF)
    out.update({f"{k}_pa": v for k, v in _guarded(partial(M.precision_recall_f1, labels, adjusted), _PRF).items()})
    out.update({f"aff_{k}": v for k, v in _guarded(partial(M.affiliation, labels, pred), _PRF).items()})
    out.update(_guarded(partial(M.range_based_f1, labels, pred), ("range_f1",)))
    out.update(_guarded(partial(M.event_based_f1, labels, pred), ("event_f1",)))
    return out


def build_report(
    scores: ScoreSet,
    strategies: list[str],
    anomaly_ratio: float,
    vus_window: int = 100,
    spot_q: float = 1e-3,
    spot_level: float = 0.98,
    spot_stream: bool = False,
    spot_init: str = "val",
    entities: list[tuple[str, int, int]] | None = None,
) -> dict[str, float | str | None]:
    """Compute every metric of the module docstring into one flat dict.

    Values are floats, ``None`` for an undefined metric or a failed strategy (with the reason in
    ``error/<key>``, see the module docstring), or strings (``error/...``, ``entity/skipped``,
    ``reference/random_seeds``). A strategy that
    cannot produce a threshold does not stop the others. Labels without anomaly, or with anomalies only, give a
    complete report with ``None`` where a metric needs both classes.

    Args:
        scores: the model's scores; ``test`` and ``test_labels`` of the same length (T,).
        strategies: threshold strategies (:data:`~fsad.evaluation.thresholds.THRESHOLD_STRATEGIES`).
        anomaly_ratio: percentage for the percentile strategies.
        vus_window: largest VUS buffer width.
        spot_q, spot_level, spot_stream: SPOT settings.
        spot_init: which scores initialise SPOT: ``val`` (default: validation scores, else training scores) or
            ``train`` (training + validation scores, D3R); see :func:`~fsad.evaluation.thresholds.spot_init_scores`.
        entities: ``(name, start, end)`` test ranges (end exclusive) for per-entity metrics, or None.

    Raises:
        ValueError: test labels and scores of different lengths, non-finite test scores, labels other than 0/1.
    """
    labels, test = scores.test_labels.astype(np.int64), scores.test
    if len(labels) != len(test):
        raise ValueError(f"test labels have {len(labels)} steps but test scores have {len(test)}")
    if not np.isfinite(test).all():
        raise ValueError(f"test scores contain {int((~np.isfinite(test)).sum())} NaN/inf values")
    values: dict[str, Value] = {f"test/{k}": v for k, v in ranking_metrics(labels, test, vus_window).items()}
    everything = np.ones_like(labels)  # the trivial reference: what "every step is anomalous" already scores
    values.update({f"test/all_positive/{k}": v for k, v in thresholded_metrics(labels, everything).items()})
    thresholds: dict[str, float] = {}
    for strategy in strategies:
        try:
            threshold = compute_threshold(
                strategy,
                train_scores=scores.train_windows if strategy == "paper" else scores.train,
                val_scores=scores.val, test_scores=test, labels=labels, anomaly_ratio=anomaly_ratio,
                spot_q=spot_q, spot_level=spot_level, spot_stream=spot_stream, spot_init=spot_init,
            )
        except ValueError as err:  # e.g. too few peaks for SPOT on a short validation series; oracle w/o anomaly
            log.warning("threshold strategy %r failed: %s", strategy, err)
            values[f"threshold/{strategy}"] = Undefined(str(err))
            continue
        values[f"threshold/{strategy}"] = thresholds[strategy] = float(threshold)
        values.update({f"test/{strategy}/{k}": v for k, v in strategy_metrics(labels, test, threshold).items()})
    report = _flatten(values)
    ratios = {s: values[f"test/{s}/predicted_ratio"] for s in thresholds}
    report.update(random_reference(labels, ratios, partial(ranking_metrics, vus_window=vus_window),
                                   thresholded_metrics))
    if entities:
        report.update(entity_metrics(labels, test, thresholds, entities, vus_window))
    return report


def ranking_metrics(labels: np.ndarray, scores: np.ndarray, vus_window: int) -> dict[str, Value]:
    """Threshold-free metrics of (T,) scores against (T,) 0/1 labels, plus the anomaly ratio.

    Returns ``auc_roc``, ``auc_pr``, ``vus_roc``, ``vus_pr`` (:class:`Undefined` where the labels leave them
    undefined: all four without anomaly, the ROC ones without normal point) and ``anomaly_ratio``.
    """
    metrics = {"auc_roc": M.auc_roc, "auc_pr": M.auc_pr, "vus_roc": partial(M.vus_roc, window=vus_window),
               "vus_pr": partial(M.vus_pr, window=vus_window)}
    out: dict[str, Value] = {}
    for name, metric in metrics.items():
        out.update(_guarded(partial(metric, labels, scores), (name,)))
    out["anomaly_ratio"] = float(labels.mean())
    return out


def strategy_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Value]:
    """The predicted ratio and :func:`thresholded_metrics` of (T,) ``scores > threshold`` against (T,) labels."""
    pred = (scores > threshold).astype(np.int64)
    return {"predicted_ratio": float(pred.mean()), **thresholded_metrics(labels, pred)}


def entity_metrics(labels: np.ndarray, scores: np.ndarray, thresholds: dict[str, float],
                   entities: list[tuple[str, int, int]], vus_window: int) -> dict[str, float | str | None]:
    """Per-entity metrics (keys ``entity/<name>/...``) and their mean (``entity_mean/...``), see module docstring.

    Args:
        labels, scores: (T,) test labels and scores.
        thresholds: the global threshold of each strategy that produced one.
        entities: ``(name, start, end)`` ranges of the test steps (end exclusive).
        vus_window: largest VUS buffer width.

    Returns:
        Flat report entries. Entities without anomaly are skipped (``entity/skipped``); an entity with anomalies
        only gets ``None`` + ``error/entity/<name>/<metric>`` for the metrics that need normal points, and the
        mean of such a metric is ``None`` too (``error/entity_mean/<metric>`` names the entity).
    """
    out: dict[str, float | str | None] = {}
    per_entity: list[tuple[str, dict[str, Value]]] = []
    skipped = []
    for name, start, end in entities:
        y, s = labels[start:end], scores[start:end]
        if not y.any():
            skipped.append(name)
            continue
        values = dict(ranking_metrics(y, s, vus_window))
        for strategy, threshold in thresholds.items():
            values.update({f"{strategy}/{k}": v for k, v in strategy_metrics(y, s, threshold).items()})
        out.update(_flatten(values, f"entity/{name}/"))
        per_entity.append((name, values))
    means: dict[str, Value] = {}
    for key in per_entity[0][1] if per_entity else ():
        column = [(name, values[key]) for name, values in per_entity]
        undefined = [f"{name}: {v.reason}" for name, v in column if isinstance(v, Undefined)]
        means[key] = (Undefined("undefined on entity " + "; ".join(undefined)) if undefined
                      else float(np.mean([v for _, v in column])))
    out.update(_flatten(means, "entity_mean/"))
    out["entity/count"] = float(len(per_entity))
    if skipped:
        out["entity/skipped"] = ",".join(skipped)
    return out


def score_form_metrics(forms: dict[str, dict[str, np.ndarray]], labels: np.ndarray, vus_window: int,
                       taken: dict[str, object]) -> dict[str, float | str | None]:
    """``test/<form>/{auc_roc,auc_pr,vus_roc,vus_pr}`` of every score form's test scores against the (T,) labels:
    ``None`` with ``error/<key>`` where the labels (one class) or non-finite scores leave a metric undefined.
    A form whose keys are already ``taken`` by the main report is an error."""
    out: dict[str, float | str | None] = {}
    for form, per_split in forms.items():
        test = per_split.get("test")
        if test is None:
            continue
        bad = int((~np.isfinite(test)).sum())
        if bad:
            values = dict.fromkeys(RANKING_KEYS, Undefined(f"{bad} of {len(test)} test scores are NaN/inf"))
        else:
            ranking = ranking_metrics(labels.astype(np.int64), test, vus_window)
            values = {key: ranking[key] for key in RANKING_KEYS}
        flat = _flatten(values, prefix=f"test/{form}/")
        if taken.keys() & flat.keys():
            raise ValueError(f"score form {form!r} would overwrite report keys {sorted(taken.keys() & flat.keys())}")
        out.update(flat)
    return out
