"""SMD (Server Machine Dataset, OmniAnomaly): 28 machines, 38 metrics each, one row per minute.

Raw OmniAnomaly layout (``<root>/ServerMachineDataset/`` or ``<root>`` itself)::

    train/machine-G-I.txt        comma-separated floats, no header, (T_m, 38)
    test/machine-G-I.txt         (T'_m, 38)
    test_label/machine-G-I.txt   one 0/1 per line, (T'_m,)

G = 1..3 is the machine group, I the index within it. One machine, a list, or all machines (concatenated along
time in group/index order, the usual "SMD" of the Anomaly-Transformer line of work) can be read; the entity
boundaries are kept in ``meta["entities"]`` so metrics can also be computed per machine. The Anomaly-Transformer
layout (``SMD_{train,test,test_label}.npy``) is read by :func:`fsad.data.sources.numpy_layout.load_numpy_layout`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.numpy_layout import load_numpy_layout, numpy_layout_files

SMD_CHANNELS = 38
MACHINE = re.compile(r"^machine-(\d+)-(\d+)$")
PARTS = ("train", "test", "test_label")


def load_smd(root: str | Path, machines: str | list[str] = "all", layout: str = "auto") -> SeriesRecord:
    """Read SMD.

    Args:
        root: folder holding ``ServerMachineDataset/`` (or its ``train/``, ``test/``, ``test_label/`` directly),
            or ``SMD_train.npy`` & co.
        machines: ``"all"``, one name (``"machine-1-2"``) or a list of names; raw layout only.
        layout: ``auto`` | ``omnianomaly`` | ``numpy``.

    Returns:
        SeriesRecord with train (sum T_m, 38), test (sum T'_m, 38) and labels concatenated in machine order;
        ``meta["entities"]`` = ``[{"name", "train": [start, end), "test": [start, end)}]`` for the raw layout.
    """
    root = Path(root)
    if layout == "auto":
        layout = "numpy" if (root / numpy_layout_files("SMD")[0]).is_file() else "omnianomaly"
    if layout == "numpy":
        if machines not in ("all", ["all"]):
            raise DataValidationError(f"{root}: field 'machines'={machines!r}; the numpy layout holds the "
                                      "concatenated machines only (use machines: all)")
        return load_numpy_layout(root, "SMD")
    if layout != "omnianomaly":
        raise DataValidationError(f"{root}: field 'layout'={layout!r}; expected auto, omnianomaly or numpy")
    folder = smd_folder(root)
    names = _select(folder, machines)
    parts: dict[str, list[np.ndarray]] = {p: [] for p in PARTS}
    entities, offsets = [], {"train": 0, "test": 0}
    for name in names:
        train = _read_matrix(folder / "train" / f"{name}.txt")
        test = _read_matrix(folder / "test" / f"{name}.txt")
        labels = _read_labels(folder / "test_label" / f"{name}.txt", len(test), folder / "test" / f"{name}.txt")
        entity = {"name": name}
        for part, arr in (("train", train), ("test", test)):
            entity[part] = [offsets[part], offsets[part] + len(arr)]
            offsets[part] += len(arr)
        entities.append(entity)
        for part, arr in zip(PARTS, (train, test, labels)):
            parts[part].append(arr)
    record = SeriesRecord(
        train=np.concatenate(parts["train"]), test=np.concatenate(parts["test"]),
        test_labels=np.concatenate(parts["test_label"]), channel_names=[f"metric_{i}" for i in range(SMD_CHANNELS)],
        source=str(folder), meta={"layout": "omnianomaly", "machines": names, "entities": entities},
    )
    return record.validate()


def smd_folder(root: Path) -> Path:
    """The folder that holds ``train/``, ``test/`` and ``test_label/``."""
    for folder in (root / "ServerMachineDataset", root):
        if all((folder / p).is_dir() for p in PARTS):
            return folder
    raise DataValidationError(f"{root}: SMD not found; expected ServerMachineDataset/{{train,test,test_label}}/"
                              "machine-G-I.txt (OmniAnomaly layout) or SMD_train.npy, SMD_test.npy, "
                              "SMD_test_label.npy (Anomaly-Transformer layout)")


def smd_machines(folder: Path) -> list[str]:
    """Machines with all three files, in (group, index) order."""
    found = []
    for path in (folder / "train").glob("machine-*.txt"):
        match = MACHINE.match(path.stem)
        if match and all((folder / p / path.name).is_file() for p in PARTS[1:]):
            found.append((int(match[1]), int(match[2]), path.stem))
    return [name for *_, name in sorted(found)]


def _select(folder: Path, machines: str | list[str]) -> list[str]:
    available = smd_machines(folder)
    if machines == "all" or machines == ["all"]:
        if not available:
            raise DataValidationError(f"{folder}: no machine has train/, test/ and test_label/ files")
        return available
    wanted = [machines] if isinstance(machines, str) else list(machines)
    missing = [m for m in wanted if m not in available]
    if missing:
        raise DataValidationError(f"{folder}: field 'machines' asks for {missing}, which lack train/test/test_label "
                                  f"files; available: {available}")
    return wanted


def _read_matrix(path: Path) -> np.ndarray:
    try:
        arr = pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
    except FileNotFoundError:
        raise DataValidationError(f"{path}: file not found") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise DataValidationError(f"{path}: not comma-separated numbers ({err})") from err
    if arr.shape[1] != SMD_CHANNELS:
        raise DataValidationError(f"{path}: {arr.shape[1]} columns; expected {SMD_CHANNELS} metrics per row")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataValidationError(f"{path}: {int(bad.sum())} NaN/inf values (first at row {row}, column {col}); "
                                  "expected finite numbers")
    return arr.astype(np.float32)


def _read_labels(path: Path, n_rows: int, like: Path) -> np.ndarray:
    try:
        labels = pd.read_csv(path, header=None).to_numpy()
    except FileNotFoundError:
        raise DataValidationError(f"{path}: file not found") from None
    if labels.shape[1] != 1 or len(labels) != n_rows:
        raise DataValidationError(f"{path}: shape {labels.shape}; expected ({n_rows}, 1), one label per row of {like}")
    values = np.unique(labels)
    if not np.isin(values, (0, 1)).all():
        raise DataValidationError(f"{path}: labels {values[:10].tolist()}; expected only 0 and 1")
    return labels[:, 0].astype(np.int8)
