"""TAB-format benchmarks (the layout of TAB, CATCH and RED-F: one long-format CSV per dataset plus a meta table).

Layout (``root`` is TAB's ``dataset/anomaly_detect`` or the ``dataset/tab`` folder of CATCH/RED-F)::

    <root>/DETECT_META.csv          one row per series file; columns used: file_name (e.g. "MSL.csv"),
                                    train_lens (rows of the training split), if_univariate (True/False);
                                    length is kept as meta['meta_length']; other columns (dataset_name,
                                    freq, anomaly_ratio, ...) are ignored
    <root>/multi_ts/<file_name>     multivariate series (CATCH / VAN-AD / RED-F layout)
    <root>/uni_ts/<file_name>       univariate series (same repos)
    <root>/data/<file_name>         TAB's own release puts every series here
    <root>/<file_name>              TFB's LocalDataSource reads the folder itself

The folders are searched in that order, starting with the one ``if_univariate`` points to. Each series file is a
long table with the columns ``date,data,cols`` (one row per (date, channel) value); the rows whose ``cols`` is
``label`` carry the 0/1 point label. A file without a ``date`` column (TFB allows ``data,cols`` only) is read by the
position of each value inside its channel's block.

Pivot to wide (T, C+1), the convention of TAB's ``read_data`` (TFB ``ts_benchmark/data/utils.py``): rows are the
dates in order of first appearance in the file (TAB takes the first channel's block as written, which is the same
order once every channel is known to have every date; dates are never re-sorted), channels in order of first
appearance of their ``cols`` value. TAB renames the *last* column to ``label``; here the column named ``label``
is the label wherever it stands, and only a file without one falls back to the last column (recorded in
``meta['label_column']``). The first ``train_lens`` rows are the training split, the rest is test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.single_table import split_at
from fsad.data.sources.csvfile import data_lines, numbers, read_csv
from fsad.data.sources.tabular import binary_labels, make_record, name_list, numeric_matrix, require_folder

TAB_FOLDERS = ("multi_ts", "uni_ts", "data", ".")
LABEL = "label"


def load_tab(root: str | Path, name: str, meta_file: str = "DETECT_META.csv", missing: str = "error") -> SeriesRecord:
    """Read the TAB-format series ``name`` (``"MSL.csv"`` or ``"MSL"``) below ``root``.

    Returns a record with train (train_lens, C), test (T - train_lens, C), test_labels (T - train_lens,) and the
    C channel names in order of first appearance (the label column excluded). ``missing`` = error | ffill | zero |
    drop applies to empty ``data`` cells (see :func:`numeric_matrix`); a (date, channel) pair absent from the file is
    always an error, and so is a ``data`` cell that is not a number (named by its line in the long file).
    """
    root = require_folder(root, "TAB", (meta_file, "multi_ts/<file_name>"))
    row = _meta_row(root / meta_file, name)
    file_name = str(row["file_name"]).strip()
    univariate = _flag(row.get("if_univariate"), root / meta_file, file_name)
    train_len = _integer(row["train_lens"], root / meta_file, file_name, "train_lens")
    path = _series_path(root, file_name, univariate)
    wide, dates, lines = _pivot(read_csv(path), path)
    label_column = _label_column(list(wide.columns), path)
    is_label = wide.columns == label_column
    features = wide.loc[:, ~is_label]
    _check_univariate(univariate, features.shape[1], path, root / meta_file)
    numeric = numeric_matrix(features, path, missing, lines[:, ~is_label])
    labels = binary_labels(wide[label_column], path, len(wide), lines[:, is_label][:, 0])
    split = split_at(numeric, labels, train_len, len(wide), path, "train_lens")
    return make_record(split.train, split.test, split.test_labels, list(features.columns), path, "tab",
                       [numeric], dataset=file_name, meta_file=str(root / meta_file), train_lens=train_len,
                       n_rows=len(wide), label_column=label_column, if_univariate=univariate,
                       meta_length=_optional_int(row.get("length")), first_date=str(dates[0]),
                       first_test_date=str(dates[train_len]), train_anomalies=int(split.train_labels.sum()))


def _meta_row(path: Path, name: str) -> dict:
    """The meta-table row whose ``file_name`` is ``name`` (``.csv`` added when missing)."""
    meta = read_csv(path)
    for column in ("file_name", "train_lens"):
        if column not in meta.columns:
            raise DataValidationError(f"{path}: no column '{column}'; expected the columns file_name, "
                                      f"if_univariate, train_lens (found {name_list(list(meta.columns), 10)})")
    wanted = Path(str(name)).name
    wanted = wanted if wanted.endswith(".csv") else wanted + ".csv"
    files = meta["file_name"].astype(str).str.strip()
    rows = meta[files == wanted]
    if len(rows) == 0:
        raise DataValidationError(f"{path}: no row with file_name '{wanted}'; available: {name_list(files.tolist())}")
    if len(rows) > 1:
        raise DataValidationError(f"{path}: {len(rows)} rows with file_name '{wanted}'; expected exactly one")
    return rows.iloc[0].to_dict()


def _flag(value, path: Path, file_name: str) -> bool | None:
    """``if_univariate`` as a bool (True/False, 1/0, any case); None when the column or the value is absent."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    raise DataValidationError(f"{path}: field 'if_univariate'={value!r} for '{file_name}'; expected True or False")


