"""Write a SeriesRecord in the exact on-disk formats the sources read (for tests and synthetic data folders).

``write_telemanom`` splits the record into entities and writes ``train/<id>.npy``, ``test/<id>.npy`` and
``labeled_anomalies.csv``; ``write_numpy_layout`` writes ``<NAME>_{train,test,test_label}.npy``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fsad.data.record import SeriesRecord
from fsad.data.sources.numpy_layout import numpy_layout_files
from fsad.data.sources.telemanom import TELEMANOM_CSV

Entities = Sequence[tuple[str, int, int]]


def write_numpy_layout(record: SeriesRecord, root: str | Path, name: str, dtype: type = np.float64) -> Path:
    """Write ``<root>/<name>_train.npy`` (T, C), ``<name>_test.npy`` (T', C) as ``dtype`` and the (T',) labels."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    f_train, f_test, f_label = numpy_layout_files(name)
    np.save(root / f_train, record.train.astype(dtype))
    np.save(root / f_test, record.test.astype(dtype))
    np.save(root / f_label, record.test_labels.astype(np.float64))  # the public files store labels as floats
    return root


def write_telemanom(
    record: SeriesRecord,
    root: str | Path,
    spacecraft: str = "MSL",
    n_entities: int = 1,
    prefix: str = "E",
    entities: Entities | None = None,
    train_entities: Entities | None = None,
    append: bool = False,
) -> Path:
    """Write ``record`` as the telemanom release under ``root``.

    Entity blocks are ``entities`` / ``train_entities`` ((name, start, end_exclusive), contiguous, same names),
    else ``record.meta["entities"]`` / ``["train_entities"]``, else ``n_entities`` near-equal blocks named
    ``<prefix>-01``, ``<prefix>-02``, ... (zero-padded so that the chan_id string order is the block order).
    CSV rows are written in the given entity order; ``anomaly_sequences`` are the runs of 1 in each entity's
    labels, 0-based with inclusive ends. ``append=True`` adds rows to an existing CSV (e.g. a second spacecraft).
    Arrays are written as float64, as in the release.
    """
    root = Path(root)
    test_ent = list(entities or record.meta.get("entities") or _blocks(len(record.test), n_entities, prefix))
    train_ent = list(train_entities or record.meta.get("train_entities")
                     or _blocks(len(record.train), n_entities, prefix))
    if [e[0] for e in test_ent] != [e[0] for e in train_ent]:
        raise ValueError("write_telemanom: train and test entities must have the same names in the same order")
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    rows = []
    for (name, s, e), (_, s_tr, e_tr) in zip(test_ent, train_ent):
        np.save(root / "train" / f"{name}.npy", record.train[s_tr:e_tr].astype(np.float64))
        np.save(root / "test" / f"{name}.npy", record.test[s:e].astype(np.float64))
        seqs = _runs(record.test_labels[s:e])
        kinds = "[" + ", ".join("point" for _ in seqs) + "]"
        rows.append([name, spacecraft, str([list(r) for r in seqs]), kinds, e - s])
    csv_path = root / TELEMANOM_CSV
    new_file = not (append and csv_path.is_file())
    with csv_path.open("w" if new_file else "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(["chan_id", "spacecraft", "anomaly_sequences", "class", "num_values"])
        writer.writerows(rows)
    return root


def _blocks(total: int, n: int, prefix: str) -> list[tuple[str, int, int]]:
    """``n`` contiguous near-equal blocks covering ``range(total)``."""
    edges = np.linspace(0, total, n + 1).round().astype(int)
    return [(f"{prefix}-{i + 1:02d}", int(edges[i]), int(edges[i + 1])) for i in range(n)]


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of 1 in a (n,) 0/1 array as inclusive (start, end) pairs."""
    padded = np.concatenate([[0], labels.astype(np.int8), [0]])
    diff = np.diff(padded)
    starts, ends = np.flatnonzero(diff == 1), np.flatnonzero(diff == -1) - 1
    return [(int(a), int(b)) for a, b in zip(starts, ends)]
