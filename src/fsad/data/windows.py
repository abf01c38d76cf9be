"""Window cutting shared by every method, and the inverse: putting window scores back on the time axis.

Conventions (``common.md`` section 2):
- training windows: ``x[i*stride : i*stride + window]`` for ``i = 0 .. (T - window) // stride``;
- scoring windows: non-overlapping (``stride = window``), as the papers' ``thre`` loader; unlike the papers we
  add one last window ending at ``T`` when ``T`` is not a multiple of the window, so no time step goes unscored.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def window_starts(length: int, window: int, stride: int, cover_tail: bool = False) -> np.ndarray:
    """Start indices of windows of ``window`` steps every ``stride`` steps over a series of ``length`` steps.

    With ``cover_tail`` an extra window starting at ``length - window`` is appended when the regular grid leaves
    the last steps uncovered. Raises ``ValueError`` when the series is shorter than one window.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    if length < window:
        raise ValueError(f"series of {length} steps is shorter than one window of {window} steps")
    starts = np.arange((length - window) // stride + 1, dtype=np.int64) * stride
    if cover_tail and starts[-1] + window < length:
        starts = np.append(starts, length - window)
    return starts


class WindowDataset(Dataset):
    """Windows of a (T, C) series at given start indices.

    Item ``i`` is a dict: ``x`` float32 (window, C), ``y`` int64 (window,) point labels (zeros when the series
    has none) and ``start`` (int64 scalar), the index of the window's first step in the series.
    """

    def __init__(self, series: np.ndarray, window: int, starts: np.ndarray, labels: np.ndarray | None = None):
        self.series = torch.as_tensor(np.ascontiguousarray(series, dtype=np.float32))
        self.labels = torch.as_tensor(
            np.zeros(len(series), dtype=np.int64) if labels is None else labels.astype(np.int64)
        )
        self.window = int(window)
        self.starts = torch.as_tensor(starts, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = int(self.starts[i])
        return {"x": self.series[s : s + self.window], "y": self.labels[s : s + self.window], "start": self.starts[i]}


def assemble_scores(starts: np.ndarray, window_scores: np.ndarray, length: int) -> np.ndarray:
    """Put per-window scores back on the time axis.

    Args:
        starts: (n,) window start indices (any order, duplicates allowed: identical windows).
        window_scores: (n, window) score of every position of every window.
        length: T, the series length.

    Returns:
        (T,) float64 scores; step ``t`` takes its score from the window with the smallest start that covers it
        (so with non-overlapping windows plus a tail window, every step is scored exactly once).

    Raises ``ValueError`` when a step is covered by no window.
    """
    window = window_scores.shape[1]
    out = np.full(length, np.nan)
    for i in np.argsort(starts, kind="stable")[::-1]:
        out[starts[i] : starts[i] + window] = window_scores[i]
    missing = np.isnan(out)
    if missing.any():
        raise ValueError(f"{int(missing.sum())} of {length} time steps are covered by no scored window "
                         f"(first uncovered step: {int(np.argmax(missing))})")
    return out


class EpochSeededShuffler(Sampler[int]):
    """Random permutation that depends only on ``(seed, epoch)``.

    Lightning calls ``set_epoch`` at the start of every epoch, so a run resumed from a checkpoint sees the same
    batches as an uninterrupted one. (Under DDP Lightning swaps in a ``DistributedSampler``, which is seeded the
    same way.)
    """

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())
