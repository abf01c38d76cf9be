"""Reversible instance normalisation (RevIN without affine parameters), as the PatchTST / CATCH lineage uses it."""

from __future__ import annotations

from torch import Tensor


def revin_statistics(x: Tensor, eps: float = 1e-5, dim: int = 1) -> tuple[Tensor, Tensor]:
    """Detached per-sample, per-channel mean and ``sqrt(var_pop + eps)`` along ``dim`` (time).

    (B, W, C) with ``dim=1`` -> 2 x (B, 1, C); (B, C, W) with ``dim=-1`` -> 2 x (B, C, 1).
    """
    mean = x.mean(dim=dim, keepdim=True).detach()
    std = (x.var(dim=dim, keepdim=True, unbiased=False) + eps).sqrt().detach()
    return mean, std
