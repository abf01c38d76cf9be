"""Materialising reference of TransMamba's time branch and objective, in the order of the official code.

For every patch size and layer: tokens -> Q, K -> per-channel softmax map (B*C, H, p, p) -> tiled per channel
to (B*C, H, W, W) -> mean over the C channels (B, H, W, W). The losses and the score are then computed on the
full W x W maps exactly as written in the official solver (``A_low / rowsum``, KL with the 1e-4 guard, the
stop-gradients, softmax over the window). It runs the ``TransMambaNetwork`` instance's own sub-modules (shared
weights, same random draws in the same order); only the aggregation order differs from
``TransMambaNetwork.forward``. Used by tests and the benchmark; far slower and larger in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fsad.layers.patch_attention import Layout, channel_mean, upsample
from fsad.methods.transmamba.network import TransMambaNetwork, TransMambaOutput

KL_EPS = 1e-4


def materialised_time_maps(network: TransMambaNetwork, x_n: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Official order: per-channel maps tiled to (B*C, H, W, W), then the channel mean -> U maps (B, H, W, W)."""
    high: list[Tensor] = []
    low: list[Tensor] = []
    for p, tokens, is_high in network.patch_tokens(x_n):
        for attention in network.attention:
            per_channel = upsample(attention.attention_maps(tokens), p, Layout.TILE, network.window)
            (high if is_high else low).append(channel_mean(per_channel, network.n_channels))
    return high, low


def materialised_forward(network: TransMambaNetwork, x: Tensor, contrastive: bool = True) -> TransMambaOutput:
    """Same as ``network(x, contrastive)`` but with full (B, H, W, W) maps built the official way."""
    return network.encode(x, lambda x_n: materialised_time_maps(network, x_n), contrastive)


def official_kl(p: Tensor, q: Tensor) -> Tensor:
    """The solver's ``my_kl_loss``: row sums of ``p (log(p + 1e-4) - log(q + 1e-4))``, mean over heads -> (B, W)."""
    return torch.mean(torch.sum(p * (torch.log(p + KL_EPS) - torch.log(q + KL_EPS)), dim=-1), dim=1)


def official_time_losses(high: list[Tensor], low: list[Tensor]) -> dict[str, Tensor]:
    """``low_loss - high_loss`` on full (B, H, W, W) maps, term by term as the official training loop."""
    high_loss = 0.0
    low_loss = 0.0
    for a, b in zip(high, low):
        b_hat = b / torch.sum(b, dim=-1, keepdim=True)
        high_loss = high_loss + torch.mean(official_kl(a, b_hat.detach())) + torch.mean(official_kl(b_hat.detach(), a))
        low_loss = low_loss + torch.mean(official_kl(b_hat, a.detach())) + torch.mean(official_kl(a.detach(), b_hat))
    high_loss, low_loss = high_loss / len(high), low_loss / len(high)
    return {"loss_time": low_loss - high_loss, "high_loss": high_loss, "low_loss": low_loss}


def official_score(x: Tensor, out: TransMambaOutput, temperature: float = 50.0) -> Tensor:
    """The solver's test score on full maps: ``softmax(-high - low) + softmax(mean_c (x - x̂)^2)`` -> (B, W)."""
    high_kl, low_kl = 0.0, 0.0
    for a, b in zip(out.high, out.low):
        b_hat = b / torch.sum(b, dim=-1, keepdim=True)
        high_kl = high_kl + official_kl(a, b_hat) * temperature
        low_kl = low_kl + official_kl(b_hat, a) * temperature
    recon = torch.softmax(torch.mean((x - out.x_hat) ** 2, dim=-1), dim=-1)
    return torch.softmax(-high_kl - low_kl, dim=-1) + recon
