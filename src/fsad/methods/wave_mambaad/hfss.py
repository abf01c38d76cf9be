"""HFSS: Wave-MambaAD's directional selective scan of the three high-frequency sub-bands (the released code's
``D_SS2D``; ``wave_mambaad.md`` section 2.1).

Input: the HL, LH and HH bands of B maps stacked on the batch axis, channel-last (3B, h, w, C). One set of
parameters serves the three bands; only the order in which each band is read differs (HL row by row, LH column by
column, HH the code's diagonal order), and every sequence is scanned forwards and backwards with a parameter set
per direction. All 3 bands x 2 directions go through one :func:`fsad.layers.selective_scan.selective_scan` call (the
directions as channel groups with their own B, C, A, D and step bias).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.mamba import init_dt_projection, s4d_real_a_log
from fsad.layers.scan_orders import SCANS, inverse
from fsad.layers.selective_scan import selective_scan

DECODES = ("code", "paper")
CODE_SCANS = ("raster", "column_major", "diagonal")  # HL, LH, HH
DIRECTIONS = 2  # forward and reversed


class DirectionalScan(nn.Module):
    """(3B, h, w, C) -> (3B, h, w, C).

    ``x, z = in_proj(input)`` (C -> 2 x 2C); ``x = SiLU(depthwise 3x3 conv(x))``; each band's x serialised in its
    scan order, scanned forwards and backwards (d_inner 2C, state N, dt rank ceil(C / 16), softplus step with the
    direction's bias, D skip, no gate inside); ``y = y_fwd + flip(y_bwd)``; back to (h, w): ``decode="code"`` reshapes
    the visit order as it is (the released code: LH stays transposed, HH in diagonal-visit order), ``"paper"``
    restores each band's layout; then LayerNorm(2C), times SiLU(z), out_proj (2C -> C).

    Args:
        d_model: C. d_state: N. scans: the scan of HL, LH and HH (names of :data:`fsad.layers.scan_orders.SCANS`;
            the paper's HFSS ablations read every band horizontally, vertically, ...). decode: ``code`` or
            ``paper``. scan_backend: of :func:`~fsad.layers.selective_scan.selective_scan`.
    """

    def __init__(self, d_model: int, d_state: int = 16, scans: tuple[str, str, str] = CODE_SCANS,
                 decode: str = "code", scan_backend: str = "auto"):
        super().__init__()
        if decode not in DECODES:
            raise ValueError(f"hfss_decode={decode!r}: expected one of {', '.join(DECODES)}")
        if len(scans) != 3 or any(s not in SCANS for s in scans):
            raise ValueError(f"hfss scans {list(scans)}: expected three of {', '.join(SCANS)} (HL, LH, HH)")
        d_inner = 2 * d_model
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, math.ceil(d_model / 16)
        self.scans, self.decode, self.scan_backend = tuple(scans), decode, scan_backend
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv = nn.Conv2d(d_inner, d_inner, 3, padding=1, groups=d_inner, bias=True)
        self.x_proj_weight = nn.Parameter(torch.empty(DIRECTIONS, self.dt_rank + 2 * d_state, d_inner))
        self.dt_proj_weight = nn.Parameter(torch.empty(DIRECTIONS, d_inner, self.dt_rank))
        self.dt_proj_bias = nn.Parameter(torch.empty(DIRECTIONS, d_inner))
        self.A_log = nn.Parameter(torch.cat([s4d_real_a_log(d_inner, d_state) for _ in range(DIRECTIONS)]))
        self.D = nn.Parameter(torch.ones(DIRECTIONS * d_inner))
        self.A_log._no_weight_decay = self.D._no_weight_decay = True
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.reset_scan_parameters()

    def reset_scan_parameters(self) -> None:
        """x_proj as nn.Linear's default, dt_proj with Mamba's step initialisation, per direction."""
        for k in range(DIRECTIONS):
            x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False)
            dt_proj = nn.Linear(self.dt_rank, self.d_inner)
            init_dt_projection(dt_proj, self.dt_rank)
            with torch.no_grad():
                self.x_proj_weight[k].copy_(x_proj.weight)
                self.dt_proj_weight[k].copy_(dt_proj.weight)
                self.dt_proj_bias[k].copy_(dt_proj.bias)

    def orders(self, h: int, w: int, device: torch.device) -> list[Tensor]:
        return [SCANS[name](h, w).to(device) for name in self.scans]

    def forward(self, x: Tensor) -> Tensor:
        n3, h, w, _ = x.shape
        if n3 % 3:
            raise ValueError(f"HFSS expects the HL, LH and HH bands stacked on the batch axis (3B maps), got {n3}")
        b = n3 // 3
        xz = self.in_proj(x)
        u, z = xz.chunk(2, dim=-1)
        u = F.silu(self.conv(u.permute(0, 3, 1, 2)))  # (3B, 2C, h, w)
        orders = self.orders(h, w, x.device)
        flat = u.flatten(2)
        seqs = torch.cat([flat[p * b:(p + 1) * b][..., order] for p, order in enumerate(orders)])  # (3B, 2C, L)
        y = self.scan_both_directions(seqs)
        if self.decode == "paper":
            y = torch.cat([y[p * b:(p + 1) * b][..., inverse(order)] for p, order in enumerate(orders)])
        y = y.reshape(n3, self.d_inner, h, w).permute(0, 2, 3, 1)
        return self.out_proj(self.out_norm(y) * F.silu(z))

    def scan_both_directions(self, seqs: Tensor) -> Tensor:
        """(N, 2C, L) sequences -> (N, 2C, L): forward scan + the reversed scan flipped back, one scan call."""
        xs = torch.stack([seqs, seqs.flip(-1)], dim=1)  # (N, K, d, L)
        n, k, d, length = xs.shape
        x_dbl = torch.einsum("nkdl,kcd->nkcl", xs, self.x_proj_weight)
        dt, b_t, c_t = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        delta = torch.einsum("nkrl,kdr->nkdl", dt, self.dt_proj_weight)
        out = selective_scan(xs.reshape(n, k * d, length), delta.reshape(n, k * d, length),
                             -torch.exp(self.A_log.float()), b_t.contiguous(), c_t.contiguous(), self.D.float(),
                             delta_bias=self.dt_proj_bias.reshape(-1).float(), delta_softplus=True,
                             backend=self.scan_backend).reshape(n, k, d, length)
        return out[:, 0] + out[:, 1].flip(-1)
