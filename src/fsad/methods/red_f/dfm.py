"""DFM, RED-F's Dual-stream contrastive Forecasting Model: a channel-independent patch forecaster (PatchTST-like)
with Multi-Series Prediction (MSP) modules (spec ``red_f.md`` §3).

Main model on x (B, L, C):
1. RevIN without affine (detached statistics); every channel is a separate series of L steps;
2. end padding by ``stride`` (repeat the last value), patches of ``p`` every ``s``: ``N_f = (L - p) // s + 2``
   (24 for L = 192), shared embedding ``Linear(p, D)`` + learnable positional embedding, dropout;
3. ``P^m = P^{m-1} + Encoder^m(P^{m-1})`` for m = 1..M (paper Eq. 11: an extra residual around each layer);
   the encoder layer is PatchTST's post-norm layer with BatchNorm over D;
4. shared head: flatten ``N_f * D`` -> ``Linear(N_f D, H)`` -> de-normalise -> ``Ŷ`` (B, H, C).

MSP module k (training only; Eqs. 12-14, after DeepSeek-V3's multi-token prediction):
``P*_k = Linear(2D, D)(concat(LN(P_k), LN(h_{k-1})))`` with ``P_k`` the shared embedding of RevIN(X_k) and
``h_0 = P^M``; ``h_k = Encoder_k(P*_k)`` (one layer of its own); ``Ŷ_k = head(h_k)``, de-normalised with X_k's
statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.dropout import FastDropout
from fsad.layers.revin import revin_statistics
from fsad.methods.red_f.attention import SelfAttention

NORMS = ("batch", "layer")


class PatchTSTLayer(nn.Module):
    """Post-norm Transformer layer: ``x = N(x + Attn(x))``, ``x = N(x + FFN(x))``, N = BatchNorm over D
    (statistics over every token of every series, as PatchTST's transposed BatchNorm1d) or LayerNorm.
    FFN: ``Linear(D, d_ff)``, GELU, dropout, ``Linear(d_ff, D)``. (G, N, D) -> (G, N, D).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, norm: str = "batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.attention = SelfAttention(d_model, n_heads, dropout=0.0)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), FastDropout(dropout), nn.Linear(d_ff, d_model))
        make = nn.BatchNorm1d if norm == "batch" else nn.LayerNorm
        self.norm_attn, self.norm_ffn = make(d_model), make(d_model)
        self.drop = FastDropout(dropout)

    def _norm(self, norm: nn.Module, x: Tensor) -> Tensor:
        return norm(x.reshape(-1, x.shape[-1])).view_as(x)

    def forward(self, x: Tensor) -> Tensor:
        x = self._norm(self.norm_attn, x + self.drop(self.attention(x)))
        return self._norm(self.norm_ffn, x + self.drop(self.ffn(x)))


class MSPModule(nn.Module):
    """One MSP module: ``h_k = Encoder_k(Linear(2D, D)(concat(LN(P_k), LN(h_{k-1}))))``. 2 x (G, N, D) -> (G, N, D)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, norm: str):
        super().__init__()
        self.norm_tokens, self.norm_context = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.merge = nn.Linear(2 * d_model, d_model)
        self.layer = PatchTSTLayer(d_model, n_heads, d_ff, dropout, norm)

    def forward(self, tokens: Tensor, context: Tensor) -> Tensor:
        return self.layer(self.merge(torch.cat([self.norm_tokens(tokens), self.norm_context(context)], dim=-1)))


class DFM(nn.Module):
    """Patch forecaster with MSP modules (module docstring). ``forward``: x (B, L, C) -> (Ŷ (B, H, C), P^M).

    Args:
        window, horizon: L and H.
        patch_size, patch_stride: 16, 8. d_model, n_heads, d_ff, layers, dropout: 256, 8, 512, 3, 0.1 ([SR] PatchTST).
        msp_modules: n (0 = no MSP). norm: ``batch`` (PatchTST) | ``layer``.
        layer_residual: the extra residual of Eq. 11 around each encoder layer.
        detach_msp_context: stop the gradient of the MSP losses into the main encoder through ``h_0``.
        head_dropout: dropout before the head (0).
    """

    def __init__(self, window: int, horizon: int, patch_size: int = 16, patch_stride: int = 8, d_model: int = 256,
                 n_heads: int = 8, d_ff: int = 512, layers: int = 3, dropout: float = 0.1, msp_modules: int = 2,
                 norm: str = "batch", layer_residual: bool = True, detach_msp_context: bool = False,
                 head_dropout: float = 0.0):
        super().__init__()
        if horizon < 1:
            raise ValueError(f"DFM needs a horizon >= 1, got {horizon} (set data.horizon)")
        if patch_size > window:
            raise ValueError(f"patch_size={patch_size} is longer than the look-back of {window} steps")
        self.window, self.horizon, self.patch, self.stride = window, horizon, patch_size, patch_stride
        self.n_patches = (window - patch_size) // patch_stride + 2
        self.layer_residual, self.detach_msp_context = layer_residual, detach_msp_context
        self.embed = nn.Linear(patch_size, d_model)
        self.position = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.drop = FastDropout(dropout)
        self.encoder = nn.ModuleList(PatchTSTLayer(d_model, n_heads, d_ff, dropout, norm) for _ in range(layers))
        self.head = nn.Sequential(FastDropout(head_dropout), nn.Linear(self.n_patches * d_model, horizon))
        self.msp = nn.ModuleList(MSPModule(d_model, n_heads, d_ff, dropout, norm) for _ in range(msp_modules))

    def embed_series(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, L, C) -> (tokens (B C, N_f, D), mean (B, 1, C), std (B, 1, C))."""
        if x.shape[1] != self.window:
            raise ValueError(f"DFM expects look-back windows of {self.window} steps, got {x.shape[1]}")
        mean, std = revin_statistics(x)
        series = ((x - mean) / std).transpose(1, 2)  # (B, C, L)
        series = F.pad(series, (0, self.stride), mode="replicate")
        patches = series.unfold(-1, self.patch, self.stride)  # (B, C, N_f, p)
        tokens = self.embed(patches) + self.position
        return self.drop(tokens.flatten(0, 1)), mean, std

    def forecast(self, h: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """Shared head: h (B C, N_f, D) -> Ŷ (B, H, C) in the input's space."""
        b, c = mean.shape[0], mean.shape[-1]
        y = self.head(h.flatten(1)).view(b, c, self.horizon).transpose(1, 2)
        return y * std + mean

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, mean, std = self.embed_series(x)
        for layer in self.encoder:
            h = h + layer(h) if self.layer_residual else layer(h)
        return self.forecast(h, mean, std), h

    def forward_msp(self, windows: list[Tensor], context: Tensor) -> list[Tensor]:
        """MSP forecasts: look-backs X_1..X_n (each (B, L, C)) and ``h_0`` (B C, N_f, D) -> [Ŷ_k (B, H, C)]."""
        if len(windows) != len(self.msp):
            raise ValueError(f"{len(self.msp)} MSP modules need {len(self.msp)} windows, got {len(windows)}")
        h = context.detach() if self.detach_msp_context else context
        out = []
        for module, x_k in zip(self.msp, windows):
            tokens, mean, std = self.embed_series(x_k)
            h = module(tokens, h)
            out.append(self.forecast(h, mean, std))
        return out

