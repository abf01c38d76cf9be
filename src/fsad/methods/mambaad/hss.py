"""HSS: MambaAD's Hybrid State Space block (paper Sec. 3, "Hybrid State Space block" with its Hybrid Scanning
encoder and decoder; the released code's ``HSSBlock`` (ADer: ``VSSBlock``) around ``SS2D`` and the ``HSCANS``
serialiser, lewandofskee/MambaAD ``model/mambaad.py``).

The feature map is read in ``directions`` orders: the chosen curve (Hilbert by default) over four views of the map
(as it is, transposed, rotated by 90 degrees, rotated then transposed; the code's ``forward_core``), each forwards
and backwards. Each direction has its own x_proj, step projection, A and D; all of them go through one
:func:`fsad.layers.selective_scan.selective_scan` call (the directions as channel groups with their own B and C),
each output is put back in the map's layout and the directions are summed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.dropout import drop_path as _drop_path
from fsad.layers.mamba import init_dt_projection, resolve_dt_rank, s4d_real_a_log
from fsad.layers.scan_orders import SCANS, deserialise, inverse, serialise
from fsad.layers.selective_scan import selective_scan

DIRECTIONS = (2, 4, 8)  # the code's num_direction: 1, 2 or 4 views of the map, each forwards and backwards


def view_grids(h: int, w: int) -> list[Tensor]:
    """The four views of an (h, w) map as grids of its flat indices ``r * w + c``: the map, its transpose,
    ``torch.rot90(map, 1)`` (counter-clockwise) and the transpose of that (the code's order of ``xs``)."""
    grid = torch.arange(h * w).reshape(h, w)
    rotated = torch.rot90(grid, 1, (0, 1))
    return [grid, grid.t(), rotated, rotated.t()]


def direction_orders(h: int, w: int, scan: str = "hilbert", directions: int = 8) -> Tensor:
    """(K, h * w) int64, K = ``directions``: row k lists the flat indices of the map in the order direction k visits
    them. Rows 0 .. K/2 - 1: the ``scan`` curve over the first K/2 views; rows K/2 .. K - 1: the same reversed (the
    code's ``torch.cat([xs, xs.flip(-1)])``). ``x.flatten(-2)[..., orders[k]]`` serialises a map for direction k,
    ``seq[..., inverse(orders[k])]`` puts it back (the code's ``decode`` followed by the view's inverse)."""
    if directions not in DIRECTIONS:
        raise ValueError(f"HSS directions={directions}: expected one of {', '.join(map(str, DIRECTIONS))}")
    if scan not in SCANS:
        raise ValueError(f"HSS scan={scan!r}: expected one of {', '.join(SCANS)}")
    forward = [grid.reshape(-1)[SCANS[scan](*grid.shape)] for grid in view_grids(h, w)[: directions // 2]]
    return torch.stack(forward + [order.flip(0) for order in forward])


class HybridScan(nn.Module):
    """The HSS block's mixer (the code's ``SS2D``): (B, H, W, C) -> (B, H, W, C), H = W = ``size`` for the stored
    orders (another size computes its orders on the fly).

    ``x, z = in_proj(input)`` (C -> 2 x E C, no bias); ``x = SiLU(depthwise k x k conv(x))`` (with bias);
    serialised in K directions (:func:`direction_orders`), each scanned with its own parameters (d_inner E C, state
    N, dt rank ceil(C / 16), softplus step with the direction's bias, D skip, no gate inside); every output put back
    in the map's layout and the K summed; then LayerNorm(E C), times SiLU(z), out_proj (E C -> C, no bias).

    Args:
        d_model: C. size: H = W of the maps it will see. d_state: N (code 16). expand: E (code 2). d_conv: k (code
            3). dt_rank: ``"auto"`` = ceil(C / 16). directions: K in (2, 4, 8) (MambaAD: 8). scan: a name of
            :data:`fsad.layers.scan_orders.SCANS` (MambaAD: ``hilbert``; ``raster`` is the code's ``sweep``,
            ``zigzag`` its boustrophedon ``scan``, ``z_order`` a Z-order; its diagonal ``zigzag`` is not there).
        index_parameters: also keep the code's ``HSCANS`` tables (the curve over ``size`` and its inverse, int64,
            ``requires_grad=False``) as parameters ``index_flat`` / ``index_flat_inv`` of shape (1, 1, size^2):
            they only change the parameter count (2 size^2 per block, counted in the published 16.038 M).
        scan_backend: of :func:`~fsad.layers.selective_scan.selective_scan`.
    """

    def __init__(self, d_model: int, size: int, d_state: int = 16, expand: float = 2, d_conv: int = 3,
                 dt_rank: int | str = "auto", directions: int = 8, scan: str = "hilbert",
                 index_parameters: bool = True, scan_backend: str = "auto"):
        super().__init__()
        orders = direction_orders(size, size, scan, directions)
        d_inner = int(expand * d_model)
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, resolve_dt_rank(dt_rank, d_model)
        self.size, self.directions, self.scan, self.scan_backend = size, directions, scan, scan_backend
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, d_conv, padding=(d_conv - 1) // 2, groups=d_inner, bias=True)
        k = directions
        self.x_proj_weight = nn.Parameter(torch.empty(k, self.dt_rank + 2 * d_state, d_inner))
        self.dt_proj_weight = nn.Parameter(torch.empty(k, d_inner, self.dt_rank))
        self.dt_proj_bias = nn.Parameter(torch.empty(k, d_inner))
        self.A_log = nn.Parameter(torch.cat([s4d_real_a_log(d_inner, d_state) for _ in range(k)]))
        self.D = nn.Parameter(torch.ones(k * d_inner))
        self.A_log._no_weight_decay = self.D._no_weight_decay = True
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.register_buffer("orders", orders, persistent=False)
        if index_parameters:
            curve = SCANS[scan](size, size)
            self.index_flat = nn.Parameter(curve.view(1, 1, -1), requires_grad=False)
            self.index_flat_inv = nn.Parameter(inverse(curve).view(1, 1, -1), requires_grad=False)
        self.reset_scan_parameters()

    def reset_scan_parameters(self) -> None:
        """Per direction: x_proj as ``nn.Linear``'s default, the step projection with Mamba's initialisation (the
        code's ``dt_init``); A_log S4D-real and D ones are set at construction."""
        for k in range(self.directions):
            x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False)
            dt_proj = nn.Linear(self.dt_rank, self.d_inner)
            init_dt_projection(dt_proj, self.dt_rank)
            with torch.no_grad():
                self.x_proj_weight[k].copy_(x_proj.weight)
                self.dt_proj_weight[k].copy_(dt_proj.weight)
                self.dt_proj_bias[k].copy_(dt_proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = self.conv2d(u.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last))
        u = F.silu(u).permute(0, 2, 3, 1).reshape(b, h * w, self.d_inner)  # (B, L, E C), row-major positions
        y = self.scan_directions(u, h, w).reshape(b, h, w, self.d_inner)
        return self.out_proj(self.out_norm(y) * F.silu(z))

    def scan_directions(self, u: Tensor, h: int, w: int) -> Tensor:
        """u (B, L, d) channel-last, positions row-major -> (B, L, d): the K directions' scans, each output put back
        at the positions it read, summed. u is read once in the K orders (:func:`~fsad.layers.scan_orders.serialise`,
        straight into the scan's (B, K, d, L) layout); the projections act on the read sequences (the same work as
        per position, and no further gathers of the step, B or C); one selective-scan call over K d channels with
        B, C grouped per direction; :func:`~fsad.layers.scan_orders.deserialise` puts the outputs back and sums."""
        orders = self.orders if (h, w) == (self.size, self.size) else \
            direction_orders(h, w, self.scan, self.directions).to(u.device)
        orders = orders.unsqueeze(0)  # (1, K, L): one group of maps
        b, length, d = u.shape
        k = self.directions
        xs = serialise(u.unsqueeze(0), orders).squeeze(0)  # (B, K, d, L)
        x_dbl = torch.matmul(self.x_proj_weight, xs)  # (B, K, R + 2N, L)
        dt, b_t, c_t = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        delta = torch.matmul(self.dt_proj_weight, dt)  # (B, K, d, L)
        out = selective_scan(xs.view(b, k * d, length), delta.view(b, k * d, length),
                             -torch.exp(_float(self.A_log)), b_t.contiguous(), c_t.contiguous(), _float(self.D),
                             delta_bias=_float(self.dt_proj_bias).reshape(-1), delta_softplus=True,
                             backend=self.scan_backend)
        return deserialise(out.view(1, b, k, d, length), orders).squeeze(0)


class HSSBlock(nn.Module):
    """(B, H, W, C) channel-last -> (B, H, W, C): ``x + DropPath(HybridScan(LayerNorm(x)))`` (the code's
    ``HSSBlock``: ``ln_1``, ``self_attention``, ``drop_path``; attention dropout 0).

    The keyword names ``channels``, ``size``, ``drop_path``, ``d_state`` and ``scan_backend`` are those of
    Wave-MambaAD's :class:`~fsad.methods.wave_mambaad.block.WaveletMamba`, so a decoder can build either module
    with the same keywords (the ablation "WM -> HSS"); the rest are keyword-only.

    Args:
        channels: C. size: H = W. drop_path: stochastic-depth rate of the branch. d_state: N.
        scan_backend, directions, scan, expand, d_conv, dt_rank, index_parameters: see :class:`HybridScan`.
    """

    def __init__(self, channels: int, size: int, drop_path: float = 0.0, d_state: int = 16,
                 scan_backend: str = "auto", *, directions: int = 8, scan: str = "hilbert", expand: float = 2,
                 d_conv: int = 3, dt_rank: int | str = "auto", index_parameters: bool = True):
        super().__init__()
        self.drop_path = drop_path
        self.norm = nn.LayerNorm(channels)
        self.mixer = HybridScan(channels, size, d_state, expand, d_conv, dt_rank, directions, scan,
                                index_parameters, scan_backend)

    def forward(self, x: Tensor) -> Tensor:
        return x + _drop_path(self.mixer(self.norm(x)), self.drop_path, self.training)


def _float(t: Tensor) -> Tensor:
    """Float32 as the code's ``.float()`` (the scan's parameters), float64 kept (gradient checks)."""
    return t if t.dtype == torch.float64 else t.float()

