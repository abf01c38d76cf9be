"""RD4AD's convolutional student decoder (Deng and Li, CVPR 2022, Sec. 3.3: the teacher's stages mirrored, each
upsampling by 2 with a strided transposed convolution)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class UpBlock(nn.Module):
    """Residual block that doubles the resolution: (B, c_in, H, W) -> (B, c_out, 2H, 2W).

    Main path: 2x2 stride-2 transposed conv, BN, ReLU, 3x3 conv, BN; shortcut: 2x2 stride-2 transposed conv + BN.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2, bias=False), nn.BatchNorm2d(c_out),
                                nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                                nn.BatchNorm2d(c_out))
        self.shortcut = nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2, bias=False),
                                      nn.BatchNorm2d(c_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.up(x) + self.shortcut(x))


class BasicBlock(nn.Module):
    """ResNet basic block at constant shape: two 3x3 convs with BN, ReLU, identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + x)


class ConvStudentDecoder(nn.Module):
    """Embedding ``E (B, 512, h, w)`` -> student features ``[F1^ (B,64,8h,8w), F2^ (B,128,4h,4w),
    F3^ (B,256,2h,2w)]`` (the teacher's order, shallow first).

    Three stages from deep to shallow (to 256, 128, 64 channels), stage ``i`` = one :class:`UpBlock` and
    ``depths[i] - 1`` :class:`BasicBlock` s. ``depths=(3, 4, 6)`` is RD4AD's ``de_resnet34``. ``image_size`` (the
    config passes ``data.crop_size``) is checked when given: a positive multiple of 32, since the teacher halves the
    image four times to layer3 and the bottleneck once more, and the stages double it back (ValueError otherwise,
    before anything is trained).
    """

    def __init__(self, in_channels: int = 512, channels: Sequence[int] = (256, 128, 64),
                 depths: Sequence[int] = (3, 4, 6), image_size: int | None = None):
        super().__init__()
        if image_size is not None and (not isinstance(image_size, int) or image_size <= 0 or image_size % 32):
            raise ValueError(f"model.decoder.image_size={image_size} (data.crop_size): expected a positive multiple "
                             "of 32 (the embedding is image_size / 32 pixels and the decoder doubles it back)")
        if len(channels) != 3 or len(depths) != 3 or min(depths) < 1:
            raise ValueError(f"decoder: expected 3 stages with depth >= 1, got channels {list(channels)}, "
                             f"depths {list(depths)}")
        stages, c_in = [], in_channels
        for c_out, depth in zip(channels, depths):
            stages.append(nn.Sequential(UpBlock(c_in, c_out), *[BasicBlock(c_out) for _ in range(depth - 1)]))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, embedding: Tensor) -> list[Tensor]:
        outputs, x = [], embedding
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs[::-1]
