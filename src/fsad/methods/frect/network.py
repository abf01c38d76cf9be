"""FreCT network (Zhang et al.), following the math of the official code (shaieesss/FreCT).

Notation: B batch, L window, C channels, D d_model, H heads, E = D / H, p patch size, n = L / p,
t = n (inter view) or p (intra view), U = len(patch_sizes) * e_layers.

Forward, for x of shape (B, L, C):

1. value stream ``x_ori = DataEmbedding(C -> D)(x)`` on the un-normalised window, (B, L, D);
2. sequence normalisation of x per sample and channel (patch streams only);
3. for each patch size p: inter view "(n p)" -> (B*C, n, p) -> ``DataEmbedding(p -> D)`` -> (B*C, n, D);
   intra view "(p n)" -> (B*C, p, n) -> ``DataEmbedding(n -> D)`` -> (B*C, p, D);
4. e_layers *parallel* layers (all fed the same embeddings), each = dual patch attention whose channel-averaged
   up-sampled maps mix the values ``Wv(x_ori)``, then sigmoid, then the convolution module (shared by the two
   views of a layer). Outputs are ordered patch sizes outer, layers inner.

``forward`` uses three exact rewrites of the official computation (``EfficientPath``):

* structured aggregation: channel mean on the small maps and ``Â V`` from group sums of V, no L x L map
  (``fsad.layers.patch_attention``);
* affine attention: the patch embedding and the query/key projections are affine, so the scores are a small
  bilinear form of the raw patch features (``DualPatchAttention.affine_maps``);
* grouped convolution: ``sigmoid(Â V)`` has only t distinct rows (window positions), and the branch convolutions
  of the convolution module contract over window positions, so they run on the t distinct rows with the weights
  of each group summed; the strided ``proj`` convolution reads only two branch columns per output column, so its
  taps are folded into the branch weights and only the columns it reads are computed
  (``ConvolutionModule.forward_grouped``).

``fsad.methods.frect.materialised`` computes the same outputs in the official order, for tests and benchmarks.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fsad.layers.embedding import AffineTokens, DataEmbedding
from fsad.layers.patch_attention import DualPatchAttention, Layout, channel_mean, group_expand, group_sum, mix_compact


KERNELS = (1, 3, 5)  # kernel sizes of the convolution module's branches


@functools.lru_cache(maxsize=None)
def proj_read_plan(d_model: int) -> tuple[tuple[tuple[tuple[int, int], ...], int], ...]:
    """Which branch columns the strided ``proj`` convolution reads, grouped into runs.

    ``proj`` (kernel 2, stride 3, padding 3, dilation 2) output column c reads concat columns 3c - 3 (tap 0) and
    3c - 1 (tap 1); for c = 0 and c = D - 1 both fall into the padding. The concat is
    [branch k=1 (width D) | k=3 (D - 2) | k=5 (D - 4)]. Consecutive columns c = 1 .. D - 2 whose two taps read the
    same pair of branches form a run.

    Returns:
        Runs in column order, each ``(((branch_0, local_0), (branch_1, local_1)), count)``: ``local_r`` is the
        branch-local column that tap r reads at the run's first column (it advances by 3 per column).
    """
    offsets = [0]
    for k in KERNELS[:-1]:
        offsets.append(offsets[-1] + d_model - k + 1)

    def locate(column: int) -> tuple[int, int]:
        branch = max(i for i, start in enumerate(offsets) if start <= column)
        return branch, column - offsets[branch]

    runs: list[list] = []
    for s in range(d_model - 2):
        reads = (locate(3 * s), locate(3 * s + 2))
        if runs and runs[-1][0] == (reads[0][0], reads[1][0]):
            runs[-1][2] += 1
        else:
            runs.append([(reads[0][0], reads[1][0]), reads, 1])
    return tuple((reads, count) for _, reads, count in runs)


class ConvolutionModule(nn.Module):
    """Multi-kernel convolution of FreCT (paper Eqs. 12-14): window positions are the Conv1d channels.

    ``(B, L, H, E) -> (B, L, 1, D)`` with D = H * E: three Conv1d(L, L) with kernels 1, 3, 5 (no padding)
    along the feature axis give widths D, D-2, D-4; their concatenation (width 3D-6) goes through
    ``Conv1d(L, L, k=2, stride=3, padding=3, dilation=2)``, whose output width is exactly D, then a sigmoid.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window
        self.branches = nn.ModuleList(nn.Conv1d(window, window, kernel_size=k) for k in KERNELS)
        self.proj = nn.Conv1d(window, window, kernel_size=2, stride=3, padding=3, dilation=2)

    def forward(self, z: Tensor) -> Tensor:
        """``z``: (B, L, H, E) -> (B, L, 1, H*E)."""
        flat = z.reshape(z.shape[0], self.window, -1)  # (B, L, D)
        concat = torch.cat([branch(flat) for branch in self.branches], dim=-1)  # (B, L, 3D-6)
        return torch.sigmoid(self.proj(concat)).unsqueeze(2)

    def forward_grouped(self, z: Tensor, patch_size: int, layout: Layout) -> Tensor:
        """``forward(group_expand(z))`` computed from the distinct rows: (B, t, H, E) -> (B, L, 1, H*E).

        Exact rewrites (linear algebra on the weights; nothing of width 3D-6 is built):

        1. Window position i of the expanded input equals row g(i) of ``z``, so a branch
           ``sum_i W[o, i, k] x[i, d + k]`` equals ``sum_a (sum_{i: g(i) = a} W[o, i, k]) z[a, d + k]``:
           branch weights (L, L, k) -> ``group_sum`` -> (L, t, k).
        2. ``proj`` column c only reads two concat columns (``proj_read_plan``), so on a run of columns whose
           taps read branches (k0, k1), the output is one matrix product
           ``[P0 W_k0 | P1 W_k1] @ [windows of z for tap 0 ; windows for tap 1] + bias`` with ``P_r`` the (L x L)
           tap matrices; columns 0 and D - 1 read only padding (proj bias).
        """
        flat = z.reshape(z.shape[0], z.shape[1], -1)  # (B, t, D)
        b, t, d = flat.shape
        grouped = [group_sum(branch.weight, 1, patch_size, layout).flatten(1) for branch in self.branches]  # (L, t*k)
        taps = self.proj.weight.unbind(-1)  # P0, P1: (L, L)
        edge = self.proj.bias[None, :, None].expand(b, -1, 1)  # (B, L, 1)
        pieces = [edge]
        for reads, count in proj_read_plan(d):
            windows, weights, bias = [], [], self.proj.bias
            for (branch, local), mix in zip(reads, taps):
                k = KERNELS[branch]
                cols = flat[..., local : local + 3 * (count - 1) + k].unfold(-1, k, 3)  # (B, t, count, k)
                windows.append(cols.permute(0, 2, 1, 3).reshape(b, count, t * k))
                weights.append(mix @ grouped[branch])  # (L, t*k)
                bias = bias + mix @ self.branches[branch].bias
            stacked = torch.cat(windows, dim=-1).transpose(1, 2)  # (B, t*(k0+k1), count)
            pieces.append(torch.matmul(torch.cat(weights, dim=1), stacked) + bias[:, None])  # (B, L, count)
        pieces.append(edge)
        return torch.sigmoid(torch.cat(pieces, dim=-1)).unsqueeze(2)  # (B, L, 1, D)


