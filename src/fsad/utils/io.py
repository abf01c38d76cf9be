"""Atomic writes: a result file is either complete or absent, never half written.

Files get the mode ``open()`` would give them (0666 minus the process umask), and JSON is standard JSON.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _new_temp_file(folder: Path, name: str, suffix: str) -> Path:
    """Create an empty hidden file ``.<name>.<random><suffix>`` in ``folder`` and return its path.

    Created like ``open(..., "x")`` (mode 0666 minus the umask), not with ``tempfile.mkstemp`` whose 0600 would
    stick to the renamed result.
    """
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a new temporary file in the same folder, then rename it to ``path``.

    The result has the usual mode of a new file (0666 minus the umask). If ``write`` raises, the temporary file
    is removed, ``path`` is left as it was, and the error propagates. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path.parent, path.name, path.suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, +-inf) replaced by ``None``, in nested dicts, lists and tuples
    (tuples become lists); other values are returned as they are."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented, key-sorted standard JSON; NaN and infinities are written as ``null``.

    The encoder runs with ``allow_nan=False``, so a non-finite number that reached it would raise ``ValueError``
    instead of writing ``NaN``; values JSON has no type for (e.g. numpy arrays) raise ``TypeError``.
    """
    text = json.dumps(json_safe(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write arrays to a compressed ``.npz`` file."""
    def _write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(path, _write)
