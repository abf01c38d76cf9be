"""Feature vectors of the classical baselines, and the training steps they are fitted on.

A baseline turns every time step ``t`` into one vector: the step itself (``input=step``, C values), or the
``k = window_size`` steps ending at ``t`` flattened oldest first (``input=window``, ``k * C`` values laid out as
``[x[t-k+1, 0..C-1], ..., x[t, 0..C-1]]``). ``step`` is the same as ``window`` with ``k = 1``.

Training windows arrive shuffled and, with a stride below the window length, overlapping; :class:`StepCollector`
writes each into one array indexed by time, so every training step is kept exactly once.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

INPUTS = ("step", "window")


def window_vectors(x: np.ndarray, k: int) -> np.ndarray:
    """The vectors of every position of a window that has ``k - 1`` steps before it inside the window.

    Args:
        x: (..., W, C) windows (any leading axes).
        k: steps per vector, 1 <= k <= W.

    Returns:
        (..., W - k + 1, k * C): entry ``j`` is ``x[..., j : j + k, :]`` flattened time-major (oldest step first),
        i.e. the vector of position ``j + k - 1``. A view where numpy allows it, else a copy.

    Raises:
        ValueError: k outside [1, W].
    """
    steps, channels = x.shape[-2], x.shape[-1]
    if not 1 <= k <= steps:
        raise ValueError(f"window_size must be in [1, {steps}] (the window length), got {k}")
    if k == 1:
        return x
    view = sliding_window_view(x, k, axis=-2)  # (..., W - k + 1, C, k)
    return np.swapaxes(view, -1, -2).reshape(*x.shape[:-2], steps - k + 1, k * channels)


def training_vectors(values: np.ndarray, seen: np.ndarray, k: int, max_vectors: int | None,
                     seed: int) -> np.ndarray:
    """The training vectors: one per step whose ``k`` steps (itself and the ``k - 1`` before it) were all seen,
    at most ``max_vectors`` of them drawn without replacement (seeded, kept in time order).

    Args:
        values: (T, C) the training series as collected (rows not seen are ignored).
        seen: (T,) bool, which rows hold collected steps.
        k: steps per vector (1 for ``input=step``).
        max_vectors: cap on the number of vectors (None: all).
        seed: seed of the subsample (``numpy.random.default_rng``); the same inputs give the same vectors.

    Returns:
        (N, k * C) float64 with N = min(eligible steps, max_vectors).

    Raises:
        ValueError: no step has ``k`` seen steps ending at it.
    """
    complete = np.convolve(seen.astype(np.int64), np.ones(k, dtype=np.int64), mode="valid") == k  # (T - k + 1,)
    ends = np.flatnonzero(complete) + k - 1
    if len(ends) == 0:
        raise ValueError(f"no training step has {k} collected steps ending at it ({int(seen.sum())} steps "
                         "collected); lower model.window_size or give more training data")
    if max_vectors is not None and len(ends) > max_vectors:
        rng = np.random.default_rng(seed)
        ends = np.sort(rng.choice(ends, size=max_vectors, replace=False))
    rows = ends[:, None] + np.arange(1 - k, 1)  # (N, k): the k steps ending at each chosen step
    return values[rows].reshape(len(ends), -1).astype(np.float64)


def spread_to_positions(vector_scores: np.ndarray, k: int) -> np.ndarray:
    """Per-position scores of windows from the scores of their vectors (:func:`window_vectors`).

    Args:
        vector_scores: (B, W - k + 1) score of the vector ending at positions ``k - 1 .. W - 1``.
        k: steps per vector.

    Returns:
        (B, W): positions ``k - 1 ..`` take their own vector's score; the first ``k - 1`` positions, whose history
        lies outside the window, take the score of the first full vector (the one that contains them): the usual
        edge padding of sliding-window scores.
    """
    if k == 1:
        return vector_scores
    head = np.repeat(vector_scores[:, :1], k - 1, axis=1)
    return np.concatenate([head, vector_scores], axis=1)


class StepCollector:
    """Training steps by time index, filled from (possibly overlapping, shuffled) windows.

    Attributes:
        n_channels: C.
        steps_added: number of window steps written so far (counts repeats), to tell whether anything changed.
    """

    def __init__(self, n_channels: int):
        self.n_channels = n_channels
        self._values = np.zeros((0, n_channels), dtype=np.float32)
        self._seen = np.zeros(0, dtype=bool)
        self.steps_added = 0

    def add(self, starts: np.ndarray, windows: np.ndarray) -> None:
        """Write windows into the series.

        Args:
            starts: (B,) int, index of each window's first step in the training series.
            windows: (B, W, C) the windows' values.

        Raises:
            ValueError: channels differ from ``n_channels`` or the shapes do not match.
        """
        if windows.ndim != 3 or windows.shape[-1] != self.n_channels or len(starts) != len(windows):
            raise ValueError(f"expected windows (B, W, {self.n_channels}) with B starts, got {windows.shape} and "
                             f"{len(starts)} starts")
        if len(starts) == 0:
            return
        rows = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(windows.shape[1])  # (B, W)
        end = int(rows.max()) + 1
        if end > len(self._seen):  # grow geometrically: windows arrive in random order
            size = max(end, 2 * len(self._seen))
            values = np.zeros((size, self.n_channels), dtype=np.float32)
            values[: len(self._values)] = self._values
            seen = np.zeros(size, dtype=bool)
            seen[: len(self._seen)] = self._seen
            self._values, self._seen = values, seen
        self._values[rows] = windows
        self._seen[rows] = True
        self.steps_added += rows.size

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """(values (T, C) float32, seen (T,) bool), copies up to the last seen step (T = 0 when empty)."""
        last = np.flatnonzero(self._seen)
        end = int(last[-1]) + 1 if len(last) else 0
        return self._values[:end].copy(), self._seen[:end].copy()
