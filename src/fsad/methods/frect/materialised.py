"""Materialising reference of FreCT, computed in the order of the official code.

For every view of every (patch size, layer): tokens -> Q, K -> per-channel softmax map (B*C, H, t, t) ->
up-sampled per channel to (B*C, H, L, L) (block repeat / tiling) -> mean over the C channels (B, H, L, L) ->
times the values (B, L, H, E) -> sigmoid -> convolution module on all L rows. It runs the ``FreCTNetwork``
instance's own sub-modules (shared weights); only the aggregation (and the use of the plain, non-factored
forms of the embedding/attention/convolution) differs from ``FreCTNetwork.forward``. Used by tests and the
benchmark; far slower and larger in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fsad.layers.embedding import AffineTokens
from fsad.layers.patch_attention import Layout, channel_mean, upsample
from fsad.methods.frect.network import FreCTNetwork, ViewPath


def materialised_mix(maps: Tensor, values: Tensor, n_channels: int, patch_size: int, layout: Layout) -> Tensor:
    """Per-channel maps (B*C, H, t, t) -> (B*C, H, L, L) -> channel mean (B, H, L, L) -> times V -> (B, L, H, E)."""
    full = channel_mean(upsample(maps, patch_size, layout, values.shape[1]), n_channels)
    return torch.einsum("bhls,bshe->blhe", full, values)


class MaterialisedPath(ViewPath):
    """Official-order computation of one view (plain embedding, direct Q/K, full L x L maps, full convolution)."""

    def view(
        self,
        net: FreCTNetwork,
        layer: int,
        patch_size: int,
        layout: Layout,
        tokens: Tensor | AffineTokens,
        values: Tensor,
    ) -> Tensor:
        maps = net.attention[layer].attention_maps(tokens)  # (B*C, H, t, t)
        mixed = materialised_mix(maps, values, net.n_channels, patch_size, layout)  # (B, L, H, E)
        return net.finish(torch.sigmoid(mixed), layer)  # (B, L, 1, D)


def materialised_forward(network: FreCTNetwork, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Same outputs as ``network(x)`` ((series, prior), U tensors (B, L, 1, D) each), computed the slow way."""
    return network.encode(x, MaterialisedPath())
