"""Image and mask transforms: IMG-04 (bilinear then >= 0.5), normalisation, crop geometry, eval size, IMG-14 sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from fsad.data.images import read_mask, read_rgb
from fsad.data.images.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageTransform, resize_mask
from tests.conftest import shared_path
from tests.data.images.helpers import png


def img04_mask() -> np.ndarray:
    """16x16 with a 5x5 defect (rows 5..9, cols 6..10) and a 1-pixel defect at (13, 2): 26 pixels."""
    mask = np.zeros((16, 16), bool)
    mask[5:10, 6:11] = True
    mask[13, 2] = True
    return mask


def test_img04_bilinear_then_half_threshold_counts():
    mask = img04_mask()
    assert mask.sum() == 26
    assert resize_mask(mask, 40, 40).sum() == 166  # ideal area 162.5; "> 0" would give 250
    assert resize_mask(mask, 6, 6).sum() == 4  # "> 0" would give 19
    big = ImageTransform(image_size=40, crop_size=40, eval_size=40).mask(mask)
    assert big.dtype == torch.bool and big.shape == (40, 40) and int(big.sum()) == 166
    values = np.asarray(Image.fromarray(mask.astype(np.float32), mode="F").resize((40, 40), Image.BILINEAR))
    assert int((values > 0).sum()) == 250  # the rule IMG-04 warns about, reproduced


def test_img04_shared_case():
    case = shared_path("cases", "image")
    expected = json.loads((case / "expected" / "IMG-04.json").read_text())
    mask = read_mask(case / "data" / "IMG-04" / "mask16.png")
    assert int(mask.sum()) == expected["original_num_anomalous"]
    for key, row in expected["resized"].items():
        side = int(key.split("x")[0])
        assert int(resize_mask(mask, side, side).sum()) == row["bilinear_ge_0.5_num_anomalous"], key


def test_image_normalisation_and_shape():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 0, 128
    out = ImageTransform(image_size=8, crop_size=8, eval_size=8).image(rgb)
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    expected = [(1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (0.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
                (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    torch.testing.assert_close(out.mean(dim=(1, 2)), torch.tensor(expected), rtol=0, atol=1e-6)


def test_centre_crop_keeps_the_middle_and_masks_follow_the_same_geometry():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :2] = 255  # a bright band on the left edge, cropped away by 16 -> 12
    t = ImageTransform(image_size=16, crop_size=12, eval_size=12)
    assert t.image(rgb)[0].max() < (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0] - 1e-3
    mask = np.zeros((16, 16), bool)
    mask[2, 2] = mask[8, 8] = True
    out = t.mask(mask)
    assert out.shape == (12, 12) and out[0, 0] and out[6, 6] and int(out.sum()) == 2
    # eval_size != crop_size: one resampling to image_size * eval / crop, then the same centred window
    twice = ImageTransform(image_size=16, crop_size=12, eval_size=24)
    assert twice.mask_resize == 32
    scaled = twice.mask(mask)
    assert scaled.shape == (24, 24) and int(scaled.sum()) == 8 and scaled[0:2, 0:2].all()
    assert ImageTransform(image_size=16, crop_size=12, eval_size=24).mask(None).shape == (24, 24)


def test_invalid_sizes_are_refused():
    with pytest.raises(ValueError, match="crop_size .* must not exceed data.image_size"):
        ImageTransform(image_size=8, crop_size=16)
    with pytest.raises(ValueError, match="data.eval_size must be a positive integer"):
        ImageTransform(eval_size=None)


def test_img14_mixed_sizes_and_grey_images_batch(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(40, 30), (32, 32), (30, 45)]):
        paths.append(png(tmp_path / f"m{i}.png", np.full((h, w, 3), 50 * (i + 1), np.uint8)))
    paths.append(png(tmp_path / "grey.png", np.full((20, 10), 7, np.uint8), mode="L"))
    t = ImageTransform()
    batch = default_collate([t.image(read_rgb(p)) for p in paths])
    assert batch.shape == (4, 3, 256, 256) and batch.dtype == torch.float32


def test_img14_shared_mixed_sizes():
    case = shared_path("cases", "image")
    expected = json.loads((case / "expected" / "IMG-14.json").read_text())["files"]["mixed_size_*.png"]
    t = ImageTransform()
    images = [read_rgb(case / "data" / "IMG-14" / f"mixed_size_{i}.png") for i in range(3)]
    assert [list(im.shape[1::-1]) for im in images] == expected["sizes_wh"]
    assert list(default_collate([t.image(im) for im in images]).shape) == expected["expected_batch_shape_at_256"]
