"""Image and mask transforms of the evaluation protocol (ADer / anomalib defaults).

Image: resize to ``image_size`` x ``image_size`` (bilinear, on the uint8 image with Pillow, as torchvision's
``Resize`` on a PIL image does in ADer's pipeline; the aspect ratio is not kept), centre crop ``crop_size``, scale
to [0, 1], normalise with the ImageNet mean and std.

Mask: the same geometry, bilinear on the float {0, 1} mask, then binarised at ``>= 0.5`` (IMG-04: thresholding a
bilinearly resized mask at ``> 0`` grows every defect by about a pixel: 26 pixels at 16x16 -> 250 at 40x40
instead of 166; ideal 162.5). Masks are produced at ``eval_size``, the resolution the pixel metrics are computed
at. ``eval_size == crop_size`` (the default, 256) is ADer's and anomalib's protocol. Another ``eval_size`` scales
the whole geometry in one resampling: the mask is resized to ``round(image_size * eval_size / crop_size)`` and
centre-cropped to ``eval_size``, so it covers exactly the crop the model sees. Native mask resolution
(adeval's ``--evaluate_size``-style evaluation at the original size) is not offered: a fixed size batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MASK_THRESHOLD = 0.5


def centre_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred ``crop`` x ``crop`` window (torchvision's rounding)."""
    left = int(round((width - crop) / 2.0))
    top = int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def resize_image(rgb: np.ndarray, size: int, crop: int) -> np.ndarray:
    """uint8 ``(H, W, 3)`` -> uint8 ``(crop, crop, 3)``: bilinear resize to ``size`` x ``size``, centre crop."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    if crop != size:
        image = image.crop(centre_box(size, size, crop))
    return np.asarray(image)


def resize_mask(mask: np.ndarray, size: int, crop: int) -> np.ndarray:
    """bool ``(H, W)`` -> bool ``(crop, crop)``: bilinear resize of the float mask to ``size``, then ``>= 0.5``,
    then centre crop."""
    values = Image.fromarray(np.ascontiguousarray(mask, dtype=np.float32), mode="F")
    if values.size != (size, size):
        values = values.resize((size, size), Image.Resampling.BILINEAR)
    if crop != size:
        values = values.crop(centre_box(size, size, crop))
    return np.asarray(values) >= MASK_THRESHOLD


@dataclass(frozen=True)
class ImageTransform:
    """The protocol's geometry and normalisation.

    Attributes:
        image_size: side the image is resized to (pixels).
        crop_size: side of the centre crop fed to the model, S (<= image_size).
        eval_size: side of the masks the pixel metrics are computed on, E.
        mean, std: per-channel normalisation of the [0, 1] image.
    """

    image_size: int = 256
    crop_size: int = 256
    eval_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        for name in ("image_size", "crop_size", "eval_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"data.{name} must be a positive integer (pixels), got {value!r}")
        if self.crop_size > self.image_size:
            raise ValueError(f"data.crop_size ({self.crop_size}) must not exceed data.image_size "
                             f"({self.image_size}): the crop is taken inside the resized image")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values each (std > 0), got {self.mean}, {self.std}")

    @property
    def mask_resize(self) -> int:
        """Side a mask is resized to before its ``eval_size`` crop (``image_size`` scaled by ``eval/crop``)."""
        return max(self.eval_size, round(self.image_size * self.eval_size / self.crop_size))

    def image(self, rgb: np.ndarray) -> torch.Tensor:
        """uint8 ``(H, W, 3)`` -> float32 ``(3, S, S)``, normalised."""
        pixels = resize_image(rgb, self.image_size, self.crop_size)
        tensor = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1).div_(255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return tensor.sub_(mean).div_(std)

    def mask(self, mask: np.ndarray | None) -> torch.Tensor:
        """bool ``(H, W)`` (or ``None`` for a normal image) -> bool ``(E, E)``."""
        if mask is None or not mask.any():
            return torch.zeros(self.eval_size, self.eval_size, dtype=torch.bool)
        return torch.from_numpy(resize_mask(mask, self.mask_resize, self.eval_size).copy())
