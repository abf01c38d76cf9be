"""The shared LightningDataModule for time-series anomaly detection.

One way data flows: (optional download) -> ``load_record()`` (a source, one per on-disk format) -> validation ->
split into train / validation -> scaler fitted on the training part -> windows -> loaders. Benchmarks subclass
this and only implement :meth:`TimeSeriesDataModule.load_record` (and name their ``dataset`` for downloads).

Two tasks share the same window cutting (:mod:`fsad.data.windows`):

- detection (``horizon = 0``): windows of ``window`` steps; scoring windows are non-overlapping plus a tail window
  and every step of a split is scored;
- anomaly prediction (``horizon = H > 0``, RED-F): a sample is a look-back of ``window = L`` steps followed by
  ``horizon_blocks`` horizons of H steps (``L + horizon_blocks * H`` in all, for training and validation loss);
  scoring windows hold ``L + H`` steps every H steps and only their last H steps are scored. Validation and test
  are prefixed with the L steps that precede them in time (the end of the training series), so each of their
  steps is scored exactly once; the training series has no such context and its first L steps are not scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from fsad.data.record import SeriesRecord
from fsad.data.scaling import Scaler
from fsad.data.windows import EpochSeededShuffler, WindowDataset, window_starts

VAL_SOURCES = ("train_tail", "test", "none")
log = logging.getLogger(__name__)


@dataclass
class Split:
    """A scaled series ready for windowing.

    Attributes:
        values: (T, C) the split itself.
        labels: (T,) 0/1 or None.
        context: (K, C) the steps just before it in time (prediction task only), or None.
    """

    values: np.ndarray
    labels: np.ndarray | None = None
    context: np.ndarray | None = None


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
        horizon: H > 0 switches to the anomaly-prediction task (``window`` is then the look-back L).
        horizon_blocks: horizons of H steps after the look-back in a training sample (RED-F's 1 + n MSP modules).
        download: fetch the files of ``dataset`` into ``root`` when they are absent (see :mod:`fsad.data.download`).
        mirror: base URL replacing the public sources when downloading.
    """

    dataset: str | None = None  #: name in the download registry; None: nothing to download

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
        horizon: int = 0,
        horizon_blocks: int = 1,
        download: bool = False,
        mirror: str | None = None,
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
        if horizon < 0 or horizon_blocks < 1:
            raise ValueError(f"data.horizon must be >= 0 and data.horizon_blocks >= 1, got {horizon}, {horizon_blocks}")
        self.horizon, self.horizon_blocks = horizon, horizon_blocks
        self.download, self.mirror = download, mirror
        self.record: SeriesRecord | None = None
        self.splits: dict[str, Split] = {}

    # --- to implement per benchmark -------------------------------------------------------------------------
    def load_record(self) -> SeriesRecord:
        """Read the benchmark from disk (or generate it) as a :class:`SeriesRecord`."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------------------
    @property
    def sample_length(self) -> int:
        """Steps in a training / validation sample: W, or L + horizon_blocks * H for prediction."""
        return self.window + self.horizon * self.horizon_blocks

    def prepare_data(self) -> None:
        """Download the benchmark when ``download`` is set (a no-op when its files are already there)."""
        if not self.download:
            return
        if self.dataset is None:
            raise ValueError(f"data.download=true but {type(self).__name__} has no downloadable files")
        from fsad.data.download import fetch

        fetch(self.dataset, Path(getattr(self, "root")), mirror=self.mirror)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        record = self.load_record().validate(expected_channels=self.n_channels)
        if record.meta.get("missing_values_filled"):
            log.info("%s: the missing-value policy changed %d values", record.source,
                     record.meta["missing_values_filled"])
        train, val = record.train, record.val
        if val is None and self.val_source == "train_tail":
            cut = int(len(train) * (1.0 - self.val_fraction))
            train, val = train[:cut], train[cut:]
        elif self.val_source == "test":
            val = record.test
        elif self.val_source == "none":
            val = None
        for name, arr in (("train", train), ("val", val), ("test", record.test)):
            if arr is not None and len(arr) < self.sample_length:
                raise ValueError(f"{record.source}: the {name} split has {len(arr)} steps, fewer than one sample "
                                 f"of {self.sample_length} (data.window + data.horizon * data.horizon_blocks)")
        self.scaler.fit(train)
        self.record = record
        scaled_train = self.scaler.transform(train)
        # prediction: the L steps before test (and before a test-sourced validation) end the full training series
        context = self.scaler.transform(record.train[-self.window:]) if self.horizon else None
        self.splits = {"train": Split(scaled_train)}
        if val is not None:
            val_context = scaled_train[-self.window:] if self.horizon and self.val_source == "train_tail" else context
            self.splits["val"] = Split(self.scaler.transform(val), context=val_context)
        self.splits["test"] = Split(self.scaler.transform(record.test), record.test_labels.astype(np.int8), context)

    def _loader(self, split: str, stride: int, cover_tail: bool, shuffle: bool = False,
                scoring: bool = False) -> DataLoader:
        data = self.splits[split]
        series, labels, length = data.values, data.labels, self.sample_length
        if scoring and self.horizon:
            length = self.window + self.horizon
            if data.context is not None:  # prefix the look-back that precedes the split in time
                series = np.concatenate([data.context, data.values])
                labels = None if labels is None else np.concatenate([np.zeros(len(data.context), labels.dtype),
                                                                     labels])
        starts = window_starts(len(series), length, stride, cover_tail=cover_tail)
        dataset = WindowDataset(series, length, starts, labels)
        sampler = EpochSeededShuffler(len(dataset), self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def scored_length(self, split: str) -> int:
        """Steps of ``split`` that receive a score: all of them, except the first L training steps when predicting.

        Window starts reported by the scoring loaders are in these coordinates: with prediction, the window that
        starts at ``s`` of the (context-prefixed) series scores steps ``s .. s + H - 1``.
        """
        data = self.splits[split]
        unscored = self.window if self.horizon and data.context is None else 0
        return len(data.values) - unscored

    def scored_labels(self) -> np.ndarray:
        """(scored_length("test"),) test labels aligned with the assembled test scores."""
        labels = self.splits["test"].labels
        return labels[len(labels) - self.scored_length("test"):]

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.train_stride, cover_tail=False, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", self.val_stride, cover_tail=False) if "val" in self.splits else []

    def scoring_dataloaders(self, train_stride: int | None = None) -> dict[str, DataLoader]:
        """Loaders whose window scores are reassembled into per-step scores, by split name.

        ``train`` uses ``train_stride`` (default: the scored span, ``window`` or H, i.e. non-overlapping; 1
        reproduces the papers' train energy over every window position), ``val`` and ``test`` are
        non-overlapping with a tail window.
        """
        span = self.horizon or self.window
        loaders = {"train": self._loader("train", train_stride or span, cover_tail=True, scoring=True)}
        if "val" in self.splits and self.val_source != "test":
            loaders["val"] = self._loader("val", span, cover_tail=True, scoring=True)
        loaders["test"] = self._loader("test", span, cover_tail=True, scoring=True)
        return loaders
