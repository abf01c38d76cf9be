"""SeriesRecord validation: a one-class test split is valid but reported once, whichever source built the record."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from fsad.data.benchmarks import NABDataModule
from fsad.data.record import SeriesRecord
from fsad.data.sources.nab import load_nab

UNDEFINED = "threshold-free metrics such as AUC-ROC are undefined and will be reported as null"


def record(labels: np.ndarray) -> SeriesRecord:
    return SeriesRecord(train=np.zeros((8, 2), np.float32), test=np.zeros((len(labels), 2), np.float32),
                        test_labels=labels.astype(np.int8), channel_names=["a", "b"], source="arrays")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fsad.data.record" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("value, what", [(0, "has no labelled anomaly"), (1, "is labelled anomalous in every row")])
def test_one_class_test_split_is_reported_once(caplog, value: int, what: str):
    one_class = record(np.full(4032, value))
    with caplog.at_level(logging.WARNING, logger="fsad.data.record"):
        one_class.validate()
        one_class.validate(expected_channels=2)
    assert warnings(caplog) == [f"arrays: the test split (4,032 rows) {what}; {UNDEFINED}"]


def test_both_classes_are_not_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="fsad.data.record"):
        record(np.r_[np.zeros(10), 1]).validate()
    assert warnings(caplog) == []


def test_nab_series_without_windows_is_reported_by_each_record_built(tmp_path: Path, caplog):
    """load_nab builds one record, the DataModule another (validated a second time in setup, without a warning)."""
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps({"t/flat.csv": []}))
    path = tmp_path / "data" / "t" / "flat.csv"
    path.parent.mkdir(parents=True)
    stamps = [f"2014-01-01 {h:02d}:00:00" for h in range(24)]
    path.write_text("timestamp,value\n" + "".join(f"{s},{i % 5}\n" for i, s in enumerate(stamps)))
    with caplog.at_level(logging.WARNING, logger="fsad.data.record"):
        load_nab(tmp_path, "t/flat.csv", train_fraction=0.5)
        dm = NABDataModule(tmp_path, series="t/flat.csv", train_fraction=0.5, n_channels=1, window=2)
        dm.setup()
    assert warnings(caplog) == [f"{path}: the test split (12 rows) has no labelled anomaly; {UNDEFINED}"] * 2
