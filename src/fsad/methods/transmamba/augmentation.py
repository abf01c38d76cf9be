"""Views of a window for TransMamba's contrastive loss (official code: ``utils/utils.py``, ``dual_augmentation``).

All functions take and return windows of shape (B, W, C) (time on axis 1) and never modify their input.

* coarse view: ``moving_average`` (kernel 3, stride 1, edge-replicate padding);
* fine view: ``fine_view`` = ``mask_blocks`` -> ``point_noise`` -> ``segment_swap``, each at rate r = ``aug_rate``.

Random draws use torch's global generator, in the official order (noise before indices; pairs, then starts).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SEGMENT_MIN_START = 7  # the official segment swap draws its start from [7, W)


def moving_average(x: Tensor, kernel_size: int = 3) -> Tensor:
    """Moving average along time, stride 1, ``(kernel_size - 1) // 2`` replicated edge steps on each side.

    (B, W, C) -> (B, W, C) for odd kernels (an even kernel shortens the window by one, as in the official code).
    """
    pad = (kernel_size - 1) // 2
    padded = torch.cat([x[:, :1].expand(-1, pad, -1), x, x[:, -1:].expand(-1, pad, -1)], dim=1)
    return F.avg_pool1d(padded.transpose(1, 2), kernel_size, stride=1).transpose(1, 2)


def mask_blocks(x: Tensor, rate: float) -> Tensor:
    """Zero two blocks of m = int(rate * W) steps (all channels): the middle ``[(W - m) // 2, (W - m) // 2 + m)``
    and the tail ``[W - m, W)``. Deterministic; returns ``x`` itself when m = 0."""
    width = x.shape[1]
    m = int(rate * width)
    if m == 0:
        return x
    out = x.clone()
    start = (width - m) // 2
    out[:, start : start + m] = 0
    out[:, width - m :] = 0
    return out


def point_noise(x: Tensor, rate: float, std: float = 1.0) -> Tensor:
    """Add N(0, std^2) noise at k = int(rate * W) random time steps.

    The k indices are drawn with replacement and shared by the whole batch; the noise is independent per
    sample, index and channel. A repeated index receives the noise of one of its draws (indexed ``+=``), as in
    the official code.
    """
    b, width, c = x.shape
    k = int(width * rate)
    noise = torch.randn(b, k, c, device=x.device, dtype=x.dtype) * std
    indices = torch.randint(0, width, (k,), device=x.device)
    out = x.clone()
    out[:, indices, :] += noise
    return out


def segment_swap(x: Tensor, rate: float, faithful_bug: bool = False) -> Tensor:
    """Overwrite the tail of k = int(rate * B) random samples with another sample's tail.

    Pairs (i1, i2) are drawn with i1 != i2 for every pair (``i2`` is redrawn as a whole until that holds), starts
    ``t`` uniformly in ``[7, W)`` (``[W - 1, W)`` when W <= 7, where the official code fails); the pairs are
    applied in order on one working copy (a later pair may read an earlier pair's result).

    Args:
        faithful_bug: ``False`` (default) applies the intended time-tail swap ``x[i1, t:, :] = x[i2, t:, :]``;
            ``True`` reproduces the official indexing ``x[i1, :, t:] = x[i2, :, t:]``, which overwrites the
            channels ``>= t`` over the whole window (a no-op when t >= C).
    """
    b, width, _ = x.shape
    k = int(rate * b)
    if k == 0:
        return x
    if b < 2:
        raise ValueError("segment_swap needs at least two samples to draw distinct pairs")
    first = torch.randint(0, b, (k,), device=x.device)
    second = torch.randint(0, b, (k,), device=x.device)
    while bool(torch.any(first == second)):
        second = torch.randint(0, b, (k,), device=x.device)
    starts = torch.randint(min(SEGMENT_MIN_START, width - 1), width, (k,), device=x.device)
    out = x.clone()
    for i1, i2, t in zip(first.tolist(), second.tolist(), starts.tolist()):
        if faithful_bug:
            out[i1, :, t:] = out[i2, :, t:]
        else:
            out[i1, t:, :] = out[i2, t:, :]
    return out


def fine_view(x: Tensor, rate: float, seg_swap_faithful_bug: bool = False) -> Tensor:
    """Masking, then point noise, then segment swap, all at ``rate`` (a zero rate skips a step)."""
    if rate:
        x = segment_swap(point_noise(mask_blocks(x, rate), rate), rate, faithful_bug=seg_swap_faithful_bug)
    return x
