"""The bottleneck between the frozen teacher and the student decoder of the reverse-distillation family.

Half-FPN fusion of the teacher's three scales followed by the one-class embedding (OCE): MambaAD's ``MFF_OCE``
(Wave-MambaAD paper Sec. 3, ``wave_mambaad.md`` section 1.3), the multi-scale fusion and OCE of RD4AD (Deng and Li,
CVPR 2022, Sec. 3.2) with SiLU.
"""

from __future__ import annotations

from torch import Tensor, nn


NORMS = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}


def _conv_norm_silu(c_in: int, c_out: int, kernel: int, norm: type[nn.Module], stride: int = 1,
                    bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias),
                         norm(c_out), nn.SiLU())


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 with ``stride``, 1x1 to ``4 * planes``) with ``norm`` layers and ReLU; a 1x1
    strided projection + norm on the shortcut when the shape changes. (B, c_in, H, W) ->
    (B, 4 * planes, H / stride, W / stride)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, norm: type[nn.Module] = nn.BatchNorm2d):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = norm(c_out)
        self.act = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), norm(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(out + shortcut)


class HalfFPNBottleneck(nn.Module):
    """Fuse the teacher features ``[F1 (B,64,4h,4w), F2 (B,128,2h,2w), F3 (B,256,h,w)]`` and embed them into
    ``E (B, 512, h/2, w/2)`` (8 x 8 for 256 x 256 images).

    ``a = SiLU(N(conv3x3 s2 (F1)))``; ``b = SiLU(N(conv1x1 (F2))) + a``; ``c = SiLU(N(conv3x3 s2 (b))) +
    SiLU(N(conv1x1 (F3)))``; ``c = SiLU(N(conv1x1 (c)))``; then ``oce_blocks`` bottlenecks (planes 128, the
    first with stride 2). Convolutions Kaiming-normal (fan_out, ReLU); the strided 3x3 ones without bias.

    ``norm``: ``batch`` (BatchNorm, RD4AD's and MambaAD's default: 1,458,304 parameters, the 1.458 M of ADer's
    MambaAD logs) or ``instance`` (InstanceNorm without affine parameters, the Wave-MambaAD reading of
    ``wave_mambaad.md`` section 1.3: 1,450,624 parameters).
    """

    def __init__(self, channels: tuple[int, int, int] = (64, 128, 256), oce_blocks: int = 3, norm: str = "batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"bottleneck norm {norm!r}: expected one of {', '.join(NORMS)}")
        layer = NORMS[norm]
        c1, c2, c3 = channels
        self.down1 = _conv_norm_silu(c1, c2, 3, layer, stride=2, bias=False)
        self.lateral2 = _conv_norm_silu(c2, c2, 1, layer)
        self.down2 = _conv_norm_silu(c2, c3, 3, layer, stride=2, bias=False)
        self.lateral3 = _conv_norm_silu(c3, c3, 1, layer)
        self.fuse = _conv_norm_silu(c3, c3, 1, layer)
        planes = 128
        blocks = [Bottleneck(c3, planes, stride=2, norm=layer)]
        blocks += [Bottleneck(planes * Bottleneck.expansion, planes, norm=layer) for _ in range(oce_blocks - 1)]
        self.oce = nn.Sequential(*blocks)
        self.out_channels = planes * Bottleneck.expansion
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, features: list[Tensor]) -> Tensor:
        f1, f2, f3 = features
        b = self.lateral2(f2) + self.down1(f1)
        c = self.down2(b) + self.lateral3(f3)
        return self.oce(self.fuse(c))

