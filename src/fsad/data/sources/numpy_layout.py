"""The Anomaly-Transformer / DCdetector pre-processed layout: ``<root>/<NAME>_{train,test,test_label}.npy``.

``<NAME>_train.npy`` (T, C) and ``<NAME>_test.npy`` (T', C) are float arrays (the entities of MSL/SMAP/SMD
concatenated along time), ``<NAME>_test_label.npy`` is (T',) 0/1 (bool, int or float). NAME is ``MSL``, ``SMAP``
or ``SMD`` in the public releases; any name without a path separator is accepted.

Also holds the per-file checks shared by every ``.npy`` source (:func:`read_matrix`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data.record import DataValidationError, SeriesRecord


def numpy_layout_files(name: str) -> tuple[str, str, str]:
    """File names of the layout for ``name``: (train, test, test_label)."""
    return f"{name}_train.npy", f"{name}_test.npy", f"{name}_test_label.npy"


def load_numpy_layout(root: str | Path, name: str, channel_names: list[str] | None = None) -> SeriesRecord:
    """Read ``<root>/<name>_train.npy``, ``<name>_test.npy`` and ``<name>_test_label.npy``.

    Args:
        root: folder holding the three files.
        name: dataset name used as the file prefix (e.g. ``"MSL"``).
        channel_names: C names; default ``"<name>_<i>"``.

    Returns:
        SeriesRecord: train (T, C) float32, test (T', C) float32, test_labels (T',) int8, ``source`` = root,
        ``meta = {"layout": "numpy", "name": name}``.

    Raises:
        DataValidationError: a file is missing, unreadable, not 2-D numeric (labels: not 1-D 0/1), has NaN/inf,
            or the feature counts / label length disagree; the message names the file.
    """
    root = Path(root)
    if "/" in name or "\\" in name or not name:
        raise DataValidationError(f"{root}: field 'name'={name!r}; expected a file prefix such as 'MSL'")
    f_train, f_test, f_label = (root / f for f in numpy_layout_files(name))
    missing = [str(p) for p in (f_train, f_test, f_label) if not p.is_file()]
    if missing:
        raise DataValidationError(
            f"{root}: missing {', '.join(missing)}; expected the Anomaly-Transformer layout "
            f"{', '.join(numpy_layout_files(name))}"
        )
    train = read_matrix(f_train, "train")
    test = read_matrix(f_test, "test", n_features=train.shape[1], like=f_train)
    labels = read_labels(f_label, n_rows=test.shape[0], like=f_test)
    names = channel_names if channel_names is not None else [f"{name}_{i}" for i in range(train.shape[1])]
    record = SeriesRecord(
        train=train.astype(np.float32),
        test=test.astype(np.float32),
        test_labels=labels,
        channel_names=list(names),
        source=str(root),
        meta={"layout": "numpy", "name": name},
    )
    return record.validate()


def read_matrix(path: Path, field: str, n_features: int | None = None, like: Path | None = None) -> np.ndarray:
    """Load one ``.npy`` and check it is a finite, numeric (rows, features) array; returns it unchanged.

    ``n_features``: the feature count it must have (taken from file ``like``, named in the error).
    """
    arr = _load(path, field)
    if arr.ndim != 2:
        raise DataValidationError(f"{path}: field '{field}' has shape {arr.shape}; expected a 2-D (time, features)"
                                  " array")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise DataValidationError(f"{path}: field '{field}' has dtype {arr.dtype}; expected real numbers")
    if arr.shape[0] == 0:
        raise DataValidationError(f"{path}: field '{field}' has 0 rows; expected at least one time step")
    if n_features is not None and arr.shape[1] != n_features:
        raise DataValidationError(
            f"{path}: field '{field}' has {arr.shape[1]} features; expected {n_features} like {like}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        t, c = np.argwhere(bad)[0]
        raise DataValidationError(
            f"{path}: field '{field}' has {int(bad.sum())} NaN/inf values (first at row {t}, column {c}); "
            "expected finite numbers"
        )
    return arr


def read_labels(path: Path, n_rows: int, like: Path) -> np.ndarray:
    """Load a (T',) or (T', 1) 0/1 label ``.npy`` whose length must equal ``n_rows`` (rows of ``like``) -> int8."""
    arr = _load(path, "test_labels")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataValidationError(f"{path}: field 'test_labels' has shape {arr.shape}; expected ({n_rows},)")
    if len(arr) != n_rows:
        raise DataValidationError(
            f"{path}: field 'test_labels' has {len(arr)} labels; expected {n_rows}, the rows of {like}"
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataValidationError(f"{path}: field 'test_labels' has dtype {arr.dtype}; expected 0/1 numbers")
    values = np.unique(arr)
    if not np.isin(values, (0, 1)).all():
        raise DataValidationError(
            f"{path}: field 'test_labels' has values {values[:10].tolist()}; expected only 0 and 1"
        )
    return arr.astype(np.int8)


def _load(path: Path, field: str) -> np.ndarray:
    if not path.is_file():
        raise DataValidationError(f"{path}: field '{field}': file not found; expected a .npy file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataValidationError(f"{path}: field '{field}' is not a readable .npy array ({err})") from err
