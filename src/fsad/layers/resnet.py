"""ResNet-34 up to ``layer3``: the feature pyramid of the image teachers (RD4AD, MambaAD, Wave-MambaAD).

The network is ResNet-34 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016): a 7x7 stride-2
stem, a 3x3 stride-2 max-pool, and stages of BasicBlocks (two 3x3 convolutions with a residual connection),
[3, 4, 6, 3] blocks of widths 64, 128, 256, 512. Only the stem and the first three stages are built: the image
methods read the outputs of ``layer1..layer3`` (timm's ``features_only=True, out_indices=[1, 2, 3]``), so
``layer4`` and the classifier would be dead weight.

Parameter and buffer names and shapes are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0`` / ``.1``), which are also timm's, so the ImageNet files of both load without renaming
(see :mod:`fsad.layers.encoder_weights`). torchvision itself cannot be imported with the pinned CPU torch.

:class:`TeacherEncoder` is the frozen teacher the methods use: this network with ImageNet weights from a file,
always in eval mode, without gradients, and with a record of which file it was (for ``metrics.json``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import Tensor, nn

from fsad.layers.encoder_weights import load_resnet34_state, resolve_weights

log = logging.getLogger(__name__)

STAGE_BLOCKS: tuple[int, int, int] = (3, 4, 6)
"""BasicBlocks in ``layer1..layer3`` of ResNet-34 (``layer4`` has 3 more, not built here)."""

STAGE_WIDTHS: tuple[int, int, int] = (64, 128, 256)
"""Output channels of ``layer1..layer3``."""

STAGE_STRIDES: tuple[int, int, int] = (4, 8, 16)
"""Total down-sampling of the input at the outputs of ``layer1..layer3``."""


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or 1x1 conv + BN projection) shortcut, ReLU after the sum.

    (B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride)). The stride sits on the first
    convolution and on the projection (ResNet "v1.5", as torchvision and timm build it). A projection
    ``downsample = Sequential(conv 1x1, BatchNorm)`` exists when the stride or the width changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    first = BasicBlock(in_channels, out_channels, stride)
    return nn.Sequential(first, *(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)))


class ResNet34Features(nn.Module):
    """ResNet-34 stem + ``layer1..layer3`` returning the three stage outputs.

    ``forward(x)``: ``x`` (B, 3, H, W), an ImageNet-normalised RGB batch (mean 0.485/0.456/0.406, std
    0.229/0.224/0.225, the statistics of torchvision's and timm's ResNet-34 weights) ->
    ``[f1 (B, 64, H/4, W/4), f2 (B, 128, H/8, W/8), f3 (B, 256, H/16, W/16)]`` (sizes rounded up), i.e. timm's
    ``features_only=True, out_indices=[1, 2, 3]``. At 256 x 256: 64 @ 64 x 64, 128 @ 32 x 32, 256 @ 16 x 16.

    The state dict has torchvision's 174 entries up to ``layer3`` (8,170,304 weights and biases; BatchNorm
    running statistics and ``num_batches_tracked``). Random initialisation as torchvision's: convolutions
    Kaiming-normal (fan_out, ReLU gain), BatchNorm weight 1 and bias 0. The module trains like any other; the
    frozen teacher is :class:`TeacherEncoder`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(64, STAGE_WIDTHS[0], STAGE_BLOCKS[0], stride=1)
        self.layer2 = _stage(STAGE_WIDTHS[0], STAGE_WIDTHS[1], STAGE_BLOCKS[1], stride=2)
        self.layer3 = _stage(STAGE_WIDTHS[1], STAGE_WIDTHS[2], STAGE_BLOCKS[2], stride=2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the random initialisation (convolutions Kaiming-normal fan_out; BatchNorm 1 / 0, stats reset)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an RGB batch (B, 3, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f1 = self.layer1(x)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f1, f2, f3]


#: ``TeacherEncoder(weights=FROM_CHECKPOINT)``: no file is read; a checkpoint loaded afterwards brings the weights
FROM_CHECKPOINT = "checkpoint"


class TeacherEncoder(nn.Module):
    """Frozen ResNet-34 teacher: :class:`ResNet34Features` with ImageNet weights, eval mode, no gradients.

    Args:
        weights: ``"checkpoint"``: the weights and their record come from a checkpoint loaded afterwards (what
            re-scoring and resuming use: no file is read). ``None`` (or ``""``): random initialisation, logged as a
            WARNING (anomaly maps from a random
            teacher say nothing about a method: use it only for tests and smoke runs). A path: a weight file
            read by :func:`fsad.layers.encoder_weights.load_resnet34_state` (torchvision/timm ``.pth``, a
            training or ADer checkpoint, ``.safetensors``). ``"download"``: torchvision's pinned
            ``resnet34-b627a593.pth``; ``"download:timm"``: timm's ``resnet34-43635321.pth``, the file of the
            MambaAD/ADer benchmark logs (also ``"download:torchvision"``); see
            :func:`fsad.layers.encoder_weights.resolve_weights`.
        cache_dir: folder for downloaded files; default ``torch.hub.get_dir()/checkpoints``
            (``$TORCH_HOME/hub/checkpoints``). A file already there is used without network.

    ``forward(x)``: ``x`` (B, 3, H, W) ImageNet-normalised RGB -> ``[(B, 64, H/4, W/4), (B, 128, H/8, W/8),
    (B, 256, H/16, W/16)]``, computed under ``torch.no_grad()`` and detached, in the channels-last memory layout
    (the weights too: oneDNN's faster convolutions on CPU; values as in the default layout to float rounding).

    Frozen: every parameter has ``requires_grad=False``, and :meth:`train` keeps the module in eval mode (BatchNorm
    uses the file's running statistics) whatever a parent module asks. The weights are ordinary parameters and
    buffers, so a Lightning checkpoint holds them and re-scores identically without the weight file; the record
    (``pretrained``, ``weights_file``, ``weights_sha256``) travels in the checkpoint too (``get_extra_state``).
    To re-score a checkpoint on a machine without the file, build the module with ``weights=None``: loading the
    checkpoint then restores both the weights and the record.

    Attributes:
        pretrained: whether weights were loaded from a file.
        weights_file: absolute path of that file, or ``""``.
        weights_sha256: hex SHA-256 of that file, or ``""``.

    Raises:
        FileNotFoundError, ValueError, ImportError: see ``load_resnet34_state``.
        fsad.data.download.DownloadError: ``"download"`` without network and without the file in ``cache_dir``.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, cache_dir: str | None = None) -> None:
        super().__init__()
        self.backbone = ResNet34Features()
        self.pretrained = False
        self.weights_file = ""
        self.weights_sha256 = ""
        from_checkpoint = str(weights) == FROM_CHECKPOINT
        path, pinned_sha256 = (None, None) if from_checkpoint else resolve_weights(weights, cache_dir)
        if from_checkpoint:
            log.info("ResNet-34 teacher: weights and their record come from the checkpoint being loaded")
        elif path is None:
            log.warning("the ResNet-34 teacher is randomly initialised (no encoder weights given): its anomaly "
                        "maps and the numbers computed from them are meaningless for benchmarks; set "
                        "model.encoder.weights=download or =/path/to/resnet34.pth")
        else:
            state, info = load_resnet34_state(path, expected_sha256=pinned_sha256)
            self.backbone.load_state_dict(state, strict=True)
            self.pretrained, self.weights_file, self.weights_sha256 = True, info.path, info.sha256
            log.info("ResNet-34 teacher weights loaded from %s (sha256 %s)", info.path, info.sha256)
        self.backbone.requires_grad_(False)
        self.backbone.to(memory_format=torch.channels_last)  # oneDNN's faster layout on CPU; kept by .to(device)
        self.train(False)

    def train(self, mode: bool = True) -> TeacherEncoder:
        """Stay in eval mode whatever ``mode`` is (``parent.train()`` must not update the BatchNorm statistics)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        return [feature.detach() for feature in self.backbone(x.contiguous(memory_format=torch.channels_last))]

    def describe(self) -> dict[str, Any]:
        """``{"encoder/pretrained": bool, "encoder/weights": path or "", "encoder/sha256": hex or ""}``."""
        return {"encoder/pretrained": self.pretrained, "encoder/weights": self.weights_file,
                "encoder/sha256": self.weights_sha256}

    def get_extra_state(self) -> dict[str, Any]:
        """The weight-file record, stored in the state dict as ``<prefix>_extra_state``."""
        return {"pretrained": self.pretrained, "weights_file": self.weights_file,
                "weights_sha256": self.weights_sha256}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the record of the weights a state dict (a checkpoint) carries, replacing the constructor's."""
        if self.pretrained and state.get("weights_sha256") != self.weights_sha256:
            log.warning("teacher weights from %s (sha256 %s) are replaced by those of the loaded state dict "
                        "(from %s, sha256 %s)", self.weights_file, self.weights_sha256,
                        state.get("weights_file") or "a random initialisation", state.get("weights_sha256") or "-")
        self.pretrained = bool(state.get("pretrained", False))
        self.weights_file = str(state.get("weights_file", ""))
        self.weights_sha256 = str(state.get("weights_sha256", ""))
