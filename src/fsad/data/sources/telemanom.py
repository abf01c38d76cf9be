"""The NASA telemanom release (MSL and SMAP): one ``.npy`` per channel plus ``labeled_anomalies.csv``.

Layout (Hundman et al., KDD 2018; https://github.com/khundman/telemanom)::

    <root>/train/<chan_id>.npy     (T_i, F) float64, column 0 = telemetry value, the rest one-hot commands
    <root>/test/<chan_id>.npy      (T'_i, F)
    <root>/labeled_anomalies.csv   chan_id, spacecraft, anomaly_sequences, class, num_values

``anomaly_sequences`` is ``"[[start, end], ...]"`` with 0-based, end-INCLUSIVE indices into the test file;
``num_values`` is the number of test rows. The CSV lists both spacecraft (MSL: 27 channels, F = 55; SMAP: 55
rows, F = 25); chan_id ``P-2`` (SMAP) appears twice with different sequences.

Channel order. The concatenated ``MSL_*.npy`` / ``SMAP_*.npy`` files distributed with Anomaly-Transformer and
DCdetector come from OmniAnomaly's ``data_preprocess.py`` (NetManAIOps/OmniAnomaly), which sorts the CSV rows by
the chan_id STRING (so ``T-12`` comes before ``T-4``), drops ``P-2``, and concatenates train, test and labels in that
order (MTAD-GAT's pytorch port does the same). ``order="sorted"`` (the default) reproduces it; ``order="csv"``
keeps the CSV row order instead. Both give the same totals; only the position of each entity differs.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.csvfile import detect_format
from fsad.data.sources.numpy_layout import read_matrix
from fsad.data.sources.tabular import require_entity_files

TELEMANOM_CSV = "labeled_anomalies.csv"
TELEMANOM_FILES = ("train/<chan_id>.npy", "test/<chan_id>.npy", TELEMANOM_CSV)
_COLUMNS = ("chan_id", "spacecraft", "anomaly_sequences", "num_values")
OMNIANOMALY_EXCLUDED = ("P-2",)


@dataclass(frozen=True)
class TelemanomChannel:
    """One row of ``labeled_anomalies.csv``: sequences are 0-based inclusive ``(start, end)`` test indices."""

    chan_id: str
    spacecraft: str
    sequences: tuple[tuple[int, int], ...]
    num_values: int
    line: int  # line number in the CSV (header = 1), for error messages


def telemanom_channel_names(n_features: int) -> list[str]:
    """Feature names of a telemanom channel: ``telemetry`` then ``command_1`` .. ``command_{F-1}``."""
    return ["telemetry"] + [f"command_{i}" for i in range(1, n_features)]


def read_labeled_anomalies(path: str | Path) -> list[TelemanomChannel]:
    """Parse ``labeled_anomalies.csv`` (all rows, CSV order); check columns, sequences and num_values.

    The delimiter (``,`` ``;`` or tab) is detected as for every CSV (:func:`~fsad.data.sources.csvfile.detect_format`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: file not found; expected the telemanom label file {TELEMANOM_CSV} with columns "
            f"{', '.join(_COLUMNS)}, class"
        )
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter=detect_format(path).sep)
        header = [h.strip() for h in (reader.fieldnames or [])]
        absent = [c for c in _COLUMNS if c not in header]
        if absent:
            raise DataValidationError(f"{path}: columns {absent} are missing; expected columns {list(_COLUMNS)}")
        reader.fieldnames = header
        rows = [(i + 2, {k: (v or "").strip() for k, v in row.items() if k is not None})
                for i, row in enumerate(reader)]
    return [_parse_row(path, line, row) for line, row in rows]


def _parse_row(path: Path, line: int, row: dict[str, str]) -> TelemanomChannel:
    where = f"{path}, line {line} (chan_id {row['chan_id']!r})"
    try:
        num_values = int(row["num_values"])
    except ValueError:
        raise DataValidationError(f"{where}: field 'num_values'={row['num_values']!r}; expected an integer") from None
    try:
        seqs = ast.literal_eval(row["anomaly_sequences"])
        pairs = tuple((int(s), int(e)) for s, e in seqs)
        if any(float(s) != int(s) or float(e) != int(e) for s, e in seqs):
            raise ValueError
    except (ValueError, TypeError, SyntaxError):
        raise DataValidationError(
            f"{where}: field 'anomaly_sequences'={row['anomaly_sequences']!r}; expected '[[start, end], ...]' "
            "with integer indices"
        ) from None
    for s, e in pairs:
        if not 0 <= s <= e < num_values:
            raise DataValidationError(
                f"{where}: field 'anomaly_sequences' has [{s}, {e}]; expected 0 <= start <= end < num_values "
                f"({num_values}), end inclusive"
            )
    return TelemanomChannel(row["chan_id"], row["spacecraft"], pairs, num_values, line)


