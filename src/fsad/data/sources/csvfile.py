"""Reading the CSV and text files of every source: delimiter and decimal mark detection, numbers checked by line.

Exports differ in how they write a table: ``,`` with ``.`` decimals (the public releases), ``;`` with decimal commas
(spreadsheets in many European locales, e.g. some SWaT exports from iTrust) or tabs. :func:`read_csv` detects both
on a short head of the file (Python's :class:`csv.Sniffer` for the delimiter, pandas on the same head for the
decimal mark) and then reads the whole file with pandas' C parser, so the detection costs the same on any size.

Errors about a cell name its place as "line N of the file": lines are counted from 1 as a text editor shows them,
the header and any skipped lines above it included (blank lines inside the data, which pandas skips, are not
expected). :func:`data_lines` turns a frame's row index into those numbers.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError

DELIMITERS = ",;\t"
SNIFF_LINES = 20
SNIFF_BYTES = 1 << 16
log = logging.getLogger(__name__)


class CsvFormat(NamedTuple):
    """How a CSV file separates fields (``sep``) and writes decimals (``decimal``)."""

    sep: str
    decimal: str


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """Read a CSV file whose delimiter (``,`` ``;`` or tab) and decimal mark (``.`` or ``,``) are detected.

    Keyword arguments go to :func:`pandas.read_csv` (``skiprows`` as an int, ``header``, ``encoding`` ...); a given
    ``sep`` or ``decimal`` skips that detection. The row index numbers the data rows from 0 in file order.

    Raises:
        DataValidationError: naming the file when it is absent or unreadable, or when its header parses as one
            column that contains another delimiter (the file looks ``;``- or tab-separated but was not read so).
    """
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    skip = kwargs.get("skiprows") or 0
    found = detect_format(path, skip if isinstance(skip, int) else 0, kwargs.get("encoding"),
                          kwargs.get("header", "infer"))
    kwargs.setdefault("sep", found.sep)
    kwargs.setdefault("decimal", found.decimal if kwargs["sep"] == found.sep else ".")
    if (kwargs["sep"], kwargs["decimal"]) != (",", "."):
        log.info("%s: read as %r-separated with decimal mark %r", path, kwargs["sep"], kwargs["decimal"])
    try:
        frame = pd.read_csv(path, **kwargs)
    except Exception as err:  # pandas raises many types
        raise DataValidationError(f"{path}: cannot be read as CSV ({err})") from err
    _check_split(frame, path, kwargs["sep"])
    return frame


def detect_format(path: Path, skiprows: int = 0, encoding: str | None = None, header="infer") -> CsvFormat:
    """The delimiter and decimal mark of ``path``, judged on at most 20 lines (64 KiB) after ``skiprows`` lines.

    The delimiter is what :class:`csv.Sniffer` finds among ``,`` ``;`` and tab on those lines (or, failing that,
    on the first of them alone), else ``,``. With ``;`` or tab the decimal mark is ``,`` when pandas reads more
    numeric columns from the head with ``decimal=","`` than with ``"."``. A comma-separated file keeps ``.``.
    """
    lines = _head(path, skiprows, encoding)
    sep = ","
    for sample in ("".join(lines), "".join(lines[:1])):
        try:
            sep = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
            break
        except csv.Error:
            continue
    if sep == ",":
        return CsvFormat(sep, ".")
    counts = {mark: _numeric_columns("".join(lines), sep, mark, header) for mark in (".", ",")}
    return CsvFormat(sep, "," if counts[","] > counts["."] else ".")


def _head(path: Path, skiprows: int, encoding: str | None) -> list[str]:
    """Up to SNIFF_LINES whole lines after ``skiprows`` lines, SNIFF_BYTES characters at most (a cut line is left
    out unless it is the only one)."""
    lines: list[str] = []
    size = 0
    with open(path, encoding=encoding or "utf-8", errors="replace", newline="") as handle:
        for _ in range(skiprows):
            handle.readline()
        while len(lines) < SNIFF_LINES and size < SNIFF_BYTES:
            line = handle.readline(SNIFF_BYTES - size)
            if not line:
                break
            lines.append(line)
            size += len(line)
    if len(lines) > 1 and size >= SNIFF_BYTES and not lines[-1].endswith(("\n", "\r")):
        lines.pop()
    return lines


def _numeric_columns(text: str, sep: str, decimal: str, header) -> int:
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, decimal=decimal, header=header, skipinitialspace=True)
    except Exception:  # a head cut inside a quoted field, ragged rows: no evidence either way
        return 0
    return sum(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes)


def _check_split(frame: pd.DataFrame, path: Path, sep: str) -> None:
    if frame.shape[1] != 1:
        return
    name = str(frame.columns[0])
    for other in DELIMITERS:
        if other != sep and other in name:
            shown = {"\t": "tab", ";": "';'", ",": "','"}[other]
            raise DataValidationError(f"{path}: the header parses as one column {name[:60]!r} but looks "
                                      f"{shown}-separated; expected columns separated by ',', ';' or a tab "
                                      f"(read with sep={sep!r})")


def data_lines(index: pd.Index, first_line: int = 2) -> np.ndarray:
    """(T,) int64 file line (from 1) of each row whose index label is its 0-based data-row position in the file.

    ``first_line`` is the line of data row 0: 2 below a one-line header, 1 in a file without a header, more when
    lines above the header were skipped. Reordering rows keeps their labels, so the lines stay right.
    """
    return np.asarray(index, dtype=np.int64) + first_line


def cell_text(value: object) -> str:
    """A cell's value as shown in an error message: its repr, without numpy's type wrapper (``'8.3a'``, ``2.0``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def float_matrix(frame: pd.DataFrame, path: Path, lines: np.ndarray | None = None) -> np.ndarray:
    """(T, C) float64 values of ``frame``; empty cells are NaN, ``inf`` is kept.

    ``lines``: (T,) or (T, C) file line of each row or cell (default: :func:`data_lines` of the index).

    Raises:
        DataValidationError: for the first cell (in file order) that is neither empty nor a number, naming the
            file, its line, the column and the value.
    """
    if all(pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d) for d in frame.dtypes):
        return frame.to_numpy(dtype=np.float64)
    lines = data_lines(frame.index) if lines is None else np.asarray(lines)
    columns, first = [], None
    for j in range(frame.shape[1]):
        column = frame.iloc[:, j]
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(numbers) & column.notna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            line = int(lines[i, j] if lines.ndim == 2 else lines[i])
            if first is None or line < first[0]:
                first = (line, j, column.iloc[i], int(bad.sum()))
        columns.append(numbers)
    if first is not None:
        line, j, value, count = first
        raise DataValidationError(f"{path}: line {line} of the file, column '{frame.columns[j]}': {cell_text(value)} "
                                  f"is not a number ({count} such cells in that column); expected a number or an "
                                  "empty cell")
    return np.stack(columns, axis=1) if columns else np.empty((len(frame), 0))


def numbers(column: pd.Series, path: Path, lines: np.ndarray | None = None) -> np.ndarray:
    """(T,) float64 of one column, checked like :func:`float_matrix` (errors name the line and the column)."""
    return float_matrix(column.to_frame(), path, None if lines is None else np.asarray(lines).reshape(-1))[:, 0]
