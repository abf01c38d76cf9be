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

    @property
    def dataset(self) -> str:
        return self.spacecraft.lower()

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
    """PSM: ``train.csv``, ``test.csv``, ``test_label.csv``; ``missing`` = error | ffill | zero | drop."""

    dataset = "psm"

    def __init__(self, root: str, missing: str = "ffill", **kwargs):
        super().__init__(**kwargs)
        self.root, self.missing = Path(root), missing

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.psm import load_psm

        return load_psm(self.root, missing=self.missing)


class SWaTDataModule(TimeSeriesDataModule):
    """SWaT in the DCdetector/FreCT (``dcdetector``), TransMamba (``transmamba``) or iTrust (``itrust``) layout."""

    dataset = "swat"  # request-only: download explains where to ask

    def __init__(self, root: str, layout: str = "dcdetector", missing: str = "zero", **kwargs):
        super().__init__(**kwargs)
        self.root, self.layout, self.missing = Path(root), layout, missing

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.swat import load_swat

        return load_swat(self.root, layout=self.layout, missing=self.missing)


class GECCODataModule(TimeSeriesDataModule):
    """GECCO 2018 drinking-water quality (9 sensors, ``EVENT`` label), split in time order like TAB.

    Args:
        root: folder with the challenge CSV (``file``; default: the folder's only ``*.csv``).
        missing: error | ffill | zero | drop (``drop`` reproduces TAB's 138,521 rows).
        train_fraction / train_rows: the first rows used for training (TAB: half).
    """

    dataset = "gecco"

    def __init__(self, root: str, file: str | None = None, missing: str = "drop", train_fraction: float = 0.5,
                 train_rows: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.root, self.file, self.missing = Path(root), file, missing
        self.train_fraction, self.train_rows = train_fraction, train_rows

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.gecco import load_gecco

        return load_gecco(self.root, self.file, self.missing, self.train_fraction, self.train_rows)


class CICIDSDataModule(TimeSeriesDataModule):
    """CICIDS2017 CICFlowMeter flows (every ``pattern`` CSV in ``root``), ordered by time; label = not BENIGN.

    ``drop_columns``: identifier-like numeric columns left out (default: id, ports, protocol; ``[]`` keeps them).
    """

    dataset = "cicids2017"  # manual download: the error says where to get the files

    def __init__(self, root: str, missing: str = "drop", train_fraction: float = 0.5, train_rows: int | None = None,
                 drop_columns: list[str] | None = None, pattern: str = "*.csv", **kwargs):
        super().__init__(**kwargs)
        self.root, self.missing, self.pattern = Path(root), missing, pattern
        self.train_fraction, self.train_rows, self.drop_columns = train_fraction, train_rows, drop_columns

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.cicids import load_cicids

        return load_cicids(self.root, missing=self.missing, train_fraction=self.train_fraction,
                           drop_columns=self.drop_columns, train_rows=self.train_rows, pattern=self.pattern)


class GenesisDataModule(TimeSeriesDataModule):
    """Genesis demonstrator (18 channels, ``Label`` 0 normal / 1, 2 anomaly kinds); TAB's split: 3,604 train rows."""

    dataset = "genesis"  # request-only: the error says where to get the file

    def __init__(self, root: str, file: str = "Genesis_AnomalyLabels.csv", label_column: str = "Label",
                 missing: str = "error", train_fraction: float = 0.2222, train_rows: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.root, self.file, self.label_column, self.missing = Path(root), file, label_column, missing
        self.train_fraction, self.train_rows = train_fraction, train_rows

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.genesis import load_genesis

        return load_genesis(self.root, self.file, self.label_column, self.missing, self.train_fraction,
                            self.train_rows)


class NABDataModule(TimeSeriesDataModule):
    """One NAB series (``<category>/<name>.csv``); train = its first ``train_fraction`` (NAB's probationary 15 %)."""

    dataset = "nab"

    def __init__(self, root: str, series: str = "realKnownCause/nyc_taxi.csv", train_fraction: float = 0.15,
                 missing: str = "error", **kwargs):
        super().__init__(**kwargs)
        self.root, self.series, self.train_fraction, self.missing = Path(root), series, train_fraction, missing

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.nab import load_nab

        return load_nab(self.root, self.series, self.train_fraction, self.missing)


class UCRDataModule(TimeSeriesDataModule):
    """One UCR anomaly-archive series (file name, stem or id); split and anomaly are read from the file name.

    ``convention``: ``archive`` (positions counted from 1, both ends anomalous) or ``tranad``.
    """

    dataset = "ucr"

    def __init__(self, root: str, series: str | int = 135, convention: str = "archive", **kwargs):
        super().__init__(**kwargs)
        self.root, self.series, self.convention = Path(root), series, convention

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.ucr import load_ucr

        return load_ucr(self.root, self.series, self.convention)


class TABDataModule(TimeSeriesDataModule):
    """A dataset of the TAB benchmark layout (``DETECT_META.csv`` + long-format CSVs), as RED-F and CATCH use."""

    dataset = "tab"  # manual download: the error says where to get the files

    def __init__(self, root: str, name: str = "MSL", meta_file: str = "DETECT_META.csv", missing: str = "error",
                 **kwargs):
        super().__init__(**kwargs)
        self.root, self.name, self.meta_file, self.missing = Path(root), name, meta_file, missing

    def load_record(self) -> SeriesRecord:
        from fsad.data.sources.tab import load_tab

        return load_tab(self.root, self.name, self.meta_file, self.missing)
