"""Threshold strategies: anomaly scores -> one scalar threshold.

Predictions are always ``scores > threshold`` (strict), as in the original code bases
(:func:`apply_threshold`). Scores are 1-D per-timestep anomaly scores (larger = more anomalous);
arrays of any shape are flattened. What each strategy is allowed to see:

* ``paper``: train + TEST scores (no labels); the percentile of Anomaly-Transformer / DCdetector /
  FreCT / TransMamba over the concatenated train and test scores;
* ``train_percentile``: training (or validation) scores only; the same percentile;
* ``spot``: init = validation (else training) scores with ``spot_init="val"``, or every training-side score
  (training part + validation tail) with ``spot_init="train"``, D3R's init set; with ``spot_stream`` also the
  TEST scores (no labels), streamed as in D3R / VAN-AD; see :mod:`fsad.evaluation.spot` and
  :func:`spot_init_scores`;
* ``oracle``: TEST scores and TEST LABELS; the best-F1 threshold, an upper bound for diagnostics,
  never a detector result.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fsad.evaluation.spot import spot_threshold
from fsad.evaluation.metrics._validation import as_scores, labels_and_scores, require_anomaly

__all__ = [
    "SPOT_INITS",
    "THRESHOLD_STRATEGIES",
    "apply_threshold",
    "check_spot_init",
    "compute_threshold",
    "oracle_best_f1_threshold",
    "paper_percentile",
    "spot_init_scores",
    "spot_threshold",
    "train_percentile",
]

THRESHOLD_STRATEGIES: tuple[str, ...] = ("paper", "train_percentile", "spot", "oracle")
#: Which scores initialise SPOT (``evaluation.spot.init``); see :func:`spot_init_scores`.
SPOT_INITS: tuple[str, ...] = ("val", "train")


def _check_ratio(anomaly_ratio: float) -> float:
    ratio = float(anomaly_ratio)
    if not (0.0 < ratio < 100.0):
        raise ValueError(f"anomaly_ratio is a percentage in (0, 100) (1 = top 1%), got {anomaly_ratio}")
    return ratio


def apply_threshold(scores: ArrayLike, threshold: float) -> NDArray[np.bool_]:
    """Binary predictions ``scores > threshold`` (strict), same shape as ``scores``."""
    return np.asarray(scores) > threshold


def paper_percentile(train_scores: ArrayLike, test_scores: ArrayLike, anomaly_ratio: float) -> float:
    """The papers' threshold: ``np.percentile(concat(train, test), 100 - anomaly_ratio)``.

    Protocol of Anomaly-Transformer, DCdetector, FreCT and TransMamba. It SEES THE TEST SCORES
    (not the labels): the threshold depends on the distribution of the very scores it thresholds,
    so it is not available to an online detector.

    Args:
        train_scores: shape (N_train,), anomaly scores on the training set.
        test_scores: shape (N_test,), anomaly scores on the test set.
        anomaly_ratio: in PERCENT, in (0, 100): 1 gives the 99th percentile.

    Returns:
        The threshold (linear-interpolated percentile, numpy's default).
    """
    ratio = _check_ratio(anomaly_ratio)
    combined = np.concatenate([as_scores(train_scores, "train_scores"), as_scores(test_scores, "test_scores")])
    return float(np.percentile(combined, 100.0 - ratio))


def train_percentile(train_scores: ArrayLike, anomaly_ratio: float) -> float:
    """``np.percentile(train_scores, 100 - anomaly_ratio)``: calibration scores only, never test data.

    Args:
        train_scores: shape (N,), anomaly scores on the training (or validation) set.
        anomaly_ratio: in PERCENT, in (0, 100): 1 gives the 99th percentile.
    """
    ratio = _check_ratio(anomaly_ratio)
    return float(np.percentile(as_scores(train_scores, "train_scores"), 100.0 - ratio))


def _best_f1(
    values: NDArray[np.float64], pos: NDArray[np.float64], neg: NDArray[np.float64], total_pos: float
) -> tuple[float, float]:
    """Best F1 over thresholds on weighted items.

    An item ``i`` (value ``values[i]``) is predicted positive when ``values[i] > threshold`` and then
    adds ``pos[i]`` true positives and ``neg[i]`` false positives; ``F1 = 2 TP / (TP + FP + total_pos)``.
    Items are sorted once by decreasing value; cumulative sums give TP / FP for every distinct value.
    Predicting the items with value ``>= v_k`` is done by the threshold ``v_{k+1}`` (the next lower
    distinct value), or just below ``v_k`` when ``v_k`` is the smallest. Ties in F1 keep the highest
    threshold.
    """
    order = np.argsort(-values, kind="stable")
    v = values[order]
    tp = np.cumsum(pos[order])
    fp = np.cumsum(neg[order])
    last = np.ones(v.size, dtype=bool)
    last[:-1] = v[1:] != v[:-1]  # last item of each run of equal values
    v, tp, fp = v[last], tp[last], fp[last]
    f1 = 2.0 * tp / (tp + fp + total_pos)
    k = int(np.argmax(f1))
    threshold = float(v[k + 1]) if k + 1 < v.size else float(np.nextafter(v[k], -np.inf))
    return threshold, float(f1[k])


def oracle_best_f1_threshold(
    labels: ArrayLike, scores: ArrayLike, point_adjusted: bool = False
) -> tuple[float, float]:
    """ORACLE: the threshold that maximises F1 on the TEST LABELS, and that F1.

    It sees the test labels, so it is an upper bound on what any threshold can achieve with these
    scores (a diagnostic of score quality); it is never a detector result.

    Args:
        labels: shape (N,), binary ground truth (1 = anomaly); without anomaly F1 is undefined and
            :class:`~fsad.evaluation.metrics.UndefinedMetricError` (a ``ValueError``) is raised.
        scores: shape (N,), anomaly scores.
        point_adjusted: ``False``: point-wise F1 of ``scores > threshold``. ``True``: point-adjusted F1
            (PA, as in Anomaly-Transformer's evaluation): a true anomaly segment (maximal run of 1s)
            counts as entirely detected as soon as one of its points is predicted, i.e. once the
            threshold is below the segment's maximum score.

    Returns:
        ``(threshold, f1)`` with ``scores > threshold`` reaching ``f1``. The threshold is the next lower
        candidate value below the predicted set (so a score equal to it is not predicted); ties in F1
        keep the highest threshold.
    """
    y, s = labels_and_scores(labels, scores)
    require_anomaly(y, "the oracle's best F1")
    total_pos = float(np.count_nonzero(y))
    if not point_adjusted:
        return _best_f1(s, y.astype(np.float64), (~y).astype(np.float64), total_pos)
    # PA: items = normal points (1 false positive each) + anomaly segments (length true positives each,
    # value = the segment's maximum score). Non-maximal anomaly points never change the outcome.
    edges = np.diff(np.concatenate([[0], y.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    # max over each [start, end): reduceat on interleaved (start, end) indices, every other result
    bounds = np.column_stack([starts, ends]).reshape(-1)
    seg_max = np.maximum.reduceat(np.append(s, -np.inf), bounds)[::2]
    normal = s[~y]
    values = np.concatenate([normal, seg_max])
    pos = np.concatenate([np.zeros(normal.size), (ends - starts).astype(np.float64)])
    neg = np.concatenate([np.ones(normal.size), np.zeros(starts.size)])
    return _best_f1(values, pos, neg, total_pos)


def _need(value: ArrayLike | None, name: str, strategy: str) -> ArrayLike:
    if value is None:
        raise ValueError(f"threshold strategy {strategy!r} needs {name}")
    return value


def check_spot_init(value: object) -> str:
    """``evaluation.spot.init`` as a string, checked against :data:`SPOT_INITS`.

    Called before the report is built, so that a misspelt value stops the run with this message instead of
    leaving ``threshold/spot`` undefined.
    """
    if value not in SPOT_INITS:
        raise ValueError(f"evaluation.spot.init must be one of {', '.join(SPOT_INITS)}, got {value!r}")
    return str(value)


def spot_init_scores(spot_init: str, train_scores: ArrayLike | None, val_scores: ArrayLike | None) -> ArrayLike:
    """The scores SPOT is initialised on (its calibration set; never test data).

    * ``"val"``: the validation scores when given, else the training scores (the held-out tail only).
    * ``"train"``: every training-side score: the training scores followed by the validation scores when given
      (with ``val_source=train_tail`` the validation split is the tail of the training series, so this is the
      whole training series). This is D3R's protocol: its ``init_set`` is the whole training file, training and
      validation parts together (ForestsKing/D3R ``data/preprocess.py``, ``exp/exp.py``), and CrossAD's
      ``flag='init'`` loader reads the whole TAB training split likewise. Only the values matter: SPOT sorts its
      init scores.

    Args:
        spot_init: one of :data:`SPOT_INITS`.
        train_scores: shape (N_train,) training scores, or None.
        val_scores: shape (N_val,) validation scores, or None.

    Returns:
        The init scores: with ``"val"`` the chosen input as given, with ``"train"`` a new float64 array of shape
        (N_train + N_val,) (inputs flattened). :class:`~fsad.evaluation.spot.SPOT` validates them.

    Raises:
        ValueError: unknown ``spot_init``, or no scores to initialise on (``train`` needs ``train_scores``).
    """
    if check_spot_init(spot_init) == "val":
        return _need(val_scores if val_scores is not None else train_scores, "val_scores or train_scores", "spot")
    parts = [_need(train_scores, "train_scores (spot_init='train')", "spot")]
    if val_scores is not None:
        parts.append(val_scores)
    return np.concatenate([np.ravel(np.asarray(part, dtype=np.float64)) for part in parts])


def compute_threshold(
    strategy: str,
    *,
    train_scores: ArrayLike | None = None,
    val_scores: ArrayLike | None = None,
    test_scores: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    anomaly_ratio: float = 1.0,
    spot_q: float = 1e-3,
    spot_level: float = 0.98,
    spot_stream: bool = False,
    spot_init: str = "val",
    oracle_point_adjusted: bool = False,
) -> float:
    """Dispatch to a threshold strategy by name (one of :data:`THRESHOLD_STRATEGIES`).

    * ``paper``: :func:`paper_percentile` (``train_scores``, ``test_scores``, ``anomaly_ratio``);
    * ``train_percentile``: :func:`train_percentile` (``train_scores``, ``anomaly_ratio``);
    * ``spot``: :func:`~fsad.evaluation.spot.spot_threshold` (risk ``spot_q``, level ``spot_level``) on the
      init scores of :func:`spot_init_scores`: ``spot_init="val"`` (default) = ``val_scores`` if given, else
      ``train_scores``; ``"train"`` = ``train_scores`` followed by ``val_scores`` (D3R). ``spot_stream=True``
      streams ``test_scores`` and returns the mean per-step threshold (D3R / VAN-AD protocol, sees the test
      scores, not the labels), ``False`` (default) returns the initial ``z_q`` (no test data);
    * ``oracle``: :func:`oracle_best_f1_threshold` (``labels``, ``test_scores``,
      ``oracle_point_adjusted``); sees the test labels, an upper bound only.

    Score arrays have shape (N,) (flattened otherwise). Raises ``ValueError`` for an unknown strategy or
    when an input the strategy needs is missing.
    """
    if strategy == "paper":
        return paper_percentile(
            _need(train_scores, "train_scores", strategy), _need(test_scores, "test_scores", strategy), anomaly_ratio
        )
    if strategy == "train_percentile":
        return train_percentile(_need(train_scores, "train_scores", strategy), anomaly_ratio)
    if strategy == "spot":
        init = spot_init_scores(spot_init, train_scores, val_scores)
        if spot_stream:
            stream = _need(test_scores, "test_scores (spot_stream=True)", strategy)
            return spot_threshold(init, stream, q=spot_q, level=spot_level, stream=True)
        return spot_threshold(init, None, q=spot_q, level=spot_level, stream=False)
    if strategy == "oracle":
        threshold, _ = oracle_best_f1_threshold(
            _need(labels, "labels", strategy), _need(test_scores, "test_scores", strategy), oracle_point_adjusted
        )
        return threshold
    raise ValueError(f"unknown threshold strategy {strategy!r}; valid: {', '.join(THRESHOLD_STRATEGIES)}")
