"""The ``study:`` and ``paper:`` blocks of a sweep file.

Shape (every key is checked by :func:`load_study`, an error names the sweep file and the field)::

    study:
      title: "FreCT, Fig. 5: F1 against the window size"   # the paper's table or figure
      grid: reconstruction     # stated (the paper's grid) | reconstruction (the paper gives only a range or points)
      metrics:                 # the paper's columns -> our metrics.json keys; the first is the headline
        F1: test/paper/f1_pa
        P: test/paper/precision_pa
      scale: 100               # a paper number = ours x scale (100: the paper prints %)
      honest: [test/auc_pr, test/vus_pr]   # optional: shown beside, with their random references
      figure: {kind: line, x: data.window, series: experiment}   # line | bars; x, series: swept keys
    paper:                     # one entry per published cell: swept keys that select the jobs, then the numbers
      - {experiment: frect/msl, data.window: 90, F1: 95.26, P: 92.53}

A cell that names only some swept keys selects every job that has them; ours is then the mean over those jobs
(e.g. RED-F's ablation averages over the four horizons). Cells with no number in the paper are simply absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fsad.studies.grid import GridError, expand, matches, plain, swept_values

FIGURE_KINDS = ("line", "bars")
TIME_SERIES_HONEST = ("test/auc_roc", "test/auc_pr", "test/vus_pr")
IMAGE_HONEST = ("test/exact/mean/mad", "test/exact/mean/pixel_auroc", "test/exact/mean/au_pro")


class StudyError(ValueError):
    """A ``study:`` or ``paper:`` block that cannot be read; the message names the file and the field."""


@dataclass(frozen=True)
class PaperCell:
    """One published cell: the swept values that select its jobs and the paper's numbers by column."""

    where: dict[str, Any]
    values: dict[str, float]


