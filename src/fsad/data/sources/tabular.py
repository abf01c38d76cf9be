"""Shared pieces of every CSV source: reading, the missing-value policy, labels and the final record.

Each CSV benchmark (PSM, SWaT, GECCO, CICIDS2017, Genesis, NAB, TAB, ...) has its own small loader module that
calls these helpers, so the checks and error messages are the same everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord

MISSING_POLICIES = ("error", "ffill", "zero", "drop")


class Numeric(NamedTuple):
    """A cleaned numeric table.

    Attributes:
        values: (T_kept, C) float64 without NaN/inf.
        changed: how many values the missing-value policy filled (``ffill``/``zero``) or how many rows it
            removed (``drop``).
        rows: (T_kept,) int64 indices of the kept input rows (all rows unless the policy is ``drop``); use it to
            keep labels aligned.
    """

    values: np.ndarray
    changed: int
    rows: np.ndarray


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """Read a CSV with a header row; DataValidationError naming the file when it is absent or unreadable.

    Extra keyword arguments go to :func:`pandas.read_csv`.
    """
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    try:
        return pd.read_csv(path, **kwargs)
    except Exception as err:  # pandas raises many types
        raise DataValidationError(f"{path}: cannot be read as CSV ({err})") from err


def numeric_matrix(frame: pd.DataFrame, path: Path, missing: str) -> Numeric:
    """The values of ``frame`` as a finite float64 matrix after the missing-value policy.

    Policies: ``error`` raises on any NaN/inf (naming file, row and column); ``ffill`` carries the last valid value
    forward (leading gaps take 0); ``zero`` replaces them by 0 (the originals' ``np.nan_to_num``); ``drop``
    removes every row with a NaN/inf (TAB's GECCO and CICIDS files were made this way).
    """
    if missing not in MISSING_POLICIES:
        raise DataValidationError(f"{path}: field 'missing'={missing!r}; expected one of {MISSING_POLICIES}")
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataValidationError(f"{path}: non-numeric values ({err}); expected numeric feature columns") from err
    bad = ~np.isfinite(values)
    rows = np.arange(len(values), dtype=np.int64)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return Numeric(values, 0, rows)
    if missing == "error":
        row, col = np.argwhere(bad)[0]
        raise DataValidationError(f"{path}: {n_bad} missing/inf values (first at row {row}, column "
                                  f"'{frame.columns[col]}'); set data.missing=ffill, zero or drop")
    if missing == "ffill":
        return Numeric(pd.DataFrame(np.where(bad, np.nan, values)).ffill().fillna(0.0).to_numpy(), n_bad, rows)
    if missing == "zero":
        return Numeric(np.where(bad, 0.0, values), n_bad, rows)
    keep = ~bad.any(axis=1)
    return Numeric(values[keep], int((~keep).sum()), rows[keep])


def require_folder(root: str | Path, name: str, files: tuple[str, ...]) -> Path:
    """``root`` as a Path; DataValidationError saying which files were expected when the folder is absent."""
    root = Path(root)
    if not root.is_dir():
        raise DataValidationError(f"{root}: {name} folder not found; expected the files {', '.join(files)}")
    return root


def binary_labels(values: np.ndarray, path: Path, n_rows: int) -> np.ndarray:
    """(n_rows,) int8 0/1 labels from a column; DataValidationError naming ``path`` on a wrong length or value."""
    labels = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
    if len(labels) != n_rows:
        raise DataValidationError(f"{path}: {len(labels)} labels for {n_rows} test rows; expected one label per row")
    if not np.isin(labels, (0, 1)).all():
        raise DataValidationError(f"{path}: labels must be 0/1, found {np.unique(labels)[:10].tolist()}")
    return labels.astype(np.int8)


def make_record(train: np.ndarray, test: np.ndarray, labels: np.ndarray, names: list[str], source: Path | str,
                layout: str, n_filled: int, **meta) -> SeriesRecord:
    """A validated float32 :class:`SeriesRecord`; ``meta`` records the layout and the missing-value count."""
    return SeriesRecord(train=train.astype(np.float32), test=test.astype(np.float32), test_labels=labels,
                        channel_names=[str(n) for n in names], source=str(source),
                        meta={"layout": layout, "missing_values_filled": n_filled, **meta}).validate()


def name_list(names: list[str] | np.ndarray, limit: int = 5) -> str:
    """``"a, b, c (and 7 more)"``: a few of ``names`` for an error message."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit]) or "none"
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")
