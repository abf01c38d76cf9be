"""Token + sinusoidal position embedding of the Informer / Anomaly-Transformer lineage.

Used by FreCT (window and patch embeddings) and TransMamba (patch embeddings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fsad.layers.dropout import FastDropout


@dataclass(frozen=True)
class AffineTokens:
    """Token embeddings kept in factored form: ``tokens = features @ weight.T + offset``.

    Attributes:
        features: (N, T, m) per-sequence features.
        weight: (D, m) shared weight.
        offset: (T, D) per-position term shared by all sequences.
    """

    features: Tensor
    weight: Tensor
    offset: Tensor

    def dense(self) -> Tensor:
        """The tokens themselves, (N, T, D)."""
        return self.features @ self.weight.T + self.offset


class TokenEmbedding(nn.Module):
    """Conv1d over the token axis: ``(B, L, c_in) -> (B, L, d_model)``.

    Kernel 3, circular padding of 1 on each side (so the length is kept), no bias, weights drawn with
    Kaiming-normal (fan_in, leaky_relu gain), as in the Informer / Anomaly-Transformer code lineage.
    """

    def __init__(self, c_in: int, d_model: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, L, c_in) -> (B, L, d_model), computed as ``windows @ weight.T`` (``unfold``): one matrix
        product instead of a batch of tiny convolutions (1.5x faster forward + backward for TransMamba's and
        FreCT's shapes on CPU)."""
        windows, weight = self.unfold(x)
        return nn.functional.linear(windows, weight)

    def unfold(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Factored form ``forward(x) == windows @ weight.T``.

        Returns:
            windows: (B, L, 3*c_in), row t = [x[t-1], x[t], x[t+1]] (indices mod L, i.e. circular).
            weight: (d_model, 3*c_in), the kernel taps in the same order.
        """
        windows = torch.cat([x.roll(1, dims=1), x, x.roll(-1, dims=1)], dim=-1)
        weight = self.conv.weight.permute(0, 2, 1).reshape(self.conv.out_channels, -1)
        return windows, weight


class PositionalEmbedding(nn.Module):
    """Fixed sinusoidal table: even features ``sin(t * w_k)``, odd features ``cos(t * w_k)``.

    ``w_k = 10000 ** (-2k / d_model)``. The table is a non-persistent buffer (it is a constant, so it is
    neither trained nor stored in checkpoints). Odd ``d_model`` is allowed (the last cosine is dropped).
    """

    def __init__(self, d_model: int, max_len: int = 5000) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
        freqs = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * freqs)
        table[:, 1::2] = torch.cos(position * freqs[: d_model // 2])
        self.register_buffer("table", table, persistent=False)  # (max_len, d_model)

    def forward(self, length: int) -> Tensor:
        """Return the first ``length`` rows, shape (length, d_model)."""
        if length > self.table.shape[0]:
            raise ValueError(f"sequence length {length} exceeds the positional table size {self.table.shape[0]}")
        return self.table[:length]


class DataEmbedding(nn.Module):
    """``TokenEmbedding(x) + PositionalEmbedding`` followed by dropout: ``(B, L, c_in) -> (B, L, d_model)``."""

    def __init__(self, c_in: int, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.token = TokenEmbedding(c_in, d_model)
        self.position = PositionalEmbedding(d_model)
        self.dropout = FastDropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, L, c_in) -> (B, L, d_model)."""
        out = self.token(x) + self.position(x.shape[1]).to(x.dtype)
        return self.dropout(out)

    @property
    def is_affine(self) -> bool:
        """True when the forward pass is an affine map of x (no active dropout)."""
        return self.dropout.p == 0.0 or not self.training

    def affine(self, x: Tensor) -> AffineTokens:
        """The same embedding as ``forward`` in factored form (valid only when ``is_affine``).

        ``features`` = circular windows (B, L, 3*c_in), ``weight`` = kernel taps (d_model, 3*c_in),
        ``offset`` = positional table (L, d_model).
        """
        if not self.is_affine:
            raise RuntimeError("DataEmbedding.affine is not valid while dropout is active")
        windows, taps = self.token.unfold(x)
        return AffineTokens(windows, taps, self.position(x.shape[1]).to(taps.dtype))
