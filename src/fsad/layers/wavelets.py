"""One-level 2-D Haar wavelet transform and its exact inverse, as Wave-MambaAD's Wavelet-Mamba module uses them
(``wave_mambaad.md`` section 2, step 2).

With the four samples of each 2 x 2 block, each divided by 2, ``x1`` (even row, even column), ``x2`` (odd row, even
column), ``x3`` (even row, odd column), ``x4`` (odd row, odd column)::

    LL =  x1 + x2 + x3 + x4        HL = -x1 - x2 + x3 + x4
    LH = -x1 + x2 - x3 + x4        HH =  x1 - x2 - x3 + x4

The four 2 x 2 filters are orthonormal, so the inverse is their transpose and the transform preserves energy. In
PyWavelets' terms (``pywt.dwt2(x, "haar")`` -> ``cA, (cH, cV, cD)``): ``LL = cA``, ``LH = -cH``, ``HL = -cV``,
``HH = cD``. Both directions are one tensor contraction over a reshaped view (no strided slices).
"""

from __future__ import annotations

import torch
from torch import Tensor

# (sub-band, row in the block, column in the block); rows: LL, HL, LH, HH
_FILTERS = 0.5 * torch.tensor([[[1.0, 1.0], [1.0, 1.0]],
                               [[-1.0, 1.0], [-1.0, 1.0]],
                               [[-1.0, -1.0], [1.0, 1.0]],
                               [[1.0, -1.0], [-1.0, 1.0]]])


def haar_dwt(x: Tensor, channels_last: bool = False) -> Tensor:
    """x (B, C, H, W) with even H and W -> the sub-bands stacked as (4, B, C, H/2, W/2) in the order LL, HL, LH,
    HH (``ll, hl, lh, hh = haar_dwt(x)`` unpacks them), in ``x``'s dtype; with ``channels_last``, x (B, H, W, C)
    -> (4, B, H/2, W/2, C), contiguous (``bands[1:]`` is then the three high bands as one tensor).

    Raises ValueError for odd H or W."""
    h, w = x.shape[1:3] if channels_last else x.shape[2:]
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs an even height and width, got {h} x {w}")
    filters = _FILTERS.to(x)
    if channels_last:
        b, _, _, c = x.shape
        return torch.einsum("birjsc,krs->kbijc", x.reshape(b, h // 2, 2, w // 2, 2, c), filters).contiguous()
    b, c = x.shape[:2]
    return torch.einsum("bcirjs,krs->kbcij", x.reshape(b, c, h // 2, 2, w // 2, 2), filters)


def haar_idwt(bands: Tensor, channels_last: bool = False) -> Tensor:
    """The exact inverse of :func:`haar_dwt`: the (4, B, C, h, w) sub-bands LL, HL, LH, HH -> (B, C, 2h, 2w); with
    ``channels_last``, (4, B, h, w, C) -> (B, 2h, 2w, C)."""
    filters = _FILTERS.to(bands)
    if channels_last:
        _, b, h, w, c = bands.shape
        return torch.einsum("kbijc,krs->birjsc", bands, filters).reshape(b, 2 * h, 2 * w, c)
    _, b, c, h, w = bands.shape
    return torch.einsum("kbcij,krs->bcirjs", bands, filters).reshape(b, c, 2 * h, 2 * w)
