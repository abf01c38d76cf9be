"""The one plain record every data source returns, and its validation.

A source (one loader per on-disk format) reads files and returns a :class:`SeriesRecord`; everything after
that (scaling, validation split, windows, loaders) is shared by all benchmarks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """Raised when data read from disk (or generated) is not what the platform expects.

    The message always names the file (or source), the field and what was expected.
    """


@dataclass
class SeriesRecord:
    """A benchmark as arrays.

    Attributes:
        train: (T, C) float32 training series (assumed normal, labels unused).
        test: (T', C) float32 test series.
        test_labels: (T',) int8 point labels, 1 = anomalous.
        channel_names: C names.
        source: where the record came from (a folder or file path, or ``"synthetic"``), used in error messages.
        val: optional (T'', C) float32 validation series provided by the benchmark itself.
        meta: free-form metadata (e.g. anomaly kinds present, entity boundaries).
    """

    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    channel_names: list[str]
    source: str
    val: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _labels_reported: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def n_channels(self) -> int:
        return int(self.train.shape[1])

    def validate(self, expected_channels: int | None = None) -> "SeriesRecord":
        """Check shapes, channel counts, finiteness and label length; raise :class:`DataValidationError`.

        Returns ``self`` so calls can be chained. ``expected_channels`` is the count the config declares.
        A test split whose labels are all 0 or all 1 is valid but logs a warning (once per record): threshold-free
        metrics such as AUC-ROC are undefined on it.
        """
        for name in ("train", "test") + (("val",) if self.val is not None else ()):
            arr = getattr(self, name)
            if arr.ndim != 2:
                raise DataValidationError(
                    f"{self.source}: field '{name}' must be a 2-D array (time, channels), got shape {arr.shape}"
                )
            if arr.shape[0] == 0:
                raise DataValidationError(f"{self.source}: field '{name}' is empty (0 time steps)")
            bad = ~np.isfinite(arr)
            if bad.any():
                t, c = np.argwhere(bad)[0]
                raise DataValidationError(
                    f"{self.source}: field '{name}' has {int(bad.sum())} NaN/inf values "
                    f"(first at time {t}, channel {c} '{self._channel(c)}'); expected finite numbers "
                    "(set the missing-value policy or clean the file)"
                )
        c_train = self.train.shape[1]
        for name in ("test",) + (("val",) if self.val is not None else ()):
            c = getattr(self, name).shape[1]
            if c != c_train:
                raise DataValidationError(
                    f"{self.source}: field '{name}' has {c} channels but 'train' has {c_train}; expected equal counts"
                )
        if expected_channels is not None and c_train != expected_channels:
            raise DataValidationError(
                f"{self.source}: data has {c_train} channels but the config declares n_channels={expected_channels}"
            )
        if len(self.channel_names) != c_train:
            raise DataValidationError(
                f"{self.source}: field 'channel_names' has {len(self.channel_names)} names for {c_train} channels"
            )
        if self.test_labels.ndim != 1 or len(self.test_labels) != len(self.test):
            raise DataValidationError(
                f"{self.source}: field 'test_labels' has shape {self.test_labels.shape}; "
                f"expected ({len(self.test)},), one label per test time step"
            )
        values = np.unique(self.test_labels)
        if not np.isin(values, (0, 1)).all():
            raise DataValidationError(
                f"{self.source}: field 'test_labels' must be 0/1, found values {values[:10].tolist()}"
            )
        self._report_one_class()
        return self

    def _report_one_class(self) -> None:
        """Warn (once) when the test labels hold a single class."""
        if self._labels_reported:
            return
        self._labels_reported = True
        n, anomalous = len(self.test_labels), int(self.test_labels.sum())
        if 0 < anomalous < n:
            return
        what = "has no labelled anomaly" if anomalous == 0 else "is labelled anomalous in every row"
        log.warning("%s: the test split (%s rows) %s; threshold-free metrics such as AUC-ROC are undefined and "
                    "will be reported as null", self.source, f"{n:,}", what)

    def _channel(self, c: int) -> str:
        return self.channel_names[c] if c < len(self.channel_names) else str(c)
