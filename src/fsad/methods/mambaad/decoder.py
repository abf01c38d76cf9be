"""MambaAD's student decoder (paper Sec. 3 and Fig. 2; the released code's ``MambaUPNet`` with its ``layers_up``):
four stages from the (B, 512, s, s) embedding up to the teacher's scales, each a patch expansion (stages 2-4)
followed by Locality-Enhanced State Space modules."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fsad.layers.scan_orders import SCANS, unreadable
from fsad.layers.selective_scan import BACKENDS
from fsad.layers.upsampling import PatchExpand, StagedDecoder, check_stage_list, init_like_the_code
from fsad.methods.mambaad.hss import DIRECTIONS
from fsad.methods.mambaad.lss import LocalityEnhancedStateSpace


def blocks_per_module(depth: int) -> int:
    """HSS blocks per LSS module in a stage of ``depth`` blocks: 3 when 3 divides it, else 2 (the code's
    ``LSSLayer_up``); the stage then has depth / 3 (or depth / 2) modules. Other depths: ValueError."""
    if depth >= 3 and depth % 3 == 0:
        return 3
    if depth >= 2 and depth % 2 == 0:
        return 2
    raise ValueError(f"model.decoder.depths: a stage depth of {depth}: expected a multiple of 3 or of 2 (the code groups a stage's HSS "
                     "blocks into LSS modules of 3, else of 2)")


class MambaADDecoder(StagedDecoder):
    """Embedding (B, 512, s, s) -> student features ``[F1^ (B,64,8s,8s), F2^ (B,128,4s,4s), F3^ (B,256,2s,2s)]``
    with s = ``image_size / 32``.

    Stage i = 0..3 (dims 512, 256, 128, 64; maps s, 2s, 4s, 8s) holds ``depths[i]`` HSS blocks grouped into LSS modules
    (:func:`blocks_per_module`: [3, 4, 6, 3] gives 1 x 3, 2 x 2, 2 x 3 and 1 x 3 blocks); stages 1-3 start with a
    :class:`~fsad.layers.upsampling.PatchExpand`; the first stage's output is not a student feature.
    Stochastic depth as the code: ``sum(depths)`` rates from ``drop_path_rate`` down to 0, stage i's slice starting
    at ``sum(depths[:i])``, its j-th LSS module taking the slice's j-th rate for all its blocks. Initialisation as
    the code, in its order: the convolutions when each LSS module is built, then every ``nn.Linear``
    truncated-normal (std 0.02, zero bias) and every LayerNorm (1, 0); the stacked scan parameters keep Mamba's.

    Args:
        image_size: input side; s = image_size / 32 must be at least 2 (instance norms) and, for the Hilbert and
            Z-order scans, a power of two. depths, dims: per stage, deep to shallow (dims halve). drop_path_rate: the
            largest rate. d_state: N. directions: scan directions per block (MambaAD: 8). scan: the curve (a name of
            :data:`fsad.layers.scan_orders.SCANS`; MambaAD: hilbert). unused_conv, index_parameters: only change the
            parameter count (ADer's unused 3x3 conv per LSS module, the code's Hilbert tables as frozen parameters);
            both on, [3, 4, 6, 3] has 16,038,016 parameters, ADer's ``net_s.layers_up 16.038M``. scan_backend: of
            :func:`~fsad.layers.selective_scan.selective_scan`.
    """

    def __init__(self, image_size: int = 256, depths: Sequence[int] = (3, 4, 6, 3),
                 dims: Sequence[int] = (512, 256, 128, 64), drop_path_rate: float = 0.2, d_state: int = 16,
                 directions: int = 8, scan: str = "hilbert", unused_conv: bool = True, index_parameters: bool = True,
                 scan_backend: str = "auto"):
        super().__init__()
        check_stage_list("model.decoder.depths", depths, "[3,4,6,3]")
        side = image_size // 32
        if image_size % 32 or side < 2:
            raise ValueError(f"model.decoder.image_size={image_size} (data.crop_size): expected a multiple of 32, at least 64 (the embedding is "
                             "image_size / 32 pixels and the LSS modules' instance norms need more than one)")
        if scan not in SCANS or directions not in DIRECTIONS:
            raise ValueError(f"model.decoder.scan={scan!r}, model.decoder.directions={directions}: expected one of {', '.join(SCANS)} and one of "
                             f"{', '.join(map(str, DIRECTIONS))}")
        if unreadable([scan], side):
            raise ValueError(f"model.decoder.image_size={image_size} (data.crop_size): the {scan} scan needs image_size / 32 = {side} to be a power "
                             "of two (64, 128, 256, 512, ...)")
        if not len(depths) == len(dims) == 4 or any(2 * dims[i + 1] != dims[i] for i in range(3)):
            raise ValueError(f"model.decoder.depths={list(depths)}, dims {list(dims)}: expected 4 stages, each dim half the previous")
        if scan_backend not in BACKENDS:
            raise ValueError(f"model.decoder.scan_backend={scan_backend!r}: expected one of {', '.join(BACKENDS)}")
        per_module = [blocks_per_module(depth) for depth in depths]
        rates = torch.linspace(0, drop_path_rate, sum(depths)).flip(0).tolist()
        size, start = side, 0
        self.stages = nn.ModuleList()
        for i, (depth, dim, per) in enumerate(zip(depths, dims, per_module)):
            if i:
                size *= 2
            modules: list[nn.Module] = [PatchExpand(dims[i - 1])] if i else []
            modules += [LocalityEnhancedStateSpace(dim, size, per, rates[start + j], d_state, unused_conv, scan_backend,
                                                   directions=directions, scan=scan,
                                                   index_parameters=index_parameters)
                        for j in range(depth // per)]
            start += depth
            self.stages.append(nn.Sequential(*modules))
        for module in self.modules():
            if not isinstance(module, nn.Conv2d):  # the convolutions were set by their LSS module
                init_like_the_code(module)
