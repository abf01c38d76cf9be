"""Finding the images and masks of a benchmark on disk, whatever layout it was unpacked in.

Layouts (``layout=``):

- ``mvtec``: MVTec-AD, MPDD, the synthetic benchmark, custom data: ``<class>/{train/good, test/<defect>,
  ground_truth/<defect>}`` (:mod:`fsad.data.images.folders`).
- ``visa``: the original VisA release read through ``split_csv/1cls.csv`` (:mod:`fsad.data.images.tables`).
- ``visa_mvtec``: VisA re-organised into the MVTec layout (spot-diff's ``prepare_data.py`` under ``1cls/``,
  anomalib under ``visa_pytorch/``, or directly in the root); single defect folder ``bad``, masks ``NNN.png``.
- ``meta_json``: ADer's ``meta.json`` index, paths relative to the root.

``layout="auto"`` (:func:`detect_layout`) prefers what is on disk over derived indexes, in this order: a VisA
split csv; a ``1cls/`` or ``visa_pytorch/`` level holding class folders; class folders in the root; ``meta.json``.
ADer writes ``meta.json`` next to the MVTec folders, and the folders are the source of truth (pairing by name is
checked there), so ``meta.json`` is used only when asked for or when nothing else matches.

The root folder may have any name (ADer requires ``mvtec``/``visa``/``mpdd``; fsad does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fsad.data.images.counts import canonical_classes
from fsad.data.images.folders import folder_classes, folder_samples
from fsad.data.images.samples import SPLITS, ImageDataError, ImageSample
from fsad.data.images.tables import meta_classes, meta_samples, read_meta, visa_classes, visa_csv, visa_samples

LAYOUTS = ("auto", "mvtec", "visa", "visa_mvtec", "meta_json")
VISA_LEVELS = ("1cls", "visa_pytorch")
META_FILE = "meta.json"


def visa_folder_root(root: Path) -> Path:
    """Where the class folders of a re-organised VisA live: ``root/1cls``, ``root/visa_pytorch`` or ``root``."""
    for level in VISA_LEVELS:
        if folder_classes(root / level):
            return root / level
    return root


def detect_layout(root: str | Path, dataset: str = "custom") -> str:
    """Name of the layout of the benchmark under ``root`` (see the module docstring for the order of preference).

    Class folders directly in the root are ``visa_mvtec`` for ``dataset="visa"`` and ``mvtec`` otherwise.
    Raises :class:`ImageDataError` listing every place looked at when nothing matches.
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageDataError(f"{root}: dataset root folder not found")
    if visa_csv(root) is not None:
        return "visa"
    if any(folder_classes(root / level) for level in VISA_LEVELS):
        return "visa_mvtec"
    if folder_classes(root):
        return "visa_mvtec" if dataset.lower() == "visa" else "mvtec"
    if (root / META_FILE).is_file():
        return "meta_json"
    hint = ""
    if (root / "train").is_dir() or (root / "test").is_dir():
        hint = (f" {root} itself looks like a class folder: pass its parent as the root and "
                f"classes=[{root.name}].")
    raise ImageDataError(
        f"{root}: no image benchmark layout found. Looked for: {root}/split_csv/1cls.csv (VisA release); "
        f"{root}/1cls/<class>/ and {root}/visa_pytorch/<class>/ (re-organised VisA); "
        f"{root}/<class>/train/good and {root}/<class>/test/<defect> (MVTec-AD, MPDD, custom); "
        f"{root}/{META_FILE} (ADer index).{hint}")


def order_classes(found: Sequence[str], dataset: str) -> list[str]:
    """``found`` in the dataset's canonical order when every name is one of its classes, else sorted."""
    canonical = canonical_classes(dataset)
    if found and all(name in canonical for name in found):
        return sorted(found, key=canonical.index)
    return sorted(found)


