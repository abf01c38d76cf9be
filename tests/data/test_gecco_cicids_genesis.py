"""GECCO, CICIDS2017 and Genesis loaders on files written here in each exact layout, and on the shared real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.cicids import load_cicids
from fsad.data.sources.gecco import GECCO_CHANNELS, load_gecco
from fsad.data.sources.single_table import split_point
from fsad.data.sources.genesis import TAB_TRAIN_ROWS, load_genesis
from tests.conftest import shared_path

# --------------------------------------------------------------------------------------------------- GECCO


def write_gecco(path: Path, events: list[str], nan_row: int | None = 5, na: str = "NA") -> None:
    """R's write.csv layout: an unnamed index column, Time, the 9 sensors (value = 10 * row id + channel), EVENT.

    Rows are written with ids 0..n-1 but rows 2 and 3 swapped (the file is not in time order); ``nan_row`` has no
    ``Cl`` value.
    """
    ids = list(range(len(events)))
    ids[2], ids[3] = ids[3], ids[2]
    lines = [",".join(['""', "Time", *GECCO_CHANNELS, "EVENT"])]
    for i in ids:
        values = [na if (i == nan_row and k == 1) else str(10 * i + k) for k in range(len(GECCO_CHANNELS))]
        lines.append(",".join([f'"{i + 1}"', f"2017-01-01 00:{i:02d}:00", *values, events[i]]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


EVENTS = ["FALSE", "TRUE", "FALSE", "FALSE", "FALSE", "FALSE", "TRUE", "FALSE"]


def test_gecco_sorts_by_time_drops_missing_rows_and_splits(tmp_path: Path):
    write_gecco(tmp_path / "waterDataTraining.csv", EVENTS)
    record = load_gecco(tmp_path)
    assert record.channel_names == list(GECCO_CHANNELS)
    # kept ids in time order: 0 1 2 3 4 6 7 (5 dropped); int(7 * 0.5) = 3 train rows
    np.testing.assert_array_equal(record.train[:, 0], [0, 10, 20])
    np.testing.assert_array_equal(record.test[:, 0], [30, 40, 60, 70])
    np.testing.assert_array_equal(record.test[:, 1], [31, 41, 61, 71])
    assert record.test_labels.tolist() == [0, 0, 1, 0]
    assert record.train.dtype == np.float32 and record.test_labels.dtype == np.int8
    meta = record.meta
    assert (meta["layout"], meta["raw_rows"], meta["rows"], meta["rows_dropped"]) == ("gecco", 8, 7, 1)
    assert meta["missing_values_filled"] == 1 and meta["missing_policy"] == "drop" and meta["reordered"]
    assert (meta["train_rows"], meta["test_rows"], meta["train_anomalies"], meta["test_anomalies"]) == (3, 4, 1, 1)
    assert meta["anomaly_ratio"] == pytest.approx(2 / 7)
    assert record.source == str(tmp_path / "waterDataTraining.csv")


def test_gecco_ffill_and_error_policies(tmp_path: Path):
    write_gecco(tmp_path / "water.csv", EVENTS)
    filled = load_gecco(tmp_path, missing="ffill")
    assert filled.test[1, 1] == 41.0  # id 5's Cl carried from id 4 (time order, not file order)
    assert filled.meta["missing_values_filled"] == 1 and filled.meta["rows"] == 8
    assert (len(filled.train), len(filled.test)) == (4, 4)
    assert filled.test_labels.tolist() == [0, 0, 1, 0]
    with pytest.raises(DataValidationError,
                       match=r"water.csv: 1 missing/inf values \(first at line 7 of the file, column 'Cl'\)"):
        load_gecco(tmp_path, missing="error")


@pytest.mark.parametrize("true, false", [("True", "False"), ("1", "0"), ("TRUE", "FALSE")])
def test_gecco_event_spellings(tmp_path: Path, true: str, false: str):
    write_gecco(tmp_path / "w.csv", [true if e == "TRUE" else false for e in EVENTS], nan_row=None)
    record = load_gecco(tmp_path, train_rows=2)
    assert record.test_labels.tolist() == [0, 0, 0, 0, 1, 0]
    assert record.meta["train_anomalies"] == 1


def test_gecco_bad_event_values_and_missing_columns(tmp_path: Path):
    write_gecco(tmp_path / "w.csv", ["maybe"] + EVENTS[1:])
    with pytest.raises(DataValidationError, match=r"w.csv: field 'EVENT' has values \['maybe'\] \(first at line 2 of "
                                                  r"the file\); expected TRUE"):
        load_gecco(tmp_path)
    frame = pd.read_csv(tmp_path / "w.csv")
    frame.drop(columns=["EVENT"]).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(DataValidationError, match=r"w.csv: no 'EVENT' column"):
        load_gecco(tmp_path)
    frame.drop(columns=["Time"]).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(DataValidationError, match=r"w.csv: no 'Time' column"):
        load_gecco(tmp_path)


def test_gecco_file_choice_and_folder_errors(tmp_path: Path):
    with pytest.raises(DataValidationError, match="GECCO folder not found"):
        load_gecco(tmp_path / "nope")
    with pytest.raises(DataValidationError, match=r"exactly one GECCO \*.csv file, found 0 \(none\)"):
        load_gecco(tmp_path)
    write_gecco(tmp_path / "a.csv", EVENTS)
    write_gecco(tmp_path / "b.csv", EVENTS, nan_row=None)
    with pytest.raises(DataValidationError, match=r"found 2 \(a.csv, b.csv\); pass file=<name>"):
        load_gecco(tmp_path)
    assert load_gecco(tmp_path, file="b.csv").meta["rows"] == 8
    with pytest.raises(DataValidationError, match=r"c.csv: file not found"):
        load_gecco(tmp_path, file="c.csv")


def test_split_point_rules(tmp_path: Path):
    assert split_point(138521, 0.5, None, "x") == 69260  # TAB: test = 69,261
    assert split_point(16220, 0.2222, None, "x") == TAB_TRAIN_ROWS
    assert split_point(10, 0.5, 7, "x") == 7
    for fraction, rows in ((1.0, None), (0.0, None), (0.5, 10), (0.05, None)):
        with pytest.raises(DataValidationError, match="x: "):
            split_point(10, fraction, rows, "x")
    write_gecco(tmp_path / "w.csv", EVENTS[:4], nan_row=None)
    with pytest.raises(DataValidationError, match=r"w.csv: 4 rows cannot be split into 4 training rows"):
        load_gecco(tmp_path, train_rows=4)


# --------------------------------------------------------------------------------------------------- CICIDS2017

TRAFFIC_HEADER = ("Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, "
                  "Flow Duration, Flow Bytes/s, Total Fwd Packets, Label")


def flow(duration: int, stamp: str, rate: str, label: str, port: int = 80) -> str:
    """One GeneratedLabelledFlows row; ``duration`` tags the row."""
    return (f"192.168.10.5-8.8.8.8-5000{duration}-{port}-6,192.168.10.5,5000{duration},8.8.8.8,{port},6,{stamp},"
            f"{duration},{rate},{duration % 7},{label}")


def write_traffic_labelling(root: Path) -> None:
    """Two original-release files: spaced names, Infinity/NaN rates, 12-hour times, an empty row, a cp1252 label."""
    root.mkdir(parents=True, exist_ok=True)
    benign = [flow(10, "3/7/2017 9:00", "1.5", "BENIGN"), flow(11, "3/7/2017 1:05", "Infinity", "BENIGN"),
              flow(12, "3/7/2017 8:55", "2.0", " benign ")]
    attacks = [flow(20, "03/07/2017 09:00:00", "3.0", "DoS Hulk"), flow(21, "4/7/2017 8:56", "NaN", "PortScan"),
               flow(22, "3/7/2017 12:30", "4.0", "BENIGN"), flow(23, "4/7/2017 9:10", "5.0", "Web Attack \u2013 XSS"),
               "," * 10]
    (root / "a_benign.csv").write_text("\n".join([TRAFFIC_HEADER, *benign]) + "\n")
    (root / "b_attacks.csv").write_bytes(("\n".join([TRAFFIC_HEADER, *attacks]) + "\n").encode("cp1252"))


def test_cicids_original_release_order_labels_and_infinities(tmp_path: Path):
    write_traffic_labelling(tmp_path)
    record = load_cicids(tmp_path)
    assert record.channel_names == ["Flow Duration", "Flow Bytes/s", "Total Fwd Packets"]
    # time order 12 (8:55) 10 (9:00, file a first) 20 (9:00:00) 22 (12:30) 11 (1:05 = 13:05) 21 23 (4 July);
    # 11 (Infinity) and 21 (NaN) dropped; int(5 * 0.5) = 2 train rows
    np.testing.assert_array_equal(record.train[:, 0], [12, 10])
    np.testing.assert_array_equal(record.test[:, 0], [20, 22, 23])
    np.testing.assert_array_equal(record.test[:, 1], [3.0, 4.0, 5.0])
    assert record.test_labels.tolist() == [1, 0, 1]
    meta = record.meta
    assert (meta["raw_rows"], meta["rows"], meta["rows_dropped"], meta["empty_rows"]) == (7, 5, 2, 1)
    assert (meta["train_anomalies"], meta["test_anomalies"], meta["times_read_as_pm"]) == (0, 2, 1)
    assert meta["files"] == ["a_benign.csv", "b_attacks.csv"] and meta["time_order"] == "Timestamp"
    assert meta["dropped_columns"] == ["Flow ID", "Source IP", "Source Port", "Destination IP", "Destination Port",
                                       "Protocol", "Timestamp", "Label"]
    assert meta["class_counts"]["BENIGN"] == 3 and meta["class_counts"]["benign"] == 1
    zero = load_cicids(tmp_path, missing="zero")
    np.testing.assert_array_equal(np.r_[zero.train[:, 0], zero.test[:, 0]], [12, 10, 20, 22, 11, 21, 23])
    np.testing.assert_array_equal(zero.test[:, 1], [4.0, 0.0, 0.0, 5.0])
    assert zero.test_labels.tolist() == [0, 0, 1, 1] and zero.meta["missing_values_filled"] == 2


def test_cicids_missing_policy_error_names_the_file_and_column(tmp_path: Path):
    write_traffic_labelling(tmp_path)
    with pytest.raises(DataValidationError, match=r"a_benign.csv: 1 missing/inf values \(first at line 3 of the file, "
                                                  r"column 'Flow Bytes/s'\)"):
        load_cicids(tmp_path, missing="error")


IMPROVED_HEADER = ("id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,"
                   "Label,Attempted Category")


def test_cicids_improved_release_iso_times_and_drop_columns(tmp_path: Path):
    rows = ["7,f,1.1.1.1,5003,2.2.2.2,443,6,2017-08-03 08:00:00.250,3,30,DDoS,-1",  # read day-first: 8 March
            "8,f,1.1.1.1,5002,2.2.2.2,80,6,2017-07-05 09:00:00.000,2,20,BENIGN,-1",
            "9,f,1.1.1.1,5001,2.2.2.2,21,17,2017-07-04 10:00:00.125,1,10,BENIGN,-1"]
    (tmp_path / "sample.csv").write_text("\n".join([IMPROVED_HEADER, *rows]) + "\n")
    record = load_cicids(tmp_path, train_fraction=0.34)
    assert record.channel_names == ["Flow Duration", "Total Fwd Packet"]
    np.testing.assert_array_equal(np.r_[record.train[:, 0], record.test[:, 0]], [1, 2, 3])
    assert len(record.train) == 1 and record.test_labels.tolist() == [0, 1]
    assert record.meta["times_read_as_pm"] == 0 and record.meta["constant_channels"] == []
    kept = load_cicids(tmp_path, drop_columns=(), train_fraction=0.34)
    assert kept.channel_names == ["id", "Src Port", "Dst Port", "Protocol", "Flow Duration", "Total Fwd Packet"]
    assert "Attempted Category" in kept.meta["dropped_columns"]  # label-derived: never a channel
    assert load_cicids(tmp_path, drop_columns=[" PROTOCOL "], train_fraction=0.34).n_channels == 5
    assert load_cicids(tmp_path, drop_columns="id", train_fraction=0.34).n_channels == 5


def test_cicids_without_timestamp_keeps_file_order(tmp_path: Path):
    header = " Destination Port, Flow Duration, Flow Bytes/s, Label"
    (tmp_path / "a.csv").write_text(f"{header}\n80,5,1.0,BENIGN\n80,4,Infinity,BENIGN\n")
    (tmp_path / "b.csv").write_text(f"{header}\n22,3,2.0,SSH-Patator\n22,2,3.0,BENIGN\n")
    record = load_cicids(tmp_path, drop_columns=())
    assert record.channel_names == ["Destination Port", "Flow Duration", "Flow Bytes/s"]
    np.testing.assert_array_equal(np.r_[record.train[:, 1], record.test[:, 1]], [5, 3, 2])
    assert record.test_labels.tolist() == [1, 0] and record.meta["time_order"] == "file"
    assert not record.meta["reordered"]


def test_cicids_errors(tmp_path: Path):
    with pytest.raises(DataValidationError, match="CICIDS2017 folder not found"):
        load_cicids(tmp_path / "nope")
    with pytest.raises(DataValidationError, match=r"no files match '\*.csv'"):
        load_cicids(tmp_path)
    (tmp_path / "a.csv").write_text("Timestamp,Flow Duration,Class\n2017-07-03 09:00:00,1,BENIGN\n")
    with pytest.raises(DataValidationError, match=r"a.csv: no 'Label' column"):
        load_cicids(tmp_path)
    (tmp_path / "a.csv").write_text("Timestamp,Flow Duration,Label\n2017-07-03 09:00:00,1,\n2017-07-03 09:01:00,2,x\n")
    with pytest.raises(DataValidationError,
                       match=r"a.csv: field 'Label' is empty in 1 rows \(first at line 2 of the file\)"):
        load_cicids(tmp_path)
    (tmp_path / "a.csv").write_text("Timestamp,Flow Duration,Label\nyesterday,1,BENIGN\n2017-07-03 09:01:00,2,x\n")
    with pytest.raises(DataValidationError, match=r"a.csv: field 'Timestamp' has 1 values that are not times"):
        load_cicids(tmp_path)
    (tmp_path / "a.csv").write_text("Timestamp,Flow Duration,Label\n2017-07-03 09:00:00,1,BENIGN\n")
    (tmp_path / "b.csv").write_text("Timestamp,Flow IAT Mean,Label\n2017-07-03 09:00:00,1,BENIGN\n")
    with pytest.raises(DataValidationError, match=r"b.csv: columns differ from a.csv \(missing \['Flow Duration'\]"):
        load_cicids(tmp_path)
    (tmp_path / "b.csv").unlink()
    (tmp_path / "a.csv").write_text("Timestamp,Flow Duration,Flow IAT Mean,Label\n2017-07-03 09:00:00,inf,1,BENIGN\n"
                                    "2017-07-03 09:01:00,2,NaN,x\n")
    with pytest.raises(DataValidationError, match=r"0 of 2 rows left after the missing-value policy 'drop'"):
        load_cicids(tmp_path)
    (tmp_path / "a.csv").write_text("Timestamp,Flow Duration,Label\n2017-07-03 09:00:00,inf,BENIGN\n"
                                    "2017-07-03 09:01:00,NaN,x\n")
    with pytest.raises(DataValidationError, match=r": column 'Flow Duration' has no valid value in its 2 rows"):
        load_cicids(tmp_path)


# --------------------------------------------------------------------------------------------------- Genesis

GENESIS_CHANNELS = [
    "MotorData.ActCurrent", "MotorData.ActPosition", "MotorData.ActSpeed", "MotorData.IsAcceleration",
    "MotorData.IsForce", "MotorData.Motor_Pos1reached", "MotorData.Motor_Pos2reached", "MotorData.Motor_Pos3reached",
    "MotorData.Motor_Pos4reached", "NVL_Recv_Ind.GL_Metall", "NVL_Recv_Ind.GL_NonMetall",
    "NVL_Recv_Storage.GL_I_ProcessStarted", "NVL_Recv_Storage.GL_I_Slider_IN", "NVL_Recv_Storage.GL_I_Slider_OUT",
    "NVL_Recv_Storage.GL_LightBarrier", "NVL_Send_Storage.ActivateStorage", "PLC_PRG.Gripper",
    "PLC_PRG.MaterialIsMetal",
]


def write_genesis(path: Path, stamps: np.ndarray, labels: list | np.ndarray) -> None:
    """The public layout: Timestamp (Unix seconds), the 18 channels (channel k of a row = stamp offset + k), Label."""
    offsets = np.asarray(stamps) - 1_528_000_000
    frame = pd.DataFrame({"Timestamp": stamps})
    for k, name in enumerate(GENESIS_CHANNELS):
        frame[name] = offsets * 100 + k
    frame["Label"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_genesis_layout_order_and_multiclass_labels(tmp_path: Path):
    stamps = 1_528_000_000 + np.array([0, 1, 3, 2, 4, 5])
    write_genesis(tmp_path / "Genesis_AnomalyLabels.csv", stamps, [0, 2, 0, 1, 0, 0])
    record = load_genesis(tmp_path, train_fraction=0.5)
    assert record.channel_names == GENESIS_CHANNELS and record.n_channels == 18
    np.testing.assert_array_equal(record.train[:, 0], [0, 100, 200])
    np.testing.assert_array_equal(record.test[:, 0], [300, 400, 500])
    np.testing.assert_array_equal(record.test[:, 17], [317, 417, 517])
    assert record.test_labels.tolist() == [0, 0, 0]  # row with stamp 2 (label 1) comes before stamp 3
    meta = record.meta
    assert (meta["train_anomalies"], meta["test_anomalies"], meta["reordered"]) == (2, 0, True)
    assert meta["label_counts"] == {0: 4, 1: 1, 2: 1} and meta["missing_policy"] == "error"


def test_genesis_default_split_reproduces_tab(tmp_path: Path):
    n = 16_220
    labels = np.zeros(n, dtype=int)
    labels[[100, 5000, 5001, 16_000]] = [1, 2, 2, 1]
    write_genesis(tmp_path / "Genesis_AnomalyLabels.csv", 1_528_000_000 + np.arange(n), labels)
    record = load_genesis(tmp_path)
    assert (len(record.train), len(record.test)) == (3_604, 12_616)
    assert (record.meta["train_anomalies"], record.meta["test_anomalies"]) == (1, 3)
    assert len(load_genesis(tmp_path, train_rows=TAB_TRAIN_ROWS).train) == 3_604


def test_genesis_errors(tmp_path: Path):
    with pytest.raises(DataValidationError, match="Genesis folder not found.*Genesis_AnomalyLabels.csv"):
        load_genesis(tmp_path / "nope")
    with pytest.raises(DataValidationError, match="Genesis_AnomalyLabels.csv: file not found"):
        load_genesis(tmp_path)
    path = tmp_path / "Genesis_AnomalyLabels.csv"
    stamps = 1_528_000_000 + np.arange(4)
    for bad in ([0, -1, 0, 0], [0, 0.5, 0, 0], [0, "x", 0, 0], [0, None, 0, 0]):
        write_genesis(path, stamps, bad)
        with pytest.raises(DataValidationError, match=r"AnomalyLabels.csv: field 'Label' has 1 values that are not "
                                                      r"labels \(first at line 3 of the file"):
            load_genesis(tmp_path, train_fraction=0.5)
    write_genesis(path, stamps, [0, 0, 1, 0])
    with pytest.raises(DataValidationError, match=r"no 'Anomaly' column"):
        load_genesis(tmp_path, label_column="Anomaly")
    frame = pd.read_csv(path)
    frame.loc[2, "PLC_PRG.Gripper"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"Genesis_AnomalyLabels.csv: 1 missing/inf values \(first at line 4 "
                                                  r"of the file, column 'PLC_PRG.Gripper'\)"):
        load_genesis(tmp_path, train_fraction=0.5)
    assert load_genesis(tmp_path, missing="drop", train_fraction=0.5).meta["rows"] == 3


# --------------------------------------------------------------------------------------------------- real data


def test_real_gecco_reproduces_tab_counts():
    root = shared_path("data", "GECCO")
    record = load_gecco(root)
    meta = record.meta
    assert (meta["raw_rows"], meta["rows_dropped"], meta["rows"]) == (139_566, 1_045, 138_521)
    assert record.channel_names == list(GECCO_CHANNELS)
    assert (len(record.train), len(record.test)) == (69_260, 69_261)
    assert (meta["train_anomalies"], meta["test_anomalies"]) == (996, 730)
    assert meta["anomaly_ratio"] == pytest.approx(0.012460, abs=1e-5)  # 1,726 / 138,521 (TAB table: 1.25 %)
    assert not meta["reordered"]  # the challenge file is already in time order


def test_real_cicids_sample_counts():
    record = load_cicids(shared_path("data", "CICIDS2017"))
    meta = record.meta
    assert (meta["raw_rows"], meta["rows_dropped"], meta["empty_rows"]) == (25_127, 0, 0)
    assert record.n_channels == 81  # improved release, identifiers dropped (TAB: 72, original release)
    assert len(meta["files"]) == 16 and len(meta["class_counts"]) == 16
    assert meta["class_counts"]["BENIGN"] / meta["raw_rows"] == pytest.approx(0.0995, abs=5e-4)  # 2,500 / 25,127
    assert meta["anomaly_ratio"] == pytest.approx(22_627 / 25_127)
    assert (len(record.train), len(record.test)) == (12_563, 12_564)
