"""A small seeded image benchmark written in the MVTec-AD layout, for tests and quick CPU runs.

Classes come from a catalogue of textures (``stripes``, ``checker``, ``grain``) and objects (``disc``, ``plate``):
textures are periodic or noise patterns whose orientation, period and phase jitter from image to image; objects
are a shape on a plain background with a jittered position and an arbitrary (disc) or small (plate) rotation,
made visible by a mark. Clean pixel values stay within [30, 200] in every channel.

Defect folders (``scratch``, ``stain``, ``hole``, ``colour``) hold test images with one defect each: a thin dark or
bright line; a brown elliptical blob; a missing piece (dark for textures, the background showing through for
objects); a colour shift of one channel by +70. Sizes range from tiny (a few pixels) to large (about a tenth of
the image), and some defects touch the image border. The first anomalous image of every class is tiny and the
second touches the border (when ``n_test_bad >= 2``).

Masks are exact: ``<stem>_mask.png`` is 255 on precisely the pixels whose value differs from the clean image
and 0 elsewhere, and every anomalous image has at least one such pixel.

Every image is drawn from its own generator seeded by ``(seed, class name, split, index)``: the pictures do not
depend on how many others are written. Writing is atomic: the benchmark is written into a hidden folder next to
``root`` and renamed into place; ``synthetic.json`` records the parameters, and a root that already holds a
benchmark written with the same parameters is reused as it is.

Sizes: the defaults (3 classes, 128 x 128 pixels, 40 training and 22 test images per class) keep a small model's
training to minutes on two CPU cores; read them with ``image_size = crop_size = eval_size = 128`` (the data
config of the synthetic benchmark does so) rather than the 256 of the real benchmarks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from fsad.data.images.samples import ImageDataError
from fsad.utils.io import write_json

CATALOGUE: dict[str, str] = {"stripes": "texture", "checker": "texture", "grain": "texture",
                             "disc": "object", "plate": "object"}
DEFECTS: tuple[str, ...] = ("scratch", "stain", "hole", "colour")
DEFAULT_CLASSES: tuple[str, ...] = ("stripes", "grain", "disc")
INFO_FILE = "synthetic.json"
FORMAT_VERSION = 1

_LOW, _HIGH = 30.0, 200.0
_BACKGROUND = np.array([45.0, 45.0, 50.0])
_SIZE_CLASSES = ("tiny", "small", "medium", "large")
_TINY_MAX_PIXELS = 16
_ATTEMPTS = 50


# ------------------------------------------------------------------------------------------------ clean images


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float64)


def _finish(grey: np.ndarray, tint: Sequence[float], rng: np.random.Generator, noise: float) -> np.ndarray:
    rgb = grey[..., None] * np.asarray(tint, dtype=np.float64) + rng.normal(0.0, noise, grey.shape + (3,))
    return np.clip(rgb, _LOW, _HIGH)


def _stripes(rng: np.random.Generator, size: int) -> tuple[np.ndarray, None]:
    y, x = _grid(size)
    angle = np.deg2rad(30.0 + rng.normal(0.0, 4.0))
    period = size / 10.0 * (1.0 + rng.uniform(-0.06, 0.06))
    wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi))
    return _finish(135.0 + 40.0 * wave, (1.0, 0.95, 0.85), rng, 4.0), None


def _checker(rng: np.random.Generator, size: int) -> tuple[np.ndarray, None]:
    y, x = _grid(size)
    cell = size / 8.0 * (1.0 + rng.uniform(-0.05, 0.05))
    oy, ox = rng.uniform(0, 2 * cell, 2)
    board = ((np.floor((x + ox) / cell) + np.floor((y + oy) / cell)) % 2) * 70.0 + 95.0
    return _finish(board, (0.85, 0.95, 1.0), rng, 4.0), None


def _grain(rng: np.random.Generator, size: int) -> tuple[np.ndarray, None]:
    field = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (size, size)), sigma=max(1.0, size / 40.0), mode="wrap")
    field = (field - field.mean()) / (field.std() + 1e-12)
    return _finish(130.0 + 25.0 * field, (0.9, 1.0, 0.85), rng, 3.0), None


def _disc(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = _grid(size)
    cy, cx = size / 2.0 + rng.normal(0.0, size * 0.03, 2)
    radius = size * 0.32 * (1.0 + rng.uniform(-0.04, 0.04))
    dist = np.hypot(y - cy, x - cx)
    body = dist <= radius
    shade = 1.0 - 0.2 * (dist / radius) ** 2
    image = np.where(body[..., None], np.array([170.0, 130.0, 80.0]) * shade[..., None], _BACKGROUND)
    turn = rng.uniform(0, 2 * np.pi)  # pose: a darker mark near the rim
    my, mx = cy + 0.7 * radius * np.sin(turn), cx + 0.7 * radius * np.cos(turn)
    image[np.hypot(y - my, x - mx) <= radius * 0.12] = (110.0, 85.0, 55.0)
    image = np.clip(image + rng.normal(0.0, 3.0, image.shape), _LOW, _HIGH)
    return image, body


def _plate(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = _grid(size)
    cy, cx = size / 2.0 + rng.normal(0.0, size * 0.03, 2)
    angle = np.deg2rad(rng.normal(0.0, 6.0))
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    half = size * 0.3
    body = (np.abs(u) <= half) & (np.abs(v) <= half * 0.7)
    for su, sv in ((-1, -1), (-1, 1), (1, -1), (1, 1)):  # four bolt holes
        body &= np.hypot(u - su * half * 0.7, v - sv * half * 0.45) > size * 0.05
    image = np.where(body[..., None], np.array([150.0, 155.0, 165.0]), _BACKGROUND)
    image = np.clip(image + rng.normal(0.0, 3.0, image.shape), _LOW, _HIGH)
    return image, body


_RENDER = {"stripes": _stripes, "checker": _checker, "grain": _grain, "disc": _disc, "plate": _plate}


# ----------------------------------------------------------------------------------------------------- defects


def _ellipse(rng: np.random.Generator, size: int, centre: np.ndarray, radius: float) -> np.ndarray:
    y, x = _grid(size)
    angle = rng.uniform(0, np.pi)
    ratio = rng.uniform(0.5, 1.0)
    u = (x - centre[1]) * np.cos(angle) + (y - centre[0]) * np.sin(angle)
    v = -(x - centre[1]) * np.sin(angle) + (y - centre[0]) * np.cos(angle)
    return (u / radius) ** 2 + (v / (radius * ratio)) ** 2 <= 1.0


def _line(rng: np.random.Generator, size: int, start: np.ndarray, length: float, width: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    steps = np.linspace(0.0, length, max(2, int(np.ceil(length * 3))))
    ys = np.round(start[0] + steps * np.sin(angle)).astype(int)
    xs = np.round(start[1] + steps * np.cos(angle)).astype(int)
    keep = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)
    region = np.zeros((size, size), dtype=bool)
    region[ys[keep], xs[keep]] = True
    return ndimage.binary_dilation(region, iterations=width - 1) if width > 1 else region


def _centre(rng: np.random.Generator, size: int, body: np.ndarray | None, border: bool) -> np.ndarray:
    if border:  # on one edge, so that the defect runs over it
        along, edge = rng.uniform(0, size - 1), rng.integers(4)
        return np.array([[0.0, along], [size - 1.0, along], [along, 0.0], [along, size - 1.0]][edge])
    if body is not None:
        ys, xs = np.nonzero(ndimage.binary_erosion(body, iterations=2))
        pick = rng.integers(len(ys))
        return np.array([ys[pick], xs[pick]], dtype=np.float64)
    return rng.uniform(2, size - 3, 2)


def _region(rng: np.random.Generator, kind: str, size: int, scale: str, centre: np.ndarray) -> np.ndarray:
    if kind == "scratch":
        length, width = {"tiny": (rng.uniform(1.5, 3.0), 1), "small": (size * 0.1, 1),
                         "medium": (size * 0.3, 2), "large": (size * 0.6, 3)}[scale]
        return _line(rng, size, centre, length, width)
    radius = {"tiny": rng.uniform(1.0, 1.6), "small": size * rng.uniform(0.025, 0.04),
              "medium": size * rng.uniform(0.06, 0.1), "large": size * rng.uniform(0.15, 0.2)}[scale]
    return _ellipse(rng, size, centre, radius)


def _paint(clean: np.ndarray, kind: str, region: np.ndarray, body: np.ndarray | None,
           rng: np.random.Generator) -> np.ndarray:
    out = clean.copy()
    if kind == "scratch":
        out[region] = (10.0, 10.0, 10.0) if rng.random() < 0.5 else (235.0, 235.0, 235.0)
    elif kind == "stain":
        out[region] = (120.0, 60.0, 20.0)
    elif kind == "hole":
        if body is None:
            out[region] = (12.0, 12.0, 12.0)
        else:
            out[region & body] = _BACKGROUND
    else:
        channel = int(rng.integers(3))
        out[region, channel] = np.minimum(out[region, channel] + 70.0, 255.0)
    return out


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _defective(clean: np.ndarray, body: np.ndarray | None, kind: str, rng: np.random.Generator, size: int,
               scale: str, border: bool) -> tuple[np.ndarray, np.ndarray]:
    """Defective image and exact mask (pixels whose uint8 value changed), drawn until they meet the request."""
    before = clean.astype(np.uint8)
    for _ in range(_ATTEMPTS):
        region = _region(rng, kind, size, scale, _centre(rng, size, body, border))
        after = _paint(clean, kind, region, body, rng).astype(np.uint8)
        mask = (after != before).any(axis=2)
        if not mask.any() or (scale == "tiny" and mask.sum() > _TINY_MAX_PIXELS):
            continue
        if border and not _touches_border(mask):
            continue
        return after, mask
    raise RuntimeError(f"could not draw a {scale} {kind} defect{' on the border' if border else ''} "
                       f"in {_ATTEMPTS} attempts")


# ------------------------------------------------------------------------------------------------------- writer


def _rng(seed: int, name: str, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), stream, index])


def clean_picture(name: str, seed: int, split: str, index: int, size: int) -> np.ndarray:
    """uint8 ``(size, size, 3)`` defect-free picture number ``index`` of class ``name`` in ``split``
    (``train``, ``test_good``, or ``test_bad``: the picture an anomalous test image was drawn on)."""
    stream = {"train": 0, "test_good": 1, "test_bad": 2}[split]
    return _RENDER[name](_rng(seed, name, stream, index), size)[0].astype(np.uint8)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(path, format="PNG")


def _write_class(folder: Path, name: str, n_train: int, n_test_good: int, n_test_bad: int, size: int,
                 seed: int, defects: Sequence[str]) -> dict:
    render = _RENDER[name]
    for i in range(n_train):
        _save(folder / "train" / "good" / f"{i:03d}.png", render(_rng(seed, name, 0, i), size)[0])
    for i in range(n_test_good):
        _save(folder / "test" / "good" / f"{i:03d}.png", render(_rng(seed, name, 1, i), size)[0])
    written: dict[str, int] = {}
    tiny = border = 0
    for i in range(n_test_bad):
        rng = _rng(seed, name, 3, i)  # defect draws; the clean picture has its own generator
        kind = defects[i % len(defects)]
        scale = "tiny" if i == 0 else _SIZE_CLASSES[int(rng.integers(len(_SIZE_CLASSES)))]
        on_border = i == 1 or (i > 1 and rng.random() < 0.25)
        if kind == "hole" and CATALOGUE[name] == "object":  # it only removes object pixels, far from the border
            kind, on_border = ("stain", True) if i == 1 else (kind, False)
        clean, body = render(_rng(seed, name, 2, i), size)
        image, mask = _defective(clean, body, kind, rng, size, scale, on_border)
        stem = f"{written.get(kind, 0):03d}"
        written[kind] = written.get(kind, 0) + 1
        _save(folder / "test" / kind / f"{stem}.png", image)
        _save(folder / "ground_truth" / kind / f"{stem}_mask.png", mask.astype(np.uint8) * 255)
        tiny += int(mask.sum() <= _TINY_MAX_PIXELS)
        border += int(_touches_border(mask))
    return {"kind": CATALOGUE[name], "train_good": n_train, "test_good": n_test_good,
            "test_anomalous": n_test_bad, "defects": dict(sorted(written.items())), "tiny_defects": tiny,
            "border_defects": border}


def _params(classes, n_train, n_test_good, n_test_bad, size, seed, defects) -> dict:
    return {"classes": list(classes), "n_train": n_train, "n_test_good": n_test_good, "n_test_bad": n_test_bad,
            "size": size, "seed": seed, "defects": list(defects), "format": FORMAT_VERSION}


def _recorded_params(root: Path) -> dict | None:
    try:
        return json.loads((root / INFO_FILE).read_text()).get("params")
    except (OSError, ValueError, AttributeError):
        return None


def _validate(classes, n_train, n_test_good, n_test_bad, size, seed, defects) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    unknown = [c for c in classes if c not in CATALOGUE]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"synthetic classes must be distinct names from {sorted(CATALOGUE)}, got {list(classes)}")
    bad_defects = [d for d in defects if d not in DEFECTS]
    if bad_defects or not defects or len(set(defects)) != len(defects):
        raise ValueError(f"synthetic defects must be distinct names from {list(DEFECTS)}, got {list(defects)}")
    if min(n_train, n_test_good, n_test_bad) < 1:
        raise ValueError(f"n_train, n_test_good and n_test_bad must be >= 1, got {n_train}, {n_test_good}, "
                         f"{n_test_bad}")
    if size < 32:
        raise ValueError(f"synthetic image size must be >= 32 pixels, got {size}")


def write_synthetic_benchmark(
    root: str | Path,
    classes: Sequence[str] = DEFAULT_CLASSES,
    n_train: int = 40,
    n_test_good: int = 10,
    n_test_bad: int = 12,
    size: int = 128,
    seed: int = 0,
    defects: Sequence[str] = DEFECTS,
) -> Path:
    """Write (or reuse) the synthetic benchmark in the MVTec-AD layout under ``root``; return ``root``.

    Args:
        root: benchmark folder; created. An existing one is reused when its ``synthetic.json`` records the same
            parameters, replaced when it records other ones, and refused when it holds anything else.
        classes: names from :data:`CATALOGUE` (textures ``stripes``, ``checker``, ``grain``; objects ``disc``,
            ``plate``).
        n_train, n_test_good, n_test_bad: images per class (normal training, normal test, anomalous test); the
            anomalous ones cycle through ``defects``.
        size: side of the square RGB PNG images, pixels (>= 32).
        seed: the whole benchmark is a function of the seed and these arguments.
        defects: defect folders, from :data:`DEFECTS`.

    Files: ``<class>/train/good/NNN.png``, ``<class>/test/good/NNN.png``, ``<class>/test/<defect>/NNN.png`` and
    ``<class>/ground_truth/<defect>/NNN_mask.png`` (0/255), plus ``synthetic.json`` (parameters and per-class
    counts).

    Raises:
        ImageDataError: ``root`` exists, is not empty and holds no ``synthetic.json``.
    """
    classes, defects = [str(c) for c in classes], [str(d) for d in defects]
    _validate(classes, n_train, n_test_good, n_test_bad, size, seed, defects)
    root = Path(root).absolute()
    params = _params(classes, n_train, n_test_good, n_test_bad, size, seed, defects)
    if _recorded_params(root) == params:
        return root
    if root.is_dir() and any(root.iterdir()) and not (root / INFO_FILE).is_file():
        raise ImageDataError(f"{root}: folder exists and holds other files (no {INFO_FILE}); the synthetic "
                             f"benchmark is only written into a new or empty folder or over an earlier one")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.tmp-{secrets.token_hex(4)}"
    staging.mkdir()  # mode 0777 minus the umask, like any new folder
    try:
        summary = {name: _write_class(staging / name, name, n_train, n_test_good, n_test_bad, size, seed, defects)
                   for name in classes}
        write_json(staging / INFO_FILE, {"generator": "fsad.data.images.synthetic", "params": params,
                                         "classes": summary})
        _move_into_place(staging, root, params)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _move_into_place(staging: Path, root: Path, params: dict) -> None:
    old = None
    if root.exists() and any(root.iterdir()):
        old = root.parent / f".{root.name}.old-{secrets.token_hex(4)}"
        os.rename(root, old)
    try:
        os.rename(staging, root)  # also replaces an empty folder
    except OSError:
        if _recorded_params(root) != params:  # another writer got there first with other parameters
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
