"""Dual patch attention (DCdetector / FreCT / TransMamba lineage) and its efficient aggregation.

Notation: B batch, C channels, L window, p patch size, n = L / p, H heads, E = d_model / H.

Every channel of every window yields two small attention maps:

* inter-patch view ("(n p)" tokens, n tokens of p points), layout ``BLOCK``: ``A_N`` (B*C, H, n, n);
* intra-patch view ("(p n)" tokens, p tokens of n points), layout ``TILE``: ``A_P`` (B*C, H, p, p).

The official code up-samples them to (B*C, H, L, L) -- ``A_N`` by block repeat,
``Â_N[i, j] = A_N[i // p, j // p]``, and ``A_P`` by tiling, ``Â_P[i, j] = A_P[i % p, j % p]`` -- averages
over the C channels, and (FreCT) multiplies the (B, H, L, L) result with values V of shape (B, L, H, E).

Both up-samplings have the form ``Â[i, j] = A[g(i), g(j)]`` with a group map g (``i // p`` for BLOCK,
``i % p`` for TILE). Up-sampling is linear, so the channel mean can be taken on the small maps, and

    (Â V)[i] = sum_j A[g(i), g(j)] V[j] = A[g(i), :] @ group_sum(V)

where ``group_sum`` adds the rows of V that share a group. The result has one distinct row per group
("compact" form, (B, t, H, E) with t = n or p); ``group_expand`` restores the L rows. No L x L tensor is
built: O(B·H·t²·E + B·L·H·E) instead of O(B·C·H·L²) memory traffic plus O(B·H·L²·E) flops.
"""

from __future__ import annotations

import math
from enum import Enum

import torch
from torch import Tensor, nn

from fsad.layers.dropout import FastDropout
from fsad.layers.embedding import AffineTokens


class Layout(str, Enum):
    """How a small map is up-sampled to the window: which group window position i belongs to."""

    BLOCK = "block"  # inter-patch view: group i // p, n groups (repeat-interleave)
    TILE = "tile"  # intra-patch view: group i % p, p groups (tiling)


