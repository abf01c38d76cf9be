"""LSS: MambaAD's Locality-Enhanced State Space module (paper Sec. 3, "Locality-Enhanced State Space module"; the
released code's ``LSSModule``, ADer's ``ConvBNSSMBlock``): a chain of HSS blocks for the global context in parallel
with two depthwise-convolution branches for the local one, fused by a 1x1 convolution, with a residual."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fsad.methods.mambaad.hss import HSSBlock
from fsad.layers.upsampling import init_like_the_code


def _conv_in_silu(channels: int, kernel: int) -> nn.Sequential:
    """Conv2d (C -> C; 1x1 with bias, or k x k depthwise without), InstanceNorm2d (not affine), SiLU."""
    conv = nn.Conv2d(channels, channels, 1) if kernel == 1 else \
        nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False)
    return nn.Sequential(conv, nn.InstanceNorm2d(channels), nn.SiLU())


class LocalBranch(nn.Sequential):
    """(B, C, H, W) -> (B, C, H, W): 1x1 conv-IN-SiLU, k x k depthwise conv-IN-SiLU, 1x1 conv-IN-SiLU (the code's
    ``conv1b{k}``, ``conv{k}{k}``, ``conv1a{k}``)."""

    def __init__(self, channels: int, kernel: int):
        super().__init__(_conv_in_silu(channels, 1), _conv_in_silu(channels, kernel), _conv_in_silu(channels, 1))


class LocalityEnhancedStateSpace(nn.Module):
    """(B, H, W, C) channel-last -> (B, H, W, C), H = W = ``size``.

    ``g = HSS_depth(... HSS_1(x))`` (cascaded blocks, each with its own residual); ``l5``, ``l7`` =
    :class:`LocalBranch` with 5x5 and 7x7 depthwise kernels on x; ``out = fuse(concat(g, l5, l7)) + x`` with
    ``fuse`` a 1x1 conv 3C -> C with bias. Convolutions (those of the HSS blocks too) are initialised as the code's
    module does: N(0, sqrt(2 / fan_out)), zero bias.

    Args:
        channels: C. size: H = W. depth: HSS blocks in the chain (the code: 3 or 2). drop_path: the blocks' rate
            (one per module, shared by its blocks, as the code). d_state: N.
        unused_conv: also create ADer's 3x3 depthwise conv-IN-SiLU (``conv33``) that its forward never calls: it
            only changes the parameter count (9 C; counted in ADer's 16.038 M, absent from the MambaAD repository).
        scan_backend: of the scans. **hss_options: keyword-only options of :class:`~fsad.methods.mambaad.hss.HSSBlock`
            (directions, scan, index_parameters, ...).
    """

    def __init__(self, channels: int, size: int, depth: int = 3, drop_path: float = 0.0, d_state: int = 16,
                 unused_conv: bool = True, scan_backend: str = "auto", **hss_options: object):
        super().__init__()
        if depth < 1:
            raise ValueError(f"LSS depth {depth}: expected at least one HSS block")
        self.hss = nn.Sequential(*[HSSBlock(channels, size, drop_path, d_state, scan_backend, **hss_options)
                                   for _ in range(depth)])
        self.local5 = LocalBranch(channels, 5)
        self.local7 = LocalBranch(channels, 7)
        self.unused_conv = _conv_in_silu(channels, 3) if unused_conv else None
        self.fuse = nn.Conv2d(3 * channels, channels, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init_like_the_code(module)

    def forward(self, x: Tensor) -> Tensor:
        spatial = x.permute(0, 3, 1, 2)
        branches = [self.hss(x).permute(0, 3, 1, 2), self.local5(spatial), self.local7(spatial)]
        return self.fuse(torch.cat(branches, dim=1)).permute(0, 2, 3, 1) + x
