"""A cell that is not a number names the file, its line (counted from 1, header included), the column and the value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.cicids import load_cicids
from fsad.data.sources.gecco import load_gecco
from fsad.data.sources.nab import load_nab
from fsad.data.sources.psm import load_psm
from fsad.data.sources.smd import load_smd
from fsad.data.sources.swat import load_swat
from fsad.data.sources.tab import load_tab


def message(call) -> str:
    with pytest.raises(DataValidationError) as err:
        call()
    return str(err.value)


def not_a_number(path: Path, line: int, column: str, value: str) -> str:
    return (f"{path}: line {line} of the file, column '{column}': {value!r} is not a number (1 such cells in that "
            "column); expected a number or an empty cell")


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_psm_sensor_cell_and_label_cell(tmp_path: Path):
    train = write(tmp_path / "train.csv", ["timestamp_(min),s1,s2", "0,1.0,2.0", "1,1.1,2.1", "2,1.2,2.2",
                                           "3,1.3,8.3a", "4,1.4,2.4"])
    write(tmp_path / "test.csv", ["timestamp_(min),s1,s2", "0,1,2", "1,1,2", "2,1,2"])
    labels = write(tmp_path / "test_label.csv", ["timestamp_(min),label", "0,0", "1,1x", "2,0"])
    assert message(lambda: load_psm(tmp_path)) == not_a_number(train, 5, "s2", "8.3a")
    write(train, ["timestamp_(min),s1,s2", "0,1.0,2.0", "1,1.1,2.1"])
    assert message(lambda: load_psm(tmp_path)) == not_a_number(labels, 3, "label", "1x")


def test_gecco_cell_is_named_by_its_file_line_although_rows_are_sorted_by_time(tmp_path: Path):
    path = write(tmp_path / "water.csv", ["Time,Tp,Cl,EVENT", "2017-01-01 00:02:00,1,2,FALSE",
                                          "2017-01-01 00:01:00,1,oops,FALSE", "2017-01-01 00:00:00,1,2,TRUE",
                                          "2017-01-01 00:03:00,1,2,FALSE"])
    assert message(lambda: load_gecco(tmp_path)) == not_a_number(path, 3, "Cl", "oops")


def test_swat_itrust_line_counts_the_grouping_row_above_the_header(tmp_path: Path):
    header = "Timestamp,FIT101,LIT101,Normal/Attack"
    write(tmp_path / "SWaT_Dataset_Normal_v1.csv", [",P1,P1,", header, "t0,2.4,522.8,Normal", "t1,2.5,52a,Normal"])
    write(tmp_path / "SWaT_Dataset_Attack_v0.csv", [header, "t0,2.1,500.0,Normal", "t1,0.0,501.0,Attack"])
    path = tmp_path / "SWaT_Dataset_Normal_v1.csv"
    assert message(lambda: load_swat(tmp_path, layout="itrust")) == not_a_number(path, 4, "LIT101", "52a")


def test_smd_metric_and_label_files(tmp_path: Path):
    folder = tmp_path / "ServerMachineDataset"
    row = ",".join(["0.5"] * 38)
    write(folder / "train" / "machine-1-1.txt", [row, row[:-3] + "8.3a", row])
    write(folder / "test" / "machine-1-1.txt", [row, row])
    write(folder / "test_label" / "machine-1-1.txt", ["0", "x"])
    assert message(lambda: load_smd(tmp_path)) == not_a_number(folder / "train" / "machine-1-1.txt", 2, "metric_37",
                                                                "8.3a")
    write(folder / "train" / "machine-1-1.txt", [row])
    assert message(lambda: load_smd(tmp_path)) == not_a_number(folder / "test_label" / "machine-1-1.txt", 2, "label",
                                                                "x")


def test_tab_long_format_data_cell(tmp_path: Path):
    write(tmp_path / "DETECT_META.csv", ["file_name,train_lens,if_univariate", "T.csv,1,False"])
    path = write(tmp_path / "multi_ts" / "T.csv", ["date,data,cols", "d0,1,a", "d1,2,a", "d2,3,a", "d0,0,label",
                                                   "d1,1e,label", "d2,0,label"])
    assert message(lambda: load_tab(tmp_path, "T")) == not_a_number(path, 6, "data", "1e")


def test_nab_value_cell(tmp_path: Path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps({"t/a.csv": []}))
    path = write(tmp_path / "data" / "t" / "a.csv", ["timestamp,value", "2014-01-01 00:00:00,1",
                                                     "2014-01-01 00:05:00,--", "2014-01-01 00:10:00,3"])
    assert message(lambda: load_nab(tmp_path, "t/a.csv")) == not_a_number(path, 3, "value", "--")


def test_cicids_mostly_numeric_column_is_checked_not_dropped(tmp_path: Path):
    path = write(tmp_path / "a.csv", ["Timestamp,Src IP,Flow Duration,Label", "2017-07-03 09:00:00,1.2.3.4,10,BENIGN",
                                      "2017-07-03 09:01:00,1.2.3.5,8.3a,BENIGN", "2017-07-03 09:02:00,1.2.3.6,12,x"])
    assert message(lambda: load_cicids(tmp_path, drop_columns=())) == not_a_number(path, 3, "Flow Duration", "8.3a")
