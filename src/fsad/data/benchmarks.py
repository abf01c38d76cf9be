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


class NASADataModule(TimeSeriesDataModule):
    """NASA MSL or SMAP telemetry, from the telemanom release or the Anomaly-Transformer ``<NAME>_*.npy`` files.

    Args:
        root: folder holding either layout (see :mod:`fsad.data.sources.msl`).
        spacecraft: ``MSL`` or ``SMAP``.
        layout: ``auto`` | ``telemanom`` | ``numpy``.
    """

    def __init__(self, root: str, spacecraft: str = "MSL", layout: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.root, self.spacecraft, self.layout = Path(root), spacecraft, layout

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.msl import load_nasa

        return load_nasa(self.root, self.spacecraft, layout=self.layout)


class SMDDataModule(TimeSeriesDataModule):
    """SMD: OmniAnomaly raw layout (one machine, a list, or all concatenated) or the Anomaly-Transformer npy files.

    Args:
        root: folder holding ``ServerMachineDataset/`` or ``SMD_*.npy`` (see :mod:`fsad.data.sources.smd`).
        machines: ``all``, ``machine-1-2`` or a list of names (raw layout).
        layout: ``auto`` | ``omnianomaly`` | ``numpy``.
    """

    dataset = "smd"

    def __init__(self, root: str, machines: str | list[str] = "all", layout: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.root, self.machines, self.layout = Path(root), machines, layout

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.smd import load_smd

        return load_smd(self.root, self.machines, layout=self.layout)


class NumpyLayoutDataModule(TimeSeriesDataModule):
    """Any benchmark in the Anomaly-Transformer layout ``<root>/<name>_{train,test,test_label}.npy`` (e.g. SMD)."""

    def __init__(self, root: str, name: str, **kwargs):
        super().__init__(**kwargs)
        self.root, self.name = Path(root), name

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.numpy_layout import load_numpy_layout

        return load_numpy_layout(self.root, self.name)


class PSMDataModule(TimeSeriesDataModule):
    """PSM: ``train.csv``, ``test.csv``, ``test_label.csv``; ``missing`` = error | ffill | zero."""

    def __init__(self, root: str, missing: str = "ffill", **kwargs):
        super().__init__(**kwargs)
        self.root, self.missing = Path(root), missing

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.psm import load_psm

        return load_psm(self.root, missing=self.missing)


class SWaTDataModule(TimeSeriesDataModule):
    """SWaT in the DCdetector/FreCT (``dcdetector``) or TransMamba (``transmamba``) file convention."""

    def __init__(self, root: str, layout: str = "dcdetector", missing: str = "zero", **kwargs):
        super().__init__(**kwargs)
        self.root, self.layout, self.missing = Path(root), layout, missing

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.swat import load_swat

        return load_swat(self.root, layout=self.layout, missing=self.missing)
