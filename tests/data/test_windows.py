import numpy as np
import pytest
import torch

from fsad.data.scaling import Scaler
from fsad.data.windows import EpochSeededShuffler, WindowDataset, assemble_scores, window_starts


def test_window_starts_regular_grid_matches_paper_count():
    # (T - win) // step + 1 windows
    assert window_starts(10, 4, 1).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert window_starts(10, 4, 4).tolist() == [0, 4]            # papers drop steps 8, 9
    assert window_starts(10, 4, 4, cover_tail=True).tolist() == [0, 4, 6]
    assert window_starts(8, 4, 4, cover_tail=True).tolist() == [0, 4]  # nothing left over: no extra window


def test_window_starts_rejects_short_series():
    with pytest.raises(ValueError, match="shorter than one window"):
        window_starts(3, 4, 1)


def test_window_dataset_items():
    series = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 1])
    ds = WindowDataset(series, 4, window_starts(10, 4, 4, cover_tail=True), labels)
    item = ds[2]
    assert len(ds) == 3
    assert int(item["start"]) == 6
    assert torch.equal(item["x"], torch.tensor(series[6:10]))
    assert item["y"].tolist() == [0, 0, 0, 1]


def test_assemble_scores_every_step_exactly_once_with_tail():
    starts = np.array([0, 4, 6])
    scores = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [60, 70, 8, 9]], dtype=float)
    # the tail window only fills steps 8, 9; steps 6, 7 keep the regular window's scores
    assert assemble_scores(starts, scores, 10).tolist() == list(range(10))
    # order of windows does not matter
    assert assemble_scores(starts[::-1], scores[::-1], 10).tolist() == list(range(10))


def test_assemble_scores_reports_uncovered_steps():
    with pytest.raises(ValueError, match="covered by no scored window"):
        assemble_scores(np.array([0]), np.zeros((1, 4)), 6)


def test_shuffler_depends_on_seed_and_epoch_only():
    a, b = EpochSeededShuffler(50, seed=3), EpochSeededShuffler(50, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert sorted(a) == list(range(50))


def test_standard_scaler_matches_definition_and_constant_channels():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = Scaler("standard").fit(train)
    assert scaler.transform(np.array([[2.0, 5.0], [5.0, 6.0]])).tolist() == [[0.0, 0.0], [3.0, 1.0]]


def test_minmax_scaler():
    scaler = Scaler("minmax").fit(np.array([[0.0], [4.0]]))
    assert scaler.transform(np.array([[2.0], [8.0]])).ravel().tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match="data.scaler"):
        Scaler("robust")
