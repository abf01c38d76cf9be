"""LFSS: Wave-MambaAD's channel-adaptive scan of the low-frequency band (the released code's ``ChannelFreqAdapt``
with its bidirectional ``ChannelMamba``; ``wave_mambaad.md`` section 2.2, paper Eqs. 6-7).

The band's channels are cut into groups of Cg (= 32 at every stage); within a group the *channels* are the
sequence: the map is averaged over its width (or height), and a bidirectional selective scan runs over the Cg
channel tokens, each token carrying the h (or w) pooled values as its features. The result re-weights the group's
map, first along the height, then along the width. One set of weights serves every group (as in the code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.mamba import init_dt_projection, s4d_real_a_log
from fsad.layers.selective_scan import selective_scan


class ChannelScan(nn.Module):
    """Bidirectional selective scan over channel tokens (BiCSSM): (N, Cg, s) -> (N, Cg, s), with s the pooled
    spatial length (the feature size; d_inner = s, expand 1) and Cg the sequence length.

    ``x, z = in_proj(u)`` (s -> 2s, no bias); x goes through a depthwise 3x3 conv over the (Cg, 1, s) view (per
    token, a length-3 filter along the features; no activation). Forward scan with ``x_proj``, ``dt_proj``, ``A``,
    ``D`` and the gate SiLU(z) inside; backward scan over the channel-flipped x with its own ``x_proj_b``,
    ``dt_proj_b``, ``A_b``, ``D_b``, but, as the released code, the *forward* step bias and the *unflipped* z.
    ``out = LN(out_f) * SiLU(z) + flip(LN(out_b) * SiLU(z))`` with LN over the Cg tokens (the gate applies twice,
    inside the scan and after it, as in the code).
    """

    def __init__(self, length: int, channels: int, d_state: int = 16, scan_backend: str = "auto"):
        super().__init__()
        self.length, self.d_state, self.dt_rank = length, d_state, math.ceil(length / 16)
        self.scan_backend = scan_backend
        self.in_proj = nn.Linear(length, 2 * length, bias=False)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.x_proj = nn.Linear(length, self.dt_rank + 2 * d_state, bias=False)
        self.x_proj_b = nn.Linear(length, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, length)
        self.dt_proj_b = nn.Linear(self.dt_rank, length)
        for dt_proj in (self.dt_proj, self.dt_proj_b):
            init_dt_projection(dt_proj, self.dt_rank)
        self.A_log, self.A_b_log = s4d_real_a_log(length, d_state), s4d_real_a_log(length, d_state)
        self.D, self.D_b = nn.Parameter(torch.ones(length)), nn.Parameter(torch.ones(length))
        self.D._no_weight_decay = self.D_b._no_weight_decay = True
        self.norm = nn.LayerNorm(channels)

    def _scan(self, x: Tensor, z: Tensor, x_proj: nn.Linear, dt_proj: nn.Linear, a_log: Tensor, skip: Tensor
              ) -> Tensor:
        """x, z (N, s, Cg) -> (N, s, Cg): one selective scan over the Cg tokens, gated by SiLU(z) inside."""
        dt, b_t, c_t = torch.split(x_proj(x.transpose(1, 2)), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, dt_proj.weight).transpose(1, 2)
        return selective_scan(x, delta, -torch.exp(a_log.float()), b_t.transpose(1, 2).contiguous(),
                              c_t.transpose(1, 2).contiguous(), skip.float(), z=z,
                              delta_bias=self.dt_proj.bias.float(), delta_softplus=True, backend=self.scan_backend)

    def forward(self, u: Tensor) -> Tensor:
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (N, Cg, s) each
        x = self.conv(x.unsqueeze(2)).squeeze(2)
        x, z = x.transpose(1, 2), z.transpose(1, 2)  # (N, s, Cg): s features, Cg steps
        out_f = self._scan(x, z, self.x_proj, self.dt_proj, self.A_log, self.D)
        out_b = self._scan(x.flip(-1), z, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b)
        gate = F.silu(z)
        out = self.norm(out_f) * gate + (self.norm(out_b) * gate).flip(-1)
        return out.transpose(1, 2)


class ChannelAdaptiveScan(nn.Module):
    """LFSS: LL (B, C, h, w) -> LL' (B, C, h, w).

    ``x = depthwise 3x3 conv(LL)`` (no bias), channels cut into ``groups`` groups of Cg; per group (shared
    weights): ``m_h = scan_h(mean over width of x_g)`` broadcast over the width, ``x1 = m_h * x_g``;
    ``m_w = scan_w(mean over height of x1)`` broadcast over the height, ``x2 = m_w * x_g`` (the group input, as
    Eq. 7); ``out_g = 1x1 conv(x2)``; then ``LL' = 1x1 conv(concat out_g) + LL`` (Eq. 6). Convs without bias.
    """

    def __init__(self, channels: int, height: int, width: int, groups: int, d_state: int = 16,
                 scan_backend: str = "auto"):
        super().__init__()
        if channels % groups:
            raise ValueError(f"LFSS: {channels} channels cannot be cut into {groups} groups")
        self.groups, self.group_channels = groups, channels // groups
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.scan_h = ChannelScan(height, self.group_channels, d_state, scan_backend)
        self.scan_w = ChannelScan(width, self.group_channels, d_state, scan_backend)
        self.group_proj = nn.Conv2d(self.group_channels, self.group_channels, 1, bias=False)
        self.proj = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, ll: Tensor) -> Tensor:
        b, c, h, w = ll.shape
        x = self.conv(ll).reshape(b * self.groups, self.group_channels, h, w)
        m_h = self.scan_h(x.mean(dim=3)).unsqueeze(3)  # (BG, Cg, h, 1)
        m_w = self.scan_w((m_h * x).mean(dim=2)).unsqueeze(2)  # (BG, Cg, 1, w)
        out = self.group_proj(m_w * x).reshape(b, c, h, w)
        return self.proj(out) + ll
