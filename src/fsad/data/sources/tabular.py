"""Shared pieces of every CSV source: the missing-value policy, labels, entity files and the final record.

Each CSV benchmark (PSM, SWaT, GECCO, CICIDS2017, Genesis, NAB, TAB, ...) has its own small loader module that
reads its files with :func:`fsad.data.sources.csvfile.read_csv` and calls these helpers, so the checks and error
messages are the same everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from fsad.data.record import DataValidationError, SeriesRecord
from fsad.data.sources.csvfile import cell_text, data_lines, float_matrix, numbers

MISSING_POLICIES = ("error", "ffill", "zero", "drop")
log = logging.getLogger(__name__)


class Numeric(NamedTuple):
    """A cleaned numeric table.

    Attributes:
        values: (T_kept, C) float64 without NaN/inf.
        changed: how many values the missing-value policy filled (``ffill``/``zero``) or how many rows it
            removed (``drop``).
        rows: (T_kept,) int64 indices of the kept input rows (all rows unless the policy is ``drop``); use it to
            keep labels aligned.
        backfilled: {column: count} of the leading missing values that ``ffill`` back-filled (columns without
            any left out).
    """

    values: np.ndarray
    changed: int
    rows: np.ndarray
    backfilled: dict[str, int]


def numeric_matrix(frame: pd.DataFrame, path: Path, missing: str, lines: np.ndarray | None = None) -> Numeric:
    """The values of ``frame`` as a finite float64 matrix after the missing-value policy.

    Policies: ``error`` raises on any NaN/inf (naming file, line and column); ``ffill`` carries the last valid value
    forward and fills a leading gap with the column's first valid value (back-fill), logging a warning with the
    count per column; ``zero`` replaces them by 0 (the originals' ``np.nan_to_num``); ``drop`` removes every row
    with a NaN/inf (TAB's GECCO and CICIDS files were made this way).

    ``lines``: (T,) or (T, C) file line of each row or cell, for error messages (default: the index as
    :func:`~fsad.data.sources.csvfile.read_csv` numbers data rows, below a one-line header).

    Raises:
        DataValidationError: an unknown policy, a cell that is not a number (file, line, column and value), a column
            without any valid value (file and column), or, with ``error``, the first missing value.
    """
    if missing not in MISSING_POLICIES:
        raise DataValidationError(f"{path}: field 'missing'={missing!r}; expected one of {MISSING_POLICIES}")
    lines = data_lines(frame.index) if lines is None else np.asarray(lines)
    values = float_matrix(frame, path, lines)
    bad = ~np.isfinite(values)
    rows = np.arange(len(values), dtype=np.int64)
    if len(values) and bad.all(axis=0).any():
        name = frame.columns[int(np.argmax(bad.all(axis=0)))]
        raise DataValidationError(f"{path}: column '{name}' has no valid value in its {len(values)} rows (all empty, "
                                  "NaN or inf); expected at least one number (fill the column or remove it)")
    n_bad = int(bad.sum())
    if n_bad == 0:
        return Numeric(values, 0, rows, {})
    if missing == "error":
        row, col = np.argwhere(bad)[0]
        line = lines[row, col] if lines.ndim == 2 else lines[row]
        raise DataValidationError(f"{path}: {n_bad} missing/inf values (first at line {line} of the file, column "
                                  f"'{frame.columns[col]}'); set data.missing=ffill, zero or drop")
    if missing == "ffill":
        return _forward_fill(values, bad, frame.columns, path)
    if missing == "zero":
        return Numeric(np.where(bad, 0.0, values), n_bad, rows, {})
    keep = ~bad.any(axis=1)
    return Numeric(values[keep], int((~keep).sum()), rows[keep], {})


def _forward_fill(values: np.ndarray, bad: np.ndarray, columns: pd.Index, path: Path) -> Numeric:
    """``ffill``: last valid value forward, then the first valid value backward over a leading gap."""
    filled = pd.DataFrame(np.where(bad, np.nan, values)).ffill()
    leading = filled.isna().to_numpy().sum(axis=0)
    backfilled = {str(columns[j]): int(n) for j, n in enumerate(leading) if n}
    if backfilled:
        log.warning("%s: %d leading missing values back-filled with their column's first valid value "
                    "(data.missing=ffill), per column: %s", path, sum(backfilled.values()), backfilled)
    return Numeric(filled.bfill().to_numpy(), int(bad.sum()), np.arange(len(values), dtype=np.int64), backfilled)


def require_folder(root: str | Path, name: str, files: tuple[str, ...]) -> Path:
    """``root`` as a Path; DataValidationError saying which files were expected when the folder is absent."""
    root = Path(root)
    if not root.is_dir():
        raise DataValidationError(f"{root}: {name} folder not found; expected the files {', '.join(files)}")
    return root


def require_entity_files(files: Mapping[str, Sequence[Path]], kind: str, listed_in: str, remedy: str) -> None:
    """Check that every entity of a multi-entity layout has all its files.

    Args:
        files: entity name -> every file it needs, in entity order.
        kind: what an entity is ("machine", "channel"), for the message.
        listed_in: what lists the entities (an index file, folders), for the message.
        remedy: what the user can do, for the message.

    Raises:
        DataValidationError: naming the first absent file (full path), its entity, how many files are absent in all
            and ``remedy``. A layout is never read with some entities silently left out.
    """
    absent = [(name, path) for name, paths in files.items() for path in paths if not Path(path).is_file()]
    if absent:
        name, first = absent[0]
        raise DataValidationError(f"{first}: file not found; {kind} '{name}' is listed in {listed_in} but lacks this "
                                  f"file ({len(absent)} absent in all: {name_list([str(p) for _, p in absent], 3)}); "
                                  f"expected all files of every listed {kind}: {remedy}")


def binary_labels(column: pd.Series, path: Path, n_rows: int, lines: np.ndarray | None = None) -> np.ndarray:
    """(n_rows,) int8 0/1 labels from a label column.

    ``lines``: (n_rows,) file line of each label (default: :func:`~fsad.data.sources.csvfile.data_lines` of the
    column's index). Raises DataValidationError naming ``path`` on a wrong length, and the line, the column and the
    value of the first label that is not a number or not 0/1 (an empty cell included).
    """
    if len(column) != n_rows:
        raise DataValidationError(f"{path}: {len(column)} labels for {n_rows} test rows; expected one label per row")
    lines = data_lines(column.index) if lines is None else np.asarray(lines)
    labels = numbers(column, path, lines)
    wrong = ~np.isin(labels, (0, 1))
    if wrong.any():
        i = int(np.argmax(wrong))
        raise DataValidationError(f"{path}: line {lines[i]} of the file, column '{column.name}': label "
                                  f"{cell_text(column.iloc[i])} ({int(wrong.sum())} such labels, values "
                                  f"{np.unique(labels[wrong])[:10].tolist()}); expected 0 or 1")
    return labels.astype(np.int8)


def make_record(train: np.ndarray, test: np.ndarray, labels: np.ndarray, names: list[str], source: Path | str,
                layout: str, cleaned: Sequence[Numeric], **meta) -> SeriesRecord:
    """A validated float32 :class:`SeriesRecord` from the tables ``cleaned`` by :func:`numeric_matrix`.

    ``meta`` records the layout, ``missing_values_filled`` (the policy's count over all ``cleaned`` tables) and
    ``leading_values_backfilled`` ({column: count} of leading gaps back-filled by ``ffill``, summed over them).
    """
    backfilled: dict[str, int] = {}
    for table in cleaned:
        for name, count in table.backfilled.items():
            backfilled[name] = backfilled.get(name, 0) + count
    return SeriesRecord(train=train.astype(np.float32), test=test.astype(np.float32), test_labels=labels,
                        channel_names=[str(n) for n in names], source=str(source),
                        meta={"layout": layout, "missing_values_filled": sum(t.changed for t in cleaned),
                              "leading_values_backfilled": backfilled, **meta}).validate()


def name_list(names: list[str] | np.ndarray, limit: int = 5) -> str:
    """``"a, b, c (and 7 more)"``: a few of ``names`` for an error message."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit]) or "none"
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")
