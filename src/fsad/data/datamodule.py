"""The shared LightningDataModule for time-series anomaly detection.

One way data flows: ``load_record()`` (a source, one per on-disk format) -> validation -> split into
train / validation -> scaler fitted on the training part -> windows -> loaders. Benchmarks subclass this and
only implement :meth:`TimeSeriesDataModule.load_record`.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from fsad.data.record import SeriesRecord
from fsad.data.scaling import Scaler
from fsad.data.windows import EpochSeededShuffler, WindowDataset, window_starts

VAL_SOURCES = ("train_tail", "test", "none")


@dataclass
class Split:
    """A scaled series ready for windowing: (T, C) values and optional (T,) labels."""

    values: np.ndarray
    labels: np.ndarray | None = None


class TimeSeriesDataModule(L.LightningDataModule):
    """Windows over a benchmark's train / validation / test series.

    Args:
        n_channels: C declared by the config; the data must have exactly this many channels.
        window: W, window length in time steps.
        batch_size: windows per batch for training, validation and scoring.
        train_stride: step between training windows (1 in the papers).
        val_source: ``train_tail`` (honest default: the last ``val_fraction`` of the training series is held out
            from training and used for early stopping and for fitting thresholds), ``test`` (the papers' habit:
            the test series, labels unused, for early stopping; the whole training series is trained on), or
            ``none``.
        val_fraction: share of the training series held out with ``train_tail``.
        val_stride: step between validation windows (default: ``window``, i.e. non-overlapping).
        scaler: ``standard`` | ``minmax`` | ``none``, fitted on the training part only.
        anomaly_ratio: the benchmark's anomaly ratio in percent used by the papers' percentile threshold.
        num_workers: DataLoader workers.
        seed: seed of the training shuffle (per epoch, so resumed runs see the same batches).
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        batch_size: int = 64,
        train_stride: int = 1,
        val_source: str = "train_tail",
        val_fraction: float = 0.2,
        val_stride: int | None = None,
        scaler: str = "standard",
        anomaly_ratio: float = 1.0,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        if val_source not in VAL_SOURCES:
            raise ValueError(f"data.val_source must be one of {VAL_SOURCES}, got {val_source!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        self.n_channels, self.window, self.batch_size = n_channels, window, batch_size
        self.train_stride, self.val_stride = train_stride, val_stride or window
        self.val_source, self.val_fraction = val_source, val_fraction
        self.scaler = Scaler(scaler)
        self.anomaly_ratio, self.num_workers, self.seed = anomaly_ratio, num_workers, seed
        self.record: SeriesRecord | None = None
        self.splits: dict[str, Split] = {}

    # --- to implement per benchmark -------------------------------------------------------------------------
    def load_record(self) -> SeriesRecord:
        """Read the benchmark from disk (or generate it) as a :class:`SeriesRecord`."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        record = self.load_record().validate(expected_channels=self.n_channels)
        train, val = record.train, record.val
        if val is None and self.val_source == "train_tail":
            cut = int(len(train) * (1.0 - self.val_fraction))
            train, val = train[:cut], train[cut:]
        elif self.val_source == "test":
            val = record.test
        elif self.val_source == "none":
            val = None
        for name, arr in (("train", train), ("val", val), ("test", record.test)):
            if arr is not None and len(arr) < self.window:
                raise ValueError(f"{record.source}: the {name} split has {len(arr)} steps, fewer than "
                                 f"data.window={self.window}")
        self.scaler.fit(train)
        self.record = record
        self.splits = {"train": Split(self.scaler.transform(train))}
        if val is not None:
            self.splits["val"] = Split(self.scaler.transform(val))
        self.splits["test"] = Split(self.scaler.transform(record.test), record.test_labels.astype(np.int8))

    def _loader(self, split: str, stride: int, cover_tail: bool, shuffle: bool = False) -> DataLoader:
        data = self.splits[split]
        starts = window_starts(len(data.values), self.window, stride, cover_tail=cover_tail)
        dataset = WindowDataset(data.values, self.window, starts, data.labels)
        sampler = EpochSeededShuffler(len(dataset), self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.train_stride, cover_tail=False, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", self.val_stride, cover_tail=False) if "val" in self.splits else []

    def scoring_dataloaders(self, train_stride: int | None = None) -> dict[str, DataLoader]:
        """Loaders whose window scores are reassembled into per-step scores, by split name.

        ``train`` uses ``train_stride`` (default ``window``: non-overlapping; 1 reproduces the papers' train
        energy over every window position), ``val`` and ``test`` are non-overlapping with a tail window.
        """
        loaders = {"train": self._loader("train", train_stride or self.window, cover_tail=True)}
        if "val" in self.splits and self.val_source != "test":
            loaders["val"] = self._loader("val", self.window, cover_tail=True)
        loaders["test"] = self._loader("test", self.window, cover_tail=True)
        return loaders
