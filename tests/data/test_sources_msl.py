"""MSL/SMAP sources: telemanom and Anomaly-Transformer layouts written by the test, bad input, the real MSL."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources import (
    detect_layout,
    load_msl,
    load_numpy_layout,
    load_smap,
    load_telemanom,
    write_numpy_layout,
    write_telemanom,
)
from fsad.data.synthetic import make_synthetic

REAL_MSL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "MSL"


@pytest.fixture
def record() -> SeriesRecord:
    return make_synthetic(length=300, train_length=240, n_channels=4, anomaly_ratio=0.1, seed=3)


def _assert_same_arrays(a: SeriesRecord, b: SeriesRecord) -> None:
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)


def _rewrite_csv(path: Path, chan_id: str, field: str, value: str) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["chan_id"] == chan_id:
            row[field] = value
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_both_layouts_give_identical_arrays(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path / "tm", n_entities=3)
    write_numpy_layout(record, tmp_path / "np", "MSL")
    assert detect_layout(tmp_path / "tm", "MSL") == "telemanom"
    assert detect_layout(tmp_path / "np", "MSL") == "numpy"
    tm, nl = load_msl(tmp_path / "tm"), load_msl(tmp_path / "np")
    _assert_same_arrays(tm, record)
    _assert_same_arrays(nl, record)
    assert tm.channel_names == nl.channel_names == ["telemetry", "command_1", "command_2", "command_3"]
    assert tm.train.dtype == nl.train.dtype == np.float32 and tm.test_labels.dtype == np.int8
    assert [e[0] for e in tm.meta["entities"]] == ["E-01", "E-02", "E-03"]
    assert tm.meta["entities"][-1][2] == len(record.test)
    assert tm.meta["train_entities"][-1][2] == len(record.train)
    # both layouts in one folder: auto prefers telemanom, explicit layouts still work
    write_numpy_layout(record, tmp_path / "tm", "MSL")
    assert load_msl(tmp_path / "tm").meta["layout"] == "telemanom"
    _assert_same_arrays(load_msl(tmp_path / "tm", layout="numpy"), record)


def test_channel_order_sorted_by_chan_id_or_csv(tmp_path: Path, record: SeriesRecord) -> None:
    ents = [("T-4", 0, 100), ("T-12", 100, 300)]
    train_ents = [("T-4", 0, 140), ("T-12", 140, 240)]
    write_telemanom(record, tmp_path, entities=ents, train_entities=train_ents)
    as_csv = load_telemanom(tmp_path, order="csv")
    _assert_same_arrays(as_csv, record)
    srt = load_telemanom(tmp_path)  # string order, as OmniAnomaly / Anomaly-Transformer: T-12 before T-4
    assert srt.meta["entities"] == [("T-12", 0, 200), ("T-4", 200, 300)]
    assert srt.meta["train_entities"] == [("T-12", 0, 100), ("T-4", 100, 240)]
    np.testing.assert_array_equal(srt.test[:200], record.test[100:])
    np.testing.assert_array_equal(srt.test_labels[200:], record.test_labels[:100])


def test_spacecraft_filter_and_p2_exclusion(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path, spacecraft="MSL", n_entities=2, prefix="M")
    smap = make_synthetic(length=150, train_length=120, n_channels=3, anomaly_ratio=0.1, seed=4)
    write_telemanom(smap, tmp_path, spacecraft="SMAP", n_entities=2, prefix="A", append=True)
    # P-2 is listed twice in the real CSV and dropped by OmniAnomaly: a duplicate row must not break SMAP
    dup = make_synthetic(length=50, train_length=50, n_channels=3, anomaly_ratio=0.0, seed=5)
    for _ in range(2):
        write_telemanom(dup, tmp_path, spacecraft="SMAP", entities=[("P-2", 0, 50)],
                        train_entities=[("P-2", 0, 50)], append=True)
    _assert_same_arrays(load_msl(tmp_path), record)
    _assert_same_arrays(load_smap(tmp_path), smap)
    with pytest.raises(DataValidationError, match="'P-2' appears on lines"):
        load_telemanom(tmp_path, spacecraft="SMAP", exclude=())
    with pytest.raises(DataValidationError, match="no rows for 'XYZ'"):
        load_telemanom(tmp_path, spacecraft="XYZ")


def test_missing_folder_lists_both_layouts(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataValidationError) as err:
        load_msl(missing)
    msg = str(err.value)
    assert str(missing) in msg and "labeled_anomalies.csv" in msg and "MSL_test_label.npy" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="no complete MSL layout.*MSL_train.npy"):
        load_msl(tmp_path / "empty")
    with pytest.raises(DataValidationError, match="folder not found"):
        load_msl(missing, layout="telemanom")
    with pytest.raises(DataValidationError, match="folder not found"):
        load_msl(missing, layout="numpy")
    with pytest.raises(DataValidationError, match="'layout'"):
        load_msl(tmp_path, layout="csv")


def test_missing_labeled_anomalies_csv(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path)
    (tmp_path / "labeled_anomalies.csv").unlink()
    with pytest.raises(DataValidationError, match="labeled_anomalies.csv"):
        load_msl(tmp_path)
    with pytest.raises(DataValidationError, match=r"labeled_anomalies.csv: file not found"):
        load_msl(tmp_path, layout="telemanom")


def test_test_channel_with_other_feature_count_names_file(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path, n_entities=2)
    bad = tmp_path / "test" / "E-02.npy"
    np.save(bad, np.load(bad)[:, :3])
    with pytest.raises(DataValidationError, match=r"E-02\.npy: field 'test' has 3 features; expected 4"):
        load_msl(tmp_path)


def test_nan_names_file(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path, n_entities=2)
    bad = tmp_path / "train" / "E-01.npy"
    arr = np.load(bad)
    arr[5, 1] = np.nan
    np.save(bad, arr)
    with pytest.raises(DataValidationError, match=r"train/E-01\.npy: field 'train' has 1 NaN/inf.*row 5, column 1"):
        load_msl(tmp_path)
    write_numpy_layout(record, tmp_path / "np", "MSL")
    arr = record.test.astype(np.float64)
    arr[0, 0] = np.inf
    np.save(tmp_path / "np" / "MSL_test.npy", arr)
    with pytest.raises(DataValidationError, match=r"MSL_test\.npy: field 'test' has 1 NaN/inf"):
        load_msl(tmp_path / "np")


def test_num_values_disagreeing_with_test_length(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path, n_entities=2)
    _rewrite_csv(tmp_path / "labeled_anomalies.csv", "E-02", "num_values", "999")
    with pytest.raises(DataValidationError, match=r"labeled_anomalies.csv, line 3: field 'num_values'=999.*E-02"):
        load_msl(tmp_path)


def test_bad_anomaly_sequences(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path, n_entities=2)
    _rewrite_csv(tmp_path / "labeled_anomalies.csv", "E-01", "anomaly_sequences", "[[10, 150]]")
    with pytest.raises(DataValidationError, match=r"'anomaly_sequences' has \[10, 150\].*< num_values \(150\)"):
        load_msl(tmp_path)
    _rewrite_csv(tmp_path / "labeled_anomalies.csv", "E-01", "anomaly_sequences", "[[10, ]")
    with pytest.raises(DataValidationError, match="expected '\\[\\[start, end\\], ...\\]'"):
        load_msl(tmp_path)


def test_inclusive_end_of_sequences(tmp_path: Path, record: SeriesRecord) -> None:
    write_telemanom(record, tmp_path)
    _rewrite_csv(tmp_path / "labeled_anomalies.csv", "E-01", "anomaly_sequences", "[[10, 12], [299, 299]]")
    labels = load_msl(tmp_path).test_labels
    assert np.flatnonzero(labels).tolist() == [10, 11, 12, 299]


def test_numpy_layout_bad_files(tmp_path: Path, record: SeriesRecord) -> None:
    write_numpy_layout(record, tmp_path, "SMD")
    np.save(tmp_path / "SMD_test_label.npy", np.zeros(len(record.test) - 1))
    with pytest.raises(DataValidationError, match=r"SMD_test_label\.npy: field 'test_labels' has 299 labels"):
        load_numpy_layout(tmp_path, "SMD")
    np.save(tmp_path / "SMD_test_label.npy", np.full(len(record.test), 2.0))
    with pytest.raises(DataValidationError, match=r"SMD_test_label\.npy.*expected only 0 and 1"):
        load_numpy_layout(tmp_path, "SMD")
    np.save(tmp_path / "SMD_test_label.npy", record.test_labels.astype(bool)[:, None])  # (T', 1) bool is fine
    np.save(tmp_path / "SMD_train.npy", record.train[None])
    with pytest.raises(DataValidationError, match=r"SMD_train\.npy: field 'train' has shape \(1, 240, 4\)"):
        load_numpy_layout(tmp_path, "SMD")
    np.save(tmp_path / "SMD_train.npy", record.train)
    _assert_same_arrays(load_numpy_layout(tmp_path, "SMD"), record)
    (tmp_path / "SMD_test.npy").write_bytes(b"not an npy file")
    with pytest.raises(DataValidationError, match=r"SMD_test\.npy: field 'test' is not a readable"):
        load_numpy_layout(tmp_path, "SMD")


@pytest.mark.skipif(not REAL_MSL.is_dir(), reason=f"real MSL data not found at {REAL_MSL}")
def test_real_msl() -> None:
    rec = load_msl(REAL_MSL)
    assert rec.meta["layout"] == "telemanom"
    assert len(rec.meta["entities"]) == 27
    assert rec.train.shape == (58_317, 55) and rec.test.shape == (73_729, 55)
    assert int(rec.test_labels.sum()) == 7_766
    assert rec.test_labels.mean() == pytest.approx(7_766 / 73_729)  # 0.10533
    assert rec.meta["entities"][0] == ("C-1", 0, 2_264)  # chan_id string order, as the AT MSL_*.npy files
    assert rec.meta["entities"][-1] == ("T-9", 73_729 - 1_096, 73_729)
    assert rec.meta["train_entities"][-1][2] == 58_317
    csv_order = load_telemanom(REAL_MSL, order="csv")
    assert csv_order.meta["entities"][0][0] == "M-6"
    assert int(csv_order.test_labels.sum()) == 7_766