def select_channels(channels: Sequence[TelemanomChannel], spacecraft: str, order: str = "sorted",
                    exclude: Sequence[str] = OMNIANOMALY_EXCLUDED, csv_path: str | Path = TELEMANOM_CSV
                    ) -> list[TelemanomChannel]:
    """Rows of ``spacecraft`` minus ``exclude``, in ``order`` ("sorted" by chan_id string, or "csv")."""
    if order not in ("sorted", "csv"):
        raise DataValidationError(f"{csv_path}: field 'order'={order!r}; expected 'sorted' or 'csv'")
    chosen = [c for c in channels if c.spacecraft == spacecraft and c.chan_id not in set(exclude)]
    if not chosen:
        found = sorted({c.spacecraft for c in channels})
        raise DataValidationError(
            f"{csv_path}: field 'spacecraft' has no rows for {spacecraft!r} (after excluding {list(exclude)}); "
            f"expected one of {found}"
        )
    seen: dict[str, int] = {}
    for c in chosen:
        if c.chan_id in seen:
            raise DataValidationError(
                f"{csv_path}: field 'chan_id' {c.chan_id!r} appears on lines {seen[c.chan_id]} and {c.line}; "
                "expected each channel once (pass it in 'exclude' to drop it)"
            )
        seen[c.chan_id] = c.line
    return sorted(chosen, key=lambda c: c.chan_id) if order == "sorted" else chosen


def load_telemanom(root: str | Path, spacecraft: str = "MSL", order: str = "sorted",
                   exclude: Sequence[str] = OMNIANOMALY_EXCLUDED) -> SeriesRecord:
    """Read one spacecraft of the telemanom release and concatenate its channels (entities) along time.

    Args:
        root: folder with ``train/``, ``test/`` and ``labeled_anomalies.csv``.
        spacecraft: ``"MSL"`` or ``"SMAP"`` (the CSV's ``spacecraft`` value).
        order: ``"sorted"`` (chan_id string order, as the Anomaly-Transformer files) or ``"csv"`` (row order).
        exclude: chan_ids to drop; default ``("P-2",)`` as OmniAnomaly (P-2 is listed twice in the CSV).

    Returns:
        SeriesRecord: train (sum T_i, F) float32, test (sum T'_i, F) float32, test_labels (sum T'_i,) int8,
        channel names ``telemetry, command_1, ...``; ``meta``: ``layout``, ``spacecraft``, ``order``,
        ``entities`` = [(chan_id, test_start, test_end_exclusive)], ``train_entities`` likewise for train,
        ``anomaly_sequences`` = {chan_id: [(start, end_inclusive), ...]} (per-entity test indices).

    Raises:
        DataValidationError: the CSV or a channel file is missing or malformed, a file has NaN/inf or a different
            feature count, or ``num_values`` disagrees with the rows of the test file; the message names the file.
            Every selected channel of the CSV must have both its files: an absent one is named (full path), never
            skipped.
    """
    root = Path(root)
    csv_path = root / TELEMANOM_CSV
    if not root.is_dir():
        raise DataValidationError(f"{root}: folder not found; expected the telemanom layout {TELEMANOM_FILES}")
    chans = select_channels(read_labeled_anomalies(csv_path), spacecraft, order, exclude, csv_path)
    require_entity_files({c.chan_id: [root / part / f"{c.chan_id}.npy" for part in ("train", "test")] for c in chans},
                         "channel", f"{csv_path} (spacecraft {spacecraft})",
                         "restore the absent files from the telemanom release's data.zip")

    trains: list[np.ndarray] = []
    tests: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    n_features: int | None = None
    first: Path | None = None
    for ch in chans:
        f_train, f_test = root / "train" / f"{ch.chan_id}.npy", root / "test" / f"{ch.chan_id}.npy"
        train = read_matrix(f_train, "train", n_features, first)
        if n_features is None:
            n_features, first = train.shape[1], f_train
        test = read_matrix(f_test, "test", n_features, first)
        if test.shape[0] != ch.num_values:
            raise DataValidationError(
                f"{csv_path}, line {ch.line}: field 'num_values'={ch.num_values} for {ch.chan_id!r}; "
                f"expected the {test.shape[0]} rows of {f_test}"
            )
        lab = np.zeros(ch.num_values, dtype=np.int8)
        for s, e in ch.sequences:
            lab[s : e + 1] = 1
        trains.append(train.astype(np.float32))
        tests.append(test.astype(np.float32))
        labels.append(lab)

    record = SeriesRecord(
        train=np.concatenate(trains),
        test=np.concatenate(tests),
        test_labels=np.concatenate(labels),
        channel_names=telemanom_channel_names(int(n_features)),
        source=str(root),
        meta={
            "layout": "telemanom",
            "spacecraft": spacecraft,
            "order": order,
            "entities": _bounds([c.chan_id for c in chans], [len(a) for a in tests]),
            "train_entities": _bounds([c.chan_id for c in chans], [len(a) for a in trains]),
            "anomaly_sequences": {c.chan_id: list(c.sequences) for c in chans},
        },
    )
    return record.validate()


def _bounds(names: list[str], lengths: list[int]) -> list[tuple[str, int, int]]:
    """[(name, start, end_exclusive)] of consecutive blocks with the given lengths."""
    ends = np.cumsum(lengths).tolist()
    return [(n, e - k, e) for n, k, e in zip(names, lengths, ends)]
