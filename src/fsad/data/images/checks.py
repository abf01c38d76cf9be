"""Checks of a benchmark's files before training: readable images, masks that fit their images, mask values.

Images are only opened (header: format, size, EXIF), which is fast; masks are decoded once, to check their values
and size. Mask values decide what is reported, never what is anomalous (any non-zero value is, see
:mod:`fsad.data.images.reading`):

- ``binary``: 0 and the format's full value only (255, 65535, or 1-bit masks);
- ``class_ids``: small integers 1..:data:`MAX_CLASS_ID` (VisA's ``id2class``); expected for VisA, counted there
  without a warning; elsewhere treated as ``levels``;
- ``levels``: anything else (grey levels, 0/1 8-bit masks, JPEG-compressed masks): one warning per class that
  names the files, and the masks are binarised at ``!= 0`` anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fsad.data.images.reading import mask_orientation, mask_values, open_image, orientation_of, oriented_size
from fsad.data.images.samples import ImageDataError, ImageSample

log = logging.getLogger(__name__)

MAX_CLASS_ID = 9
_LISTED = 3


def mask_value_kind(values: np.ndarray) -> str:
    """``binary`` | ``class_ids`` | ``levels`` for the stored values of a mask (any dtype, any channels)."""
    nonzero = np.unique(values[values != 0])
    if nonzero.size == 0:
        return "binary"
    if values.dtype == bool:
        return "binary"
    full = np.iinfo(values.dtype).max if np.issubdtype(values.dtype, np.integer) else None
    if nonzero.size == 1 and nonzero[0] in (1, full):  # 0/255 (or the 16-bit full value), or 0/1
        return "binary"
    if np.issubdtype(values.dtype, np.integer) and nonzero.min() >= 1 and nonzero.max() <= MAX_CLASS_ID:
        return "class_ids"
    return "levels"


def _header(path: Path) -> tuple[tuple[int, int], int]:
    """(raw size (W, H), EXIF orientation) of an image, reading the header only; Pillow's ``verify`` then checks the
    file's integrity without decoding it (for PNG: every chunk's checksum, so a truncated file is found here).

    Pillow decodes a whole PNG to look for an eXIf chunk stored after the pixels; here a PNG without EXIF in its
    header counts as upright (such a late chunk is still honoured, and a resulting size mismatch still raised,
    when the pair is read by :func:`~fsad.data.images.reading.read_pair`).
    """
    try:
        with Image.open(path) as image:
            header = (image.size, 1) if image.format == "PNG" and "exif" not in image.info else \
                (image.size, orientation_of(image))
        with Image.open(path) as image:
            image.verify()  # PNG: every chunk's CRC up to IEND (a truncated or corrupted file fails), no decoding
        return header
    except FileNotFoundError as exc:
        raise ImageDataError(f"{path}: image file not found") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageDataError(f"{path}: not a readable image file ({type(exc).__name__}: {exc})") from exc


def check_files(samples: Iterable[ImageSample], class_ids_expected: bool = False) -> dict[str, dict[str, int]]:
    """Open every image's header and decode every mask of ``samples``; report mask values per class.

    Args:
        samples: from ``find_samples``.
        class_ids_expected: VisA: masks holding class ids are counted (``masks_class_ids``) without a warning.

    Returns:
        ``{class: {"masks": n, "masks_binary": n, "masks_class_ids": n, "masks_levels": n, "masks_empty": n}}``
        for every class with masks. Classes whose masks hold other values than expected get one warning each,
        naming up to three files and their values; an anomalous image whose mask is all zero is also warned about
        (it can never be detected at pixel level).

    Raises:
        ImageDataError: an image or mask is missing or unreadable, or a mask's size differs from its image's
            (after EXIF orientation); the message names the file(s).
    """
    report: dict[str, dict[str, int]] = {}
    odd: dict[str, list[str]] = {}
    empty: dict[str, list[str]] = {}
    for sample in samples:
        size, turn = _header(sample.image)
        if sample.mask is None:
            continue
        row = report.setdefault(sample.class_name, {"masks": 0, "masks_binary": 0, "masks_class_ids": 0,
                                                    "masks_levels": 0, "masks_empty": 0})
        with open_image(sample.mask) as mask:
            mask_turn = mask_orientation(size, turn, mask.size, orientation_of(mask))
            values = mask_values(mask, sample.mask)
            mask_size = oriented_size(mask.size, mask_turn)
        image_size = oriented_size(size, turn)
        if mask_size != image_size:
            raise ImageDataError(f"{sample.mask}: mask is {mask_size[0]}x{mask_size[1]} (WxH, upright) but its image "
                                 f"{sample.image} is {image_size[0]}x{image_size[1]}; expected the same size")
        kind = mask_value_kind(values)
        if kind == "class_ids" and not class_ids_expected:
            kind = "levels"
        row["masks"] += 1
        row[f"masks_{kind}"] += 1
        if not values.any():
            row["masks_empty"] += 1
            empty.setdefault(sample.class_name, []).append(str(sample.mask))
        elif kind == "levels":
            shown = np.unique(values)
            odd.setdefault(sample.class_name, []).append(
                f"{sample.mask} (values {shown[:8].tolist()}{' ...' if shown.size > 8 else ''})")
    for name, files in odd.items():
        log.warning("class %r: %d of %d masks hold values other than 0 and the full value (255), e.g. %s; every "
                    "non-zero value is taken as anomalous", name, len(files), report[name]["masks"],
                    "; ".join(files[:_LISTED]))
    for name, files in empty.items():
        log.warning("class %r: %d anomalous image(s) have an all-zero mask, e.g. %s; they count as anomalous for "
                    "image metrics but add no defect pixel", name, len(files), "; ".join(files[:_LISTED]))
    return report
