"""PSM (eBay pooled server metrics, 25 features).

Layout: ``train.csv`` and ``test.csv`` (column 0 ``timestamp_(min)``, then 25 features, with missing values) and
``test_label.csv`` (timestamp, label).
"""

from __future__ import annotations

from pathlib import Path

from fsad.data.record import SeriesRecord
from fsad.data.sources.csvfile import read_csv
from fsad.data.sources.tabular import binary_labels, make_record, numeric_matrix, require_folder

PSM_FILES = ("train.csv", "test.csv", "test_label.csv")


def load_psm(root: str | Path, missing: str = "ffill") -> SeriesRecord:
    """Read PSM from ``root``; ``missing`` = error | ffill | zero | drop (see :func:`numeric_matrix`)."""
    root = require_folder(root, "PSM", PSM_FILES)
    train_df, test_df = read_csv(root / "train.csv"), read_csv(root / "test.csv")
    train = numeric_matrix(train_df.iloc[:, 1:], root / "train.csv", missing)
    test = numeric_matrix(test_df.iloc[:, 1:], root / "test.csv", missing)
    label_column = read_csv(root / "test_label.csv").iloc[:, -1]
    labels = binary_labels(label_column, root / "test_label.csv", len(test_df))[test.rows]
    return make_record(train.values, test.values, labels, list(train_df.columns[1:]), root, "psm", [train, test])
