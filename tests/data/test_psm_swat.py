"""PSM and SWaT loaders on files written here in each exact layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.psm import load_psm
from fsad.data.sources.swat import load_swat


def write_psm(root: Path, train: np.ndarray, test: np.ndarray, labels: np.ndarray) -> None:
    root.mkdir(parents=True, exist_ok=True)
    cols = [f"feature_{i}" for i in range(train.shape[1])]
    for name, arr in (("train.csv", train), ("test.csv", test)):
        frame = pd.DataFrame(arr, columns=cols)
        frame.insert(0, "timestamp_(min)", np.arange(len(arr)) * 60.0)
        frame.to_csv(root / name, index=False)
    pd.DataFrame({"timestamp_(min)": np.arange(len(labels)) * 60.0, "label": labels}).to_csv(
        root / "test_label.csv", index=False)


def test_psm_layout_and_missing_value_policies(tmp_path: Path):
    train = np.arange(12, dtype=float).reshape(6, 2)
    train[2, 1] = np.nan
    test = np.ones((4, 2))
    write_psm(tmp_path, train, test, np.array([0, 1, 1, 0]))
    filled = load_psm(tmp_path, missing="ffill")
    assert filled.train[2, 1] == 3.0  # the previous row's value
    assert filled.meta["missing_values_filled"] == 1
    assert load_psm(tmp_path, missing="zero").train[2, 1] == 0.0
    assert filled.test_labels.tolist() == [0, 1, 1, 0]
    assert filled.channel_names == ["feature_0", "feature_1"]
    with pytest.raises(DataValidationError,
                       match=r"train.csv: 1 missing/inf values \(first at line 4 of the file, column 'feature_1'\)"):
        load_psm(tmp_path, missing="error")


def test_psm_label_length_mismatch_names_the_file(tmp_path: Path):
    write_psm(tmp_path, np.zeros((6, 2)), np.zeros((4, 2)), np.array([0, 1, 0]))
    with pytest.raises(DataValidationError, match="test_label.csv: 3 labels for 4 test rows"):
        load_psm(tmp_path)


def test_psm_missing_folder(tmp_path: Path):
    with pytest.raises(DataValidationError, match="PSM folder not found.*train.csv"):
        load_psm(tmp_path / "nope")


def test_swat_both_conventions_give_the_same_arrays(tmp_path: Path):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(8, 3)), rng.normal(size=(5, 3))
    labels = np.array([0, 0, 1, 1, 0])
    cols = ["FIT101", "LIT101", "MV101"]
    dc = tmp_path / "dc"
    dc.mkdir()
    pd.DataFrame(np.c_[train, np.zeros(8)], columns=cols + ["label"]).to_csv(dc / "swat_train2.csv", index=False)
    pd.DataFrame(np.c_[test, labels], columns=cols + ["label"]).to_csv(dc / "swat2.csv", index=False)
    tm = tmp_path / "tm"
    tm.mkdir()
    pd.DataFrame(np.c_[np.arange(8), train], columns=["idx"] + cols).to_csv(tm / "SWaT_train.csv", index=False)
    pd.DataFrame(np.c_[np.arange(5), test], columns=["idx"] + cols).to_csv(tm / "SWaT_test.csv", index=False)
    pd.DataFrame({"idx": np.arange(5), "label": labels}).to_csv(tm / "SWaT_test_label.csv", index=False)
    a, b = load_swat(dc, layout="dcdetector"), load_swat(tm, layout="transmamba")
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    assert a.channel_names == b.channel_names == cols
    with pytest.raises(DataValidationError, match="layout"):
        load_swat(dc, layout="other")


def test_swat_itrust_export_with_grouping_row_and_misspelt_attack(tmp_path: Path):
    """The owner's export: a grouping row above the header, spaced names, 'Normal'/'Attack'/'A ttack' labels."""
    header = " Timestamp,FIT101,LIT101, MV101,Normal/Attack"
    normal = [",P1,P1,P1,", header,
              " 28/12/2015 10:00:00 AM,2.4,522.8,2,Normal",
              " 28/12/2015 10:00:01 AM,2.5,522.9,2,Normal",
              " 28/12/2015 10:00:02 AM,,523.0,2,Normal"]
    attack = [header,
              " 28/12/2015 10:00:00 AM,2.1,500.0,1,Normal",
              " 28/12/2015 10:00:01 AM,0.0,501.0,1,Attack",
              " 28/12/2015 10:00:02 AM,0.0,502.0,1,A ttack"]
    (tmp_path / "SWaT_Dataset_Normal_v1.csv").write_text("\n".join(normal) + "\n")
    (tmp_path / "SWaT_Dataset_Attack_v0.csv").write_text("\n".join(attack) + "\n")
    record = load_swat(tmp_path, layout="itrust", missing="ffill")
    assert record.channel_names == ["FIT101", "LIT101", "MV101"]
    np.testing.assert_allclose(record.train, [[2.4, 522.8, 2], [2.5, 522.9, 2], [2.5, 523.0, 2]], rtol=1e-6)
    assert record.test_labels.tolist() == [0, 1, 1]
    assert record.meta["missing_values_filled"] == 1
    dropped = load_swat(tmp_path, layout="itrust", missing="drop")
    assert dropped.train.shape == (2, 3) and dropped.meta["missing_values_filled"] == 1
    (tmp_path / "SWaT_Dataset_Attack_v0.csv").write_text(header + "\n x,1,2,3,Unknown\n")
    with pytest.raises(DataValidationError, match=r"SWaT_Dataset_Attack_v0.csv: field 'Normal/Attack' has values "
                                                   r"\['unknown'\] \(first at line 2 of the file\); expected Normal "
                                                   r"or Attack"):
        load_swat(tmp_path, layout="itrust", missing="zero")
    (tmp_path / "SWaT_Dataset_Attack_v0.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataValidationError, match="no header line with a 'Normal/Attack' column"):
        load_swat(tmp_path, layout="itrust")
