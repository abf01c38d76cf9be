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
    with pytest.raises(ValueError, match="the val split has 4 steps, fewer than one sample of 10"):
        ArrayDataModule(make_record(t_train=20), n_channels=2, window=10).setup()


def test_bad_val_source():
    with pytest.raises(ValueError, match="data.val_source"):
        ArrayDataModule(make_record(), n_channels=2, window=10, val_source="holdout")


def test_prediction_samples_hold_lookback_and_horizons():
    """L = 10, H = 4, 2 horizon blocks: training samples of 18 steps every train_stride steps."""
    dm = ArrayDataModule(make_record(t_train=100, c=2), n_channels=2, window=10, horizon=4, horizon_blocks=2,
                         train_stride=3, val_source="none", scaler="none")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape[1:] == (18, 2)
    assert len(dm.train_dataloader().dataset) == (100 - 18) // 3 + 1
    x = dm.train_dataloader().dataset[1]["x"]
    np.testing.assert_array_equal(x[:, 0].numpy(), np.arange(3, 21) * 2)  # rows 3..20 of channel 0


def test_prediction_scoring_covers_every_test_step_once_with_train_context():
    """Test windows: the last L training steps are prepended; window starting at s scores test[s : s + H]."""
    labels = np.zeros(50, dtype=np.int8)
    labels[[0, 23, 49]] = 1
    dm = ArrayDataModule(make_record(t_train=100, t_test=50, labels=labels), n_channels=2, window=10, horizon=4,
                         val_source="train_tail", val_fraction=0.2, scaler="none")
    dm.setup()
    loaders = dm.scoring_dataloaders()
    test = loaders["test"].dataset
    assert test.window == 14
    starts = test.starts.numpy()
    np.testing.assert_array_equal(starts, np.r_[np.arange(0, 47, 4), 46])  # 60 prefixed steps, tail at 46
    first = test[0]
    np.testing.assert_array_equal(first["x"][:10, 0].numpy(), np.arange(90, 100) * 2)  # context = train end
    np.testing.assert_array_equal(first["x"][10:, 0].numpy(), np.ones(4))
    # scored steps of window s are test[s : s + 4]; their labels are the last H labels of the window
    assert first["y"][10:].tolist() == labels[:4].tolist()
    covered = np.zeros(50, bool)
    for s in starts:
        covered[s : s + 4] = True
    assert covered.all() and dm.scored_length("test") == 50
    np.testing.assert_array_equal(dm.scored_labels(), labels)
    # the validation tail (train rows 80..99) takes the 10 training rows before it as context
    val = loaders["val"].dataset
    np.testing.assert_array_equal(val[0]["x"][:10, 0].numpy(), np.arange(70, 80) * 2)
    assert dm.scored_length("val") == 20
    # the training series has no context: its first L steps are not scored
    assert dm.scored_length("train") == 80 - 10
    assert loaders["train"].dataset.starts.numpy()[-1] == 80 - 14


def test_prediction_rejects_negative_horizon():
    with pytest.raises(ValueError, match="data.horizon"):
        ArrayDataModule(make_record(), n_channels=2, window=10, horizon=-1)
