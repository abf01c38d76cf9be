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


def haar_dwt(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """x (B, C, H, W) with even H and W -> ``(LL, HL, LH, HH)``, each (B, C, H/2, W/2), in ``x``'s dtype.

    Raises ValueError for odd H or W."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs an even height and width, got {h} x {w}")
    blocks = x.reshape(b, c, h // 2, 2, w // 2, 2)
    bands = torch.einsum("bcirjs,krs->kbcij", blocks, _FILTERS.to(x))
    return bands[0], bands[1], bands[2], bands[3]


def haar_idwt(ll: Tensor, hl: Tensor, lh: Tensor, hh: Tensor) -> Tensor:
    """The exact inverse of :func:`haar_dwt`: four (B, C, h, w) sub-bands -> (B, C, 2h, 2w)."""
    bands = torch.stack([ll, hl, lh, hh])
    blocks = torch.einsum("kbcij,krs->bcirjs", bands, _FILTERS.to(bands))
    b, c, h, _, w, _ = blocks.shape
    return blocks.reshape(b, c, 2 * h, 2 * w)
