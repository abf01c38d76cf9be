"""Synthetic generator: determinism, shapes, anomaly ratio, and that each injected kind is what it claims."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.data.record import DataValidationError
from fsad.data.synthetic import ANOMALY_KINDS, make_synthetic

ARGS = dict(length=2000, n_channels=4, train_length=1500)


def test_shapes_dtypes_and_clean_train() -> None:
    rec = make_synthetic(**ARGS, anomaly_ratio=0.05, seed=0)
    assert rec.train.shape == (1500, 4) and rec.test.shape == (2000, 4)
    assert rec.train.dtype == np.float32 and rec.test.dtype == np.float32
    assert rec.test_labels.dtype == np.int8 and rec.test_labels.shape == (2000,)
    assert rec.channel_names == ["ch0", "ch1", "ch2", "ch3"]
    clean = make_synthetic(**ARGS, anomaly_ratio=0.0, seed=0)
    np.testing.assert_array_equal(rec.train, clean.train)  # the train part is never touched
    assert clean.test_labels.sum() == 0 and clean.meta["segments"] == [] and clean.meta["kinds"] == []
    assert make_synthetic(length=100, n_channels=2).train.shape == (100, 2)  # train_length defaults to length


def test_determinism() -> None:
    a, b = make_synthetic(**ARGS, seed=7), make_synthetic(**ARGS, seed=7)
    c = make_synthetic(**ARGS, seed=8)
    for name in ("train", "test", "test_labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.meta["segments"] == b.meta["segments"]
    assert not np.array_equal(a.test, c.test) and not np.array_equal(a.train, c.train)
    assert not np.array_equal(a.test_labels, c.test_labels)


@pytest.mark.parametrize("ratio", [0.01, 0.05, 0.105, 0.2])
def test_realised_ratio_near_target(ratio: float) -> None:
    rec = make_synthetic(**ARGS, anomaly_ratio=ratio, seed=1)
    assert abs(rec.test_labels.mean() - ratio) <= 0.002
    covered = np.zeros(len(rec.test), dtype=np.int8)
    for start, end, _ in rec.meta["segments"]:
        assert covered[start:end].sum() == 0  # segments do not overlap
        covered[start:end] = 1
    np.testing.assert_array_equal(covered, rec.test_labels)  # labels are exactly the segments


def test_every_kind_present_and_differs_from_clean() -> None:
    rec = make_synthetic(**ARGS, anomaly_ratio=0.05, seed=2)
    clean = make_synthetic(**ARGS, anomaly_ratio=0.0, seed=2)
    assert rec.meta["kinds"] == list(ANOMALY_KINDS)
    assert {k for _, _, k in rec.meta["segments"]} == set(ANOMALY_KINDS)
    full = np.concatenate([clean.train, clean.test])
    lo, hi = full.min(axis=0), full.max(axis=0)
    span = hi - lo
    for (start, end, kind), chans in zip(rec.meta["segments"], rec.meta["segment_channels"]):
        assert chans, kind
        for c in chans:
            got, ref = rec.test[start:end, c], clean.test[start:end, c]
            if kind == "point_global":
                assert end - start == 1 and (got[0] > hi[c] + 0.4 * span[c] or got[0] < lo[c] - 0.4 * span[c])
            elif kind == "point_contextual":
                assert end - start == 1 and lo[c] <= got[0] <= hi[c]  # inside the global range ...
                assert abs(got[0] - ref[0]) >= 0.35 * span[c]  # ... but far from its context
                neighbours = clean.test[[start - 1, end], c]
                np.testing.assert_array_equal(rec.test[[start - 1, end], c], neighbours)
                assert np.abs(got[0] - neighbours).min() >= 0.2 * span[c]
            else:
                assert end - start >= 3
                assert np.abs(got - ref).mean() >= 0.03 * span[c], (kind, start, c)
        untouched = [c for c in range(rec.n_channels) if c not in chans]
        np.testing.assert_array_equal(rec.test[start:end, untouched], clean.test[start:end, untouched])
    normal = rec.test_labels == 0
    np.testing.assert_array_equal(rec.test[normal], clean.test[normal])


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_single_kind(kind: str) -> None:
    rec = make_synthetic(**ARGS, anomaly_ratio=0.03, kinds=(kind,), seed=3)
    assert rec.meta["kinds"] == [kind]
    assert {k for _, _, k in rec.meta["segments"]} == {kind}
    assert abs(rec.test_labels.mean() - 0.03) <= 0.002


def test_bad_arguments() -> None:
    with pytest.raises(DataValidationError, match="'kinds'"):
        make_synthetic(kinds=("spike",))
    with pytest.raises(DataValidationError, match="'anomaly_ratio'"):
        make_synthetic(anomaly_ratio=0.7)
    with pytest.raises(DataValidationError, match="'n_channels'"):
        make_synthetic(n_channels=0)
