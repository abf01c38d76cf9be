"""The MVTec-style folder layout (MVTec-AD, MPDD, re-organised VisA, the synthetic benchmark, custom data).

```
<root>/<class>/train/good/<name>.<ext>
<root>/<class>/test/good/<name>.<ext>
<root>/<class>/test/<defect>/<stem>.<ext>
<root>/<class>/ground_truth/<defect>/<stem>_mask.<ext>     (or <stem>.<ext>, as re-organised VisA and anomalib)
```

Masks are paired with test images by defect folder and file stem, never by position in sorted listings
(RD4AD zips two sorted globs: one missing mask plus one extra mask silently shifts every later pair). Every
problem of a class (anomalous image without mask, mask without image, ambiguous mask names) is gathered and
raised as one :class:`ImageDataError`. ``ground_truth/good`` is ignored: normal images have all-zero masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fsad.data.images.samples import GOOD, IMAGE_EXTENSIONS, ImageDataError, ImageSample, list_images

_SPLIT_FOLDERS = ("train", "test", "ground_truth")
_MAX_LISTED = 20


def folder_classes(root: Path) -> list[str]:
    """Names of the non-hidden sub-folders of ``root`` that hold a ``train``, ``test`` or ``ground_truth`` folder."""
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and any((d / s).is_dir() for s in _SPLIT_FOLDERS))


def _subfolders(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def _raise(class_dir: Path, problems: list[str]) -> None:
    shown = problems[:_MAX_LISTED]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise ImageDataError(f"class folder {class_dir}: {len(problems)} problem(s) with its files:\n  "
                         + "\n  ".join(shown) + more)


def _train_samples(class_dir: Path, name: str) -> list[ImageSample]:
    train_dir, good_dir = class_dir / "train", class_dir / "train" / GOOD
    if not good_dir.is_dir():
        raise ImageDataError(f"class folder {class_dir} has no train/good folder; expected the normal training "
                             f"images in {good_dir}")
    stray = [d for d in _subfolders(train_dir) if d.name != GOOD and list_images(d)]
    if stray:
        raise ImageDataError(f"{stray[0]}: training images outside train/good; the protocol trains on normal "
                             f"images only (move them to test/<defect> with their masks, or remove them)")
    images = list_images(good_dir)
    if not images:
        raise ImageDataError(f"class {name!r}: no training image in {good_dir} (looked for {_exts()})")
    return [ImageSample(p, None, name, GOOD, 0, "train") for p in images]


def _mask_index(folder: Path) -> dict[str, list[Path]]:
    """mask file stem -> files with that stem in ``folder`` (several when only the extension differs)."""
    index: dict[str, list[Path]] = {}
    for path in list_images(folder):
        index.setdefault(path.stem, []).append(path)
    return index


def _pair_defect(class_dir: Path, name: str, defect: str, images: list[Path],
                 problems: list[str]) -> list[ImageSample]:
    mask_dir = class_dir / "ground_truth" / defect
    masks = _mask_index(mask_dir)
    claimed: set[Path] = set()
    samples = []
    seen_stems: dict[str, Path] = {}
    for image in images:
        rel = image.relative_to(class_dir).as_posix()
        if image.stem in seen_stems:
            problems.append(f"{rel}: two images with stem {image.stem!r} ({seen_stems[image.stem].name}, "
                            f"{image.name}); their masks cannot be told apart")
            continue
        seen_stems[image.stem] = image
        candidates = masks.get(f"{image.stem}_mask", []) + masks.get(image.stem, [])
        if not candidates:
            problems.append(f"{rel}: anomalous test image without a mask; expected "
                            f"{(mask_dir / (image.stem + '_mask.png')).relative_to(class_dir).as_posix()} "
                            f"(or {image.stem}.png there)")
            continue
        if len(candidates) > 1:
            listed = ", ".join(p.name for p in candidates)
            problems.append(f"{rel}: several masks match ({listed} in {mask_dir}); expected exactly one")
            claimed.update(candidates)
            continue
        claimed.add(candidates[0])
        samples.append(ImageSample(image, candidates[0], name, defect, 1, "test"))
    for paths in masks.values():
        for path in paths:
            if path not in claimed:
                problems.append(_orphan(class_dir, path))
    return samples


def _orphan(class_dir: Path, mask: Path) -> str:
    stem = mask.stem[: -len("_mask")] if mask.stem.endswith("_mask") else mask.stem
    defect = mask.parent.name
    return (f"{mask.relative_to(class_dir).as_posix()}: mask without an image; expected test/{defect}/{stem}.png "
            f"(or another image extension)")


def _test_samples(class_dir: Path, name: str) -> list[ImageSample]:
    test_dir = class_dir / "test"
    if not test_dir.is_dir():
        raise ImageDataError(f"class {name!r}: no test folder; expected {test_dir}/good and {test_dir}/<defect>")
    problems: list[str] = []
    samples: list[ImageSample] = []
    defects = []
    for folder in _subfolders(test_dir):
        images = list_images(folder)
        if folder.name == GOOD:
            samples += [ImageSample(p, None, name, GOOD, 0, "test") for p in images]
        else:
            defects.append(folder.name)
            samples += _pair_defect(class_dir, name, folder.name, images, problems)
    gt_dir = class_dir / "ground_truth"
    if gt_dir.is_dir():
        for folder in _subfolders(gt_dir):
            if folder.name != GOOD and folder.name not in defects:
                problems += [_orphan(class_dir, p) for p in list_images(folder)]
    if problems:
        _raise(class_dir, problems)
    if not samples:
        raise ImageDataError(f"class {name!r}: no test image in {test_dir}/<good|defect>/ (looked for {_exts()})")
    return samples


def folder_samples(root: Path, classes: Sequence[str], splits: Sequence[str]) -> list[ImageSample]:
    """Samples of ``classes`` (folders of ``root``) for ``splits``; see the module docstring for the layout.

    Raises :class:`ImageDataError` naming the folder or file for: a class folder without ``train/good``, an empty
    split, training images outside ``train/good``, an anomalous image without its mask, a mask without its image,
    and ambiguous names.
    """
    samples: list[ImageSample] = []
    for name in classes:
        class_dir = root / name
        if "train" in splits:
            samples += _train_samples(class_dir, name)
        if "test" in splits:
            samples += _test_samples(class_dir, name)
    return samples


def _exts() -> str:
    return "/".join(IMAGE_EXTENSIONS) + " in any case"
