"""Reverse distillation (RD4AD, Deng and Li, CVPR 2022): a frozen ResNet-34 teacher, the Half-FPN bottleneck with
the one-class embedding, and a student decoder that reconstructs the teacher's three scales; the frame MambaAD and
Wave-MambaAD share (``wave_mambaad.md`` sections 1, 3, 4). The decoder is one module, chosen by config
(``model.decoder._target_``): RD4AD's convolutional decoder here, the Mamba decoders of the other methods."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from fsad.layers.half_fpn import HalfFPNBottleneck
from fsad.layers.resnet import TeacherEncoder
from fsad.methods.image_base import ImageAnomalyDetector

LOSSES = ("cosine", "mse")


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


class ReverseDistillation(ImageAnomalyDetector):
    """Teacher features ``[F1, F2, F3]`` -> bottleneck -> decoder -> student ``[F1^, F2^, F3^]``.

    Loss (``loss``): ``cosine`` = RD4AD's sum over scales of the mean over images of ``1 - cos`` between the
    flattened teacher and student maps (Eq. 2); ``mse`` = ADer's ``sum_i mse_weight * mean((F_i - F_i^)^2)``
    (lam 5.0, the MambaAD / Wave-MambaAD setting). Anomaly map: sum over scales of the per-pixel ``1 - cos`` over
    channels, bilinearly upsampled (align corners) to the input size (Eq. 3); the base class smooths it.

    Args:
        encoder: keyword arguments of :class:`fsad.layers.resnet.TeacherEncoder` (``weights``: a file, ``download``
            or null for a random teacher).
        decoder: config of the student decoder (``_target_`` + arguments); it maps the (B, 512, h, w) embedding
            to the three student scales.
        oce_blocks: bottleneck blocks of the one-class embedding.
        bottleneck_norm: ``batch`` or ``instance`` norms in the bottleneck (:class:`HalfFPNBottleneck`).
        loss: ``cosine`` or ``mse``. mse_weight: the factor of each scale's MSE.
        **kwargs: optimiser and map settings of :class:`~fsad.methods.image_base.ImageAnomalyDetector`.
    """

    def __init__(self, encoder: dict | None = None, decoder: dict | None = None, oce_blocks: int = 3,
                 bottleneck_norm: str = "batch", loss: str = "cosine", mse_weight: float = 5.0, **kwargs: Any):
        super().__init__(**kwargs)
        encoder, decoder = _plain(encoder) or {}, _plain(decoder)
        if loss not in LOSSES:
            raise ValueError(f"model.loss={loss!r}: expected one of {', '.join(LOSSES)}")
        if not decoder or "_target_" not in decoder:
            raise ValueError("model.decoder: expected a config with _target_ (e.g. "
                             "fsad.methods.reverse_distillation.decoder.ConvStudentDecoder)")
        self.save_hyperparameters({"encoder": encoder, "decoder": decoder, "oce_blocks": oce_blocks,
                                   "bottleneck_norm": bottleneck_norm, "loss": loss,
                                   "mse_weight": mse_weight, **kwargs})
        self.loss_name, self.mse_weight = loss, mse_weight
        self.encoder = TeacherEncoder(**encoder)
        self.bottleneck = HalfFPNBottleneck(oce_blocks=oce_blocks, norm=bottleneck_norm)
        self.decoder = instantiate(decoder)

    def features(self, images: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """images (B, 3, H, W) -> (teacher, student) lists of (B, 64, H/4, W/4), (B, 128, H/8, W/8),
        (B, 256, H/16, W/16); the teacher's are detached."""
        teacher = self.encoder(images)
        student = self.decoder(self.bottleneck(teacher))
        for t, s in zip(teacher, student):
            if t.shape != s.shape:
                raise RuntimeError(f"decoder output {tuple(s.shape)} does not match the teacher's {tuple(t.shape)}")
        return teacher, student

    def training_loss(self, images: Tensor) -> dict[str, Tensor]:
        teacher, student = self.features(images)
        if self.loss_name == "cosine":
            terms = [(1 - F.cosine_similarity(t.flatten(1), s.flatten(1), dim=1)).mean()
                     for t, s in zip(teacher, student)]
        else:
            terms = [self.mse_weight * F.mse_loss(s, t) for t, s in zip(teacher, student)]
        return {"loss": torch.stack(terms).sum(), **{f"scale{i + 1}": term.detach() for i, term in enumerate(terms)}}

    def anomaly_maps(self, images: Tensor) -> Tensor:
        teacher, student = self.features(images)
        size = images.shape[-2:]
        maps = [F.interpolate((1 - F.cosine_similarity(t, s, dim=1))[:, None], size=size, mode="bilinear",
                              align_corners=True) for t, s in zip(teacher, student)]
        return torch.cat(maps, dim=1).sum(dim=1)

    def describe(self) -> dict[str, Any]:
        return self.encoder.describe()
