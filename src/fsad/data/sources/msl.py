"""MSL and SMAP from whichever public layout is on disk: the telemanom release or the Anomaly-Transformer files.

``layout="auto"`` picks by which files exist in ``root``:

- ``telemanom``: ``labeled_anomalies.csv`` and the folders ``train/`` and ``test/`` (preferred when both
  layouts are present, because it keeps the entity boundaries);
- ``numpy``: ``<NAME>_train.npy``, ``<NAME>_test.npy``, ``<NAME>_test_label.npy``.

Both layouts of the same data give identical ``train``/``test``/``test_labels`` arrays and channel names
(telemanom's channel order is the chan_id string order, as in the Anomaly-Transformer files).
"""

from __future__ import annotations

from pathlib import Path

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.numpy_layout import load_numpy_layout, numpy_layout_files
from fsad.data.sources.telemanom import (
    TELEMANOM_CSV,
    TELEMANOM_FILES,
    load_telemanom,
    telemanom_channel_names,
)

LAYOUTS = ("auto", "telemanom", "numpy")


def detect_layout(root: str | Path, name: str) -> str:
    """``"telemanom"`` or ``"numpy"`` by the files in ``root``; DataValidationError listing both otherwise."""
    root = Path(root)
    expected = (
        f"expected either the telemanom layout ({', '.join(TELEMANOM_FILES)}) or the Anomaly-Transformer "
        f"layout ({', '.join(numpy_layout_files(name))})"
    )
    if not root.is_dir():
        raise DataValidationError(f"{root}: {name} folder not found; {expected}")
    if (root / TELEMANOM_CSV).is_file() and (root / "train").is_dir() and (root / "test").is_dir():
        return "telemanom"
    if all((root / f).is_file() for f in numpy_layout_files(name)):
        return "numpy"
    present = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:20]
    raise DataValidationError(f"{root}: no complete {name} layout (found {present}); {expected}")


def load_nasa(root: str | Path, name: str, layout: str = "auto") -> SeriesRecord:
    """Load spacecraft ``name`` (``"MSL"`` or ``"SMAP"``) from ``root`` in ``layout`` (auto/telemanom/numpy).

    Returns the SeriesRecord of :func:`load_telemanom` (with entity boundaries) or :func:`load_numpy_layout`
    (channel names set to the telemanom names), train (T, F), test (T', F), labels (T',).
    """
    if layout not in LAYOUTS:
        raise DataValidationError(f"{root}: field 'layout'={layout!r}; expected one of {LAYOUTS}")
    chosen = detect_layout(root, name) if layout == "auto" else layout
    if chosen == "telemanom":
        return load_telemanom(root, spacecraft=name)
    if not Path(root).is_dir():
        detect_layout(root, name)  # raises the folder-not-found message
    record = load_numpy_layout(root, name)
    record.channel_names = telemanom_channel_names(record.n_channels)
    return record


def load_msl(root: str | Path, layout: str = "auto") -> SeriesRecord:
    """MSL (27 entities, 55 features; train 58,317 x 55, test 73,729 x 55 in the public release)."""
    return load_nasa(root, "MSL", layout)


def load_smap(root: str | Path, layout: str = "auto") -> SeriesRecord:
    """SMAP (54 entities without P-2, 25 features; train 135,183 x 25, test 427,617 x 25 in the public release)."""
    return load_nasa(root, "SMAP", layout)
