"""Genesis demonstrator (Lemgo smart-factory sorting machine; Kaggle "Genesis demonstrator data for machine
learning"), the labelled anomaly file.

Layout: ``Genesis_AnomalyLabels.csv``, 16,220 rows (one a sample), 20 columns:

    Timestamp, MotorData.ActCurrent, MotorData.ActPosition, MotorData.ActSpeed, MotorData.IsAcceleration,
    MotorData.IsForce, MotorData.Motor_Pos1reached, ..._Pos2reached, ..._Pos3reached, ..._Pos4reached,
    NVL_Recv_Ind.GL_Metall, NVL_Recv_Ind.GL_NonMetall, NVL_Recv_Storage.GL_I_ProcessStarted,
    NVL_Recv_Storage.GL_I_Slider_IN, NVL_Recv_Storage.GL_I_Slider_OUT, NVL_Recv_Storage.GL_LightBarrier,
    NVL_Send_Storage.ActivateStorage, PLC_PRG.Gripper, PLC_PRG.MaterialIsMetal, Label

``Timestamp`` is in Unix seconds (a date-time text is read too), the 18 sensor and actuator columns are numbers
(motor values and 0/1 signals) and ``Label`` is 0 for normal rows and the anomaly type otherwise (values 1 and 2,
50 rows or 0.31 % in all, TAB's ratio); every non-zero value becomes 1.
Any other columns are channels too; an unnamed index column is ignored. The sibling file
``Genesis_StateMachineLabel.csv`` has the same layout but its ``Label`` holds machine states 0-8, not anomalies.

The file has no split: rows are put in time order and the first ``int(n * train_fraction)`` are training rows.
TAB's Genesis keeps 3,604 training and 12,616 test rows of 16,220; the default ``train_fraction=0.2222`` gives
``int(16220 * 0.2222) = 3604`` (any value in [3604/16220, 3605/16220) does), or pass ``train_rows=3604`` to fix the
count whatever the file's length. Labelled rows in the training part stay and are counted in
``meta["train_anomalies"]``. Genesis has no missing values, so ``missing="error"`` is the default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.single_table import find_column, ordered_record, parse_times, without_index_columns
from fsad.data.sources.csvfile import cell_text, data_lines, read_csv
from fsad.data.sources.tabular import require_folder

GENESIS_FILE = "Genesis_AnomalyLabels.csv"
GENESIS_TIME = "Timestamp"
TAB_TRAIN_FRACTION = 0.2222
TAB_TRAIN_ROWS = 3604


def load_genesis(root: str | Path, file: str = GENESIS_FILE, label_column: str = "Label", missing: str = "error",
                 train_fraction: float = TAB_TRAIN_FRACTION, train_rows: int | None = None) -> SeriesRecord:
    """Read the Genesis demonstrator's labelled CSV from ``root`` and split it in time order.

    Args:
        root: folder holding ``file``.
        file: the CSV's name.
        label_column: the label column (0 = normal, other non-negative integers = anomaly types).
        missing: error | ffill | zero | drop (see :func:`~fsad.data.sources.tabular.numeric_matrix`).
        train_fraction: share of the time-ordered rows used for training (default: TAB's 3,604 of 16,220).
        train_rows: exact number of training rows; overrides ``train_fraction``.

    Returns:
        A validated record: train (T, 18) and test (T', 18) float32, test_labels (T',) int8; ``meta["label_counts"]``
        counts the file's original label values (before any missing-value policy).
    """
    root = require_folder(root, "Genesis", (file,))
    path = root / file
    frame = without_index_columns(read_csv(path))
    label_name = find_column(frame, label_column, path)
    time_name = find_column(frame, GENESIS_TIME, path)
    kinds = anomaly_kinds(frame[label_name], path, label_name)
    counts = {int(k): int(v) for k, v in pd.Series(kinds).value_counts().sort_index().items()}
    return ordered_record(frame.drop(columns=[time_name, label_name]), (kinds != 0).astype(np.int8),
                          parse_times(frame[time_name], path, time_name), path, missing, "genesis", train_fraction,
                          train_rows, label_counts=counts)


def anomaly_kinds(column: pd.Series, path: Path, name: str) -> np.ndarray:
    """(T,) int64 label values; DataValidationError naming the column unless all are non-negative integers."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"{path}: field '{name}' has {int(bad.sum())} values that are not labels (first at "
                                  f"line {data_lines(column.index)[row]} of the file: {cell_text(column.iloc[row])}); "
                                  "expected 0 (normal) or a positive integer")
    return values.astype(np.int64)
