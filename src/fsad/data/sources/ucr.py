"""UCR time-series anomaly archive (KDD Cup 2021, Wu & Keogh): one univariate series per file, one anomaly each.

Layout (flat; other files such as README.md or SOURCE.txt are ignored)::

    <root>/<id>_UCR_Anomaly_<name>_<trainEnd>_<anomStart>_<anomEnd>.txt
        e.g. 135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt

Each file holds the whole series as plain numbers: one per line in most files, but some archive files put every
value on one line separated by spaces. Both are read (the text is split on any whitespace).

Split: train = the first ``trainEnd`` values, test = the rest (as TranAD's ``preprocess.py`` does).

Anomaly positions (``convention``):

- ``"archive"`` (default): the archive numbers points from 1, so ``anomStart..anomEnd`` (both included) are the
  0-based indices ``[anomStart - 1, anomEnd - 1]``: ``anomEnd - anomStart + 1`` points.
- ``"tranad"``: TranAD sets ``labels[anomStart - trainEnd : anomEnd - trainEnd] = 1`` on the test part, i.e.
  0-based ``[anomStart, anomEnd - 1]`` of the whole series (``anomEnd - anomStart`` points). TSB-AD's converted
  KDD21/UCR files also have their first anomalous point at 0-based ``anomStart`` (e.g. InternalBleeding16, anomStart
  4187, is their ``..._1st_4187.csv``).

So against TranAD/TSB-AD the default labels one extra point, 0-based ``anomStart - 1``, just before their region.
The last point, 0-based ``anomEnd - 1``, is the same as TranAD's. The anomaly must lie in the test part.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.single_table import split_at
from fsad.data.sources.tabular import make_record, name_list, numeric_matrix, require_folder

UCR_PATTERN = re.compile(r"^(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)\.txt$")
UCR_FILES = ("<id>_UCR_Anomaly_<name>_<trainEnd>_<anomStart>_<anomEnd>.txt",)
CONVENTIONS = ("archive", "tranad")


class UcrName(NamedTuple):
    """The facts in a UCR file name (positions as written there, 1-based)."""

    id: int
    name: str
    train_end: int
    anomaly_start: int
    anomaly_end: int
    file: str


def parse_ucr_name(file_name: str) -> UcrName | None:
    """The fields of ``<id>_UCR_Anomaly_<name>_<trainEnd>_<anomStart>_<anomEnd>.txt``; None for other names."""
    match = UCR_PATTERN.match(file_name)
    if match is None:
        return None
    uid, name, train_end, start, end = match.groups()
    return UcrName(int(uid), name, int(train_end), int(start), int(end), file_name)


def ucr_series(root: str | Path) -> list[str]:
    """The archive file names in ``root``, sorted by id (then name)."""
    return [entry.file for entry in _archive(require_folder(root, "UCR", UCR_FILES))]


def load_ucr(root: str | Path, series: str | int, convention: str = "archive") -> SeriesRecord:
    """Read the UCR series ``series``: the full file name, its stem, or the id (``135`` or ``"135"``).

    Returns one channel named ``value``: train (trainEnd, 1), test (n - trainEnd, 1), test_labels (n - trainEnd,)
    int8 with 1 on the anomaly (positions per ``convention``, see the module docstring).
    """
    if convention not in CONVENTIONS:
        raise DataValidationError(f"UCR: field 'convention'={convention!r}; expected one of {CONVENTIONS}")
    root = require_folder(root, "UCR", UCR_FILES)
    entry = _resolve(root, series)
    path = root / entry.file
    values, one_line = read_values(path)
    first, last = anomaly_indices(entry, len(values), convention, path)
    labels = np.zeros(len(values), dtype=np.int8)
    labels[first:last + 1] = 1
    lines = np.ones(len(values), dtype=np.int64) if one_line else None
    numeric = numeric_matrix(pd.DataFrame({"value": values}), path, "error", lines)
    split = split_at(numeric, labels, entry.train_end, len(values), path, "trainEnd (file name)")
    return make_record(split.train, split.test, split.test_labels, ["value"], path, "ucr", [numeric],
                       ucr_id=entry.id, name=entry.name, train_end=entry.train_end,
                       anomaly_start=entry.anomaly_start, anomaly_end=entry.anomaly_end, convention=convention,
                       anomaly_indices=[first, last], n_values=len(values), one_line=one_line)


def read_values(path: Path) -> tuple[np.ndarray, bool]:
    """(n,) float64 values of a UCR file, whatever whitespace separates them, and whether they share one line.

    Raises DataValidationError for an unreadable or empty file, and for the first token that is not a number,
    naming its line of the file (from 1) and its position among the values (from 1).
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise DataValidationError(f"{path}: cannot be read ({err})") from err
    tokens = text.split()
    if not tokens:
        raise DataValidationError(f"{path}: no values; expected one number per line or numbers separated by spaces")
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        raise _non_number(text, path) from None
    return values, len(tokens) > 1 and len(text.strip().splitlines()) == 1


def _non_number(text: str, path: Path) -> DataValidationError:
    """The error for the first token of ``text`` that is not a number."""
    count = 0
    for line, content in enumerate(text.splitlines(), 1):
        for token in content.split():
            count += 1
            if not _is_number(token):
                return DataValidationError(f"{path}: line {line} of the file, column 'value' (value {count}): "
                                           f"{token!r} is not a number; expected numbers only")
    return DataValidationError(f"{path}: values are not all numbers; expected numbers only")


def anomaly_indices(entry: UcrName, n_values: int, convention: str, path: Path) -> tuple[int, int]:
    """The 0-based first and last (inclusive) anomalous index; DataValidationError unless it lies in the test part."""
    first = entry.anomaly_start - 1 if convention == "archive" else entry.anomaly_start
    last = entry.anomaly_end - 1
    if not (0 <= first <= last < n_values):
        raise DataValidationError(f"{path}: anomaly {entry.anomaly_start}..{entry.anomaly_end} (file name) gives "
                                  f"0-based indices {first}..{last}; expected a non-empty range inside the "
                                  f"{n_values} values")
    if first < entry.train_end:
        raise DataValidationError(f"{path}: anomaly starts at 0-based index {first}, inside the training part "
                                  f"(the first trainEnd={entry.train_end} values); expected it in the test part")
    return first, last


def _archive(root: Path) -> list[UcrName]:
    entries = [parse_ucr_name(p.name) for p in root.iterdir() if p.is_file()]
    return sorted((e for e in entries if e is not None), key=lambda e: (e.id, e.file))


def _resolve(root: Path, series: str | int) -> UcrName:
    """The one archive file that ``series`` names (file name, stem or id)."""
    wanted = Path(str(series).strip()).name
    entries = _archive(root)
    if wanted.isdigit():
        matches = [e for e in entries if e.id == int(wanted)]
    else:
        stem = wanted[:-4] if wanted.endswith(".txt") else wanted
        matches = [e for e in entries if e.file == stem + ".txt"]
        if not matches and (root / (stem + ".txt")).is_file():
            raise DataValidationError(f"{root / (stem + '.txt')}: name does not follow the pattern {UCR_FILES[0]}")
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DataValidationError(f"{root}: UCR series '{series}' is ambiguous; candidates: "
                                  f"{name_list([e.file for e in matches], 10)}")
    raise DataValidationError(f"{root}: no UCR series '{series}'; expected a file name, stem or id; available: "
                              f"{name_list([e.file for e in entries])}")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
