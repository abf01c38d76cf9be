"""Multi-entity layouts: every entity their index lists must have all its files, or the error names the absent one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources import load_telemanom, write_telemanom
from fsad.data.sources.nab import load_nab
from fsad.data.sources.smd import load_smd
from fsad.data.sources.tab import load_tab
from fsad.data.synthetic import make_synthetic

SMD_REMEDY = "restore the absent files (data.download=true fetches OmniAnomaly's)"


def write_smd(folder: Path, machines: list[str]) -> None:
    """Each machine: train 4 rows, test 3 rows of 38 metrics, labels 0, 1, 0."""
    for k, name in enumerate(machines):
        for part, text in (("train", "\n".join([",".join(["1.5"] * 38)] * 4)),
                           ("test", "\n".join([",".join([str(k)] * 38)] * 3)), ("test_label", "0\n1\n0")):
            (folder / part).mkdir(parents=True, exist_ok=True)
            (folder / part / f"{name}.txt").write_text(text + "\n")


def test_smd_all_machines_with_one_test_file_absent_is_an_error_naming_it(tmp_path: Path):
    folder = tmp_path / "ServerMachineDataset"
    write_smd(folder, ["machine-1-2", "machine-1-10", "machine-2-1"])
    absent = folder / "test" / "machine-1-10.txt"
    absent.unlink()
    with pytest.raises(DataValidationError) as err:
        load_smd(tmp_path, "all")
    assert str(err.value) == (
        f"{absent}: file not found; machine 'machine-1-10' is listed in {folder}'s train/, test/ or test_label/ but "
        f"lacks this file (1 absent in all: {absent}); expected all files of every listed machine: {SMD_REMEDY}, "
        "or read the complete machines only with data.machines=[machine-1-2,machine-2-1]")
    subset = load_smd(tmp_path, ["machine-1-2", "machine-2-1"])  # what the user asked for
    assert subset.meta["machines"] == ["machine-1-2", "machine-2-1"] and subset.test.shape == (6, 38)
    with pytest.raises(DataValidationError) as err:
        load_smd(tmp_path, ["machine-2-1", "machine-1-10"])
    assert str(err.value).startswith(f"{absent}: file not found; machine 'machine-1-10' is listed")
    assert str(err.value).endswith(f"{SMD_REMEDY}, or leave the machine out")


def test_smd_machine_with_only_a_label_file_counts_as_listed(tmp_path: Path):
    folder = tmp_path / "ServerMachineDataset"
    write_smd(folder, ["machine-1-1"])
    (folder / "test_label" / "machine-3-4.txt").write_text("0\n")
    with pytest.raises(DataValidationError) as err:
        load_smd(tmp_path)
    assert str(err.value).startswith(f"{folder / 'train' / 'machine-3-4.txt'}: file not found; machine 'machine-3-4'"
                                     f" is listed in {folder}'s train/, test/ or test_label/ but lacks this file (2 "
                                     f"absent in all: {folder / 'train' / 'machine-3-4.txt'}, "
                                     f"{folder / 'test' / 'machine-3-4.txt'})")


def test_telemanom_channel_listed_in_the_csv_without_its_test_file(tmp_path: Path):
    record = make_synthetic(length=120, train_length=60, n_channels=3, anomaly_ratio=0.1, seed=1)
    write_telemanom(record, tmp_path, n_entities=3)
    absent = tmp_path / "test" / "E-02.npy"
    absent.unlink()
    with pytest.raises(DataValidationError) as err:
        load_telemanom(tmp_path)
    assert str(err.value) == (
        f"{absent}: file not found; channel 'E-02' is listed in {tmp_path / 'labeled_anomalies.csv'} (spacecraft MSL) "
        f"but lacks this file (1 absent in all: {absent}); expected all files of every listed channel: restore the "
        "absent files from the telemanom release's data.zip")


def test_nab_series_listed_in_the_labels_without_its_data_file(tmp_path: Path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps({"realToy/b.csv": []}))
    (tmp_path / "data").mkdir()
    with pytest.raises(DataValidationError) as err:
        load_nab(tmp_path, "realToy/b")
    absent = tmp_path / "data" / "realToy" / "b.csv"
    assert str(err.value) == (
        f"{absent}: file not found; series 'realToy/b.csv' is listed in {tmp_path / 'labels/combined_windows.json'} "
        "but its data file is absent; expected data/<category>/<name>.csv for every listed series: restore it "
        "(data.download=true fetches NAB's files) or choose another data.series")


def test_tab_series_listed_in_the_meta_table_without_its_file(tmp_path: Path):
    pd.DataFrame({"file_name": ["GONE.csv"], "train_lens": [2], "if_univariate": [False]}).to_csv(
        tmp_path / "DETECT_META.csv", index=False)
    with pytest.raises(DataValidationError) as err:
        load_tab(tmp_path, "GONE")
    assert str(err.value) == (
        f"{tmp_path}: series file 'GONE.csv' not found; looked for multi_ts/GONE.csv, uni_ts/GONE.csv, "
        "data/GONE.csv, GONE.csv; it is listed in the meta table, so expected it in one of them: put TAB's file "
        "there or choose another data.name")
