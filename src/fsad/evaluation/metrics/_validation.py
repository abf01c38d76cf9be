"""Input checks shared by every metric: each failure raises ``ValueError`` naming the offending argument.

Labels for which a metric is undefined (no anomaly, or no normal point) raise :class:`UndefinedMetricError`, a
``ValueError`` subclass, so that a caller can tell "undefined for these labels" from a malformed input.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_binary(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty 1-D array of 0/1 (or bool) values as a bool array of shape (T,)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric 0/1 values, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    ones = arr == 1
    if not (ones | (arr == 0)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return ones


def as_scores(values: ArrayLike, name: str = "scores") -> np.ndarray:
    """A non-empty 1-D array of finite real scores as float64 of shape (T,)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains infinite values")
    return arr


def same_length(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> None:
    """Raise unless both arrays have the same length."""
    if len(first) != len(second):
        raise ValueError(f"{first_name} has {len(first)} points but {second_name} has {len(second)}")


def labels_and_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(labels, scores)``: bool (T,) and float64 (T,)."""
    y, s = as_binary(labels, "labels"), as_scores(scores, "scores")
    same_length(y, s, "labels", "scores")
    return y, s


def labels_and_pred(labels: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(labels, pred)``: two bool arrays of shape (T,)."""
    y, p = as_binary(labels, "labels"), as_binary(pred, "pred")
    same_length(y, p, "labels", "pred")
    return y, p


class UndefinedMetricError(ValueError):
    """Valid inputs for which the metric has no value: labels without anomaly, or without normal point."""


def require_anomaly(labels: np.ndarray, metric: str) -> None:
    """Raise :class:`UndefinedMetricError` when ``labels`` holds no anomalous point (recall is undefined)."""
    if not labels.any():
        raise UndefinedMetricError(f"labels contains no anomaly: {metric} is undefined")


def require_normal(labels: np.ndarray, metric: str) -> None:
    """Raise :class:`UndefinedMetricError` when ``labels`` holds no normal point (false-positive rates are
    undefined)."""
    if labels.all():
        raise UndefinedMetricError(f"labels contains no normal point: {metric} is undefined")


def check_window(window: int) -> int:
    """A non-negative integer buffer width."""
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise ValueError(f"window must be a non-negative integer, got {window!r}")
    return int(window)
