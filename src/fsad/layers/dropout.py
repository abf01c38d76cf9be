"""Dropout with cheap masks on CPU.

``torch.nn.Dropout`` draws its mask with ``bernoulli_``, which costs about 10 ns per element on CPU (measured here:
77 ms for one (7040, 15, 64) patch-embedding tensor of TransMamba, a fifth of its training step). ``FastDropout``
draws 15 random bits per element from 64-bit integers instead (about 1 ns per element) and keeps an element when
those bits, read as an integer in [0, 2^15), are at least ``round(p 2^15)``: each element is dropped independently
with probability p' = round(p 2^15) / 2^15 (0.1 -> 0.100006) and the kept ones are scaled by 1 / (1 - p'), so the
output has the input's expectation, as with inverted dropout. On CUDA, and for p in {0, 1}, it is ``F.dropout``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_BITS = 15
_LEVELS = 1 << _BITS


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | None = None,
              generator: torch.Generator | None = None) -> tuple[Tensor, float]:
    """(bool mask of ``shape``, True with probability 1 - p'; the scale 1 / (1 - p')), p' = round(p 2^15) / 2^15."""
    threshold = round(p * _LEVELS)
    numel = math.prod(shape)
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device).random_(generator=generator)
    # random_ on int64 gives [0, 2^63): every 16-bit lane is uniform in its low 15 bits.
    bits = words.view(torch.int16)[:numel].bitwise_and_(_LEVELS - 1)
    return bits.ge(threshold).reshape(shape), _LEVELS / (_LEVELS - threshold)


class _MaskedScale(torch.autograd.Function):
    """x * mask * scale with the bool mask saved for backward (one byte per element, as ``F.dropout``)."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x.mul(mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return grad.mul(mask).mul_(ctx.scale), None, None


def fast_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout of x (any shape) with the cheap mask of ``keep_mask``; identity when not training."""
    if not training or p == 0.0:
        return x
    if x.is_cuda or p >= 1.0 or round(p * _LEVELS) == 0:
        return F.dropout(x, p, training)
    mask, scale = keep_mask(x.shape, p, x.device)
    return _MaskedScale.apply(x, mask, scale)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` (same argument and state dict) drawing its masks with ``keep_mask``."""

    def forward(self, x: Tensor) -> Tensor:
        return fast_dropout(x, self.p, self.training)


def drop_path(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Stochastic depth: each sample (first axis) of ``x`` is zeroed with probability p and the others scaled by
    1 / (1 - p), so a residual branch ``x + drop_path(f(x))`` is skipped for whole samples; identity when not
    training or p == 0."""
    if not training or p == 0:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= p
    return x * keep.to(x.dtype) / (1 - p)
