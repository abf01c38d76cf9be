"""Pieces shared by the vision Mamba decoders (MambaAD's and Wave-MambaAD's ``MambaUPNet``): the patch expansion
between stages, the four-stage forward from the bottleneck embedding to the student scales, and the code's weight
initialisation."""

from __future__ import annotations

from torch import Tensor, nn


class PatchExpand(nn.Module):
    """(B, H, W, 2C) -> (B, 2H, 2W, C): Linear(2C -> 4C, no bias), each position's 4C features laid out as a 2 x 2
    block of C channels, LayerNorm(C)."""

    def __init__(self, channels_in: int):
        super().__init__()
        self.out_channels = channels_in // 2
        self.expand = nn.Linear(channels_in, 2 * channels_in, bias=False)
        self.norm = nn.LayerNorm(self.out_channels)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        c = self.out_channels
        x = self.expand(x).reshape(b, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)
        return self.norm(x)


class StagedDecoder(nn.Module):
    """Base of the decoders: ``self.stages`` (an ``nn.ModuleList`` of four stages on channel-last maps, built by the
    subclass) maps the (B, 512, s, s) embedding to the student features: the outputs of stages 1-3 (0-based),
    shallowest first: ``[F1^ (B, 64, 8s, 8s), F2^ (B, 128, 4s, 4s), F3^ (B, 256, 2s, 2s)]``."""

    stages: nn.ModuleList

    def forward(self, embedding: Tensor) -> list[Tensor]:
        x, outputs = embedding.permute(0, 2, 3, 1), []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs[::-1]


def check_stage_list(key: str, value: object, example: str) -> None:
    """ValueError naming ``key`` when a per-stage option (``model.decoder.depths``, ``lfss_groups``) is not a list,
    e.g. a single number from the command line; ``example`` shows the expected form."""
    if isinstance(value, str) or not hasattr(value, "__len__"):
        raise ValueError(f"{key}={value!r}: expected a list of 4 integers, deep to shallow (e.g. {example})")


def init_like_the_code(module: nn.Module) -> None:
    """The released decoders' ``_init_weights`` for one module (use with ``model.apply``): ``nn.Linear``
    truncated-normal (std 0.02) with zero bias, LayerNorm (1, 0), convolutions N(0, sqrt(2 / fan_out)) with zero
    bias."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, (2.0 / fan_out) ** 0.5)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
