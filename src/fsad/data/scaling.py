"""Scalers fitted on training data only (numpy, sklearn semantics without the dependency)."""

from __future__ import annotations

import numpy as np


class Scaler:
    """Per-channel affine scaling ``(x - offset) / scale`` fitted on a (T, C) training array.

    kind:
        ``standard``: offset = mean, scale = population standard deviation (as sklearn's ``StandardScaler``);
        ``minmax``: offset = min, scale = max - min (as sklearn's ``MinMaxScaler`` to [0, 1]);
        ``none``: identity.
    Constant channels get scale 1 (sklearn does the same), so they map to 0.
    """

    KINDS = ("standard", "minmax", "none")

    def __init__(self, kind: str = "standard"):
        if kind not in self.KINDS:
            raise ValueError(f"data.scaler must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, train: np.ndarray) -> "Scaler":
        train = train.astype(np.float64)
        c = train.shape[1]
        if self.kind == "standard":
            offset, scale = train.mean(axis=0), train.std(axis=0)
        elif self.kind == "minmax":
            offset, scale = train.min(axis=0), train.max(axis=0) - train.min(axis=0)
        else:
            offset, scale = np.zeros(c), np.ones(c)
        scale = np.where(scale > 0, scale, 1.0)
        self.offset, self.scale = offset, scale
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.offset is None:
            raise RuntimeError("Scaler.transform called before fit")
        return ((x - self.offset) / self.scale).astype(np.float32)
