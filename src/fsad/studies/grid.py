"""Sweep grids and job overrides as plain values, parsed by Hydra's own override grammar.

``hydra.sweeper.params`` maps a key to a sweep string (``"30,60,90"``, ``"choice([1,3],[3,5])"``,
``"range(1,4)"``); a job's ``.hydra/overrides.yaml`` lists ``key=value`` strings. Both are read with
:class:`hydra.core.override_parser.overrides_parser.OverridesParser`, so ``[3,5]`` in a grid and ``[3,5]`` in a
job's override compare equal as the lists they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

_PARSER = OverridesParser.create()


class GridError(ValueError):
    """A sweep value the grid cannot enumerate (e.g. ``interval(0,1)`` outside an Optuna search)."""


def plain(value: Any) -> Any:
    """``value`` as plain Python (OmegaConf containers become lists / dicts; tuples become lists)."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``"data.window=90"`` -> ``("data.window", 90)``; ``"+x=1"``, ``"++x=1"`` and ``"~x"`` give key ``x``."""
    override = _PARSER.parse_override(text)
    if override.is_sweep_override():
        return override.key_or_group, _sweep_values(override, text)
    return override.key_or_group, plain(override.value())


def job_values(overrides: Iterable[str]) -> dict[str, Any]:
    """A job's override strings as ``{key: value}`` (a later override of a key wins, as in Hydra)."""
    return dict(parse_override(text) for text in overrides)


def _sweep_values(override: Any, text: str) -> list[Any]:
    if not override.is_discrete_sweep():
        raise GridError(f"{text!r} is not a list of values (an interval is searched by a sweeper, not enumerated)")
    return [plain(v) for v in override.sweep_iterator()]


def swept_values(params: Mapping[str, Any], command_line: Iterable[str] = ()) -> dict[str, list[Any]]:
    """Every swept key with its values, in order: ``hydra.sweeper.params`` (key -> sweep string), then the
    command line's overrides as Hydra's basic sweeper merges them (a command-line key replaces the file's;
    a plain ``key=value`` on the command line pins a swept key to one value).

    Raises:
        GridError: a value is an interval or another sweep that has no finite list of values.
    """
    grid: dict[str, list[Any]] = {}
    for key, sweep in (params or {}).items():
        name, values = parse_override(f"{key}={sweep}")
        grid[name] = values if _is_sweep(f"{key}={sweep}") else [values]
    for text in command_line:
        name, values = parse_override(text)
        if _is_sweep(text):
            grid[name] = values
        elif name in grid:
            grid[name] = [values]
    return grid


def _is_sweep(text: str) -> bool:
    return _PARSER.parse_override(text).is_sweep_override()


def expand(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of a grid, one ``{key: value}`` per job, in the basic sweeper's order."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def matches(where: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """True when a job with override ``values`` has every ``key: value`` of ``where`` (lists compare as lists;
    an integer and the same float compare equal)."""
    return all(key in values and plain(values[key]) == plain(expected) for key, expected in where.items())
