"""Reversible instance normalisation (RevIN without affine parameters), as the PatchTST / CATCH lineage uses it."""

from __future__ import annotations

from torch import Tensor


def revin_statistics(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Detached per-sample, per-channel mean and ``sqrt(var_pop + eps)`` over time: (B, W, C) -> 2 x (B, 1, C)."""
    mean = x.mean(dim=1, keepdim=True).detach()
    std = (x.var(dim=1, keepdim=True, unbiased=False) + eps).sqrt().detach()
    return mean, std