def sequence_normalise(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Per sample and channel over time: ``(x - sg(mean)) / sqrt(var_pop + eps)``; (B, L, C) -> (B, L, C)."""
    centred = x - x.mean(dim=1, keepdim=True).detach()
    return centred / torch.sqrt(centred.var(dim=1, keepdim=True, unbiased=False) + eps)


class ViewPath(abc.ABC):
    """Strategy computing one view's output for one (patch size, layer) pair (see ``FreCTNetwork.encode``)."""

    def embed(self, embedding: DataEmbedding, patches: Tensor) -> Tensor | AffineTokens:
        """Token embeddings of one view, (B*C, T, ...) -> (B*C, T, D) or its factored form."""
        return embedding(patches)

    @abc.abstractmethod
    def view(
        self,
        net: FreCTNetwork,
        layer: int,
        patch_size: int,
        layout: Layout,
        tokens: Tensor | AffineTokens,
        values: Tensor,
    ) -> Tensor:
        """tokens (B*C, t, D) and values (B, L, H, E) -> view output (B, L, 1, D)."""


@dataclass(frozen=True)
class EfficientPath(ViewPath):
    """Structured aggregation, plus the optional affine attention and grouped convolution rewrites.

    The affine attention is used only while the patch embedding has no active dropout (it is then an affine
    map); it pays off when the patch features are narrow (3 * token width, i.e. 3p or 3n, not much above D),
    which holds for the FreCT presets.
    """

    affine_attention: bool = True
    grouped_conv: bool = True

    def embed(self, embedding: DataEmbedding, patches: Tensor) -> Tensor | AffineTokens:
        if self.affine_attention and embedding.is_affine:
            return embedding.affine(patches)
        return embedding(patches)

    def view(
        self,
        net: FreCTNetwork,
        layer: int,
        patch_size: int,
        layout: Layout,
        tokens: Tensor | AffineTokens,
        values: Tensor,
    ) -> Tensor:
        maps = channel_mean(net.attention[layer](tokens), net.n_channels)  # (B, H, t, t)
        compact = torch.sigmoid(mix_compact(maps, values, patch_size, layout))  # (B, t, H, E)
        conv = net.conv[layer] if net.conv is not None else None
        if conv is not None and self.grouped_conv:
            return conv.forward_grouped(compact, patch_size, layout)  # (B, L, 1, D)
        return net.finish(group_expand(compact, 1, patch_size, layout, net.window), layer)


class FreCTNetwork(nn.Module):
    """FreCT encoder returning the per-(patch size, layer) outputs of both views.

    Args:
        n_channels: C, variables of the input.
        window: L, window length; every patch size must divide it.
        d_model: D (paper 128, official script default 256); at least 5 when ``use_conv``.
        patch_sizes: patch sizes p (inter view: n tokens of p points; intra view: p tokens of n points).
        e_layers: number of parallel encoder layers.
        n_heads: H; D must be divisible by H.
        dropout: dropout of the embeddings and of the attention maps (0 in FreCT).
        normalize: sequence normalisation of the patch streams (ablation switch).
        use_conv: convolution module after each attention layer (ablation switch); without it the
            outputs are ``sigmoid(Â V)`` of shape (B, L, H, E) (= (B, L, 1, D) for one head).
        norm_eps: epsilon of the sequence normalisation.
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        d_model: int = 128,
        patch_sizes: Sequence[int] = (3, 5),
        e_layers: int = 3,
        n_heads: int = 1,
        dropout: float = 0.0,
        normalize: bool = True,
        use_conv: bool = True,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        patch_sizes = tuple(int(p) for p in patch_sizes)
        _validate(n_channels, window, d_model, patch_sizes, e_layers, n_heads, use_conv)
        self.n_channels, self.window, self.d_model = n_channels, window, d_model
        self.patch_sizes, self.e_layers = patch_sizes, e_layers
        self.normalize, self.norm_eps = normalize, norm_eps

        self.value_embedding = DataEmbedding(n_channels, d_model, dropout)
        self.inter_embeddings = nn.ModuleList(DataEmbedding(p, d_model, dropout) for p in patch_sizes)
        self.intra_embeddings = nn.ModuleList(DataEmbedding(window // p, d_model, dropout) for p in patch_sizes)
        self.attention = nn.ModuleList(DualPatchAttention(d_model, n_heads, dropout) for _ in range(e_layers))
        self.conv = nn.ModuleList(ConvolutionModule(window) for _ in range(e_layers)) if use_conv else None

    @property
    def n_outputs(self) -> int:
        """U = len(patch_sizes) * e_layers."""
        return len(self.patch_sizes) * self.e_layers

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """``x``: (B, L, C) -> (series, prior), two lists of U tensors (B, L, 1, D).

        ``series[u]`` is the inter-patch output Z'_N, ``prior[u]`` the intra-patch output Z'_P, with
        ``u = patch_index * e_layers + layer``.
        """
        return self.encode(x, EfficientPath())

    def encode(self, x: Tensor, path: ViewPath) -> tuple[list[Tensor], list[Tensor]]:
        """Forward pass with a chosen computation strategy (the materialising reference swaps it)."""
        self._check_input(x)
        b, length, c = x.shape
        x_ori = self.value_embedding(x)  # (B, L, D), un-normalised window
        values = [attention.project_values(x_ori) for attention in self.attention]  # e_layers x (B, L, H, E)
        x_seq = sequence_normalise(x, self.norm_eps) if self.normalize else x
        x_seq = x_seq.transpose(1, 2)  # (B, C, L)

        series: list[Tensor] = []
        prior: list[Tensor] = []
        for i, p in enumerate(self.patch_sizes):
            n = length // p
            inter = path.embed(self.inter_embeddings[i], x_seq.reshape(b * c, n, p))  # "(n p)": n tokens
            intra = path.embed(self.intra_embeddings[i], x_seq.reshape(b * c, p, n))  # "(p n)": p tokens
            for layer in range(self.e_layers):
                series.append(path.view(self, layer, p, Layout.BLOCK, inter, values[layer]))  # (B, L, 1, D)
                prior.append(path.view(self, layer, p, Layout.TILE, intra, values[layer]))
        return series, prior

    def finish(self, z: Tensor, layer: int) -> Tensor:
        """Convolution module of ``layer`` if enabled: (B, L, H, E) -> (B, L, 1, D); identity otherwise."""
        return self.conv[layer](z) if self.conv is not None else z

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.window or x.shape[2] != self.n_channels:
            raise ValueError(
                f"expected input of shape (B, {self.window}, {self.n_channels}), got {tuple(x.shape)}"
            )


def _validate(
    n_channels: int,
    window: int,
    d_model: int,
    patch_sizes: tuple[int, ...],
    e_layers: int,
    n_heads: int,
    use_conv: bool,
) -> None:
    """Raise ``ValueError`` on an inconsistent configuration."""
    if min(n_channels, window, e_layers, n_heads) < 1:
        raise ValueError(
            f"n_channels, window, e_layers, n_heads must be >= 1, got {n_channels}, {window}, {e_layers}, {n_heads}"
        )
    if not patch_sizes:
        raise ValueError("patch_sizes must not be empty")
    for p in patch_sizes:
        if p < 1 or window % p:
            raise ValueError(f"patch size {p} does not divide the window {window}")
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    if use_conv and d_model < 5:
        raise ValueError(f"the convolution module needs d_model >= 5 (kernel 5 without padding), got {d_model}")
