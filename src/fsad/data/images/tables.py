"""Layouts whose split is listed in a file: the original VisA release (``1cls.csv``) and ADer's ``meta.json``.

VisA (``VisA_20220922.tar``, amazon-science/spot-diff)::

    <root>/split_csv/1cls.csv            columns object,split,label,image,mask (labels normal/anomaly)
    <root>/<class>/Data/Images/{Normal,Anomaly}/*.JPG
    <root>/<class>/Data/Masks/Anomaly/*.png      (class ids 0..9, not 0/255)

ADer ``meta.json``::

    {"train": {"<class>": [{"img_path", "mask_path", "cls_name", "specie_name", "anomaly"}, ...]}, "test": {...}}

Paths in both are relative to the root (an absolute path is used as it is); empty segments (ADer writes
``carpet/test/hole//000.png``) are dropped. Each image is paired with the mask its own row or entry lists, never
by position (ADer's ``DefaultAD`` pairs sorted lists by index).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from fsad.data.images.samples import GOOD, ImageDataError, ImageSample

VISA_CSV_NAMES = ("split_csv/1cls.csv", "split_1cls.csv")
VISA_COLUMNS = ("object", "split", "label", "image", "mask")
VISA_DEFECT = "bad"
_MAX_LISTED = 20


def listed_path(root: Path, text: str, where: str) -> Path:
    """``root / text`` with empty segments dropped; ``..`` segments are refused (error naming ``where``)."""
    text = text.strip().replace("\\", "/")
    if not text:
        raise ImageDataError(f"{where}: empty path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageDataError(f"{where}: path {text!r} leaves the dataset root ('..'); expected a path relative to "
                             f"{root}")
    relative = PurePosixPath(*parts)
    return Path("/", *parts) if text.startswith("/") else root.joinpath(*relative.parts)


def _raise_missing(source: Path, missing: list[str]) -> None:
    shown = missing[:_MAX_LISTED]
    more = f"\n  ... and {len(missing) - len(shown)} more" if len(missing) > len(shown) else ""
    raise ImageDataError(f"{source}: {len(missing)} listed file(s) not found:\n  " + "\n  ".join(shown) + more)


# ----------------------------------------------------------------------------------------------------- VisA csv


def visa_csv(root: Path) -> Path | None:
    """The VisA split file under ``root`` (``split_csv/1cls.csv``, or ``split_1cls.csv``), or ``None``."""
    for rel in VISA_CSV_NAMES:
        if (root / rel).is_file():
            return root / rel
    return None


def read_visa_rows(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a VisA split csv, stripped; raises naming the file on a wrong header."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in VISA_COLUMNS if c not in header]
        if missing:
            raise ImageDataError(f"{csv_path}: header {header} lacks column(s) {missing}; expected "
                                 f"{','.join(VISA_COLUMNS)}")
        rows = []
        for row in reader:
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if any(clean.values()):
                rows.append((reader.line_num, clean))
    return rows


def visa_classes(csv_path: Path) -> list[str]:
    """Objects listed in a VisA split csv, in order of first appearance."""
    return list(dict.fromkeys(row["object"] for _, row in read_visa_rows(csv_path)))


def visa_samples(root: Path, csv_path: Path, classes: Sequence[str], splits: Sequence[str]) -> list[ImageSample]:
    """Samples of ``classes`` for ``splits`` from a VisA split csv (labels ``normal``/``anomaly``).

    Raises :class:`ImageDataError` naming the csv and line for an unknown split or label, an anomalous training
    row, an anomalous row without a mask, listed files that do not exist, and a class with no row in a split.
    """
    wanted = set(classes)
    samples: list[ImageSample] = []
    missing: list[str] = []
    for line, row in read_visa_rows(csv_path):
        name, split, label = row["object"], row["split"].lower(), row["label"].lower()
        if split not in ("train", "test"):
            raise ImageDataError(f"{csv_path}, line {line}: split {row['split']!r}; expected train or test")
        if name not in wanted or split not in splits:
            continue
        where = f"{csv_path}, line {line}"
        if label not in ("normal", "anomaly"):
            raise ImageDataError(f"{where}: label {row['label']!r}; expected normal or anomaly")
        if split == "train" and label == "anomaly":
            raise ImageDataError(f"{where}: anomalous training image {row['image']}; the protocol trains on normal "
                                 f"images only (use the 1cls split)")
        image = listed_path(root, row["image"], where)
        mask = None
        if label == "anomaly":
            if not row["mask"]:
                raise ImageDataError(f"{where}: anomalous image {row['image']} has no mask path; expected "
                                     f"<class>/Data/Masks/Anomaly/<stem>.png")
            mask = listed_path(root, row["mask"], where)
        missing += [f"line {line}: {p}" for p in (image, mask) if p is not None and not p.is_file()]
        samples.append(ImageSample(image, mask, name, VISA_DEFECT if mask else GOOD, int(mask is not None), split))
    if missing:
        _raise_missing(csv_path, missing)
    _require_every_split(samples, classes, splits, csv_path)
    return samples


# ---------------------------------------------------------------------------------------------------- meta.json


def read_meta(path: Path) -> dict:
    """The parsed ``meta.json``; raises naming the file when it is not JSON or not ``{split: {class: [...]}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImageDataError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or not any(isinstance(data.get(s), dict) for s in ("train", "test")):
        raise ImageDataError(f"{path}: expected an object with 'train' and 'test' keys, each mapping class names "
                             f"to lists of entries")
    return data


def meta_classes(meta: dict, splits: Sequence[str]) -> list[str]:
    """Class keys of the requested splits of a parsed ``meta.json``, in order of first appearance."""
    names: dict[str, None] = {}
    for split in splits:
        names.update(dict.fromkeys((meta.get(split) or {}).keys()))
    return list(names)


def _meta_entry(root: Path, path: Path, split: str, name: str, index: int, entry: object,
                missing: list[str]) -> ImageSample:
    where = f"{path}, {split}[{name!r}][{index}]"
    if not isinstance(entry, dict) or "img_path" not in entry or "anomaly" not in entry:
        raise ImageDataError(f"{where}: expected an object with at least 'img_path' and 'anomaly', got {entry!r}")
    if entry.get("cls_name", name) not in (name, "", None):
        raise ImageDataError(f"{where}: cls_name {entry['cls_name']!r} differs from its class key {name!r}")
    anomaly = entry["anomaly"]
    if isinstance(anomaly, str) or anomaly not in (0, 1):
        raise ImageDataError(f"{where}: anomaly {anomaly!r}; expected 0 or 1")
    label = int(anomaly)
    if split == "train" and label:
        raise ImageDataError(f"{where}: anomalous training image {entry['img_path']}; the protocol trains on "
                             f"normal images only")
    image = listed_path(root, str(entry["img_path"]), where)
    mask = None
    if label:
        if not entry.get("mask_path"):
            raise ImageDataError(f"{where}: anomalous image {entry['img_path']} has no mask_path")
        mask = listed_path(root, str(entry["mask_path"]), where)
    missing += [f"{split}[{name!r}][{index}]: {p}" for p in (image, mask) if p is not None and not p.is_file()]
    defect = str(entry.get("specie_name") or "") or (VISA_DEFECT if label else GOOD)
    return ImageSample(image, mask, name, defect, label, split)


def meta_samples(root: Path, path: Path, classes: Sequence[str], splits: Sequence[str]) -> list[ImageSample]:
    """Samples of ``classes`` for ``splits`` from ADer's ``meta.json`` at ``path``.

    Raises :class:`ImageDataError` naming the file and the entry (``test['carpet'][3]``) for malformed entries,
    anomalous training entries, anomalous entries without ``mask_path``, files that do not exist and classes with
    no entry in a requested split. The mask of a normal entry, if one is listed, is not used (all-zero mask).
    """
    meta = read_meta(path)
    samples: list[ImageSample] = []
    missing: list[str] = []
    for split in splits:
        table = meta.get(split) or {}
        if not isinstance(table, dict):
            raise ImageDataError(f"{path}: '{split}' must map class names to lists of entries")
        for name in classes:
            entries = table.get(name) or []
            if not isinstance(entries, list):
                raise ImageDataError(f"{path}: {split}[{name!r}] must be a list of entries")
            samples += [_meta_entry(root, path, split, name, i, e, missing) for i, e in enumerate(entries)]
    if missing:
        _raise_missing(path, missing)
    _require_every_split(samples, classes, splits, path)
    return samples


def _require_every_split(samples: list[ImageSample], classes: Sequence[str], splits: Sequence[str],
                         source: Path) -> None:
    present = {(s.class_name, s.split) for s in samples}
    for name in classes:
        for split in splits:
            if (name, split) not in present:
                raise ImageDataError(f"class {name!r}: no {split} image listed in {source}")
