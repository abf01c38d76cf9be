"""HSS: MambaAD's Hybrid State Space block (paper Sec. 3, "Hybrid State Space block" with its Hybrid Scanning
encoder and decoder; the released code's ``HSSBlock`` (ADer: ``VSSBlock``) around ``SS2D`` and the ``HSCANS``
serialiser, lewandofskee/MambaAD ``model/mambaad.py``).

The feature map is read in ``directions`` orders: the chosen curve (Hilbert by default) over four views of the map
(as it is, transposed, rotated by 90 degrees, rotated then transposed; the code's ``forward_core``), each forwards
and backwards. Each direction has its own x_proj, step projection, A and D; all of them go through one
:func:`fsad.layers.selective_scan.ordered_scan` call (the directions as orders with their own B and C), which puts
each output back in the map's layout and sums the directions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fsad.layers.dropout import drop_path as _drop_path
from fsad.layers.scan_orders import SCANS, inverse
from fsad.layers.ss2d import SelectiveScan2D

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


class HybridScan(SelectiveScan2D):
    """The HSS block's mixer (the code's ``SS2D``): (B, H, W, C) -> (B, H, W, C), H = W = ``size`` for the stored
    orders (another size computes its orders on the fly).

    :class:`~fsad.layers.ss2d.SelectiveScan2D` reading the map in K directions (:func:`direction_orders`) and
    putting every output back where it was read (the code's ``decode``), the K summed.

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
        orders = direction_orders(size, size, scan, directions)
        super().__init__(d_model, d_state, expand, d_conv, dt_rank, directions, scan_backend)
        self.size, self.directions, self.scan_name = size, directions, scan
        self.register_buffer("orders", orders, persistent=False)
        if index_parameters:
            curve = orders[0]  # the curve over the map as it is (the first view)
            self.index_flat = nn.Parameter(curve.view(1, 1, -1), requires_grad=False)
            self.index_flat_inv = nn.Parameter(inverse(curve).view(1, 1, -1), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        orders = self.read_orders(x.shape[1], x.shape[2], x.device)
        return self.mix(x, orders, orders)

    def read_orders(self, h: int, w: int, device: torch.device) -> Tensor:
        """(1, K, h w): the stored orders for the map size given at construction, else computed."""
        orders = self.orders if (h, w) == (self.size, self.size) else \
            direction_orders(h, w, self.scan_name, self.directions).to(device)
        return orders.unsqueeze(0)

    def scan_directions(self, u: Tensor, h: int, w: int) -> Tensor:
        """u (B, L, d) channel-last, positions row-major -> (B, L, d): the K directions' scans, each output put
        back at the positions it read, summed (the mixer between its convolution and its output norm)."""
        orders = self.read_orders(h, w, u.device)
        return self.scan(u, orders, orders)


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
