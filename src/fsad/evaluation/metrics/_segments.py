"""Vectorised building blocks: maximal runs of a binary series, sums over runs, counts above thresholds."""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of True in a bool array of shape (T,).

    Returns ``(starts, stops)``, int64 arrays of shape (K,): run k covers the half-open index range
    ``[starts[k], stops[k])``. Runs are sorted and separated by at least one False.
    """
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def runs_mask(length: int, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Bool array of shape (length,) that is True on the disjoint half-open runs ``[starts[k], stops[k])``."""
    delta = np.zeros(length + 1, dtype=np.int64)
    delta[starts] += 1
    delta[stops] -= 1
    return np.cumsum(delta[:-1]) > 0


def sums_over_runs(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``values[starts[k]:stops[k]].sum()`` for every k, via one cumulative sum; shape (K,)."""
    prefix = np.concatenate(([0], np.cumsum(values)))
    return prefix[stops] - prefix[starts]


def max_over_runs(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``values[starts[k]:stops[k]].max()`` for every run k; shape (K,).

    Runs must be non-empty, sorted and disjoint; they may touch (``stops[k] == starts[k + 1]``).
    """
    if len(starts) == 0:
        return np.empty(0, dtype=values.dtype)
    bounds = np.stack([starts, stops], axis=1).ravel()
    if stops[-1] == len(values):
        bounds = bounds[:-1]  # reduceat indices must be valid; the last run then reduces to the end
    return np.maximum.reduceat(values, bounds)[::2]  # odd slots are the gaps between runs


def weight_above(
    values: np.ndarray, weights: np.ndarray | None, thresholds: np.ndarray, inclusive: bool
) -> np.ndarray:
    """Total weight of the ``values`` above each threshold t: ``> t``, or ``>= t`` when ``inclusive``.

    Args:
        values: (M,) values, any order.
        weights: (M,) weights, or None for unit weights (a count).
        thresholds: (K,) thresholds, any order.
        inclusive: compare with ``>=`` instead of ``>``.

    Returns:
        (K,) float64 totals, from one sort and one binary search (O((M + K) log M)).
    """
    order = np.argsort(values, kind="stable")
    cum = np.concatenate(([0.0], np.cumsum(np.ones(len(values)) if weights is None else weights[order])))
    below = np.searchsorted(values[order], thresholds, side="left" if inclusive else "right")
    return cum[-1] - cum[below]


def confusion_at_thresholds(
    labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point-wise true and false positive counts for a set of thresholds.

    Args:
        labels: (T,) bool ground truth.
        scores: (T,) float scores.
        thresholds: (K,) thresholds, predicting ``scores > t``; None for every distinct score s, largest
            first, predicting ``scores >= s`` (every distinct non-empty top set of the ranking).

    Returns:
        ``(thresholds, tp, fp)``, each of shape (K,); tp and fp are float64 counts.
    """
    inclusive = thresholds is None
    if thresholds is None:
        thresholds = np.unique(scores)[::-1]
    tp = weight_above(scores[labels], None, thresholds, inclusive)
    fp = weight_above(scores[~labels], None, thresholds, inclusive)
    return thresholds, tp, fp


def safe_ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """``num / den`` with 0/0 (and x/0) defined as 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def f_score(precision: np.ndarray | float, recall: np.ndarray | float, eps: float = 0.0) -> np.ndarray:
    """Harmonic mean ``2PR / (P + R + eps)``, with 0 where ``P + R + eps == 0``."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    return safe_ratio(2.0 * p * r, p + r + eps)
