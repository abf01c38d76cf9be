"""GECCO Industrial Challenge 2018 (drinking-water quality, 9 sensors, one row a minute).

Layout: one CSV in the folder (the challenge calls it ``waterDataTraining.csv``; the copy converted from the
challenge's RDS file is ``waterDataTraining_from_RDS.csv``) with the header

    Time,Tp,Cl,pH,Redox,Leit,Trueb,Cl_2,Fm,Fm_2,EVENT

``Time`` is a date-time (``2016-08-03 09:49:00``), the nine sensors are numbers with gaps (1,045 of the 139,566
rows of the challenge file have at least one missing value) and ``EVENT`` is the label, written ``TRUE``/``FALSE``
(R), ``True``/``False`` (pandas) or ``1``/``0``. An unnamed first column holding the row index, as written by R's
``write.csv`` or pandas' ``to_csv`` with the index, is ignored. Column names are compared without surrounding spaces.

The file has no train/test split of its own: rows are put in time order and the first ``int(n * train_fraction)``
rows are the training part, the rest the test part (TAB's convention). The training part keeps its labelled events
(unsupervised setting, as TAB); their count is ``meta["train_anomalies"]``. With the default ``missing="drop"`` the
challenge file gives TAB's GECCO: 138,521 rows, 69,260 train and 69,261 test rows.

This module also holds the helpers the other single-file sources (:mod:`~fsad.data.sources.cicids`,
:mod:`~fsad.data.sources.genesis`) share: column lookup, time parsing and ordering, and the time-order split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.tabular import make_record, numeric_matrix, read_csv, require_folder

GECCO_FILE = "waterDataTraining.csv"
GECCO_TIME = "Time"
GECCO_LABEL = "EVENT"
GECCO_CHANNELS = ("Tp", "Cl", "pH", "Redox", "Leit", "Trueb", "Cl_2", "Fm", "Fm_2")
EVENT_VALUES = {"true": 1, "false": 0, "1": 1, "0": 0, "1.0": 1, "0.0": 0}


def load_gecco(root: str | Path, file: str | None = None, missing: str = "drop", train_fraction: float = 0.5,
               train_rows: int | None = None) -> SeriesRecord:
    """Read the GECCO 2018 water-quality CSV from ``root`` and split it in time order.

    Args:
        root: folder holding the CSV.
        file: the CSV's name inside ``root``; ``None`` takes the folder's only ``*.csv`` file.
        missing: error | ffill | zero | drop (see :func:`~fsad.data.sources.tabular.numeric_matrix`); ``drop``
            removes the rows with a missing sensor value, as TAB did.
        train_fraction: share of the (kept, time-ordered) rows used for training.
        train_rows: exact number of training rows; overrides ``train_fraction`` when given.

    Returns:
        A validated record: train (T, 9) and test (T', 9) float32, test_labels (T',) int8 from ``EVENT``.
    """
    root = require_folder(root, "GECCO", (file or GECCO_FILE,))
    path = root / file if file else single_csv(root, "GECCO")
    frame = without_index_columns(read_csv(path))
    time_name = find_column(frame, GECCO_TIME, path)
    label_name = find_column(frame, GECCO_LABEL, path)
    labels = event_labels(frame[label_name], path, label_name)
    features = frame.drop(columns=[time_name, label_name])
    return ordered_record(features, labels, parse_times(frame[time_name], path, time_name), path, missing, "gecco",
                          train_fraction, train_rows)


def event_labels(column: pd.Series, path: Path, name: str) -> np.ndarray:
    """(T,) int8 0/1 from a boolean column written TRUE/FALSE, True/False or 1/0; other values are an error."""
    text = pd.Series([str(v).strip().lower() for v in column.to_numpy(dtype=object)], dtype=object)
    unknown = sorted(set(text.unique()) - set(EVENT_VALUES))
    if unknown:
        raise DataValidationError(f"{path}: field '{name}' has values {unknown[:5]}; "
                                  "expected TRUE/FALSE, True/False or 1/0")
    return text.map(EVENT_VALUES).to_numpy(dtype=np.int8)


# --- helpers shared by the single-file sources (GECCO, CICIDS2017, Genesis) -------------------------------------


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
    would turn into year-day-month. Each distinct string is parsed once. Unreadable values are an error.
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
                                  f"row {row}: {column.iloc[row]!r}); expected dates or numbers")
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
        features: (T, C) feature columns, in file order.
        labels: (T,) int8 0/1 labels, in file order.
        times: (T,) sort keys (see :func:`parse_times`), or ``None`` to keep the file order.
        path: the file or folder named in errors and stored as the record's source.
        missing, train_fraction, train_rows: see :func:`load_gecco`.
        layout, meta: stored in the record's meta, with the row counts of every step.

    The sort is stable (equal times keep file order) and runs before the missing-value policy, so ``ffill`` fills
    from the previous row in time; row numbers in ``missing="error"`` messages count rows in time order.
    """
    raw_rows = len(features)
    order = np.arange(raw_rows) if times is None else np.argsort(times.to_numpy(), kind="stable")
    reordered = bool((order != np.arange(raw_rows)).any())
    numeric = numeric_matrix(features.iloc[order].reset_index(drop=True), path, missing)
    kept = np.asarray(labels, dtype=np.int8)[order][numeric.rows]
    if len(kept) < 2:
        raise DataValidationError(f"{path}: {len(kept)} of {raw_rows} rows left after the missing-value policy "
                                  f"'{missing}'; expected at least 2 (one train, one test row)")
    cut = split_point(len(kept), train_fraction, train_rows, path)
    return make_record(numeric.values[:cut], numeric.values[cut:], kept[cut:], list(features.columns), path, layout,
                       numeric.changed, missing_policy=missing, raw_rows=raw_rows, rows=len(kept),
                       rows_dropped=raw_rows - len(kept), reordered=reordered, train_rows=cut,
                       test_rows=len(kept) - cut, train_anomalies=int(kept[:cut].sum()),
                       test_anomalies=int(kept[cut:].sum()), anomaly_ratio=float(kept.mean()), **meta)