@dataclass(frozen=True)
class Study:
    """How to read a sweep: the paper's columns as our metric keys, the figure, the published numbers.

    Attributes:
        name: the sweep file, e.g. ``"frect/window"``.
        grid: every swept key with its values (see :func:`fsad.studies.grid.swept_values`).
        metrics: paper column -> our ``metrics.json`` key, in table order; the first is the headline.
        scale: multiplies our values before they are put beside the paper's (100 for percentages).
        honest: metric keys shown beside, each with its random reference.
        experiments: the ``experiment`` values of the sweep file itself (the data its paper cells are for), before
            any command-line override.
    """

    name: str
    title: str
    grid_source: str
    grid: dict[str, list[Any]]
    metrics: dict[str, str]
    scale: float
    honest: tuple[str, ...]
    figure_kind: str
    figure_x: str | None
    figure_series: str | None
    paper: list[PaperCell] = field(default_factory=list)
    experiments: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """The paper's headline column (the first of ``metrics``)."""
        return next(iter(self.metrics))

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of the grid as ``{swept key: value}``."""
        return expand(self.grid)

    def unmatched_cells(self) -> list[PaperCell]:
        """Paper cells that select no job of the grid (a sweep file that cannot reproduce its own table)."""
        jobs = self.jobs()
        return [cell for cell in self.paper if not any(matches(cell.where, job) for job in jobs)]


def _fail(source: str, where: str, expected: str, got: Any) -> StudyError:
    return StudyError(f"{source}: {where}: expected {expected}, got {got!r}")


def sweep_file(cfg: DictConfig, name: str) -> str:
    """Where the sweep file ``name`` was read from: the first of Hydra's file config sources (the project's
    ``conf/``, a ``hydra.searchpath`` folder) that has ``sweep/<name>.yaml``, else ``conf/sweep/<name>.yaml``."""
    sources = OmegaConf.select(cfg, "hydra.runtime.config_sources") or []
    for source in sources:
        candidate = Path(str(source.get("path", ""))) / "sweep" / f"{name}.yaml"
        if source.get("schema") == "file" and candidate.is_file():
            return str(candidate)
    return f"conf/sweep/{name}.yaml"


def load_study(cfg: DictConfig, command_line: list[str] | tuple[str, ...] = ()) -> Study | None:
    """The study of a composed sweep config (a job's or the sweep's ``multirun.yaml``), or None without a
    ``study:`` block.

    Args:
        cfg: the composed config with its ``hydra`` node (``hydra.sweeper.params``, ``hydra.runtime.choices``).
        command_line: the sweep's command-line overrides (``hydra.overrides.task``), which Hydra merges with the
            file's grid.

    Raises:
        StudyError: a missing or mistyped field, a figure key that is not swept, a paper cell naming a key that is
            neither swept nor a metric column (message: the sweep file, the field, what was expected).
    """
    if cfg.get("study") is None:
        return None
    choices = cfg.get("hydra", {}).get("runtime", {}).get("choices", {})
    name = str(choices.get("sweep") or "?")
    source = sweep_file(cfg, name)
    block = plain(cfg.study)
    if not isinstance(block, dict):
        raise _fail(source, "study", "a mapping", block)
    try:
        params = plain(cfg.hydra.sweeper.get("params")) or {}
        grid = swept_values(params, command_line)
        experiments = tuple(str(e) for e in swept_values(params).get("experiment", []))
    except (GridError, AttributeError) as err:
        if cfg.get("hydra", {}).get("sweeper", {}).get("_target_", "").endswith("BasicSweeper"):
            raise StudyError(f"{source}: hydra.sweeper.params: {err}") from err
        grid, experiments = {}, ()  # a search (e.g. Optuna): the jobs are whatever the search tried
    metrics = block.get("metrics")
    if not isinstance(metrics, dict) or not metrics or not all(isinstance(v, str) for v in metrics.values()):
        raise _fail(source, "study.metrics", "a non-empty mapping paper column -> metrics.json key", metrics)
    scale = block.get("scale", 1)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise _fail(source, "study.scale", "a positive number (100 when the paper prints percentages)", scale)
    figure = block.get("figure") or {}
    kind = figure.get("kind", "bars")
    if kind not in FIGURE_KINDS:
        raise _fail(source, "study.figure.kind", " or ".join(FIGURE_KINDS), kind)
    for key in ("x", "series"):
        if figure.get(key) is not None and grid and figure[key] not in grid:
            raise _fail(source, f"study.figure.{key}", f"a swept key ({', '.join(grid)})", figure[key])
    grid_source = block.get("grid", "stated")
    if grid_source not in ("stated", "reconstruction"):
        raise _fail(source, "study.grid", "stated or reconstruction", grid_source)
    honest = block.get("honest") or list(_default_honest(metrics))
    if not isinstance(honest, list) or not all(isinstance(h, str) for h in honest):
        raise _fail(source, "study.honest", "a list of metrics.json keys", honest)
    cells = _cells(source, cfg.get("paper") or [], grid, metrics)
    return Study(name=name, title=str(block.get("title", name)), grid_source=grid_source, grid=grid,
                 metrics=metrics, scale=float(scale), honest=tuple(honest), figure_kind=kind,
                 figure_x=figure.get("x"), figure_series=figure.get("series"), paper=cells,
                 experiments=experiments)


def is_image_study(metrics: dict[str, str]) -> bool:
    """Whether a study's metrics are the image protocols' (``test/exact/...``, ``test/ader/...``)."""
    return any(key.startswith(("test/exact/", "test/ader/")) for key in metrics.values())


def _default_honest(metrics: dict[str, str]) -> tuple[str, ...]:
    return IMAGE_HONEST if is_image_study(metrics) else TIME_SERIES_HONEST


def _cells(source: str, entries: Any, grid: dict[str, list[Any]], metrics: dict[str, str]) -> list[PaperCell]:
    entries = plain(entries)
    if not isinstance(entries, list):
        raise _fail(source, "paper", "a list of cells", entries)
    cells = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _fail(source, f"paper[{i}]", "a mapping of swept keys and paper columns", entry)
        where = {k: v for k, v in entry.items() if k not in metrics}
        values = {k: v for k, v in entry.items() if k in metrics}
        unknown = [k for k in where if grid and k not in grid]
        if unknown:
            raise _fail(source, f"paper[{i}].{unknown[0]}",
                        f"a swept key ({', '.join(grid)}) or a column of study.metrics ({', '.join(metrics)})",
                        entry)
        bad = {k: v for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool)}
        if bad or not values:
            raise _fail(source, f"paper[{i}]", "at least one number under a study.metrics column", entry)
        cells.append(PaperCell(where=where, values={k: float(v) for k, v in values.items()}))
    return cells
