"""SWaT (Secure Water Treatment testbed, 51 sensors and actuators) in the three layouts users have.

- ``dcdetector`` (DCdetector / FreCT): ``swat_train2.csv`` and ``swat2.csv``, each row = 51 values + label last.
- ``transmamba`` (TransMamba): ``SWaT_train.csv``, ``SWaT_test.csv``, ``SWaT_test_label.csv``; the first column
  (an index or timestamp) is dropped, labels are the last column of the label file.
- ``itrust``: the owner's export ``SWaT_Dataset_Normal_v1.csv`` (train) and ``SWaT_Dataset_Attack_v0.csv`` (test),
  a ``Timestamp`` column, the 51 values and a ``Normal/Attack`` column (values ``Normal``, ``Attack`` and the
  misspelt ``A ttack``). A grouping row above the header, as left by converting the Excel sheets, is skipped.

SWaT is not public: it is shared on request by iTrust (see :mod:`fsad.data.download`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.csvfile import data_lines, read_csv
from fsad.data.sources.tabular import binary_labels, make_record, numeric_matrix, require_folder

SWAT_FILES = {
    "dcdetector": ("swat_train2.csv", "swat2.csv"),
    "transmamba": ("SWaT_train.csv", "SWaT_test.csv", "SWaT_test_label.csv"),
    "itrust": ("SWaT_Dataset_Normal_v1.csv", "SWaT_Dataset_Attack_v0.csv"),
}
ITRUST_LABEL = "Normal/Attack"


def load_swat(root: str | Path, layout: str = "dcdetector", missing: str = "zero") -> SeriesRecord:
    """Read SWaT from ``root`` in ``layout`` (``dcdetector`` | ``transmamba`` | ``itrust``)."""
    if layout not in SWAT_FILES:
        raise DataValidationError(f"{root}: field 'layout'={layout!r}; expected one of {tuple(SWAT_FILES)}")
    files = SWAT_FILES[layout]
    root = require_folder(root, "SWaT", files)
    if layout == "itrust":
        return _load_itrust(root, files, missing)
    train_path, test_path = root / files[0], root / files[1]
    train_df, test_df = read_csv(train_path), read_csv(test_path)
    if layout == "dcdetector":
        features = slice(None, -1)
        label_path, label_column = test_path, test_df.iloc[:, -1]
    else:
        features = slice(1, None)
        label_path = root / files[2]
        label_column = read_csv(label_path).iloc[:, -1]
    train = numeric_matrix(train_df.iloc[:, features], train_path, missing)
    test = numeric_matrix(test_df.iloc[:, features], test_path, missing)
    labels = binary_labels(label_column, label_path, len(test_df))[test.rows]
    return make_record(train.values, test.values, labels, list(train_df.columns[features]), root,
                       f"swat-{layout}", [train, test])


def _load_itrust(root: Path, files: tuple[str, str], missing: str) -> SeriesRecord:
    tables = {}
    for name in files:
        path = root / name
        header = _header_row(path)
        frame = read_csv(path, skiprows=header, skipinitialspace=True)
        frame.columns = [str(c).strip() for c in frame.columns]
        if ITRUST_LABEL not in frame.columns:
            raise DataValidationError(f"{path}: no '{ITRUST_LABEL}' column; expected the iTrust export")
        lines = data_lines(frame.index, header + 2)
        text = frame[ITRUST_LABEL].astype(str).str.replace(" ", "").str.lower()
        unknown = ~text.isin(["normal", "attack"]).to_numpy()
        if unknown.any():
            raise DataValidationError(f"{path}: field '{ITRUST_LABEL}' has values {sorted(set(text[unknown]))[:5]} "
                                      f"(first at line {lines[np.argmax(unknown)]} of the file); "
                                      "expected Normal or Attack")
        features = frame.drop(columns=[ITRUST_LABEL] + [c for c in frame.columns if c.lower() == "timestamp"])
        tables[name] = (features, numeric_matrix(features, path, missing, lines), (text == "attack").to_numpy())
    (train_df, train, _), (_, test, attack) = tables[files[0]], tables[files[1]]
    labels = attack.astype(np.int8)[test.rows]
    return make_record(train.values, test.values, labels, list(train_df.columns), root, "swat-itrust", [train, test])


def _header_row(path: Path) -> int:
    """Lines to skip before the header (the Excel export may start with a grouping row)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for i, line in enumerate(handle):
            if ITRUST_LABEL in line:
                return i
            if i > 10:
                break
    raise DataValidationError(f"{path}: no header line with a '{ITRUST_LABEL}' column in the first lines; "
                              "expected the iTrust SWaT export")
