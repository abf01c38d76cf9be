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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.single_table import find_column, ordered_record, parse_times, single_csv, without_index_columns
from fsad.data.sources.csvfile import data_lines, read_csv
from fsad.data.sources.tabular import require_folder

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
    """(T,) int8 0/1 from a boolean column written TRUE/FALSE, True/False or 1/0; other values are an error
    naming them and the line of the file of the first one."""
    text = pd.Series([str(v).strip().lower() for v in column.to_numpy(dtype=object)], dtype=object)
    unknown = ~text.isin(list(EVENT_VALUES)).to_numpy()
    if unknown.any():
        raise DataValidationError(f"{path}: field '{name}' has values {sorted(set(text[unknown]))[:5]} (first at line "
                                  f"{data_lines(column.index)[np.argmax(unknown)]} of the file); "
                                  "expected TRUE/FALSE, True/False or 1/0")
    return text.map(EVENT_VALUES).to_numpy(dtype=np.int8)
