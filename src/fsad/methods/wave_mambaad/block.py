"""The Wavelet-Mamba module (the released code's ``VSSBlock``; ``wave_mambaad.md`` section 2, paper Eqs. 4 and 8):
LayerNorm, Haar DWT, LFSS on the LL band, HFSS on the HL / LH / HH bands, inverse DWT as a residual branch, then
the dynamic spatial enhancement as a second residual branch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fsad.layers.dropout import drop_path
from fsad.layers.dse import DynamicSpatialEnhancement
from fsad.layers.wavelets import haar_dwt, haar_idwt
from fsad.methods.wave_mambaad.hfss import DirectionalScan, band_scans
from fsad.methods.wave_mambaad.lfss import ChannelAdaptiveScan


ENHANCEMENTS = ("dse", "mlp")
LFSS_SCANS = ("channel", "spatial")


class PointwiseMLP(nn.Sequential):
    """The ``DSE -> MLP`` ablation's replacement on channel-last maps: linear (1x1 conv) to int(2.66 C), GELU,
    linear back to C, no biases (DSE's width without its shuffle, depthwise conv and gating; the paper does not
    give the MLP's width)."""

    def __init__(self, channels: int, expansion: float = 2.66):
        hidden = int(expansion * channels)
        super().__init__(nn.Linear(channels, hidden, bias=False), nn.GELU(), nn.Linear(hidden, channels, bias=False))


class WaveletMamba(nn.Module):
    """(B, H, W, C) channel-last -> (B, H, W, C), H = W = ``size`` (even).

    ``Y = IDWT(LFSS(LL), HFSS(HL, LH, HH))`` of ``DWT(LN(X))``; ``Y1 = X + DropPath(Y)``;
    ``out = Y1 + DSE(LN(Y1))``.

    Args:
        channels: C. size: the map side H (the bands are H / 2). groups: LFSS channel groups (C / groups = 32 in the
            paper's configuration). drop_path: stochastic-depth rate of the wavelet branch. d_state: N of the scans.
        hfss_scan: ``directional`` (default), one scan for all three bands, or three names
            (:func:`~fsad.methods.wave_mambaad.hfss.band_scans`). hfss_decode: see
            :class:`~fsad.methods.wave_mambaad.hfss.DirectionalScan`.
        unused_conv: also create the released code's 1x1 conv (3C -> C) that its forward never calls: it only
            changes the parameter count (the paper's 22.3 M includes it).
        use_lfss, use_hfss: ablations ``w/o LFSS`` / ``w/o HFSS`` of the paper's Table 3: the band(s) pass through
            the DWT and back unchanged. enhancement: ``dse`` or ``mlp`` (the ``DSE -> MLP`` row).
        lfss_scan: ``channel`` (LFSS) or ``spatial``: the ``LFSS (Spatial-wise)`` row, read here as the LL band
            scanned over its positions (row by row, forwards and backwards, HFSS's scan with parameters of its own)
            instead of over its channels; the paper gives no more detail.
    """

    def __init__(self, channels: int, size: int, groups: int, drop_path: float = 0.0, d_state: int = 16,
                 hfss_scan: str | Sequence[str] = "directional", hfss_decode: str = "code", unused_conv: bool = True,
                 scan_backend: str = "auto", use_lfss: bool = True, use_hfss: bool = True,
                 enhancement: str = "dse", lfss_scan: str = "channel"):
        super().__init__()
        if size % 2:
            raise ValueError(f"the Wavelet-Mamba module needs an even map side, got {size}")
        if enhancement not in ENHANCEMENTS:
            raise ValueError(f"enhancement={enhancement!r}: expected one of {', '.join(ENHANCEMENTS)}")
        if lfss_scan not in LFSS_SCANS:
            raise ValueError(f"lfss_scan={lfss_scan!r}: expected one of {', '.join(LFSS_SCANS)}")
        self.drop_path, self.lfss_scan = drop_path, lfss_scan if use_lfss else None
        self.norm = nn.LayerNorm(channels)
        self.lfss = (ChannelAdaptiveScan(channels, size // 2, size // 2, groups, d_state, scan_backend)
                     if lfss_scan == "channel" else DirectionalScan(channels, d_state, ("raster",), hfss_decode,
                                                                    scan_backend)) if use_lfss else None
        self.hfss = DirectionalScan(channels, d_state, band_scans(hfss_scan), hfss_decode, scan_backend) \
            if use_hfss else nn.Identity()
        self.dse_norm = nn.LayerNorm(channels)
        self.dse = DynamicSpatialEnhancement(channels) if enhancement == "dse" else PointwiseMLP(channels)
        self.unused_conv = nn.Conv2d(3 * channels, channels, 1) if unused_conv else None

    def wavelet_branch(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C): the DWT, the two scans and the inverse DWT of LN(x)."""
        bands = haar_dwt(self.norm(x), channels_last=True)  # (4, B, H/2, W/2, C): LL, HL, LH, HH
        high = self.hfss(bands[1:].flatten(0, 1)).unflatten(0, (3, -1))
        low = bands[0]  # (B, H/2, W/2, C)
        if self.lfss_scan == "channel":
            low = self.lfss(low.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        elif self.lfss_scan == "spatial":
            low = self.lfss(low)
        return haar_idwt(torch.cat([low[None], high]), channels_last=True)

    def forward(self, x: Tensor) -> Tensor:
        y1 = x + drop_path(self.wavelet_branch(x), self.drop_path, self.training)
        return y1 + self.dse(self.dse_norm(y1))
