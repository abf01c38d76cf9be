"""One thin DataModule per benchmark: each only says how to read its data into a SeriesRecord."""

from __future__ import annotations

from pathlib import Path

from fsad.data.datamodule import TimeSeriesDataModule
from fsad.data.record import SeriesRecord


class SyntheticDataModule(TimeSeriesDataModule):
    """Seeded synthetic multivariate series with the five TODS anomaly kinds (no files, no downloads).

    ``generator`` holds the keyword arguments of :func:`fsad.data.synthetic.make_synthetic`.
    """

    def __init__(self, generator: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator = dict(generator or {})

    def load_record(self) -> SeriesRecord:
        from fsad.data.synthetic import make_synthetic

        return make_synthetic(n_channels=self.n_channels, **self.generator)


class MSLDataModule(TimeSeriesDataModule):
    """NASA MSL telemetry, from the telemanom release or the Anomaly-Transformer ``MSL_*.npy`` layout.

    Args:
        root: folder holding either layout (see :func:`fsad.data.sources.msl.load_msl`).
        layout: ``auto`` | ``telemanom`` | ``numpy``.
    """

    def __init__(self, root: str, layout: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.root, self.layout = Path(root), layout

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.msl import load_msl

        return load_msl(self.root, layout=self.layout)
