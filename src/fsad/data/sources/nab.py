"""NAB (Numenta Anomaly Benchmark): 58 univariate series with anomaly windows.

Layout (the ``data/`` and ``labels/`` folders of github numenta/NAB, copied as-is)::

    <root>/data/<category>/<name>.csv        columns timestamp,value; e.g. data/realKnownCause/nyc_taxi.csv
    <root>/labels/combined_windows.json      {"<category>/<name>.csv": [[start, end], ...], ...}; the window ends
                                             are timestamps like "2014-02-19 10:50:00.000000"

A series is named by its key in the labels file, ``"<category>/<name>.csv"`` (the ``.csv`` may be left off).
Labels: 1 for every row whose timestamp lies inside a window, both ends included.

NAB has no training split. Here the first ``int(n * train_fraction)`` rows are the training part and the rest is
the test part. The default 0.15 is NAB's ``probationaryPercent``: NAB's scorer ignores detections in that
opening stretch so detectors can learn. NAB caps that stretch at ``0.15 * 5000 = 750`` rows
(``min(floor(0.15 * n), 750)``), so the two agree only for series of at most 5,000 rows. The cap is not applied
here, and ``meta['nab_probationary_rows']`` records NAB's own value. Labelled rows that fall in the training part
stay in it and are counted in ``meta['train_anomalies']``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.single_table import split_at
from fsad.data.sources.csvfile import data_lines, read_csv
from fsad.data.sources.tabular import make_record, name_list, numeric_matrix, require_folder

NAB_FILES = ("data/<category>/<name>.csv", "labels/combined_windows.json")
WINDOWS_FILE = Path("labels") / "combined_windows.json"
PROBATION_PERCENT = 0.15
PROBATION_CAP_ROWS = 5000


def nab_series(root: str | Path) -> list[str]:
    """All series keys (``"<category>/<name>.csv"``) of ``<root>/labels/combined_windows.json``, sorted."""
    return sorted(_read_windows(require_folder(root, "NAB", NAB_FILES)))


def load_nab(root: str | Path, series: str, train_fraction: float = PROBATION_PERCENT,
             missing: str = "error") -> SeriesRecord:
    """Read the NAB series ``series`` (e.g. ``"realKnownCause/nyc_taxi.csv"``) as one channel named ``value``.

    Returns train (int(n * train_fraction), 1), test (n - that, 1) and test_labels (n - that,) int8 from the
    windows. ``missing`` = error | ffill | zero | drop (see :func:`numeric_matrix`; NAB itself has no gaps).
    """
    root = require_folder(root, "NAB", NAB_FILES)
    if not 0.0 < train_fraction < 1.0:
        raise DataValidationError(f"{root}: field 'train_fraction'={train_fraction}; expected a number in (0, 1)")
    all_windows = _read_windows(root)
    key = _series_key(root, series, all_windows)
    path = root / "data" / key
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found; series '{key}' is listed in {root / WINDOWS_FILE} but its "
                                  "data file is absent; expected data/<category>/<name>.csv for every listed series: "
                                  "restore it (data.download=true fetches NAB's files) or choose another data.series")
    frame = read_csv(path)
    if "value" not in frame.columns or "timestamp" not in frame.columns:
        raise DataValidationError(f"{path}: columns {list(frame.columns)}; expected timestamp,value")
    stamps = _timestamps(frame["timestamp"], path, "timestamp", data_lines(frame.index))
    windows = all_windows[key]
    labels = window_labels(stamps, windows, root / WINDOWS_FILE, key)
    numeric = numeric_matrix(frame[["value"]], path, missing)
    n_rows = len(frame)
    train_len = int(n_rows * train_fraction)
    split = split_at(numeric, labels, train_len, n_rows, path, "train_fraction")
    first_test = str(pd.Timestamp(stamps[train_len]))
    return make_record(split.train, split.test, split.test_labels, ["value"], path, "nab", [numeric],
                       series=key, category=key.split("/")[0], n_rows=n_rows, train_fraction=train_fraction,
                       train_len=train_len, n_windows=len(windows), windows=[list(w) for w in windows],
                       train_anomalies=int(split.train_labels.sum()), first_test_timestamp=first_test,
                       nab_probationary_rows=nab_probationary_rows(n_rows))


def nab_probationary_rows(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """NAB's probationary period in rows: ``min(floor(percent * n_rows), percent * 5000)``."""
    return int(min(np.floor(percent * n_rows), percent * PROBATION_CAP_ROWS))


def window_labels(stamps: np.ndarray, windows: list, source: Path, key: str) -> np.ndarray:
    """(n,) int8: 1 where a (n,) datetime64 ``stamps`` lies in some ``[start, end]`` window (ends inclusive)."""
    labels = np.zeros(len(stamps), dtype=bool)
    for i, window in enumerate(windows):
        if not isinstance(window, (list, tuple)) or len(window) != 2:
            raise DataValidationError(f"{source}: window {i} of '{key}' is {window!r}; expected [start, end]")
        start, end = _timestamps(pd.Series(window), source, f"{key} window {i}")
        if start > end:
            raise DataValidationError(f"{source}: window {i} of '{key}' starts after it ends ({window!r})")
        labels |= (stamps >= start) & (stamps <= end)
    return labels.astype(np.int8)


def _read_windows(root: Path) -> dict[str, list]:
    path = root / WINDOWS_FILE
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found; expected NAB's anomaly windows per series")
    try:
        windows = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataValidationError(f"{path}: cannot be read as JSON ({err})") from err
    if not isinstance(windows, dict) or not all(isinstance(v, list) for v in windows.values()):
        raise DataValidationError(f"{path}: expected an object mapping '<category>/<name>.csv' to a list of windows")
    return windows


def _series_key(root: Path, series: str, windows: dict[str, list]) -> str:
    """``series`` as a labels-file key; DataValidationError for an unknown or unlabelled series."""
    key = str(series).strip().replace("\\", "/")
    key = key if key.endswith(".csv") else key + ".csv"
    if key in windows:
        return key
    if (root / "data" / key).is_file():
        raise DataValidationError(f"{root / WINDOWS_FILE}: series '{key}' is missing from the labels file "
                                  f"(its data file exists); expected a window list for every series")
    raise DataValidationError(f"{root}: unknown NAB series '{series}'; expected '<category>/<name>.csv', "
                              f"available: {name_list(sorted(windows))}")


def _timestamps(values: pd.Series, source: Path, field: str, lines: np.ndarray | None = None) -> np.ndarray:
    """(n,) datetime64 from timestamp strings; DataValidationError naming the first one that does not parse.

    ``lines``: (n,) file line of each value (a data file), or None (a window's ends, named by position).
    """
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        where = f"line {lines[i]} of the file" if lines is not None else f"position {i}"
        raise DataValidationError(f"{source}: field '{field}' has {int(bad.sum())} unparsable timestamps (first at "
                                  f"{where}: {values.iloc[i]!r}); expected 'YYYY-MM-DD HH:MM:SS[.ffffff]'")
    return parsed.to_numpy()
