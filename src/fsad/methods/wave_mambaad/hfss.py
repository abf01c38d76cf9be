"""HFSS: Wave-MambaAD's directional selective scan of the three high-frequency sub-bands (the released code's
``D_SS2D``; ``wave_mambaad.md`` section 2.1).

Input: the HL, LH and HH bands of B maps stacked on the batch axis, channel-last (3B, h, w, C). One set of
parameters serves the three bands; only the order in which each band is read differs (HL row by row, LH column by
column, HH the code's diagonal order), and every sequence is scanned forwards and backwards with a parameter set
per direction. All 3 bands x 2 directions go through one :func:`fsad.layers.selective_scan.ordered_scan` call (the
bands as groups with orders of their own, the directions as orders with their own B, C, A, D and step bias).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fsad.layers.scan_orders import SCANS
from fsad.layers.ss2d import SelectiveScan2D

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
        scans = tuple(hfss_scan) if isinstance(hfss_scan, Sequence) else ()
    if len(scans) != 3 or any(s not in SCANS for s in scans):
        raise ValueError(f"model.decoder.hfss_scan={hfss_scan!r}: expected 'directional', one of {', '.join(SCANS)}, or three of "
                         "them (HL, LH, HH)")
    return scans


class DirectionalScan(SelectiveScan2D):
    """(GB, h, w, C) -> (GB, h, w, C): G groups of B maps (the three high bands; one band for the spatial LFSS
    ablation), group g read in ``scans[g]`` forwards and backwards.

    The released code's ``D_SS2D`` on :class:`~fsad.layers.ss2d.SelectiveScan2D` (d_inner 2C, depthwise 3x3 conv,
    state N, dt rank ceil(C / 16), two orders per group: the scan and its reverse); back to (h, w):
    ``decode="code"`` reshapes the visit order as it is (the released code: LH stays transposed, HH in
    diagonal-visit order), ``"paper"`` restores each band's layout.

    Args:
        d_model: C. d_state: N. scans: the scan of each group, for HFSS of HL, LH and HH (names of
            :data:`fsad.layers.scan_orders.SCANS`; see :func:`band_scans`). decode: ``code`` or ``paper``.
            scan_backend: of :func:`~fsad.layers.selective_scan.selective_scan`.
    """

    def __init__(self, d_model: int, d_state: int = 16, scans: Sequence[str] = CODE_SCANS,
                 decode: str = "code", scan_backend: str = "auto"):
        if decode not in DECODES:
            raise ValueError(f"hfss_decode={decode!r}: expected one of {', '.join(DECODES)}")
        if not scans or any(s not in SCANS for s in scans):
            raise ValueError(f"scans {list(scans)}: expected names of {', '.join(SCANS)}, one per band")
        super().__init__(d_model, d_state, expand=2, d_conv=3, orders=DIRECTIONS, scan_backend=scan_backend)
        self.scans, self.decode = tuple(scans), decode
        self._orders: dict[tuple, tuple[Tensor, Tensor]] = {}

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
        return self.mix(x, *self.scan_orders(x.shape[1], x.shape[2], x.device))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        for name in ("weight", "bias"):  # checkpoints written before the mixer was shared call the conv "conv"
            if prefix + "conv." + name in state_dict:
                state_dict[prefix + "conv2d." + name] = state_dict.pop(prefix + "conv." + name)
        super()._load_from_state_dict(state_dict, prefix, *args)
