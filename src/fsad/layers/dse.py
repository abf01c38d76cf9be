"""Dynamic spatial enhancement (DSE): Wave-MambaAD's gated feed-forward after the wavelet scans (paper Eq. 8,
the released code's ``FeedForward``; ``wave_mambaad.md`` section 2.3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.native_scan import native_elementwise


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H, W) with the channels of ``groups`` equal groups interleaved: channel ``g * n + i``
    (group g, position i) moves to ``i * groups + g``."""
    b, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"{c} channels cannot be split into {groups} groups")
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class _SymmetricGeluGate(torch.autograd.Function):
    """``a * GELU(b) + b * GELU(a)`` of the two halves of y, keeping only y for the backward (the GELUs are
    recomputed there): a third of the activation memory of the unfused expression, which keeps both GELUs and both
    products' inputs; the gradient of y is written whole (no concatenation of the halves' gradients).

    On CPU float32/float64 tensors one pass of the native kernel each way (``native/gelu_gate.c``: the gate is
    ``a b (Phi(a) + Phi(b))``, its gradient ``b (Phi(a) + Phi(b)) + a b phi(a)`` for a); elsewhere PyTorch's
    GELU."""

    @staticmethod
    def forward(ctx, y: Tensor) -> Tensor:
        y = y.contiguous()
        ctx.save_for_backward(y)
        half = y.shape[-1] // 2
        out = y.new_empty(*y.shape[:-1], half)
        if native_elementwise("gelu_gate_forward", (y, out), (math.prod(y.shape[:-1]), half)):
            return out
        a, b = y.chunk(2, dim=-1)
        return a * F.gelu(b) + b * F.gelu(a)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        grad, half = grad.contiguous(), y.shape[-1] // 2
        grad_y = torch.empty_like(y)
        if native_elementwise("gelu_gate_backward", (y, grad, grad_y), (math.prod(y.shape[:-1]), half)):
            return grad_y
        a, b = y.chunk(2, dim=-1)
        grad_a = grad * F.gelu(b) + torch.ops.aten.gelu_backward(grad * b, a)
        grad_b = grad * F.gelu(a) + torch.ops.aten.gelu_backward(grad * a, b)
        return torch.cat([grad_a, grad_b], dim=-1)


def symmetric_gelu_gate(y: Tensor) -> Tensor:
    """DSE's gate ``a * GELU(b) + b * GELU(a)`` (exact GELU) of ``a, b = y.chunk(2, dim=-1)``: (..., 2 h) ->
    (..., h), differentiable. ``ValueError`` for an odd last dimension."""
    if y.shape[-1] % 2:
        raise ValueError(f"the DSE gate splits the last dimension in two halves, got {y.shape[-1]} channels")
    return _SymmetricGeluGate.apply(y)


class DynamicSpatialEnhancement(nn.Module):
    """(B, H, W, C) channel-last -> (B, H, W, C): 1x1 conv to ``2 * hidden`` channels (hidden = int(expansion * C)),
    channel shuffle in 2 groups, 3x3 depthwise conv, split into (a, b), ``a * GELU(b) + b * GELU(a)`` (both from the
    same a and b, as the code computes them), 1x1 conv back to C. No biases.

    The parameters are the code's convolutions; the forward runs on channel-last maps: the 1x1 convs as matrix
    products over the channels, the shuffle folded into the rows of the first one's weight (a 1x1 conv followed
    by a channel permutation is the conv with its output rows permuted), the depthwise conv on a channels-last view.
    """

    def __init__(self, channels: int, expansion: float = 2.66):
        super().__init__()
        self.hidden = int(expansion * channels)
        self.project_in = nn.Conv2d(channels, 2 * self.hidden, 1, bias=False)
        self.depthwise = nn.Conv2d(2 * self.hidden, 2 * self.hidden, 3, padding=1, groups=2 * self.hidden,
                                   bias=False)
        self.project_out = nn.Conv2d(self.hidden, channels, 1, bias=False)
        shuffled = channel_shuffle(torch.arange(2 * self.hidden).view(1, -1, 1, 1), 2).flatten()
        self.register_buffer("shuffled", shuffled, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.project_in.weight.flatten(1)[self.shuffled])  # (B, H, W, 2 hidden), shuffled
        y = self.depthwise(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # channel-last again: contiguous
        return F.linear(symmetric_gelu_gate(y), self.project_out.weight.flatten(1))
