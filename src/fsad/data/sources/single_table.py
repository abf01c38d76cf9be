"""Shared pieces of the sources that ship one table (or one series) without a train/test split of their own.

GECCO, CICIDS2017 and Genesis (time-ordered CSVs split at a fraction of their rows, TAB's convention), and NAB, UCR
and the TAB layout (split at a training length in file rows) use these: column lookup, time parsing, ordering and
the two ways of cutting a cleaned table into the training and test parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.csvfile import cell_text, data_lines
from fsad.data.sources.tabular import Numeric, make_record, numeric_matrix


def single_csv(root: Path, name: str) -> Path:
    """The only ``*.csv`` file in ``root``; DataValidationError listing what was found when there are 0 or several."""
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise DataValidationError(f"{root}: expected exactly one {name} *.csv file, found {len(found)} ({names}); "
                                  "pass file=<name> to choose one")
    return found[0]


def without_index_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with stripped column names and without unnamed index columns (``Unnamed: 0`` from R / pandas)."""
    frame = frame.rename(columns=lambda c: str(c).strip())
    unnamed = [c for c in frame.columns if c == "" or c.startswith("Unnamed:")]
    return frame.drop(columns=unnamed)


def find_column(frame: pd.DataFrame, name: str, path: Path) -> str:
    """The column of ``frame`` called ``name`` (case and surrounding spaces ignored); DataValidationError if none."""
    wanted = name.strip().casefold()
    for column in frame.columns:
        if str(column).strip().casefold() == wanted:
            return column
    raise DataValidationError(f"{path}: no '{name}' column; found {[str(c) for c in frame.columns][:12]}")


def parse_times(column: pd.Series, path: Path, name: str) -> pd.Series:
    """(T,) sort keys from a time column: numbers as they are (e.g. Unix seconds), text as datetime64.

    Text is read as ISO 8601 first (``2017-07-03 11:55:58.123``) and otherwise day-first in any common form
    (``3/7/2017 8:55``, ``03/07/2017 08:55:58 AM``): day-first reading must not be applied to ISO dates, which it
    would turn into year-day-month. Each distinct string is parsed once. Unreadable values are an error naming the
    line of the file (the column's index labels are the data rows, as read by
    :func:`~fsad.data.sources.csvfile.read_csv`).
    """
    if pd.api.types.is_numeric_dtype(column):
        keys = pd.Series(column.to_numpy(dtype=np.float64))
        bad = ~np.isfinite(keys.to_numpy())
    else:
        codes, uniques = pd.factorize(pd.Series(column.to_numpy(dtype=object)).map(_stripped))
        text = pd.Series(uniques, dtype=object)
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        rest = parsed.isna().to_numpy()
        if rest.any():
            parsed[rest] = pd.to_datetime(text[rest], format="mixed", dayfirst=True, errors="coerce")
        keys = pd.Series(parsed.to_numpy()[np.maximum(codes, 0)])
        bad = (codes < 0) | keys.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"{path}: field '{name}' has {int(bad.sum())} values that are not times (first at "
                                  f"line {data_lines(column.index)[row]} of the file: {cell_text(column.iloc[row])}); "
                                  "expected dates or numbers")
    return keys


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def split_point(n_rows: int, train_fraction: float, train_rows: int | None, source: Path | str) -> int:
    """Rows in the training part: ``train_rows`` when given, else ``int(n_rows * train_fraction)`` (TAB).

    Both parts must keep at least one row; DataValidationError naming ``source`` otherwise.
    """
    if train_rows is None:
        if not 0.0 < train_fraction < 1.0:
            raise DataValidationError(f"{source}: field 'train_fraction'={train_fraction}; expected 0 < value < 1")
        train_rows = int(n_rows * train_fraction)
    if not 0 < train_rows < n_rows:
        raise DataValidationError(f"{source}: {n_rows} rows cannot be split into {train_rows} training rows and "
                                  "a test part; expected at least one row in each")
    return int(train_rows)


def ordered_record(features: pd.DataFrame, labels: np.ndarray, times: pd.Series | None, path: Path, missing: str,
                   layout: str, train_fraction: float, train_rows: int | None, **meta) -> SeriesRecord:
    """Put rows in time order, apply the missing-value policy, split by time and build the record.

    Args:
        features: (T, C) feature columns, in file order; the index labels are the data rows of the file (as
            read), so errors name the file line.
        labels: (T,) int8 0/1 labels, in file order.
        times: (T,) sort keys (see :func:`parse_times`), or ``None`` to keep the file order.
        path: the file or folder named in errors and stored as the record's source.
        missing, train_fraction, train_rows: see :func:`~fsad.data.sources.gecco.load_gecco`.
        layout, meta: stored in the record's meta, with the row counts of every step.

    The sort is stable (equal times keep file order) and runs before the missing-value policy, so ``ffill`` fills
    from the previous row in time (and back-fills a gap at the start in time); errors name the line of the file.
    """
    raw_rows = len(features)
    order = np.arange(raw_rows) if times is None else np.argsort(times.to_numpy(), kind="stable")
    reordered = bool((order != np.arange(raw_rows)).any())
    numeric = numeric_matrix(features.iloc[order], path, missing)
    kept = np.asarray(labels, dtype=np.int8)[order][numeric.rows]
    if len(kept) < 2:
        raise DataValidationError(f"{path}: {len(kept)} of {raw_rows} rows left after the missing-value policy "
                                  f"'{missing}'; expected at least 2 (one train, one test row)")
    cut = split_point(len(kept), train_fraction, train_rows, path)
    return make_record(numeric.values[:cut], numeric.values[cut:], kept[cut:], list(features.columns), path, layout,
                       [numeric], missing_policy=missing, raw_rows=raw_rows, rows=len(kept),
                       rows_dropped=raw_rows - len(kept), reordered=reordered, train_rows=cut,
                       test_rows=len(kept) - cut, train_anomalies=int(kept[:cut].sum()),
                       test_anomalies=int(kept[cut:].sum()), anomaly_ratio=float(kept.mean()), **meta)


class Split(NamedTuple):
    """A series cut at a training length.

    Attributes:
        train: (T_train, C) float64 values of the rows before the cut.
        test: (T_test, C) float64 values of the rows from the cut on.
        train_labels: (T_train,) int8 labels of the training rows (kept for counting, not used for training).
        test_labels: (T_test,) int8 labels of the test rows.
    """

    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray


def split_at(numeric: Numeric, labels: np.ndarray, train_len: int, n_rows: int, source: Path | str,
             field: str) -> Split:
    """Cut a cleaned table at ``train_len`` rows of the *original* file.

    ``numeric`` comes from :func:`numeric_matrix` (its ``rows`` map kept rows to file rows, so a ``drop`` policy
    keeps the cut where the file puts it); ``labels`` is (n_rows,) int8, one per file row. ``field`` names the
    setting in the error raised when ``train_len`` is not strictly between 0 and ``n_rows``.
    """
    if not 0 < train_len < n_rows:
        raise DataValidationError(f"{source}: field '{field}' gives a training length of {train_len} rows; "
                                  f"expected strictly between 0 and the series length {n_rows}")
    in_train = numeric.rows < train_len
    kept = labels[numeric.rows].astype(np.int8)
    return Split(numeric.values[in_train], numeric.values[~in_train], kept[in_train], kept[~in_train])
