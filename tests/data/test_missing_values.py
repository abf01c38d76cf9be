"""``missing=ffill``: a leading gap takes the column's first valid value (reported); an empty column is an error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.gecco import load_gecco
from fsad.data.sources.psm import load_psm
from fsad.data.sources.tab import load_tab


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_psm(root: Path, train: list[str]) -> Path:
    write(root / "test.csv", ["timestamp_(min),p,q", "0,1000.0,5", "1,,6", "2,1002.0,7"])
    write(root / "test_label.csv", ["timestamp_(min),label", "0,0", "1,1", "2,0"])
    return write(root / "train.csv", ["timestamp_(min),p,q"] + train)


def test_leading_gap_is_back_filled_with_the_first_valid_value_and_reported(tmp_path: Path, caplog):
    path = write_psm(tmp_path, ["0,,1", "1,,2", "2,1000.5,", "3,1001.0,4"])
    with caplog.at_level(logging.WARNING, logger="fsad.data.sources.tabular"):
        record = load_psm(tmp_path, missing="ffill")
    np.testing.assert_array_equal(record.train, [[1000.5, 1], [1000.5, 2], [1000.5, 2], [1001, 4]])
    np.testing.assert_array_equal(record.test, [[1000, 5], [1000, 6], [1002, 7]])
    assert record.meta["leading_values_backfilled"] == {"p": 2}
    assert record.meta["missing_values_filled"] == 4  # 3 in train.csv, 1 in test.csv
    assert [r.getMessage() for r in caplog.records if r.name == "fsad.data.sources.tabular"] == [
        f"{path}: 2 leading missing values back-filled with their column's first valid value (data.missing=ffill), "
        "per column: {'p': 2}"]


def test_entirely_missing_column_is_an_error_naming_file_and_column(tmp_path: Path):
    path = write_psm(tmp_path, ["0,,1", "1,,2", "2,inf,3"])
    for policy in ("ffill", "zero", "drop", "error"):
        with pytest.raises(DataValidationError) as err:
            load_psm(tmp_path, missing=policy)
        assert str(err.value) == (f"{path}: column 'p' has no valid value in its 3 rows (all empty, NaN or inf); "
                                  "expected at least one number (fill the column or remove it)")


def test_time_ordered_sources_back_fill_the_first_rows_in_time(tmp_path: Path):
    write(tmp_path / "water.csv", ["Time,Tp,Cl,EVENT", "2017-01-01 00:02:00,3,,FALSE",
                                   "2017-01-01 00:00:00,1,,FALSE", "2017-01-01 00:01:00,2,900,TRUE",
                                   "2017-01-01 00:03:00,4,,FALSE"])
    record = load_gecco(tmp_path, missing="ffill")
    np.testing.assert_array_equal(np.r_[record.train, record.test][:, 1], [900, 900, 900, 900])
    assert record.meta["leading_values_backfilled"] == {"Cl": 1} and record.meta["missing_values_filled"] == 3


def test_tab_long_format_leading_gap(tmp_path: Path):
    write(tmp_path / "DETECT_META.csv", ["file_name,train_lens,if_univariate", "T.csv,2,False"])
    write(tmp_path / "multi_ts" / "T.csv", ["date,data,cols", "d0,,a", "d1,,a", "d2,7.5,a", "d3,8,a",
                                            "d0,0,label", "d1,0,label", "d2,1,label", "d3,0,label"])
    record = load_tab(tmp_path, "T", missing="ffill")
    assert record.train[:, 0].tolist() == [7.5, 7.5] and record.test[:, 0].tolist() == [7.5, 8]
    assert record.meta["leading_values_backfilled"] == {"a": 2}
