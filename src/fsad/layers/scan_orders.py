"""Orders in which a 2-D map is read as a sequence by a selective scan (Wave-MambaAD's HFSS and the scan-type study
of its supplementary; MambaAD's Hilbert scans).

Every function returns ``order``: a (h * w,) int64 permutation where ``order[k]`` is the flat index ``r * w + c``
of the k-th cell visited. ``x.flatten(-2)[..., order]`` serialises a map; :func:`inverse` gives the permutation that
puts a sequence back (``seq[..., inverse(order)]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


def raster(h: int, w: int) -> Tensor:
    """Row by row, left to right (HFSS's horizontal scan of the HL band)."""
    return torch.arange(h * w)


def column_major(h: int, w: int) -> Tensor:
    """Column by column, top to bottom (HFSS's vertical scan of the LH band: the map transposed, then raster)."""
    return torch.arange(h * w).reshape(h, w).t().reshape(-1)


def diagonal(h: int, w: int) -> Tensor:
    """The released code's diagonal scan of the HH band (square maps): the main diagonal (i, i), then the strict
    upper triangle row by row, then the strict lower triangle row by row (``wave_mambaad.md`` section 2.1)."""
    _require_square("diagonal", h, w)
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    flat = torch.arange(h * w).reshape(h, w)
    return torch.cat([flat[rows == cols], flat[rows < cols], flat[rows > cols]])


def zigzag(h: int, w: int) -> Tensor:
    """Boustrophedon: even rows left to right, odd rows right to left (neighbours in the sequence stay adjacent)."""
    flat = torch.arange(h * w).reshape(h, w)
    flat[1::2] = flat[1::2].flip(-1)
    return flat.reshape(-1)


def z_order(h: int, w: int) -> Tensor:
    """Morton order of a square map whose side is a power of two: the bits of row and column interleaved."""
    side = _require_power_of_two_square("z_order", h, w)
    codes = torch.zeros(side, side, dtype=torch.int64)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    for bit in range(side.bit_length()):
        codes |= ((rows >> bit) & 1) << (2 * bit + 1) | ((cols >> bit) & 1) << (2 * bit)
    return torch.argsort(codes.reshape(-1))


def hilbert(h: int, w: int) -> Tensor:
    """Hilbert curve over a square map whose side is a power of two, from (0, 0) to (0, side - 1): consecutive
    cells are always 4-neighbours."""
    side = _require_power_of_two_square("hilbert", h, w)
    order = []
    for d in range(side * side):
        r, c, t, s = 0, 0, d, 1
        while s < side:  # undo one level of the curve's recursion per step
            rx, ry = 1 & (t // 2), 1 & (t ^ (t // 2))
            if ry == 0:
                if rx == 1:
                    r, c = s - 1 - r, s - 1 - c
                r, c = c, r
            r, c = r + s * ry, c + s * rx
            t //= 4
            s *= 2
        order.append(r * side + c)
    return torch.tensor(order, dtype=torch.int64)


def inverse(order: Tensor) -> Tensor:
    """The permutation that undoes ``order`` (along its last axis, for a stack of orders too):
    ``seq[..., inverse(order)]`` is the map's flat layout again."""
    return torch.argsort(order, dim=-1)


SCANS: dict[str, Callable[[int, int], Tensor]] = {
    "raster": raster, "column_major": column_major, "diagonal": diagonal, "zigzag": zigzag, "z_order": z_order,
    "hilbert": hilbert,
}


def unreadable(scans: Iterable[str], side: int) -> list[str]:
    """The names among ``scans`` (of :data:`SCANS`) that cannot read a side x side map (Hilbert and Z-order need a
    power of two), sorted: what a model checks at construction for the smallest map it will scan."""
    bad = set()
    for name in set(scans):
        try:
            SCANS[name](side, side)
        except ValueError:
            bad.add(name)
    return sorted(bad)


def _require_square(name: str, h: int, w: int) -> None:
    if h != w:
        raise ValueError(f"the {name} scan is defined on square maps, got {h} x {w}")


def _require_power_of_two_square(name: str, h: int, w: int) -> int:
    _require_square(name, h, w)
    if h < 1 or h & (h - 1):
        raise ValueError(f"the {name} scan needs a side that is a power of two, got {h}")
    return h


# ----------------------------------------------------------------------------------------------------------------
# Serialising maps for a scan and putting the scanned sequences back, several maps and directions in one pass
# ----------------------------------------------------------------------------------------------------------------


def _take(x: Tensor, index: Tensor, steps_last: bool) -> Tensor:
    """x (G, B, K, S, F) (any strides; K may be an expanded axis), index (G, K, S) -> ``out[g, b, k, s, f] =
    x[g, b, k, index[g, k, s], f]``, contiguous as (G, B, K, S, F), or as (G, B, K, F, S) with ``steps_last``."""
    g, b, k, s, f = x.shape
    if steps_last:
        return torch.gather(x.transpose(3, 4), 4, index.view(g, 1, k, 1, s).expand(g, b, k, f, s))
    return torch.gather(x, 3, index.view(g, 1, k, s, 1).expand(g, b, k, s, f))


class _Serialise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, orders: Tensor, inverses: Tensor, steps_last: bool) -> Tensor:
        ctx.save_for_backward(orders, inverses)
        ctx.shared, ctx.steps_last = x.dim() == 4, steps_last
        x5 = x.unsqueeze(3) if ctx.shared else x  # (G, B, L, K', F)
        g, b, length, _, f = x5.shape
        return _take(x5.transpose(2, 3).expand(g, b, orders.shape[1], length, f), orders, steps_last)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        orders, inverses = ctx.saved_tensors
        back = _take(grad.transpose(3, 4) if ctx.steps_last else grad, inverses, False)  # (G, B, K, L, F)
        return (back.sum(2) if ctx.shared else back.transpose(2, 3)), None, None, None


class _Deserialise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, seqs: Tensor, orders: Tensor, inverses: Tensor, steps_last: bool) -> Tensor:
        ctx.save_for_backward(orders, inverses)
        ctx.steps_last = steps_last
        return _take(seqs.transpose(3, 4) if steps_last else seqs, inverses, False).sum(2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        orders, inverses = ctx.saved_tensors
        g, b, length, f = grad.shape
        spread = grad.unsqueeze(2).expand(g, b, orders.shape[1], length, f)
        return _take(spread, orders, ctx.steps_last), None, None, None


def serialise(maps: Tensor, orders: Tensor, steps_last: bool = True) -> Tensor:
    """Read G groups of B maps (e.g. the three high-frequency sub-bands) each in its K orders, in one pass.

    Args:
        maps: (G, B, L, F) flattened maps with F features per position (channel-last), shared by the K orders, or
            (G, B, L, K, F) with features of their own per order.
        orders: (G, K, L) permutations (``orders[g, k, s]``: the position read at step s, as this module's
            functions return them; a reversed scan is ``order.flip(-1)``).
        steps_last: output (G, B, K, F, L), the layout of :func:`fsad.layers.selective_scan.selective_scan`'s u and
            delta; False: (G, B, K, L, F) (its B and C read as (b, k, n, L) transposed views).

    Returns: ``out[g, b, k, ..., s] = maps[g, b, orders[g, k, s], (k,) ...]``, contiguous. Differentiable; the
    backward is the same gather with the inverse permutations (no scatter).
    """
    return _Serialise.apply(maps, orders, inverse(orders), steps_last)


def deserialise(seqs: Tensor, orders: Tensor, steps_last: bool = True) -> Tensor:
    """The adjoint of :func:`serialise` with shared features: (G, B, K, F, L) sequences (or (G, B, K, L, F) with
    ``steps_last=False``) -> (G, B, L, F) maps where each position gets, summed over the K orders, the value of
    the step that read it: ``out[g, b, orders[g, k, s], f] += seqs[g, b, k, f, s]``."""
    return _Deserialise.apply(seqs, orders, inverse(orders), steps_last)