def _split_positions(x: Tensor, dim: int, patch_size: int) -> tuple[int, list[int]]:
    """Shape of ``x`` with the L axis ``dim`` split into (n, p); returns (positive dim, shape)."""
    dim = dim % x.dim()
    length = x.shape[dim]
    if length % patch_size:
        raise ValueError(f"patch size {patch_size} does not divide the length {length}")
    shape = list(x.shape)
    shape[dim : dim + 1] = [length // patch_size, patch_size]
    return dim, shape


def group_sum(x: Tensor, dim: int, patch_size: int, layout: Layout) -> Tensor:
    """Sum the positions of axis ``dim`` (length L) that share a group: L -> n (BLOCK) or p (TILE)."""
    dim, shape = _split_positions(x, dim, patch_size)
    split = x.reshape(shape)  # (..., n, p, ...)
    return split.sum(dim=dim + 1) if Layout(layout) is Layout.BLOCK else split.sum(dim=dim)


def group_expand(x: Tensor, dim: int, patch_size: int, layout: Layout, length: int) -> Tensor:
    """Inverse layout of ``group_sum`` (without the sum): axis ``dim`` goes from n or p groups to L positions.

    BLOCK: (.., n, ..) -> repeat-interleave p times; TILE: (.., p, ..) -> tile n = length / p times.
    """
    dim = dim % x.dim()
    n = length // patch_size
    if Layout(layout) is Layout.BLOCK:
        expanded = x.unsqueeze(dim + 1).expand(*x.shape[: dim + 1], patch_size, *x.shape[dim + 1 :])
    else:
        expanded = x.unsqueeze(dim).expand(*x.shape[:dim], n, *x.shape[dim:])
    return expanded.flatten(dim, dim + 1)


def upsample(maps: Tensor, patch_size: int, layout: Layout, length: int) -> Tensor:
    """(..., t, t) -> (..., L, L) with ``out[i, j] = maps[g(i), g(j)]`` (the official up-sampling).

    Consumers that need the full channel-averaged map (DCdetector/TransMamba KL on the maps) should call
    ``upsample(channel_mean(maps, C), ...)``: equal to ``channel_mean(upsample(maps, ...), C)``, C times smaller.
    """
    rows = group_expand(maps, -2, patch_size, layout, length)
    return group_expand(rows, -1, patch_size, layout, length).contiguous()


def channel_mean(maps: Tensor, n_channels: int) -> Tensor:
    """Average per-channel maps: (B*C, H, t, t) with channel-minor batch order -> (B, H, t, t)."""
    bc = maps.shape[0]
    if bc % n_channels:
        raise ValueError(f"leading size {bc} is not a multiple of n_channels={n_channels}")
    return maps.view(bc // n_channels, n_channels, *maps.shape[1:]).mean(dim=1)


def mix_compact(maps: Tensor, values: Tensor, patch_size: int, layout: Layout) -> Tensor:
    """Distinct rows of ``upsample(maps) @ values`` without building the L x L map.

    Args:
        maps: (B, H, t, t) channel-averaged small map (t = n for BLOCK, p for TILE).
        values: (B, L, H, E).

    Returns:
        (B, t, H, E), row a = ``maps[:, :, a, :] @ group_sum(values)``; ``group_expand`` along dim 1 gives
        the full (B, L, H, E) product.
    """
    grouped = group_sum(values, 1, patch_size, layout)  # (B, t, H, E)
    return torch.einsum("bhij,bjhe->bihe", maps, grouped)


class DualPatchAttention(nn.Module):
    """Query/key (and value) projections shared by the inter- and intra-patch views.

    Args:
        d_model: D, width of the token embeddings.
        n_heads: H; D must be divisible by H.
        dropout: dropout on the small softmax maps (applied before any up-sampling, as in the code).
        with_values: build the value projection (FreCT); DCdetector/TransMamba only need the maps.
    """

    def __init__(self, d_model: int, n_heads: int = 1, dropout: float = 0.0, with_values: bool = True) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model) if with_values else None
        self.dropout = FastDropout(dropout)

    def forward(self, tokens: Tensor | AffineTokens) -> Tensor:
        """Softmax self-attention maps of every sequence: (N, T, D) -> (N, H, T, T), rows sum to 1."""
        if isinstance(tokens, AffineTokens):
            return self.affine_maps(tokens)
        return self.attention_maps(tokens)

    def attention_maps(self, tokens: Tensor) -> Tensor:
        """Direct form: ``softmax(Q K^T / sqrt(E))`` with Q, K of shape (N, T, H, E) -> (N, H, T, T).

        With one head the bilinear form is used instead: for q_t = W_q x_t + b_q, k_s = W_k x_s + b_k,
        ``q_t . k_s = (x_t^T M + c^T) x_s + r_t`` with M = W_q^T W_k (D, D), c = W_k^T b_q (D,) and the
        row term r_t = q_t . b_k: one (N, T, D) product instead of the two projections, the same scores.
        (r_t is constant along the softmax axis, so it changes no map; it is kept so that every parameter,
        b_k included, stays in the graph, as DDP requires.)
        """
        n, t, _ = tokens.shape
        if self.n_heads == 1:
            scale = 1.0 / math.sqrt(self.head_dim)
            flat = tokens.reshape(n * t, -1)
            bilinear = (self.query.weight.T @ self.key.weight) * scale
            shift = (self.key.weight.T @ self.query.bias) * scale
            row = (flat @ (self.query.weight.T @ self.key.bias) + self.query.bias @ self.key.bias) * scale
            left = torch.addmm(shift, flat, bilinear).view(n, t, -1)
            scores = torch.baddbmm(row.view(n, t, 1), left, tokens.transpose(1, 2)).unsqueeze(1)  # (N, 1, T, T)
            return self.dropout(torch.softmax(scores, dim=-1))
        q = self.query(tokens).view(n, t, self.n_heads, self.head_dim)
        k = self.key(tokens).view(n, t, self.n_heads, self.head_dim)
        scores = torch.einsum("nthe,nshe->nhts", q, k) / math.sqrt(self.head_dim)
        return self.dropout(torch.softmax(scores, dim=-1))

    def affine_maps(self, tokens: AffineTokens) -> Tensor:
        """Same maps as ``attention_maps(tokens.dense())`` without forming tokens, queries or keys.

        With tokens ``X = F G^T + O`` (F: (N, T, m) features, G: (D, m), O: (T, D) shared offset), per head h
        ``Q = F A^T + O_q`` and ``K = F B^T + O_k`` with ``A = W_q[h] G``, ``B = W_k[h] G`` (E, m) and
        ``O_q = O W_q[h]^T + b_q[h]``, ``O_k = O W_k[h]^T + b_k[h]`` (T, E). Hence

            Q K^T = (F (A^T B) + O_q B) F^T + (F (A^T O_k^T) + O_q O_k^T)

        which needs the (m x m) core ``A^T B``, the (T x m) ``O_q B``, the (m x T) ``A^T O_k^T`` and the
        (T x T) ``O_q O_k^T``: O(T·m² + T²·m) per sequence instead of O(T·D²) for the projections.
        """
        features, weight, offset = tokens.features, tokens.weight, tokens.offset  # (N,T,m), (D,m), (T,D)
        h, e = self.n_heads, self.head_dim
        scale = 1.0 / math.sqrt(e)  # folded into the query side: every score term is linear in it
        a = (self.query.weight @ weight).view(h, e, -1) * scale  # (H, E, m)
        b = (self.key.weight @ weight).view(h, e, -1)  # (H, E, m)
        offset_q = self.query(offset).view(-1, h, e) * scale  # (T, H, E)
        offset_k = self.key(offset).view(-1, h, e)  # (T, H, E)
        core = torch.einsum("hem,hek->hmk", a, b)  # (H, m, m)
        left = torch.einsum("ntm,hmk->nhtk", features, core)  # (N, H, T, m)
        left = left + torch.einsum("the,hek->htk", offset_q, b)  # + O_q B
        scores = torch.einsum("nhtk,nsk->nhts", left, features)  # (N, H, T, T)
        key_side = torch.einsum("hem,she->hms", a, offset_k)  # (H, m, T): A^T O_k^T
        scores = scores + torch.einsum("ntm,hms->nhts", features, key_side)
        scores = scores + torch.einsum("the,she->hts", offset_q, offset_k)  # (H, T, T), same for all sequences
        return self.dropout(torch.softmax(scores, dim=-1))

    def project_values(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, L, H, E)."""
        if self.value is None:
            raise RuntimeError("this DualPatchAttention was built with with_values=False")
        b, length, _ = x.shape
        return self.value(x).view(b, length, self.n_heads, self.head_dim)
