"""Reading benchmark images and ground-truth masks from disk with Pillow.

Images always come out as uint8 ``(H, W, 3)`` RGB, whatever the file stores (anomalib issues #1812, #2830, #2853
come from 1-channel tensors reaching a 3-channel model). Masks come out as bool ``(H, W)``: a pixel is anomalous
where any stored colour channel is non-zero, so grey-level masks (MVTec LOCO: 236..255), red RGB annotations,
16-bit masks and VisA class-id masks (values 0..9) all keep every annotated pixel (anomalib #2803: a ``/ 255``
followed by a cast to uint8 kept only the pixels equal to 255).

EXIF orientation: the image is turned upright with :func:`PIL.ImageOps.exif_transpose`. A mask must stay on the
same scene pixels, so :func:`read_pair` gives the mask the image's orientation when the mask file carries none and
is stored in the image's raw pixel grid (the usual case: annotation tools save PNG masks without EXIF);
see :func:`mask_orientation`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fsad.data.images.samples import ImageDataError

_ORIENTATION_TAG = 0x0112
#: EXIF orientation -> the transpose that shows the image upright (the mapping exif_transpose applies).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = (5, 6, 7, 8)
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_MASK_UNSUPPORTED = ("CMYK", "YCbCr", "LAB", "HSV")


def open_image(path: str | Path) -> Image.Image:
    """Open ``path`` with Pillow and decode its pixels; raises :class:`ImageDataError` naming the file otherwise."""
    path = Path(path)
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError as exc:
        raise ImageDataError(f"{path}: image file not found") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageDataError(f"{path}: not a readable image file ({type(exc).__name__}: {exc})") from exc
    return image


def orientation_of(image: Image.Image) -> int:
    """EXIF orientation (1..8) of an opened image; 1 when absent or invalid."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned by EXIF ``orientation`` (1..8) as a viewer would show it (1: unchanged)."""
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def oriented_size(size_wh: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(W, H) after applying EXIF ``orientation`` to an image of raw size ``size_wh``."""
    return (size_wh[1], size_wh[0]) if orientation in _SWAPS_AXES else tuple(size_wh)


def to_rgb_array(image: Image.Image, path: str | Path = "<image>") -> np.ndarray:
    """uint8 ``(H, W, 3)`` array of an opened image in any Pillow mode.

    - RGB as stored; L, P, 1, LA, PA, RGBA, RGBX, CMYK, YCbCr... through ``convert("RGB")`` (grey replicated,
      palette looked up, alpha dropped without compositing, CMYK by Pillow's conversion);
    - 16-bit greyscale (``I;16*``, and ``I`` holding values in 0..65535) rescaled to 0..255 by ``round(v / 257)``
      and replicated (Pillow's own conversion clips every value above 255 to 255);
    - float (``F``) images and ``I`` images outside 0..65535 have no agreed 8-bit meaning: :class:`ImageDataError`.
    """
    mode = image.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if mode in _SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageDataError(f"{path}: 32-bit integer image with values in [{values.min()}, {values.max()}]; "
                                 f"expected 8-bit or 16-bit data (0..65535)")
        grey = np.round(values / 257.0).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "F":
        raise ImageDataError(f"{path}: floating-point image (mode F) cannot be read as RGB; expected 8-bit or "
                             f"16-bit data")
    try:
        rgb = image.convert("RGB")
    except ValueError:  # e.g. premultiplied "La": go through RGBA
        try:
            rgb = image.convert("RGBA").convert("RGB")
        except ValueError as exc:
            raise ImageDataError(f"{path}: Pillow mode {mode!r} cannot be converted to RGB") from exc
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 ``(H, W, 3)`` RGB, turned upright by its EXIF orientation.

    Every Pillow mode is accepted (see :func:`to_rgb_array`); ``H, W`` are those of the upright image.
    Raises :class:`ImageDataError` naming the file when it is missing, corrupt, truncated or in a mode with no RGB
    meaning.
    """
    with open_image(path) as image:
        upright = ImageOps.exif_transpose(image)
        return to_rgb_array(upright, path)


def mask_values(image: Image.Image, path: str | Path = "<mask>") -> np.ndarray:
    """Stored values of an opened mask as ``(H, W, C)`` (C = 1 or 3 colour channels; alpha dropped).

    Palette masks give their palette indices (VOC-style class ids: index 0 = background). Colour spaces where a
    zero is not "nothing" (CMYK, YCbCr, LAB, HSV) and float masks are rejected with :class:`ImageDataError`.
    """
    mode = image.mode
    if mode in _MASK_UNSUPPORTED or mode == "F":
        raise ImageDataError(f"{path}: mask stored in Pillow mode {mode!r}; expected a greyscale, palette, "
                             f"16-bit or RGB mask where 0 means normal")
    values = np.asarray(image)
    if values.ndim == 2:
        return values[..., None]
    if mode in ("LA", "La", "PA"):
        return values[..., :1]
    return values[..., :3]


def binarise_mask(values: np.ndarray) -> np.ndarray:
    """bool ``(H, W)``: anomalous where any channel of ``values`` ``(H, W[, C])`` is non-zero."""
    return values != 0 if values.ndim == 2 else (values != 0).any(axis=2)


def read_mask(path: str | Path, orientation: int | None = None) -> np.ndarray:
    """Read a ground-truth mask as bool ``(H, W)``, anomalous where any stored colour channel is non-zero.

    Args:
        path: mask file (8-bit, 16-bit, 1-bit, palette or RGB; alpha ignored).
        orientation: EXIF orientation to apply (that of the paired image, see :func:`read_pair`); ``None`` uses
            the mask file's own tag.

    Binarisation happens before any resizing (IMG-02). Raises :class:`ImageDataError` naming the file when it is
    missing, unreadable or in an unsupported mode.
    """
    with open_image(path) as image:
        turn = orientation_of(image) if orientation is None else orientation
        return binarise_mask(mask_values(apply_orientation(image, turn), path))


def mask_orientation(image_size_wh: tuple[int, int], image_orientation: int, mask_size_wh: tuple[int, int],
                     mask_own_orientation: int) -> int:
    """The EXIF orientation to give a mask so that it lands on the upright image's pixels.

    - a mask with its own orientation tag (not 1) is turned by it;
    - a mask whose raw size is already the upright image's size (and not the raw one) is taken as already upright;
    - otherwise the mask is taken to share the image's raw pixel grid and gets the image's orientation.
    """
    if mask_own_orientation != 1:
        return mask_own_orientation
    upright = oriented_size(image_size_wh, image_orientation)
    if tuple(mask_size_wh) == upright and tuple(mask_size_wh) != tuple(image_size_wh):
        return 1
    return image_orientation


def read_pair(image_path: str | Path, mask_path: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Read an image (uint8 ``(H, W, 3)``) and its mask (bool ``(H, W)``), both upright and aligned.

    ``mask_path=None`` gives an all-False mask of the image's size. Raises :class:`ImageDataError` naming both
    files when the mask's size does not match the image's.
    """
    with open_image(image_path) as image:
        turn = orientation_of(image)
        raw_size = image.size
        rgb = to_rgb_array(apply_orientation(image, turn), image_path)
    if mask_path is None:
        return rgb, np.zeros(rgb.shape[:2], dtype=bool)
    with open_image(mask_path) as mask_image:
        mask_turn = mask_orientation(raw_size, turn, mask_image.size, orientation_of(mask_image))
        mask = binarise_mask(mask_values(apply_orientation(mask_image, mask_turn), mask_path))
    if mask.shape != rgb.shape[:2]:
        raise ImageDataError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                             f"{image_path} is {rgb.shape[1]}x{rgb.shape[0]}; expected the same size")
    return rgb, mask