def _integer(value, path: Path, file_name: str, field: str) -> int:
    """An integer-valued meta field; DataValidationError naming the file, the row and the field otherwise."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) or float(number) != int(number):
        raise DataValidationError(f"{path}: field '{field}'={value!r} for '{file_name}'; expected an integer")
    return int(number)


def _optional_int(value) -> int | None:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return None if pd.isna(number) else int(number)


def _series_path(root: Path, file_name: str, univariate: bool | None) -> Path:
    """The first existing ``<root>/<folder>/<file_name>``; the preferred folder follows ``if_univariate``."""
    folders = list(TAB_FOLDERS)
    if univariate:
        folders[0], folders[1] = folders[1], folders[0]
    candidates = [(root if folder == "." else root / folder) / file_name for folder in folders]
    for path in candidates:
        if path.is_file():
            return path
    raise DataValidationError(f"{root}: series file '{file_name}' not found; looked for "
                              f"{', '.join(str(p.relative_to(root)) for p in candidates)}; it is listed in the meta "
                              "table, so expected it in one of them: put TAB's file there or choose another data.name")


def _pivot(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Long ``date,data,cols`` rows to a wide (T, K) frame (rows and columns in order of first appearance).

    Returns the frame, the (T,) dates and the (T, K) int64 line of the file each value comes from. Raises when a
    (date, column) pair is missing or repeated, or a ``data`` cell is neither empty nor a number (naming its line).
    """
    for column in ("data", "cols"):
        if column not in frame.columns:
            raise DataValidationError(f"{path}: no column '{column}'; expected the long format date,data,cols "
                                      f"(found {name_list(list(frame.columns), 10)})")
    cols = frame["cols"].astype(str)
    keys = frame["date"] if "date" in frame.columns else cols.groupby(cols, sort=False).cumcount()
    row_of, dates = pd.factorize(keys, sort=False)
    col_of, names = pd.factorize(cols, sort=False)
    file_lines = data_lines(frame.index)
    if (row_of < 0).any():
        raise DataValidationError(f"{path}: field 'date' is empty at line {file_lines[np.argmax(row_of < 0)]} of the "
                                  "file; expected a date on every row")
    cell = row_of.astype(np.int64) * len(names) + col_of
    _check_unique(cell, dates, names, path)
    data = numbers(frame["data"], path, file_lines)
    values = np.full(len(dates) * len(names), np.nan)
    values[cell] = data
    lines = np.zeros(len(values), dtype=np.int64)
    lines[cell] = file_lines
    _check_complete((lines > 0).reshape(len(dates), len(names)), dates, names, path)
    wide = pd.DataFrame(values.reshape(len(dates), len(names)), columns=list(names))
    return wide, np.asarray(dates), lines.reshape(len(dates), len(names))


def _check_unique(cell: np.ndarray, dates, names, path: Path) -> None:
    repeated = pd.Series(cell).duplicated().to_numpy()
    if repeated.any():
        first = int(cell[np.argmax(repeated)])
        date, column = dates[first // len(names)], names[first % len(names)]
        raise DataValidationError(f"{path}: column '{column}' has more than one value at date '{date}' "
                                  f"({int(repeated.sum())} repeated (date, column) pairs in all); "
                                  "expected one value per date and column")


def _check_complete(present: np.ndarray, dates, names, path: Path) -> None:
    if present.all():
        return
    t, k = np.argwhere(~present)[0]
    raise DataValidationError(f"{path}: column '{names[k]}' has no value at date '{dates[t]}' "
                              f"({int((~present).sum())} (date, column) pairs missing in all); "
                              "expected every column at every date")


def _label_column(columns: list[str], path: Path) -> str:
    """The ``label`` column (any case); without one, the last column (TAB's ``read_data`` convention)."""
    for column in columns:
        if column.strip().lower() == LABEL:
            return column
    if len(columns) < 2:
        raise DataValidationError(f"{path}: only the column '{columns[0]}'; expected channel(s) plus a 'label' column")
    return columns[-1]


def _check_univariate(univariate: bool | None, n_channels: int, path: Path, meta: Path) -> None:
    if univariate and n_channels != 1:
        raise DataValidationError(f"{path}: {n_channels} channels but {meta} says if_univariate=True; "
                                  "expected one channel plus the label")
