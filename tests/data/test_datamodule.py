"""The shared DataModule: splits, scaling on train only, loaders, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.data.datamodule import TimeSeriesDataModule
from fsad.data.record import DataValidationError, SeriesRecord


class ArrayDataModule(TimeSeriesDataModule):
    def __init__(self, record: SeriesRecord, **kwargs):
        super().__init__(**kwargs)
        self._record = record

    def load_record(self) -> SeriesRecord:
        return self._record


def make_record(t_train=100, t_test=50, c=2, labels=None) -> SeriesRecord:
    train = np.arange(t_train * c, dtype=np.float32).reshape(t_train, c)
    test = np.ones((t_test, c), dtype=np.float32)
    lab = np.zeros(t_test, dtype=np.int8) if labels is None else labels
    return SeriesRecord(train, test, lab, [f"c{i}" for i in range(c)], source="arrays")


def test_train_tail_holds_out_validation_and_scaler_sees_train_only():
    dm = ArrayDataModule(make_record(), n_channels=2, window=10, val_fraction=0.2)
    dm.setup()
    assert len(dm.splits["train"].values) == 80 and len(dm.splits["val"].values) == 20
    np.testing.assert_allclose(dm.splits["train"].values.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(dm.splits["train"].values.std(axis=0), 1.0, atol=1e-6)
    assert dm.splits["val"].values.mean() > 1.5  # the tail lies above the scaled training range


def test_val_source_test_and_loader_sizes():
    dm = ArrayDataModule(make_record(), n_channels=2, window=10, train_stride=5, batch_size=4, val_source="test")
    dm.setup()
    assert len(dm.splits["train"].values) == 100
    assert len(dm.train_dataloader().dataset) == (100 - 10) // 5 + 1
    loaders = dm.scoring_dataloaders()
    assert list(loaders) == ["train", "test"]  # the test series is not scored twice
    assert loaders["test"].dataset.starts.tolist() == [0, 10, 20, 30, 40]
    assert loaders["train"].dataset.starts.tolist() == list(range(0, 100, 10))


def test_wrong_channel_count_is_named():
    dm = ArrayDataModule(make_record(c=3), n_channels=2, window=10)
    with pytest.raises(DataValidationError, match="arrays: data has 3 channels but the config declares n_channels=2"):
        dm.setup()


def test_nan_is_named():
    record = make_record()
    record.test[7, 1] = np.nan
    with pytest.raises(DataValidationError, match="field 'test' has 1 NaN/inf values \\(first at time 7, channel 1 'c1'\\)"):
        ArrayDataModule(record, n_channels=2, window=10).setup()


def test_labels_of_wrong_length_are_named():
    record = make_record(labels=np.zeros(49, dtype=np.int8))
    with pytest.raises(DataValidationError, match="'test_labels' has shape \\(49,\\); expected \\(50,\\)"):
        ArrayDataModule(record, n_channels=2, window=10).setup()


def test_split_shorter_than_window():
    with pytest.raises(ValueError, match="the val split has 4 steps, fewer than data.window=10"):
        ArrayDataModule(make_record(t_train=20), n_channels=2, window=10).setup()


def test_bad_val_source():
    with pytest.raises(ValueError, match="data.val_source"):
        ArrayDataModule(make_record(), n_channels=2, window=10, val_source="holdout")
