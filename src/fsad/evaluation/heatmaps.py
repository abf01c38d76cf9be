"""Heatmap overlays of image anomaly maps: what users look at first (ADer's ``vis``, anomalib's visualiser).

Each panel shows, side by side, the image as the model saw it (at the evaluation size), the anomaly map in the jet
colour map blended over it, and the ground-truth mask (white) with the map's contour at the panel's threshold.
Maps are normalised per image (its own min and max: every panel shows where *this* image is most anomalous) or per
class (the class's min and max: panels are comparable, a normal image stays dark).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from fsad.utils.io import atomic_write

NORMALISATIONS = ("image", "class")
_GAP = 4


def colourise(amap: np.ndarray, low: float, high: float) -> np.ndarray:
    """(H, W) map -> (H, W, 3) uint8 jet colours of ``(amap - low) / (high - low)`` clipped to [0, 1] (a constant
    range gives the colour of 0)."""
    span = high - low
    unit = np.clip((amap.astype(np.float64) - low) / span, 0, 1) if span > 0 else np.zeros(amap.shape)
    return (colormaps["jet"](unit)[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, amap: np.ndarray, low: float, high: float, alpha: float = 0.5) -> np.ndarray:
    """Blend the jet colours of ``amap`` (H, W) over ``image`` (H, W, 3) uint8 with weight ``alpha``."""
    if image.shape[:2] != amap.shape:
        raise ValueError(f"image {image.shape[:2]} and anomaly map {amap.shape} differ in size")
    blended = (1 - alpha) * image.astype(np.float64) + alpha * colourise(amap, low, high)
    return blended.round().astype(np.uint8)


def panel(image: np.ndarray, amap: np.ndarray, mask: np.ndarray, low: float, high: float,
          alpha: float = 0.5) -> np.ndarray:
    """``[image | overlay | mask]`` as one (H, 3W + 2 gaps, 3) uint8 array (white gaps)."""
    mask_rgb = np.repeat((mask.astype(bool) * 255).astype(np.uint8)[..., None], 3, axis=2)
    gap = np.full((image.shape[0], _GAP, 3), 255, np.uint8)
    return np.concatenate([image, gap, overlay(image, amap, low, high, alpha), gap, mask_rgb], axis=1)


def choose(kinds: Sequence[str], per_class: int) -> np.ndarray:
    """Positions (into ``kinds``, one defect type or ``good`` per image) of at most ``per_class`` images, taken in
    turn from each kind in order of first appearance, so that a class's panels show every kind it has."""
    groups: dict[str, list[int]] = {}
    for position, kind in enumerate(kinds):
        groups.setdefault(str(kind), []).append(position)
    picked: list[int] = []
    while len(picked) < per_class and any(groups.values()):
        for pool in groups.values():
            if pool and len(picked) < per_class:
                picked.append(pool.pop(0))
    return np.asarray(sorted(picked), dtype=np.int64)


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write a uint8 (H, W, 3) array as a PNG, atomically."""
    return atomic_write(path, lambda p: Image.fromarray(array).save(p, format="PNG"))


def montage(panels: Sequence[np.ndarray], width: int = 3) -> np.ndarray:
    """Panels of one size tiled ``width`` per row (white padding) -> one uint8 image."""
    if not panels:
        raise ValueError("no panels to tile")
    h, w, _ = panels[0].shape
    rows = -(-len(panels) // width)
    out = np.full((rows * (h + _GAP), min(width, len(panels)) * (w + _GAP), 3), 255, np.uint8)
    for k, p in enumerate(panels):
        r, c = divmod(k, width)
        out[r * (h + _GAP): r * (h + _GAP) + h, c * (w + _GAP): c * (w + _GAP) + w] = p
    return out
