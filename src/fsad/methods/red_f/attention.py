"""Attention pieces of RED-F: multi-head self-attention with an optional soft/hard mask, the learned channel graph
that produces REM's inter-band mask (spec ``red_f.md`` §2.4), and REM's pre-norm encoder layer (paper Eq. 8).

Mask conventions (``mask`` is (G, T, T) with 1 = may attend, 0 = blocked; it may carry a straight-through gradient):

- ``catch`` (default; CATCH's ``c_Attention`` in ``layers/cross_channel_Transformer.py``):
  ``softmax((q k^T * M + (M - 1) * ln 1e10) / sqrt(d_h))``. The gradient that reaches M is bounded,
  ``dscore/dM = (q k^T + ln 1e10) / sqrt(d_h)``, of the size of the scores themselves. Blocked entries are pushed
  down by ``ln(1e10) / sqrt(d_h)`` (8.1 with d_h = 8, 2.9 with d_h = 64): their weight shrinks by a factor
  ``1e10 ** (1 / sqrt(d_h))`` without reaching zero.
- ``additive`` (the spec's first reading): ``softmax(q k^T / sqrt(d_h) + (M - 1) * 1e9)``. Blocked entries get
  exactly zero weight, but the gradient that reaches M through an *allowed* entry is ``1e9 * dL/dscore``: through
  the straight-through estimator it dwarfs every other gradient of the parameters upstream of the graph (the
  inter-band embedding: essentially all of its gradient then comes through the graph), so those parameters are
  trained by the sampling noise of the mask.

The paper (Sec. IV-B) samples M with a *differentiable* Bernoulli so that gradients reach the graph through the
mask; detaching the blocking constant would cut that path, while CATCH's form, the code REM derives from, keeps it
at the scale of the other gradients. Hence ``catch`` is the default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.dropout import FastDropout, fast_dropout

MASK_STYLES = ("additive", "catch")
GRAPH_KINDS = ("distance", "learned")
MASK_EVAL = ("sample", "threshold")
_BLOCKED = 1e9
_CATCH_OFFSET = math.log(1e10)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the tokens of each group: (G, T, D) -> (G, T, D); ``dropout`` acts on the
    attention weights.

    Without a mask it is PyTorch's fused ``scaled_dot_product_attention``; with one, scores are formed explicitly so
    the mask (possibly relaxed, with a gradient) enters as ``mask_style`` says.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, mask_style: str = "catch"):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if mask_style not in MASK_STYLES:
            raise ValueError(f"mask_style must be one of {MASK_STYLES}, got {mask_style!r}")
        self.n_heads, self.dropout, self.mask_style = n_heads, dropout, mask_style
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        g, t, d = x.shape
        # one contiguous (3, G, heads, T, d_h) copy: the fused kernel and the matmuls then read dense heads
        q, k, v = self.qkv(x).view(g, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4).contiguous()
        p = self.dropout if self.training else 0.0
        if mask is None:
            o = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            scale = 1.0 / math.sqrt(d // self.n_heads)
            m = mask.unsqueeze(1).to(q.dtype)  # (G, 1, T, T), shared by the heads
            scores = q @ k.transpose(-1, -2)
            if self.mask_style == "additive":
                scores = scores * scale + (m - 1.0) * _BLOCKED
            else:
                scores = (scores * m + (m - 1.0) * _CATCH_OFFSET) * scale
            o = fast_dropout(scores.softmax(dim=-1), p, self.training) @ v
        return self.out(o.transpose(1, 2).reshape(g, t, d))


class PreNormLayer(nn.Module):
    """REM's encoder layer (paper Eq. 8): ``X' = LN(X)``, ``X* = X' + Attn(X', M)``, ``out = FFN(LN(X*)) + X*``.

    The residual goes around the *normalised* input, as Eq. 8 is written. FFN: ``Linear(D, r D)``, GELU,
    ``Linear(r D, D)`` with ``dropout`` after the activation and on each residual branch; ``attention_dropout`` on
    the attention weights (0 [SR], as PatchTST's default). (G, T, D) -> (G, T, D).
    """

    def __init__(self, d_model: int, n_heads: int, ffn_ratio: int = 2, dropout: float = 0.1,
                 mask_style: str = "catch", attention_dropout: float = 0.0):
        super().__init__()
        self.norm_in, self.norm_ffn = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, n_heads, attention_dropout, mask_style)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_ratio * d_model), nn.GELU(), FastDropout(dropout),
                                 nn.Linear(ffn_ratio * d_model, d_model))
        self.drop = FastDropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.norm_in(x)
        x = x + self.drop(self.attention(x, mask))
        return x + self.drop(self.ffn(self.norm_ffn(x)))


def straight_through_bernoulli(logits: Tensor, temperature: float = 1.0,
                               generator: torch.Generator | None = None) -> Tensor:
    """Hard 0/1 sample of Bernoulli(sigmoid(logits)) whose gradient is that of the Gumbel-relaxed sample.

    Two-class Gumbel-softmax on the logits ``(log π, log(1 - π))`` (CATCH's ``_bernoulli_gumbel_rsample``): the
    difference of two Gumbel variables is logistic noise ``ℓ = log u - log(1 - u)``, so the relaxed sample is
    ``y = sigmoid((logit π + ℓ) / τ)``, the hard one ``1[y > 1/2]``, and the result is ``hard + (y - y.detach())``.
    """
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    u = u.clamp(1e-6, 1.0 - 1e-6)
    soft = torch.sigmoid((logits + u.log() - (-u).log1p()) / temperature)
    hard = (soft > 0.5).to(soft.dtype)
    return hard + (soft - soft.detach())  # exactly 0 / 1 forward (x - x = 0), the relaxed gradient backward


class ChannelGraphMask(nn.Module):
    """REM's inter-band mask from the learned channel relationship graph (spec §2.4a-b).

    ``distance`` (paper): with ``F = |tokens|`` (G, C, D), ``d_mn = Σ_k w_k |F_mk - F_nk|`` where
    ``w = softplus(w_raw) >= 0`` (initialised to 1/D), and ``π_mn = 1 / (1 + d_mn + eps)``: the logit of π is
    ``-log(d_mn + eps)``. ``learned`` (CATCH's generator, ablation): ``π = sigmoid(Linear(D -> C)(tokens))``.
    A hard mask is sampled with :func:`straight_through_bernoulli` and the diagonal forced to 1 (every channel
    attends to itself). In eval mode ``mask_eval="sample"`` draws the noise from a generator reseeded with
    ``mask_seed`` at every call (the same batch gives the same mask), ``"threshold"`` keeps π > 1/2.

    tokens (G, C, D) -> mask (G, C, C).
    """

    def __init__(self, d_model: int, n_channels: int, kind: str = "distance", temperature: float = 1.0,
                 mask_eval: str = "sample", mask_seed: int = 0, eps: float = 1e-6):
        super().__init__()
        if kind not in GRAPH_KINDS:
            raise ValueError(f"graph must be one of {GRAPH_KINDS}, got {kind!r}")
        if mask_eval not in MASK_EVAL:
            raise ValueError(f"mask_eval must be one of {MASK_EVAL}, got {mask_eval!r}")
        self.kind, self.temperature, self.mask_eval, self.mask_seed, self.eps = kind, temperature, mask_eval, \
            mask_seed, eps
        if kind == "distance":
            self.weight_raw = nn.Parameter(torch.full((d_model,), math.log(math.expm1(1.0 / d_model))))
        else:
            self.generator = nn.Linear(d_model, n_channels)

    def logits(self, tokens: Tensor) -> Tensor:
        """(G, C, D) -> (G, C, C) logits of π."""
        if self.kind == "learned":
            return self.generator(tokens)
        weighted = tokens.abs() * F.softplus(self.weight_raw)  # w_k |F_mk - F_nk| = |w_k F_mk - w_k F_nk|, w >= 0
        distance = torch.cdist(weighted, weighted, p=1.0)
        return -(distance + self.eps).log()

    def forward(self, tokens: Tensor) -> Tensor:
        logits = self.logits(tokens)
        if self.training or self.mask_eval == "sample":
            generator = None
            if not self.training:
                generator = torch.Generator(device=logits.device).manual_seed(self.mask_seed)
            mask = straight_through_bernoulli(logits, self.temperature, generator)
        else:
            mask = (logits > 0).to(logits.dtype)
        eye = torch.eye(mask.shape[-1], dtype=torch.bool, device=mask.device)
        return mask.masked_fill(eye, 1.0)
