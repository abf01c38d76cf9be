"""Scores sorted once per class, from which every curve of both protocols is read by binary search.

A class's pixels are split into normal and defect pixels and each group is sorted (float32 for float16/float32
maps, float64 for float64 maps; a copy of one class's pixels at a time). Defect pixels carry the area of the
8-connected defect region they belong to (for the per-region overlap, PRO). Image-level scores use the same
structure without regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from fsad.evaluation.image.inputs import work_dtype

# 8-connectivity inside each image and none across images of an (N, H, W) stack: a 3x3 block of ones in the
# middle plane. Same regions as MVTec's ``label(mask, np.ones((3, 3)))``, ADer's ``skimage.measure.label`` and
# adeval's ``cv2.connectedComponentsWithStats(connectivity=8)``; scipy's default would be 4-connectivity.
_EIGHT_CONNECTED_PER_IMAGE = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_CONNECTED_PER_IMAGE[1] = True


@dataclass(frozen=True)
class Ranked:
    """Sorted scores of one class.

    Attributes:
        negatives: (N,) scores of the normal pixels (or images), ascending.
        positives: (P,) scores of the anomalous pixels (or images), ascending.
        areas: (P,) int64 area in pixels of the defect region of each positive (aligned with ``positives``);
            empty for image-level scores.
        n_regions: number of 8-connected defect regions of the class (0 for image-level scores).
    """

    negatives: np.ndarray
    positives: np.ndarray
    areas: np.ndarray
    n_regions: int


def region_areas(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Region area of every defect pixel and the number of regions.

    Args:
        masks: (N, H, W) bool, True = defect pixel.

    Returns:
        ``(areas, n_regions)``: ``areas`` (P,) int64 holds, for each True pixel of ``masks`` in C order (the
        order of ``maps[masks]``), the pixel count of its 8-connected component within its own image (regions
        touching the left and right borders stay apart; diagonal contact joins); ``n_regions`` counts the
        components over all images.
    """
    with_defect = masks.reshape(len(masks), -1).any(axis=1)
    if not with_defect.any():
        return np.zeros(0, dtype=np.int64), 0
    sub = masks[with_defect]
    labels, n_regions = ndimage.label(sub, structure=_EIGHT_CONNECTED_PER_IMAGE)
    of_pixel = labels[sub]
    del labels
    return np.bincount(of_pixel, minlength=n_regions + 1)[of_pixel].astype(np.int64), int(n_regions)


def rank_pixels(maps: np.ndarray, masks: np.ndarray) -> Ranked:
    """Sorted normal and defect pixel scores of one class, with the defect pixels' region areas.

    Args:
        maps: (N, H, W) checked anomaly maps (finite).
        masks: (N, H, W) bool, True = defect pixel.
    """
    dtype = work_dtype(maps.dtype)
    negatives = maps[~masks].astype(dtype, copy=False)
    negatives.sort()
    positives = maps[masks].astype(dtype, copy=False)
    areas, n_regions = region_areas(masks)
    order = np.argsort(positives, kind="stable")
    return Ranked(negatives, positives[order], areas[order], n_regions)


def rank_scores(scores: np.ndarray, labels: np.ndarray) -> Ranked:
    """Sorted scores of normal and anomalous images: ``scores`` (N,) float64, ``labels`` (N,) bool."""
    return Ranked(np.sort(scores[~labels]), np.sort(scores[labels]), np.zeros(0, dtype=np.int64), 0)
