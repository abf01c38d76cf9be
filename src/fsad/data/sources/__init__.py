"""Data sources: one loader per public on-disk format, each returning a :class:`fsad.data.record.SeriesRecord`.

- :mod:`~fsad.data.sources.csvfile`: shared CSV reading (delimiter and decimal mark detected) and number checks
  whose errors name the file, the line and the column.
- :mod:`~fsad.data.sources.tabular`: the missing-value policy, labels, entity completeness and record checks.
- :mod:`~fsad.data.sources.single_table`: shared by the sources without a train/test split of their own (time
  order, column lookup, the two ways of cutting at a training length).
- :mod:`~fsad.data.sources.telemanom`: NASA telemanom release (``train/``, ``test/``, ``labeled_anomalies.csv``).
- :mod:`~fsad.data.sources.numpy_layout`: Anomaly-Transformer files ``<NAME>_{train,test,test_label}.npy``.
- :mod:`~fsad.data.sources.msl`: MSL / SMAP from whichever of the two layouts is on disk.
- :mod:`~fsad.data.sources.smd`: SMD, OmniAnomaly raw per-machine text files or the npy layout.
- :mod:`~fsad.data.sources.psm`, :mod:`~fsad.data.sources.swat`: PSM and SWaT (DCdetector, TransMamba, iTrust).
- :mod:`~fsad.data.sources.gecco`, :mod:`~fsad.data.sources.cicids`, :mod:`~fsad.data.sources.genesis`: single
  time-ordered CSV collections split like TAB.
- :mod:`~fsad.data.sources.nab`, :mod:`~fsad.data.sources.ucr`: univariate collections for quick checks.
- :mod:`~fsad.data.sources.tab`: the TAB benchmark layout (``DETECT_META.csv`` + long-format CSVs).
- :mod:`~fsad.data.sources.writers`: write a record in the telemanom / npy layouts (tests, synthetic folders).
"""

from fsad.data.sources.msl import detect_layout, load_msl, load_nasa, load_smap
from fsad.data.sources.numpy_layout import load_numpy_layout
from fsad.data.sources.telemanom import load_telemanom, read_labeled_anomalies
from fsad.data.sources.writers import write_numpy_layout, write_telemanom

__all__ = [
    "detect_layout",
    "load_msl",
    "load_nasa",
    "load_numpy_layout",
    "load_smap",
    "load_telemanom",
    "read_labeled_anomalies",
    "write_numpy_layout",
    "write_telemanom",
]
