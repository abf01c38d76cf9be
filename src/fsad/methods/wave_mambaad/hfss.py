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
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.mamba import init_dt_projection, s4d_real_a_log
from fsad.layers.scan_orders import SCANS, deserialise, serialise
from fsad.layers.selective_scan import selective_scan

DECODES = ("code", "paper")
CODE_SCANS = ("raster", "column_major", "diagonal")  # HL, LH, HH
DIRECTIONS = 2  # forward and reversed


def band_scans(hfss_scan: str | Sequence[str]) -> tuple[str, str, str]:
    """The scans of HL, LH and HH for the option ``hfss_scan``: ``directional`` (the paper's DSS, the released
    code's orders), the name of one scan of :data:`fsad.layers.scan_orders.SCANS` for all three bands (the
    supplementary's scan-type study: raster, z_order, zigzag, hilbert), or three names."""
    if isinstance(hfss_scan, str):
        scans = CODE_SCANS if hfss_scan == "directional" else (hfss_scan,) * 3
    else:
        scans = tuple(hfss_scan)
    if len(scans) != 3 or any(s not in SCANS for s in scans):
        raise ValueError(f"hfss_scan={hfss_scan!r}: expected 'directional', one of {', '.join(SCANS)}, or three of "
                         "them (HL, LH, HH)")
    return scans


class DirectionalScan(nn.Module):
    """(GB, h, w, C) -> (GB, h, w, C): G groups of B maps (the three high bands; one band for the spatial LFSS
    ablation), group g read in ``scans[g]``.

    ``x, z = in_proj(input)`` (C -> 2 x 2C); ``x = SiLU(depthwise 3x3 conv(x))``; each band's x serialised in its
    scan order, scanned forwards and backwards (d_inner 2C, state N, dt rank ceil(C / 16), softplus step with the
    direction's bias, D skip, no gate inside); ``y = y_fwd + flip(y_bwd)``; back to (h, w): ``decode="code"`` reshapes
    the visit order as it is (the released code: LH stays transposed, HH in diagonal-visit order), ``"paper"``
    restores each band's layout; then LayerNorm(2C), times SiLU(z), out_proj (2C -> C).

    Args:
        d_model: C. d_state: N. scans: the scan of each group, for HFSS of HL, LH and HH (names of
            :data:`fsad.layers.scan_orders.SCANS`; see :func:`band_scans`). decode: ``code`` or ``paper``.
            scan_backend: of :func:`~fsad.layers.selective_scan.selective_scan`.
    """

    def __init__(self, d_model: int, d_state: int = 16, scans: Sequence[str] = CODE_SCANS,
                 decode: str = "code", scan_backend: str = "auto"):
        super().__init__()
        if decode not in DECODES:
            raise ValueError(f"hfss_decode={decode!r}: expected one of {', '.join(DECODES)}")
        if not scans or any(s not in SCANS for s in scans):
            raise ValueError(f"scans {list(scans)}: expected names of {', '.join(SCANS)}, one per band")
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
        self._orders: dict[tuple, tuple[Tensor, Tensor]] = {}
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

    def scan_orders(self, h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(reads, slots), each (G, 2, h * w): the positions each band's forward and reversed scans read, and
        where their outputs go (the same positions for ``decode="paper"``; the visit order as it is, the
        reversed scan flipped back, for ``"code"``)."""
        key = (h, w, device)
        if key not in self._orders:
            reads = torch.stack([torch.stack([o, o.flip(0)]) for o in (SCANS[s](h, w) for s in self.scans)])
            steps = torch.arange(h * w)
            slots = reads if self.decode == "paper" else torch.stack([steps, steps.flip(0)]).expand_as(reads)
            self._orders[key] = (reads.to(device), slots.contiguous().to(device))
        return self._orders[key]

    def forward(self, x: Tensor) -> Tensor:
        n, h, w, _ = x.shape
        groups = len(self.scans)
        if n % groups:
            raise ValueError(f"expected {groups} bands stacked on the batch axis ({groups}B maps), got {n}")
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = self.conv(u.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last))
        u = F.silu(u).permute(0, 2, 3, 1).reshape(groups, n // groups, h * w, self.d_inner)  # (G, B, L, 2C)
        reads, slots = self.scan_orders(h, w, x.device)
        y = deserialise(self.scan_both_directions(u, reads), slots)  # (G, B, L, 2C)
        return self.out_proj(self.out_norm(y.reshape(n, h, w, self.d_inner)) * F.silu(z))

    def scan_both_directions(self, u: Tensor, reads: Tensor) -> Tensor:
        """u (G, B, L, 2C) channel-last bands -> (G, B, 2, 2C, L): each band read in its order forwards and
        backwards (``reads``: one gather), the projections of each direction as one batched matrix product on the
        sequences, one selective scan call."""
        g, b, length, d = u.shape
        k, n, r = DIRECTIONS, self.d_state, self.dt_rank
        seqs = serialise(u, reads)  # (G, B, K, 2C, L)
        x_dbl = torch.matmul(self.x_proj_weight, seqs)  # (G, B, K, r + 2N, L)
        delta = torch.matmul(self.dt_proj_weight, x_dbl[..., :r, :])  # (G, B, K, 2C, L)
        b_t, c_t = (x_dbl[..., r + i * n:r + (i + 1) * n, :].reshape(g * b, k, n, length) for i in range(2))
        out = selective_scan(seqs.view(g * b, k * d, length), delta.view(g * b, k * d, length),
                             -torch.exp(self.A_log.float()), b_t, c_t, self.D.float(),
                             delta_bias=self.dt_proj_bias.reshape(-1).float(), delta_softplus=True,
                             backend=self.scan_backend)
        return out.view(g, b, k, d, length)
