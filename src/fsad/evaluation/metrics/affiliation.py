"""Affiliation precision / recall (Huet, Navarro, Rossi, KDD 2022), in closed form and vectorised.

Events are the maximal runs of 1s, point ``i`` standing for the interval ``[i, i + 1)``; the time range is
``(0, T)``. Each ground-truth event ``J_j = [a_j, b_j)`` owns the *affiliation zone* ``E_j = [e0_j, e1_j)``
of the instants closer to it than to any other ground-truth event (zone borders are the midpoints between
consecutive events, the outer borders 0 and T). Every predicted event is cut along the zone borders into
*pieces*; each piece belongs to one zone.

- Precision of zone j (defined when the zone holds a piece): the mean, over the instants x of its pieces, of
  ``Fbar_p(d(x, J_j))``, the probability that a point drawn uniformly in ``E_j`` lies at least as far from
  ``J_j`` as x: ``Fbar_p(d) = 1 - (min(d, m) + d + |J|) / |E|`` outside J, 1 inside, with
  ``m = min(a - e0, e1 - b)``.
- Recall of zone j: each instant y of ``J_j`` is matched to the nearest piece I of the zone (the pieces'
  own zones inside ``E_j``, split at midpoints); the recall is the mean over y of ``Fbar_r(d(y, I))``, the
  probability that a point drawn uniformly in ``E_j`` lies farther from y: ``Fbar_r(d) = 1 - (min(d, m_y) +
  d) / |E|`` with ``m_y = min(y - e0, e1 - y)``. A zone without pieces has recall 0.
- Precision = mean over the zones that hold a piece; recall = mean over all zones.

Both integrals are piecewise polynomial in the interval ends; the code integrates them exactly, one array
element per piece, so the cost is O(T) for finding events plus O(#events log #events).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fsad.evaluation.metrics._segments import f_score, runs, safe_ratio
from fsad.evaluation.metrics._validation import labels_and_pred, require_anomaly


def _cumulative_min(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``G(x) = integral_0^x min(t, m) dt`` elementwise, for x, m >= 0."""
    return np.minimum(x, m) ** 2 / 2.0 + m * (np.maximum(x, m) - m)


