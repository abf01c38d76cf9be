"""Result files: standard JSON, the usual file mode, atomic replacement."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from fsad.evaluation.plots import plot_scores
from fsad.utils.io import atomic_write, json_safe, write_json, write_npz


def strict_json(text: str):
    """Parse standard JSON only: ``NaN``, ``Infinity`` and ``-Infinity`` are errors."""
    def reject(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_non_finite_numbers_are_written_as_null(tmp_path):
    data = {"a": math.nan, "b": [math.inf, 1.5, -math.inf], "c": {"d": np.float64("nan"), "e": "text"},
            "f": (2.0, math.nan), "g": None, "h": 3}
    path = write_json(tmp_path / "metrics.json", data)
    assert strict_json(path.read_text()) == {"a": None, "b": [None, 1.5, None], "c": {"d": None, "e": "text"},
                                             "f": [2.0, None], "g": None, "h": 3}


def test_json_safe_keeps_finite_values_and_does_not_modify_its_input():
    data = {"x": [0.25, math.nan]}
    assert json_safe(data) == {"x": [0.25, None]}
    assert math.isnan(data["x"][1])


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


WRITERS = {
    "json": lambda path: write_json(path, {"a": 1.0}),
    "npz": lambda path: write_npz(path, x=np.arange(3)),
    "png": lambda path: plot_scores(np.array([0.1, 0.5, 0.2]), np.array([0, 1, 0]), {"paper": 0.3}, path),
    "text": lambda path: atomic_write(path, lambda p: p.write_text("x")),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, kind):
    path = WRITERS[kind](tmp_path / f"result.{kind}")
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o666 & ~umask
    reference = tmp_path / "reference"
    reference.write_text("")  # plain open()
    assert stat.S_IMODE(Path(path).stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_a_failing_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1.0})

    def fail(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert strict_json(path.read_text()) == {"a": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
