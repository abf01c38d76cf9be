"""One image of an anomaly-detection benchmark, and the names shared by the image data layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsad.data.record import DataValidationError

#: Image file extensions the loaders find, compared case-insensitively (VisA ships ``.JPG``).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

SPLITS: tuple[str, ...] = ("train", "test")
GOOD = "good"


class ImageDataError(DataValidationError):
    """An image benchmark on disk is not what the loaders expect (missing mask, empty class, unreadable file...).

    The message names the file or folder, what was found and what was expected.
    """


@dataclass(frozen=True)
class ImageSample:
    """One image of a benchmark split.

    Attributes:
        image: path of the image file.
        mask: path of its ground-truth mask, or ``None`` for a normal image (its mask is all zero).
        class_name: object or texture category (``bottle``, ``pcb1``...).
        defect: defect type (the MVTec test folder name, ``bad`` for VisA), ``good`` for normal images.
        label: 0 normal, 1 anomalous.
        split: ``train`` or ``test``.
    """

    image: Path
    mask: Path | None
    class_name: str
    defect: str
    label: int
    split: str

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"{self.image}: label must be 0 or 1, got {self.label!r}")
        if self.split not in SPLITS:
            raise ValueError(f"{self.image}: split must be one of {SPLITS}, got {self.split!r}")
        if self.label == 0 and self.mask is not None:
            raise ValueError(f"{self.image}: a normal image has no mask, got {self.mask}")
        if self.label == 1 and self.mask is None:
            raise ValueError(f"{self.image}: an anomalous image needs a mask")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a regular, non-hidden file with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (not recursive), sorted by name; ``[]`` when the folder is absent."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)
