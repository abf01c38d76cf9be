"""CSV benchmarks of the Anomaly-Transformer lineage: PSM and the two SWaT conventions.

- PSM: ``train.csv``, ``test.csv`` (column 0 ``timestamp_(min)``, then 25 features, with missing values) and
  ``test_label.csv`` (timestamp, label).
- SWaT, DCdetector/FreCT convention: ``swat_train2.csv`` and ``swat2.csv``, each row = 51 sensors + label last.
- SWaT, TransMamba convention: ``SWaT_train.csv``, ``SWaT_test.csv``, ``SWaT_test_label.csv``; the first column
  (an index or timestamp) is dropped, labels are the remaining column of the label file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord

MISSING_POLICIES = ("error", "ffill", "zero")


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV with a header row; DataValidationError naming the file when it is absent or unreadable."""
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    try:
        return pd.read_csv(path)
    except Exception as err:  # pandas raises many types
        raise DataValidationError(f"{path}: cannot be read as CSV ({err})") from err


def numeric_matrix(frame: pd.DataFrame, path: Path, missing: str) -> tuple[np.ndarray, int]:
    """(T, C) float64 of ``frame`` after the missing-value policy; returns the matrix and how many values changed.

    ``error`` raises on any NaN/inf (naming file, row and column); ``ffill`` carries the last valid value forward
    (leading gaps take 0); ``zero`` replaces them by 0 (the originals' ``np.nan_to_num``).
    """
    if missing not in MISSING_POLICIES:
        raise DataValidationError(f"{path}: field 'missing'={missing!r}; expected one of {MISSING_POLICIES}")
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataValidationError(f"{path}: non-numeric values ({err}); expected numeric feature columns") from err
    bad = ~np.isfinite(values)
    n_bad = int(bad.sum())
    if n_bad and missing == "error":
        row, col = np.argwhere(bad)[0]
        raise DataValidationError(f"{path}: {n_bad} missing/inf values (first at row {row}, column "
                                  f"'{frame.columns[col]}'); set data.missing=ffill or zero")
    if n_bad and missing == "ffill":
        values = pd.DataFrame(np.where(bad, np.nan, values)).ffill().fillna(0.0).to_numpy()
    elif n_bad:
        values = np.where(bad, 0.0, values)
    return values, n_bad


def load_psm(root: str | Path, missing: str = "ffill") -> SeriesRecord:
    """PSM (eBay pooled server metrics, 25 features)."""
    root = _folder(root, "PSM", ("train.csv", "test.csv", "test_label.csv"))
    train_df, test_df = read_csv(root / "train.csv"), read_csv(root / "test.csv")
    labels_df = read_csv(root / "test_label.csv")
    train, n1 = numeric_matrix(train_df.iloc[:, 1:], root / "train.csv", missing)
    test, n2 = numeric_matrix(test_df.iloc[:, 1:], root / "test.csv", missing)
    labels = _labels(labels_df.iloc[:, -1].to_numpy(), root / "test_label.csv", len(test))
    return _record(train, test, labels, list(train_df.columns[1:]), root, "psm", n1 + n2)


def load_swat(root: str | Path, layout: str = "dcdetector", missing: str = "zero") -> SeriesRecord:
    """SWaT (51 sensors and actuators) in the ``dcdetector`` or ``transmamba`` convention."""
    if layout == "dcdetector":
        root = _folder(root, "SWaT", ("swat_train2.csv", "swat2.csv"))
        train_df, test_df = read_csv(root / "swat_train2.csv"), read_csv(root / "swat2.csv")
        train, n1 = numeric_matrix(train_df.iloc[:, :-1], root / "swat_train2.csv", missing)
        test, n2 = numeric_matrix(test_df.iloc[:, :-1], root / "swat2.csv", missing)
        labels = _labels(test_df.iloc[:, -1].to_numpy(), root / "swat2.csv", len(test))
        names = list(train_df.columns[:-1])
    elif layout == "transmamba":
        root = _folder(root, "SWaT", ("SWaT_train.csv", "SWaT_test.csv", "SWaT_test_label.csv"))
        train_df, test_df = read_csv(root / "SWaT_train.csv"), read_csv(root / "SWaT_test.csv")
        train, n1 = numeric_matrix(train_df.iloc[:, 1:], root / "SWaT_train.csv", missing)
        test, n2 = numeric_matrix(test_df.iloc[:, 1:], root / "SWaT_test.csv", missing)
        label_df = read_csv(root / "SWaT_test_label.csv")
        labels = _labels(label_df.iloc[:, -1].to_numpy(), root / "SWaT_test_label.csv", len(test))
        names = list(train_df.columns[1:])
    else:
        raise DataValidationError(f"{root}: field 'layout'={layout!r}; expected 'dcdetector' or 'transmamba'")
    return _record(train, test, labels, names, Path(root), f"swat-{layout}", n1 + n2)


def _folder(root: str | Path, name: str, files: tuple[str, ...]) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataValidationError(f"{root}: {name} folder not found; expected the files {', '.join(files)}")
    return root


def _labels(values: np.ndarray, path: Path, n_test: int) -> np.ndarray:
    labels = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
    if len(labels) != n_test:
        raise DataValidationError(f"{path}: {len(labels)} labels for {n_test} test rows; expected one label per row")
    if not np.isin(labels, (0, 1)).all():
        raise DataValidationError(f"{path}: labels must be 0/1, found {np.unique(labels)[:10].tolist()}")
    return labels.astype(np.int8)


def _record(train: np.ndarray, test: np.ndarray, labels: np.ndarray, names: list[str], root: Path, layout: str,
            n_filled: int) -> SeriesRecord:
    return SeriesRecord(train=train.astype(np.float32), test=test.astype(np.float32), test_labels=labels,
                        channel_names=[str(n) for n in names], source=str(root),
                        meta={"layout": layout, "missing_values_filled": n_filled}).validate()