def _precision_integral(
    u: np.ndarray, v: np.ndarray, j_len: np.ndarray, e_len: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """``integral_u^v Fbar_p(d) dd`` for pieces outside J at distances ``u <= d <= v`` (u = v: empty)."""
    integral_of_cdf = _cumulative_min(v, m) - _cumulative_min(u, m) + (v**2 - u**2) / 2.0 + j_len * (v - u)
    return (v - u) - integral_of_cdf / e_len


def _recall_integral_before(ta: np.ndarray, tb: np.ndarray, pivot: np.ndarray, e0: np.ndarray) -> np.ndarray:
    """``integral_ta^tb (min(d, m_y) + d) dy`` for ``ta <= tb <= pivot`` (d = pivot - y, pivot in E).

    ``min(d, m_y)`` is ``y - e0`` below ``c = (pivot + e0) / 2`` (sum constant ``pivot - e0``) and ``d``
    above it (sum ``2 (pivot - y)``).
    """
    c = (pivot + e0) / 2.0
    flat_end = np.clip(c, ta, tb)
    return (pivot - e0) * (flat_end - ta) + (pivot - flat_end) ** 2 - (pivot - tb) ** 2


def _recall_integral_after(ta: np.ndarray, tb: np.ndarray, pivot: np.ndarray, e1: np.ndarray) -> np.ndarray:
    """``integral_ta^tb (min(d, m_y) + d) dy`` for ``pivot <= ta <= tb`` (mirror of the "before" case)."""
    c = (pivot + e1) / 2.0
    slope_end = np.clip(c, ta, tb)
    return (slope_end - pivot) ** 2 - (ta - pivot) ** 2 + (e1 - pivot) * (tb - slope_end)


def _pieces(
    pred_starts: np.ndarray, pred_stops: np.ndarray, borders: np.ndarray, zone_lo: np.ndarray, zone_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut predicted events along the interior zone ``borders`` (sorted, shape (Z - 1,)).

    Returns ``(zone, lo, hi)``, each of shape (N,): the zone index and the half-open extent of every
    non-empty piece, in time order.
    """
    first = np.searchsorted(borders, pred_starts, side="right")
    last = np.searchsorted(borders, pred_stops, side="left")
    count = last - first + 1
    event = np.repeat(np.arange(len(pred_starts)), count)
    zone = np.repeat(first, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    lo = np.maximum(pred_starts[event], zone_lo[zone])
    hi = np.minimum(pred_stops[event], zone_hi[zone])
    return zone, lo, hi


def affiliation(labels: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """Affiliation precision, recall and F1 of a binary prediction.

    Definition: see the module docstring; ``f1 = 2 P R / (P + R)``. Reproduces TSB-AD 1.5's
    ``Affiliation-F`` (``convert_vector_to_events`` + ``pr_from_events`` with ``Trange = (0, T)``).

    Reference: Huet, Navarro, Rossi, "Local Evaluation of Time Series Anomaly Detection Algorithms", KDD 2022.

    Args:
        labels: (T,) 0/1 ground truth.
        pred: (T,) 0/1 prediction.

    Returns:
        ``{"precision", "recall", "f1"}``.

    Edge cases: labels with no anomaly -> ValueError (no affiliation zone; TSB-AD raises too); no predicted
    point -> precision 0, recall 0, f1 0 (TSB-AD: precision and F are NaN; here 0/0 is 0 as elsewhere);
    all anomalies -> one zone covering the series. TSB-AD adds 1e-15 to the F denominator (negligible).
    """
    y, p = labels_and_pred(labels, pred)
    require_anomaly(y, "affiliation")
    gt_lo, gt_hi = (x.astype(np.float64) for x in runs(y))
    pred_starts, pred_stops = (x.astype(np.float64) for x in runs(p))
    n_zones = len(gt_lo)
    if len(pred_starts) == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}

    borders = (gt_hi[:-1] + gt_lo[1:]) / 2.0
    zone_lo = np.concatenate(([0.0], borders))
    zone_hi = np.concatenate((borders, [float(len(y))]))
    zone, lo, hi = _pieces(pred_starts, pred_stops, borders, zone_lo, zone_hi)
    a, b, e0, e1 = gt_lo[zone], gt_hi[zone], zone_lo[zone], zone_hi[zone]
    j_len, e_len = b - a, e1 - e0

    # Precision: integrate Fbar_p over each piece (part before J, inside J, after J).
    margin = np.minimum(a - e0, e1 - b)
    before = _precision_integral(a - np.minimum(hi, a), np.maximum(a - lo, 0.0), j_len, e_len, margin)
    after = _precision_integral(np.maximum(lo, b) - b, np.maximum(hi - b, 0.0), j_len, e_len, margin)
    inside = np.maximum(np.minimum(hi, b) - np.maximum(lo, a), 0.0)
    precision_mass = np.bincount(zone, before + inside + after, minlength=n_zones)
    piece_length = np.bincount(zone, hi - lo, minlength=n_zones)
    has_piece = piece_length > 0
    precision = float(np.mean(precision_mass[has_piece] / piece_length[has_piece]))

    # Recall: the part of J nearest to each piece, integrated against that piece.
    first_in_zone = np.concatenate(([True], zone[1:] != zone[:-1]))
    last_in_zone = np.concatenate((zone[1:] != zone[:-1], [True]))
    midpoints = (hi[:-1] + lo[1:]) / 2.0
    near_lo = np.maximum(a, np.where(first_in_zone, e0, np.concatenate(([0.0], midpoints))))
    near_hi = np.minimum(b, np.where(last_in_zone, e1, np.concatenate((midpoints, [0.0]))))
    near_hi = np.maximum(near_hi, near_lo)  # empty share -> zero length
    covered = np.maximum(np.minimum(near_hi, hi) - np.maximum(near_lo, lo), 0.0)
    left_lo, left_hi = near_lo, np.maximum(np.minimum(near_hi, lo), near_lo)
    right_hi = near_hi
    right_lo = np.minimum(np.maximum(near_lo, hi), near_hi)
    left = (left_hi - left_lo) - _recall_integral_before(left_lo, left_hi, lo, e0) / e_len
    right = (right_hi - right_lo) - _recall_integral_after(right_lo, right_hi, hi, e1) / e_len
    recall_mass = np.bincount(zone, covered + left + right, minlength=n_zones)
    recall = float(np.mean(recall_mass / (gt_hi - gt_lo)))

    f1 = float(f_score(precision, recall))
    return {"precision": precision, "recall": recall, "f1": f1}
