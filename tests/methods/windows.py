"""A minimal window dataset for method tests: item ``i`` is ``{"x": x[i], "start": i}``."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class Windows(Dataset):
    """Wraps a (N, W, C) tensor of windows; ``start`` is the window index."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "start": torch.tensor(i)}
