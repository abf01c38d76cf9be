"""SMD (Server Machine Dataset, OmniAnomaly): 28 machines, 38 metrics each, one row per minute.

Raw OmniAnomaly layout (``<root>/ServerMachineDataset/`` or ``<root>`` itself)::

    train/machine-G-I.txt        comma-separated floats, no header, (T_m, 38)
    test/machine-G-I.txt         (T'_m, 38)
    test_label/machine-G-I.txt   one 0/1 per line, (T'_m,)

G = 1..3 is the machine group, I the index within it. One machine, a list, or all machines (concatenated along
time in group/index order, the usual "SMD" of the Anomaly-Transformer line of work) can be read; the entity
boundaries are kept in ``meta["entities"]`` so metrics can also be computed per machine. With ``all``, every
machine that has any of its three files must have all three: a partial copy is an error naming the absent file,
never a silent subset (name the machines to read a subset on purpose). The Anomaly-Transformer
layout (``SMD_{train,test,test_label}.npy``) is read by :func:`fsad.data.sources.numpy_layout.load_numpy_layout`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.csvfile import data_lines, float_matrix, read_csv
from fsad.data.sources.numpy_layout import load_numpy_layout, numpy_layout_files
from fsad.data.sources.tabular import binary_labels, require_entity_files

SMD_CHANNELS = 38
MACHINE = re.compile(r"^machine-(\d+)-(\d+)$")
PARTS = ("train", "test", "test_label")
METRICS = [f"metric_{i}" for i in range(SMD_CHANNELS)]  # channel names; column i of the files, counted from 0
RESTORE = "restore the absent files (data.download=true fetches OmniAnomaly's)"


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

    Raises:
        DataValidationError: a machine to read (with ``all``: any machine with any of its files) lacks one of its
            three files (the full path is named), an unknown machine, or a file that is not 38 comma-separated
            numbers per line / one 0/1 label per test row (the line of the file is named).
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
        test_labels=np.concatenate(parts["test_label"]), channel_names=list(METRICS),
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
    """Every machine with at least one of its train/, test/ or test_label/ files, in (group, index) order.

    These are the machines the layout lists; :func:`load_smd` requires each one it reads to have all three.
    """
    found = set()
    for part in PARTS:
        for path in (folder / part).glob("machine-*.txt"):
            match = MACHINE.match(path.stem)
            if match:
                found.add((int(match[1]), int(match[2]), path.stem))
    return [name for *_, name in sorted(found)]


def _select(folder: Path, machines: str | list[str]) -> list[str]:
    """The machines to read; DataValidationError naming an absent file of any of them, or an unknown machine."""
    listed = smd_machines(folder)
    complete = [m for m in listed if all((folder / p / f"{m}.txt").is_file() for p in PARTS)]
    if machines == "all" or machines == ["all"]:
        if not listed:
            raise DataValidationError(f"{folder}: no machine-G-I.txt files in train/, test/ or test_label/; expected "
                                      "the OmniAnomaly layout")
        wanted = listed
        remedy = RESTORE + (f", or read the complete machines only with data.machines=[{','.join(complete)}]"
                            if complete else "")
    else:
        wanted = [machines] if isinstance(machines, str) else list(machines)
        unknown = [m for m in wanted if m not in listed]
        if unknown:
            raise DataValidationError(f"{folder}: field 'machines' asks for {unknown}, which have no files in train/, "
                                      f"test/ or test_label/; available: {listed}")
        remedy = RESTORE + ", or leave the machine out"
    require_entity_files({m: [folder / p / f"{m}.txt" for p in PARTS] for m in wanted},
                         "machine", f"{folder}'s train/, test/ or test_label/", remedy)
    return wanted


def _read_matrix(path: Path) -> np.ndarray:
    frame = read_csv(path, header=None)
    if frame.shape[1] != SMD_CHANNELS:
        raise DataValidationError(f"{path}: {frame.shape[1]} columns; expected {SMD_CHANNELS} metrics per row")
    frame.columns = METRICS
    arr = float_matrix(frame, path, data_lines(frame.index, 1))
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataValidationError(f"{path}: {int(bad.sum())} NaN/inf values (first at line {row + 1} of the file, "
                                  f"column '{METRICS[col]}'); expected finite numbers")
    return arr.astype(np.float32)


def _read_labels(path: Path, n_rows: int, like: Path) -> np.ndarray:
    frame = read_csv(path, header=None)
    if frame.shape[1] != 1 or len(frame) != n_rows:
        raise DataValidationError(f"{path}: shape {frame.shape}; expected ({n_rows}, 1), one label per row of {like}")
    return binary_labels(frame[0].rename("label"), path, n_rows, data_lines(frame.index, 1))
