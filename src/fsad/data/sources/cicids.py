"""CICIDS2017 network flows (CICFlowMeter features, one row a flow) as one time-ordered multivariate series.

Layout: every CSV matching ``pattern`` (default ``*.csv``) in the folder, read in sorted-name order; all files must
have the same columns. The releases differ in names and columns:

- original ``GeneratedLabelledFlows`` / ``TrafficLabelling`` (one file a day or half-day): ``Flow ID``,
  ``Source IP``, ``Source Port``, ``Destination IP``, ``Destination Port``, ``Protocol``, ``Timestamp``, 78
  features (with the duplicate ``Fwd Header Length.1``) and ``Label``; names carry leading spaces (``' Label'``),
  rate columns hold ``Infinity`` and ``NaN``, some files end with empty rows and a cp1252 dash in a label.
  ``Timestamp`` is day-first (``3/7/2017 8:55``, ``03/07/2017 08:55:58``) on a 12-hour clock without AM/PM.
- original ``MachineLearningCSV``: ``Destination Port``, the 77 other features and ``Label``; no ``Timestamp``.
- "improved" release (Engelen et al. 2021; the local sample in ``shared/data/CICIDS2017`` is a class-balanced
  sample of it, one file a class): ``id``, ``Flow ID``, ``Src IP``, ``Src Port``, ``Dst IP``, ``Dst Port``,
  ``Protocol``, ``Timestamp`` (ISO, ``2017-07-03 11:55:58.123``), 80 features, ``Label``, ``Attempted Category``.

Column names are stripped. ``Label`` is 0 for ``BENIGN`` (case-insensitive, stripped) and 1 for anything else.

Channels: every numeric column except

- always: ``Timestamp``, ``Label`` and ``Attempted Category`` (derived from the label, so a feature would leak it)
  and every non-numeric column (``Flow ID``, the IP addresses). A column whose cells are mostly numbers but not all
  (``8.3a`` among measurements) is an error naming the file, the line and the value, not a dropped channel;
- by default (``drop_columns=None`` -> :data:`IDENTIFIER_COLUMNS`): the row counter ``id``, source and destination
  ports and ``Protocol``. They are codes, not magnitudes: the distance between port 80 and 443 means nothing, yet
  after standard scaling such a channel weighs as much as a measured one, and the destination port almost names the
  attack (FTP-/SSH-Patator, web attacks). Pass ``drop_columns=()`` to keep them, or any other list of names.

On the improved sample this gives 81 channels; the original ``MachineLearningCSV`` files give 77 (78 with
``drop_columns=()``, which keeps ``Destination Port``). TAB's CICIDS has 72 channels and 170,231 rows, which fits
the original Thursday-morning file (``Thursday-WorkingHours-Morning-WebAttacks``, 170,366 flows, 1.28 % attacks)
after removing rows with NaN/inf and some columns TAB does not document; the loader does not force that count.

Rows are put in time order by ``Timestamp`` (stable: equal times keep file and row order). The original 12-hour
times are read as afternoon when the hour is 1-7 and no AM/PM is written (capture ran 08:55-17:xx local time);
the count of corrected rows is ``meta["times_read_as_pm"]``. Without a ``Timestamp`` column the order is the
sorted-name file order (``meta["time_order"] == "file"``): name or select the files so that order is right.
The first ``int(n * train_fraction)`` rows are training rows (attacks in them are kept and counted in
``meta["train_anomalies"]``), the rest the test part. ``missing="drop"`` (default) removes rows with NaN/inf.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.single_table import find_column, ordered_record, parse_times
from fsad.data.sources.csvfile import data_lines, numbers, read_csv
from fsad.data.sources.tabular import numeric_matrix, require_folder

CICIDS_LABEL = "Label"
CICIDS_TIME = "Timestamp"
BENIGN = "benign"
LABEL_DERIVED_COLUMNS = (CICIDS_LABEL, "Attempted Category")
IDENTIFIER_COLUMNS = ("id", "Flow ID", "Src IP", "Source IP", "Dst IP", "Destination IP", "Src Port", "Source Port",
                      "Dst Port", "Destination Port", "Protocol")
_NO_MERIDIEM = r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"


def load_cicids(root: str | Path, missing: str = "drop", train_fraction: float = 0.5,
                drop_columns: tuple[str, ...] | list[str] | None = None, train_rows: int | None = None,
                pattern: str = "*.csv") -> SeriesRecord:
    """Read every CICIDS2017 CSV in ``root`` as one time-ordered series and split it in time order.

    Args:
        root: folder holding the CSV files.
        missing: error | ffill | zero | drop (see :func:`~fsad.data.sources.tabular.numeric_matrix`).
        train_fraction: share of the kept, time-ordered rows used for training.
        drop_columns: numeric columns not used as channels (names compared stripped, case-insensitive; absent
            names are ignored); ``None`` = :data:`IDENTIFIER_COLUMNS`.
        train_rows: exact number of training rows; overrides ``train_fraction``.
        pattern: glob of the files to read (e.g. ``Thursday-WorkingHours-Morning*.csv`` for one capture).

    Returns:
        A validated record: train (T, C) and test (T', C) float32, test_labels (T',) int8 (1 = attack flow).
    """
    root = require_folder(root, "CICIDS2017", (pattern,))
    paths = sorted(root.glob(pattern))
    if not paths:
        raise DataValidationError(f"{root}: no files match '{pattern}'; expected CICFlowMeter CSV exports")
    frames, empty_rows = _read_all(paths)
    features, dropped = _feature_columns(frames, paths, IDENTIFIER_COLUMNS if drop_columns is None else drop_columns)
    if missing == "error":
        for path, frame in zip(paths, frames):
            numeric_matrix(frame[features], path, "error")
    labels, names = zip(*(_labels(frame, path) for path, frame in zip(paths, frames)))
    times, shifted = _times(frames, paths)
    table = pd.concat([frame[features] for frame in frames], ignore_index=True)
    classes = pd.Series(np.concatenate(names)).value_counts()
    return ordered_record(table, np.concatenate(labels), times, root, missing, "cicids", train_fraction, train_rows,
                          files=[p.name for p in paths], empty_rows=empty_rows, dropped_columns=dropped,
                          time_order="file" if times is None else CICIDS_TIME, times_read_as_pm=shifted,
                          class_counts={str(k): int(v) for k, v in classes.items()},
                          constant_channels=[c for c in features if table[c].nunique(dropna=False) <= 1])


def _read_all(paths: list[Path]) -> tuple[list[pd.DataFrame], int]:
    """The files as frames with stripped column names and without empty rows; all must share the columns.

    Each frame keeps its file's data-row numbers as index, so errors name the line of the file."""
    frames, empty_rows = [], 0
    for path in paths:
        frame = read_csv(path, low_memory=False, encoding_errors="replace").rename(columns=lambda c: str(c).strip())
        full = frame.dropna(how="all")
        empty_rows += len(frame) - len(full)
        if list(full.columns) != list(frames[0].columns if frames else full.columns):
            missing = sorted(set(frames[0].columns) - set(full.columns))
            extra = sorted(set(full.columns) - set(frames[0].columns))
            raise DataValidationError(f"{path}: columns differ from {paths[0].name} (missing {missing[:5]}, extra "
                                      f"{extra[:5]}); expected every file of one release")
        frames.append(full)
    return frames, empty_rows


