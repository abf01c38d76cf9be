"""Writers of tiny image benchmarks in each on-disk layout, for the tests of fsad.data.images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image


def png(path: Path, array: np.ndarray, mode: str | None = None, fmt: str | None = None) -> Path:
    """Write ``array`` as an image file (format from the suffix unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array), mode=mode) if mode else Image.fromarray(np.asarray(array))
    image.save(path, format=fmt)
    return path


def rgb(value: int, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    """A uniform uint8 (H, W, 3) image."""
    return np.full((*size, 3), value, np.uint8)


def box_mask(size: tuple[int, int] = (8, 8), box=(2, 5, 3, 6), value: int = 255) -> np.ndarray:
    """uint8 (H, W) mask with ``value`` on rows box[0]:box[1], cols box[2]:box[3]."""
    mask = np.zeros(size, np.uint8)
    mask[box[0]:box[1], box[2]:box[3]] = value
    return mask


def write_mvtec(root: Path, classes=("bottle",), n_train=3, n_good=2, defects=("broken", "crack"), n_bad=2,
                mask_suffix="_mask", ext=".png", size=(8, 8)) -> Path:
    """MVTec/MPDD layout; anomalous image i of defect d has a mask with a (i+1)-row box."""
    for name in classes:
        for i in range(n_train):
            png(root / name / "train" / "good" / f"{i:03d}{ext}", rgb(100 + i, size))
        for i in range(n_good):
            png(root / name / "test" / "good" / f"{i:03d}{ext}", rgb(120 + i, size))
        for d in defects:
            for i in range(n_bad):
                png(root / name / "test" / d / f"{i:03d}{ext}", rgb(150 + i, size))
                png(root / name / "ground_truth" / d / f"{i:03d}{mask_suffix}.png",
                    box_mask(size, (1, 2 + i, 1, 4)))
    return root


def write_visa_original(root: Path, classes=("candle", "pcb1"), n_train=3, n_good=2, n_bad=2,
                        csv_rel="split_csv/1cls.csv", class_id=2) -> Path:
    """The VisA release layout: .JPG images, class-id masks, the 1cls split csv (test rows first, as spot-diff)."""
    rows = []
    for name in classes:
        base = root / name / "Data"
        for i in range(n_train + n_good):
            png(base / "Images" / "Normal" / f"{i:04d}.JPG", rgb(80 + i), fmt="JPEG")
        for i in range(n_bad):
            png(base / "Images" / "Anomaly" / f"{i:03d}.JPG", rgb(90 + i), fmt="JPEG")
            png(base / "Masks" / "Anomaly" / f"{i:03d}.png", box_mask(value=class_id), mode="L")
            rows.append([name, "test", "anomaly", f"{name}/Data/Images/Anomaly/{i:03d}.JPG",
                         f"{name}/Data/Masks/Anomaly/{i:03d}.png"])
        for i in range(n_good):
            rows.append([name, "test", "normal", f"{name}/Data/Images/Normal/{n_train + i:04d}.JPG", ""])
        for i in range(n_train):
            rows.append([name, "train", "normal", f"{name}/Data/Images/Normal/{i:04d}.JPG", ""])
    path = root / csv_rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["object", "split", "label", "image", "mask"])
        writer.writerows(rows)
    return root


def write_visa_mvtec(root: Path, classes=("candle",), n_train=3, n_good=2, n_bad=2) -> Path:
    """Re-organised VisA: train/good, test/good, test/bad (.JPG), ground_truth/bad/NNN.png (0/255)."""
    for name in classes:
        for i in range(n_train):
            png(root / name / "train" / "good" / f"{i:04d}.JPG", rgb(80 + i), fmt="JPEG")
        for i in range(n_good):
            png(root / name / "test" / "good" / f"{n_train + i:04d}.JPG", rgb(85 + i), fmt="JPEG")
        for i in range(n_bad):
            png(root / name / "test" / "bad" / f"{i:03d}.JPG", rgb(90 + i), fmt="JPEG")
            png(root / name / "ground_truth" / "bad" / f"{i:03d}.png", box_mask(), mode="L")
    return root


def write_meta_json(root: Path, entries: dict) -> Path:
    (root / "meta.json").write_text(json.dumps(entries))
    return root / "meta.json"


def ader_meta(root: Path, classes=("carpet",), n_train=2, n_good=1, n_bad=2, defect="hole") -> dict:
    """Files in the MVTec layout plus ADer's meta.json with its ``//`` paths, masks listed in reversed order."""
    write_mvtec(root, classes, n_train=n_train, n_good=n_good, defects=(defect,), n_bad=n_bad)
    meta: dict = {"train": {}, "test": {}}
    for name in classes:
        meta["train"][name] = [{"img_path": f"{name}/train/good//{i:03d}.png", "mask_path": "", "cls_name": name,
                                "specie_name": "good", "anomaly": 0} for i in range(n_train)]
        test = [{"img_path": f"{name}/test/good//{i:03d}.png", "mask_path": "", "cls_name": name,
                 "specie_name": "good", "anomaly": 0} for i in range(n_good)]
        test += [{"img_path": f"{name}/test/{defect}//{i:03d}.png",
                  "mask_path": f"{name}/ground_truth/{defect}/{i:03d}_mask.png", "cls_name": name,
                  "specie_name": defect, "anomaly": 1} for i in reversed(range(n_bad))]
        meta["test"][name] = test
    write_meta_json(root, meta)
    return meta
