"""SMD: the OmniAnomaly raw layout (machines, concatenation, entity ranges) and its checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.numpy_layout import numpy_layout_files
from fsad.data.sources.smd import load_smd, smd_machines
from tests.conftest import shared_path


def write_machine(folder: Path, name: str, train: np.ndarray, test: np.ndarray, labels: np.ndarray) -> None:
    for part, arr, fmt in (("train", train, "%.6f"), ("test", test, "%.6f"), ("test_label", labels, "%d")):
        (folder / part).mkdir(parents=True, exist_ok=True)
        np.savetxt(folder / part / f"{name}.txt", arr, fmt=fmt, delimiter=",")


@pytest.fixture
def smd_root(tmp_path: Path) -> Path:
    folder = tmp_path / "ServerMachineDataset"
    for g, i, n_train, n_test in ((1, 2, 6, 5), (1, 10, 4, 3), (2, 1, 3, 4)):
        base = 100 * g + i
        train = base + np.arange(n_train * 38, dtype=float).reshape(n_train, 38) / 1000
        test = -train[:1].repeat(n_test, 0)
        labels = (np.arange(n_test) == 1).astype(int)
        write_machine(folder, f"machine-{g}-{i}", train, test, labels)
    return tmp_path


def test_machines_are_ordered_by_group_then_index_and_concatenated(smd_root: Path):
    folder = smd_root / "ServerMachineDataset"
    assert smd_machines(folder) == ["machine-1-2", "machine-1-10", "machine-2-1"]
    record = load_smd(smd_root)
    assert record.train.shape == (13, 38) and record.test.shape == (12, 38)
    assert record.meta["entities"] == [
        {"name": "machine-1-2", "train": [0, 6], "test": [0, 5]},
        {"name": "machine-1-10", "train": [6, 10], "test": [5, 8]},
        {"name": "machine-2-1", "train": [10, 13], "test": [8, 12]},
    ]
    np.testing.assert_array_equal(record.test_labels, [0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0])
    assert record.train[6, 0] == pytest.approx(110.0) and record.test[8, 1] == pytest.approx(-201.001)


def test_one_machine_or_a_list(smd_root: Path):
    one = load_smd(smd_root, "machine-1-10")
    assert one.train.shape == (4, 38) and one.meta["machines"] == ["machine-1-10"]
    two = load_smd(smd_root / "ServerMachineDataset", ["machine-2-1", "machine-1-2"])  # order as given
    assert two.meta["entities"][0] == {"name": "machine-2-1", "train": [0, 3], "test": [0, 4]}
    with pytest.raises(DataValidationError, match=r"asks for \['machine-3-1'\].*available"):
        load_smd(smd_root, "machine-3-1")


def test_errors_name_the_file(smd_root: Path, tmp_path: Path):
    folder = smd_root / "ServerMachineDataset"
    np.savetxt(folder / "test_label" / "machine-1-2.txt", np.zeros(4), fmt="%d")
    with pytest.raises(DataValidationError, match=r"test_label/machine-1-2.txt: shape \(4, 1\); expected \(5, 1\)"):
        load_smd(smd_root)
    np.savetxt(folder / "test" / "machine-1-2.txt", np.zeros((5, 37)), delimiter=",")
    with pytest.raises(DataValidationError, match=r"test/machine-1-2.txt: 37 columns; expected 38"):
        load_smd(smd_root)
    with pytest.raises(DataValidationError, match="SMD not found; expected ServerMachineDataset"):
        load_smd(tmp_path / "empty")


def test_numpy_layout_is_detected(tmp_path: Path):
    rng = np.random.default_rng(0)
    for f, arr in zip(numpy_layout_files("SMD"), (rng.normal(size=(20, 38)), rng.normal(size=(10, 38)),
                                                  np.r_[np.zeros(9), 1])):
        np.save(tmp_path / f, arr)
    record = load_smd(tmp_path)
    assert record.meta["layout"] == "numpy" and record.test_labels[-1] == 1
    with pytest.raises(DataValidationError, match="numpy layout holds the concatenated machines only"):
        load_smd(tmp_path, "machine-1-1")


def test_real_smd_machines():
    root = shared_path("data", "SMD")
    complete = [f"machine-1-{i}" for i in range(2, 9)]
    with pytest.raises(DataValidationError, match=r"ServerMachineDataset/train/machine-1-1.txt: file not found; machine "
                                                  r"'machine-1-1' is listed"):
        load_smd(root)  # the copy has the labels of all 28 machines, train and test files of 7
    record = load_smd(root, complete)
    assert record.meta["machines"] == complete
    assert record.train.shape == (165_890, 38) and record.test.shape == (165_895, 38)
    assert int(record.test_labels.sum()) == 9_048
    one = load_smd(root, "machine-1-6")
    assert one.test.shape == (23_689, 38) and one.test_labels.mean() == pytest.approx(0.156528, abs=1e-6)