def _feature_columns(frames: list[pd.DataFrame], paths: list[Path], drop_columns) -> tuple[list[str], list[str]]:
    """(feature columns, dropped columns): numeric columns not named in the always- or ``drop_columns`` lists.

    A text column that is mostly numbers, in any of the files, raises the error of
    :func:`~fsad.data.sources.csvfile.numbers` for its first non-number.
    """
    names = (drop_columns,) if isinstance(drop_columns, str) else tuple(drop_columns)
    excluded = {str(c).strip().casefold() for c in (*LABEL_DERIVED_COLUMNS, CICIDS_TIME, *names)}
    first = frames[0]
    features, dropped = [], []
    for column in first.columns:
        if column.casefold() not in excluded:
            for frame, file in zip(frames, paths):
                _check_mostly_numeric(frame[column], file)
        numeric = all(pd.api.types.is_numeric_dtype(frame[column]) for frame in frames)
        (features if numeric and column.casefold() not in excluded else dropped).append(column)
    if not features:
        raise DataValidationError(f"{paths[0]}: no numeric feature columns left after dropping {dropped}")
    return features, dropped


def _check_mostly_numeric(column: pd.Series, path: Path) -> None:
    """Raise on the first non-number of a text column in which most non-empty cells are numbers."""
    if pd.api.types.is_numeric_dtype(column):
        return
    given = column.notna().to_numpy()
    parsed = pd.to_numeric(column, errors="coerce").notna().to_numpy()
    if parsed.sum() * 2 > given.sum():
        numbers(column, path)


def _labels(frame: pd.DataFrame, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """((T,) int8 0/1, (T,) class names) from the ``Label`` column; empty labels are an error."""
    column = frame[find_column(frame, CICIDS_LABEL, path)]
    empty = column.isna().to_numpy()
    if empty.any():
        raise DataValidationError(f"{path}: field '{CICIDS_LABEL}' is empty in {int(empty.sum())} rows (first at "
                                  f"line {data_lines(column.index)[np.argmax(empty)]} of the file); "
                                  "expected BENIGN or an attack name")
    names = np.array([str(v).strip() for v in column.to_numpy(dtype=object)], dtype=object)
    return np.array([n.casefold() != BENIGN for n in names], dtype=np.int8), names


def _times(frames: list[pd.DataFrame], paths: list[Path]) -> tuple[pd.Series | None, int]:
    """((T,) datetime64 sort keys of all files, rows read as afternoon); ``(None, 0)`` without ``Timestamp``."""
    if CICIDS_TIME.casefold() not in {c.casefold() for c in frames[0].columns}:
        return None, 0
    keys, shifted = [], 0
    for frame, path in zip(frames, paths):
        name = find_column(frame, CICIDS_TIME, path)
        times = parse_times(frame[name], path, name)
        pm = _afternoon(frame[name], times)
        keys.append(times + pd.to_timedelta(np.where(pm, 12, 0), unit="h"))
        shifted += int(pm.sum())
    return pd.concat(keys, ignore_index=True), shifted


def _afternoon(raw: pd.Series, times: pd.Series) -> np.ndarray:
    """(T,) bool: day-first 12-hour times without AM/PM whose hour is 1-7, i.e. afternoon in the capture."""
    if not pd.api.types.is_datetime64_any_dtype(times):
        return np.zeros(len(times), dtype=bool)
    text = pd.Series(raw.to_numpy(dtype=object)).astype(str).str.strip()
    hours = times.dt.hour.to_numpy()
    return text.str.match(_NO_MERIDIEM).to_numpy() & (hours >= 1) & (hours <= 7)
