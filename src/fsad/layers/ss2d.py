"""The 2-D selective scan mixer of the vision Mamba decoders (VMamba's ``SS2D``, which MambaAD's HSS block and
Wave-MambaAD's HFSS both build on): a feature map read as sequences in several orders, each order scanned with its
own selective-scan parameters, the outputs put back on the map and summed.

``x, z = in_proj(x)`` (C -> 2 E C, no bias); ``u = SiLU(depthwise k x k conv(x))`` (with bias); per order k:
``(dt, B, C) = x_proj_k u``, ``delta = dt_proj_k dt`` (computed at every position of the map: a projection of a
position does not depend on when it is read), u read in K orders, each scanned (state N, softplus step with the
order's bias, D skip, no gate inside), every output written back where the caller says and the K summed, all in one
:func:`fsad.layers.selective_scan.ordered_scan` call; then LayerNorm(E C), times SiLU(z), out_proj (E C -> C, no
bias).

Several groups of maps can be stacked on the batch axis, each read in orders of its own (Wave-MambaAD's three
high-frequency bands).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.mamba import init_dt_projection, resolve_dt_rank, s4d_real_a_log
from fsad.layers.selective_scan import ordered_scan


def _scan_dtype(t: Tensor) -> Tensor:
    """The scan's parameters in float32 as the kernels take them; float64 kept (gradient checks)."""
    return t if t.dtype == torch.float64 else t.float()


class SelectiveScan2D(nn.Module):
    """(G B, h, w, C) channel-last maps -> (G B, h, w, C), given per group the K orders to read and where to write.

    Args:
        d_model: C. d_state: N. expand: E (d_inner = E C). d_conv: k of the depthwise conv. dt_rank: ``"auto"`` =
            ceil(C / 16). orders: K, the number of read orders (directions) per group. scan_backend: of
            :func:`~fsad.layers.selective_scan.selective_scan`.

    Parameters (the VMamba code's names and layout): ``in_proj``, ``conv2d``, ``x_proj_weight`` (K, r + 2N, d),
    ``dt_proj_weight`` (K, d, r), ``dt_proj_bias`` (K, d), ``A_log`` (K d, N), ``D`` (K d), ``out_norm``,
    ``out_proj``; no weight decay on ``A_log`` and ``D``.
    """

    def __init__(self, d_model: int, d_state: int = 16, expand: float = 2, d_conv: int = 3,
                 dt_rank: int | str = "auto", orders: int = 2, scan_backend: str = "auto"):
        super().__init__()
        d_inner = int(expand * d_model)
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, resolve_dt_rank(dt_rank, d_model)
        self.n_orders, self.scan_backend = orders, scan_backend
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, d_conv, padding=(d_conv - 1) // 2, groups=d_inner, bias=True)
        self.x_proj_weight = nn.Parameter(torch.empty(orders, self.dt_rank + 2 * d_state, d_inner))
        self.dt_proj_weight = nn.Parameter(torch.empty(orders, d_inner, self.dt_rank))
        self.dt_proj_bias = nn.Parameter(torch.empty(orders, d_inner))
        self.A_log = nn.Parameter(torch.cat([s4d_real_a_log(d_inner, d_state) for _ in range(orders)]))
        self.D = nn.Parameter(torch.ones(orders * d_inner))
        self.A_log._no_weight_decay = self.D._no_weight_decay = True
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.reset_scan_parameters()

    def reset_scan_parameters(self) -> None:
        """Per order: x_proj as ``nn.Linear``'s default, the step projection with Mamba's initialisation (A_log
        S4D-real and D ones are set at construction)."""
        for k in range(self.n_orders):
            x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False)
            dt_proj = nn.Linear(self.dt_rank, self.d_inner)
            init_dt_projection(dt_proj, self.dt_rank)
            with torch.no_grad():
                self.x_proj_weight[k].copy_(x_proj.weight)
                self.dt_proj_weight[k].copy_(dt_proj.weight)
                self.dt_proj_bias[k].copy_(dt_proj.bias)

    def mix(self, x: Tensor, reads: Tensor, slots: Tensor) -> Tensor:
        """x (G B, h, w, C); reads, slots (G, K, h w): ``reads[g, k, s]`` is the position that order k of group g
        reads at step s, ``slots[g, k, s]`` where its output goes (``reads`` itself to put every output back in
        place). Returns (G B, h, w, C)."""
        n, h, w, _ = x.shape
        groups = reads.shape[0]
        if n % groups:
            raise ValueError(f"expected {groups} groups of maps stacked on the batch axis, got {n} maps")
        weight_u, weight_z = self.in_proj.weight.chunk(2)  # two products: u and z come out contiguous
        u, z = F.linear(x, weight_u), F.linear(x, weight_z)
        u = self.conv2d(u.permute(0, 3, 1, 2))  # a channels-last view
        u = F.silu(u).permute(0, 2, 3, 1).reshape(n, h * w, self.d_inner)  # (G B, L, d)
        y = self.scan(u, reads, slots)
        return self.out_proj(self.out_norm(y.view(n, h, w, self.d_inner)) * F.silu(z))

    def scan(self, u: Tensor, reads: Tensor, slots: Tensor) -> Tensor:
        """u (G B, L, d) channel-last -> (G B, L, d): the projections of every order at every position as two
        matrix products, then the K orders of each group read, scanned and put back in one
        :func:`~fsad.layers.selective_scan.ordered_scan` call (``reads`` and ``slots`` as in :meth:`mix`)."""
        b, length, d = u.shape
        k, n, r = self.n_orders, self.d_state, self.dt_rank
        x_dbl = torch.matmul(u, self.x_proj_weight.flatten(0, 1).t()).view(b, length, k, r + 2 * n)
        steps = x_dbl[..., :r].permute(2, 0, 1, 3).reshape(k, b * length, r)
        delta = torch.matmul(steps, self.dt_proj_weight.transpose(1, 2)).view(k, b, length, d)
        return ordered_scan(u, delta, -torch.exp(_scan_dtype(self.A_log)), x_dbl[..., r:r + n], x_dbl[..., r + n:],
                            _scan_dtype(self.D), reads, slots, delta_bias=_scan_dtype(self.dt_proj_bias).reshape(-1),
                            delta_softplus=True, backend=self.scan_backend)
