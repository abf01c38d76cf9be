"""Map-style datasets over :class:`~fsad.data.images.samples.ImageSample` lists (training and scoring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import Dataset

from fsad.data.images.reading import read_pair, read_rgb
from fsad.data.images.samples import ImageSample
from fsad.data.images.transforms import ImageTransform


class TrainImages(Dataset):
    """Normal training images: items ``{"image": float32 (3, S, S), "class_id": int64 ()}``.

    ``class_ids`` maps class names to their index in the datamodule's ``class_names``.
    """

    def __init__(self, samples: Sequence[ImageSample], class_ids: Mapping[str, int], transform: ImageTransform):
        self.samples, self.class_ids, self.transform = list(samples), dict(class_ids), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        return {"image": self.transform.image(read_rgb(sample.image)),
                "class_id": torch.tensor(self.class_ids[sample.class_name], dtype=torch.int64)}


class TestImages(TrainImages):
    """Test images with masks: items ``{"image": float32 (3, S, S), "mask": bool (E, E), "label": int64 (),
    "index": int64 () (position in the sample list), "class_id": int64 ()}``.

    Normal images get an all-False mask; an anomalous image's mask is read upright and aligned with the image
    (:func:`~fsad.data.images.reading.read_pair`), then resized and binarised by the transform.
    """

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        if sample.mask is None:
            image, mask = read_rgb(sample.image), None
        else:
            image, mask = read_pair(sample.image, sample.mask)
        return {"image": self.transform.image(image),
                "mask": self.transform.mask(mask),
                "label": torch.tensor(sample.label, dtype=torch.int64),
                "index": torch.tensor(index, dtype=torch.int64),
                "class_id": torch.tensor(self.class_ids[sample.class_name], dtype=torch.int64)}
