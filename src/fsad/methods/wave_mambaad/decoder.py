"""Wave-MambaAD's student decoder (the released code's ``MambaUPNet``; ``wave_mambaad.md`` section 1.4): four stages
from the (B, 512, h, w) embedding up to the teacher's scales, each a patch expansion (stages 1-3) followed by
Wavelet-Mamba modules."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fsad.layers.scan_orders import unreadable
from fsad.layers.selective_scan import BACKENDS
from fsad.layers.upsampling import PatchExpand, StagedDecoder, check_stage_list, init_like_the_code
from fsad.methods.mambaad.hss import HSSBlock
from fsad.methods.wave_mambaad.block import ENHANCEMENTS, LFSS_SCANS, WaveletMamba
from fsad.methods.wave_mambaad.hfss import DECODES, band_scans

MODULES = ("wavelet_mamba", "hss")


class WaveMambaDecoder(StagedDecoder):
    """Embedding (B, 512, s, s) -> student features ``[F1^ (B,64,8s,8s), F2^ (B,128,4s,4s), F3^ (B,256,2s,2s)]``
    with s = ``image_size / 32``.

    Stage i (dims 512, 256, 128, 64) holds ``depths[i]`` blocks of ``depths[i]`` Wavelet-Mamba modules (the
    released code's nesting: [1, 2, 2, 2] is 1 + 4 + 4 + 4 modules); stages 1-3 start with a :class:`PatchExpand`.
    LFSS channel groups ``lfss_groups[i]`` (32 channels each at the default [16, 8, 4, 2]; the supplementary's
    group study writes its lists shallow to deep, e.g. [2, 4, 8, 16] for the default). Stochastic depth: ``sum(depths)`` rates from ``drop_path_rate``
    down to 0, handed out in order, one per block. Initialisation as the released code, in its order: every
    ``nn.Linear`` truncated-normal (std 0.02) with zero bias (so the channel scans' step biases start at 0),
    LayerNorms (1, 0), convolutions N(0, sqrt(2 / fan_out)) with zero bias; HFSS's stacked scan parameters keep
    Mamba's initialisation. ``use_lfss``, ``use_hfss``, ``enhancement``, ``hfss_scan``, ``lfss_scan``: the Table 3
    ablations and the scan-type study (:class:`~fsad.methods.wave_mambaad.block.WaveletMamba`). ``module="hss"``:
    the row "WM -> HSS", MambaAD's HSS block (:class:`~fsad.methods.mambaad.hss.HSSBlock`, Hilbert scans in 8
    directions) in place of every Wavelet-Mamba module, same nesting (``image_size / 32`` a power of two; the
    Wavelet-Mamba options must then keep their defaults). Errors name the ``model.decoder.*`` key. ``depths`` lists
    the stages deep to shallow, as the supplementary's depth study (its [1, 1, 1, 2] adds modules to the 64-channel
    stage: 17.36 M parameters against the printed 17.5 M, 6.08 G multiply-adds against 6.1 G).
    """

    def __init__(self, image_size: int = 256, depths: Sequence[int] = (1, 2, 2, 2),
                 dims: Sequence[int] = (512, 256, 128, 64), lfss_groups: Sequence[int] = (16, 8, 4, 2),
                 drop_path_rate: float = 0.2, d_state: int = 16, hfss_scan: str | Sequence[str] = "directional",
                 hfss_decode: str = "code", unused_conv: bool = True, scan_backend: str = "auto",
                 use_lfss: bool = True, use_hfss: bool = True, enhancement: str = "dse", lfss_scan: str = "channel",
                 module: str = "wavelet_mamba"):
        super().__init__()
        _check_options(image_size, depths, dims, lfss_groups, drop_path_rate, d_state, scan_backend, module,
                       hfss_scan, use_lfss, use_hfss, enhancement, lfss_scan, hfss_decode, unused_conv)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).flip(0).tolist()
        size, k = image_size // 32, 0
        self.stages = nn.ModuleList()
        for i, (depth, dim, group) in enumerate(zip(depths, dims, lfss_groups)):
            if i:
                size *= 2
            modules: list[nn.Module] = [PatchExpand(dims[i - 1])] if i else []
            for _ in range(depth):
                modules += [WaveletMamba(dim, size, group, rates[k], d_state, hfss_scan, hfss_decode,
                                         unused_conv, scan_backend, use_lfss, use_hfss, enhancement, lfss_scan)
                            if module == "wavelet_mamba" else
                            HSSBlock(dim, size, rates[k], d_state, scan_backend) for _ in range(depth)]
                k += 1
            self.stages.append(nn.Sequential(*modules))
        self.apply(init_like_the_code)


WAVELET_OPTIONS = {"use_lfss": True, "use_hfss": True, "enhancement": "dse", "lfss_scan": "channel",
                   "hfss_scan": "directional", "lfss_groups": (16, 8, 4, 2), "hfss_decode": "code", "unused_conv": True}


def _plain(value: object) -> object:
    """A config value comparable with a default: lists (also OmegaConf's) as tuples, anything else as it is."""
    return value if isinstance(value, str) or not hasattr(value, "__iter__") else tuple(value)


def _without_effect(given: dict[str, object]) -> tuple[str, list[str]]:
    """The options that the other options make irrelevant but that differ from their defaults (a sweep over them
    would run the same network several times), with the reason; ("", []) when there are none."""
    changed = {k for k, default in WAVELET_OPTIONS.items() if _plain(given[k]) != default}
    spatial_lfss = given["use_lfss"] and given["lfss_scan"] == "spatial"  # it reads with HFSS's decode
    rules = [(given["module"] == "hss", "module=hss (WM -> HSS) replaces the Wavelet-Mamba module", set(WAVELET_OPTIONS)),
             (not given["use_hfss"], "use_hfss=false removes HFSS",
              {"hfss_scan"} | (set() if spatial_lfss else {"hfss_decode"})),
             (not given["use_lfss"], "use_lfss=false removes LFSS", {"lfss_groups", "lfss_scan"}),
             (spatial_lfss, "lfss_scan=spatial scans positions, not channel groups", {"lfss_groups"})]
    for applies, reason, keys in rules:
        if applies and changed & keys:
            return reason, sorted(changed & keys)
    return "", []


def _check_options(image_size: int, depths: Sequence[int], dims: Sequence[int], lfss_groups: Sequence[int],
                   drop_path_rate: float, d_state: int, scan_backend: str, module: str, hfss_scan: object,
                   use_lfss: bool, use_hfss: bool, enhancement: str, lfss_scan: str, hfss_decode: str = "code",
                   unused_conv: bool = True) -> None:
    """Every option of :class:`WaveMambaDecoder` checked before anything is built; errors name the key."""
    key = "model.decoder."
    check_stage_list(f"{key}depths", depths, "[1,2,2,2]")
    check_stage_list(f"{key}lfss_groups", lfss_groups, "[16,8,4,2]")
    for name, value in (("use_lfss", use_lfss), ("use_hfss", use_hfss), ("unused_conv", unused_conv)):
        if not isinstance(value, bool):
            raise ValueError(f"{key}{name}={value!r}: expected true or false")
    if not isinstance(image_size, int) or image_size <= 0 or image_size % 64:
        raise ValueError(f"{key}image_size={image_size} (data.crop_size): expected a positive multiple of 64 (the "
                         "deepest wavelet band is image_size / 64 pixels)")
    if not (len(depths) == len(dims) == len(lfss_groups) == 4) or any(
            not isinstance(d, int) or d < 1 for d in depths):
        raise ValueError(f"{key}depths={list(depths)}, {key}lfss_groups={list(lfss_groups)}: expected 4 stages "
                         "(deep to shallow), depths positive integers")
    for i, (groups, dim) in enumerate(zip(lfss_groups, dims)):
        if not isinstance(groups, int) or groups < 1 or dim % groups:
            raise ValueError(f"{key}lfss_groups[{i}]={groups}: expected a positive integer dividing the {dim} "
                             f"channels of stage {i} (deep to shallow)")
    if not 0 <= drop_path_rate < 1 or not isinstance(d_state, int) or d_state < 1:
        raise ValueError(f"{key}drop_path_rate={drop_path_rate}, {key}d_state={d_state}: expected a rate in "
                         "[0, 1) and a positive state size")
    if scan_backend not in BACKENDS:
        raise ValueError(f"{key}scan_backend={scan_backend!r}: expected one of {', '.join(BACKENDS)}")
    for name, value, allowed in (("module", module, MODULES), ("enhancement", enhancement, ENHANCEMENTS),
                                 ("lfss_scan", lfss_scan, LFSS_SCANS), ("hfss_decode", hfss_decode, DECODES)):
        if value not in allowed:
            raise ValueError(f"{key}{name}={value!r}: expected one of {', '.join(allowed)}")
    given = {"use_lfss": use_lfss, "use_hfss": use_hfss, "enhancement": enhancement, "lfss_scan": lfss_scan,
             "hfss_scan": hfss_scan, "lfss_groups": lfss_groups, "hfss_decode": hfss_decode,
             "unused_conv": unused_conv}
    reason, idle = _without_effect({**given, "module": module})
    if idle:
        raise ValueError(f"{key}{reason.split(' ')[0]}: {reason}, so {', '.join(key + k for k in idle)} would have "
                         "no effect: leave them at their defaults")
    # the smallest map a scan reads: the deepest stage's bands, or its whole map for the HSS block's Hilbert scans
    divisor, scans = (32, ["hilbert"]) if module == "hss" else (64, band_scans(hfss_scan) if use_hfss else [])
    bad = unreadable(scans, image_size // divisor)
    if bad:
        raise ValueError(f"{key}image_size={image_size} (data.crop_size): the {'/'.join(bad)} scan needs "
                         f"image_size / {divisor} = {image_size // divisor} to be a power of two (64 x 2^k)")