def available_classes(root: str | Path, dataset: str, layout: str = "auto",
                      splits: Sequence[str] = SPLITS) -> list[str]:
    """Classes present under ``root`` in ``layout`` (resolved when ``auto``), ordered by :func:`order_classes`."""
    root = Path(root)
    layout = detect_layout(root, dataset) if layout == "auto" else _check_layout(layout)
    if layout == "mvtec":
        found = folder_classes(root)
    elif layout == "visa_mvtec":
        found = folder_classes(visa_folder_root(root))
    elif layout == "visa":
        found = visa_classes(_require_visa_csv(root))
    else:
        found = meta_classes(read_meta(_require_meta(root)), splits)
    if not found:
        raise ImageDataError(f"{root}: no class found in the {layout} layout")
    return order_classes(found, dataset)


def find_samples(root: str | Path, dataset: str, layout: str = "auto", classes: Sequence[str] | None = None,
                 splits: Sequence[str] = SPLITS) -> list[ImageSample]:
    """Every image of the requested classes and splits, with its mask paired by name.

    Args:
        root: dataset root folder (any name).
        dataset: ``mvtec`` | ``visa`` | ``mpdd`` | ``synthetic`` | ``custom``; sets the canonical class order and
            how a bare folder layout is read (``visa`` -> ``visa_mvtec``).
        layout: ``auto`` or one of ``mvtec``, ``visa``, ``visa_mvtec``, ``meta_json`` (module docstring).
        classes: class names to load, in the order given; ``None`` = every class found, in the dataset's
            canonical order (ADer's order for MVTec-AD: carpet, grid, leather, tile, wood, bottle, ...) when all
            are known, else sorted.
        splits: ``("train", "test")`` or one of them.

    Returns:
        Samples ordered by class, then split (train before test), then image path.

    Raises:
        ImageDataError: no layout found (listing what was looked for), an unknown class (listing the available
            ones), an empty class or split, an anomalous image without its mask, a mask without its image, listed
            files missing; each message names the folder or file.
    """
    root = Path(root)
    splits = tuple(splits)
    if not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {splits}")
    layout = detect_layout(root, dataset) if layout == "auto" else _check_layout(layout)
    available = available_classes(root, dataset, layout, splits)
    names = select_classes(available, classes, root)
    if layout == "mvtec":
        samples = folder_samples(root, names, splits)
    elif layout == "visa_mvtec":
        samples = folder_samples(visa_folder_root(root), names, splits)
    elif layout == "visa":
        samples = visa_samples(root, _require_visa_csv(root), names, splits)
    else:
        samples = meta_samples(root, _require_meta(root), names, splits)
    rank = {name: i for i, name in enumerate(names)}
    return sorted(samples, key=lambda s: (rank[s.class_name], SPLITS.index(s.split), str(s.image)))


def select_classes(available: Sequence[str], requested: Sequence[str] | None, root: Path) -> list[str]:
    """``requested`` checked against ``available`` (``None`` -> all available); errors list the available ones."""
    if requested is None:
        return list(available)
    if isinstance(requested, str):
        requested = [requested]
    requested = [str(name) for name in requested]
    if not requested:
        raise ImageDataError(f"{root}: an empty class list was requested; available classes: "
                             f"{', '.join(available)} (or pass classes=None for all)")
    duplicates = sorted({n for n in requested if requested.count(n) > 1})
    if duplicates:
        raise ImageDataError(f"{root}: class(es) {duplicates} requested more than once")
    unknown = [n for n in requested if n not in available]
    if unknown:
        raise ImageDataError(f"{root}: unknown class(es) {unknown}; available classes: {', '.join(available)}")
    return requested


def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def _require_visa_csv(root: Path) -> Path:
    path = visa_csv(root)
    if path is None:
        raise ImageDataError(f"{root}: layout 'visa' needs {root}/split_csv/1cls.csv (from the VisA release or "
                             f"amazon-science/spot-diff)")
    return path


def _require_meta(root: Path) -> Path:
    path = root / META_FILE
    if not path.is_file():
        raise ImageDataError(f"{root}: layout 'meta_json' needs {path}")
    return path
