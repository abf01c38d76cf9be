"""A study's figure as the paper draws it: the headline metric against the swept value, one line per dataset
(``figure.kind: line``), or bars per variant (``figure.kind: bars``); the paper's numbers as black markers where
it gives them, and the random reference as a dotted line or grey ticks."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fsad.studies.folders import Sweep  # noqa: E402
from fsad.studies.grid import matches  # noqa: E402
from fsad.studies.tables import _label, _mean, _scaled, random_key  # noqa: E402
from fsad.utils.io import atomic_write  # noqa: E402


def _points(sweep: Sweep, key: str, x_key: str | None, series_key: str | None):
    """``{series: {x: [values of finished jobs]}}`` of metric ``key`` (scaled)."""
    study = sweep.study
    points: dict[str, dict[Any, list[float]]] = {}
    for job in sweep.jobs:
        series = _label(job.values.get(series_key, "")) if series_key else ""
        x = _label(job.values.get(x_key)) if x_key else f"job {job.number}"
        values = points.setdefault(series, {}).setdefault(x, [])
        if job.status == "ok":
            values.append(_scaled(job, key, study.scale))
    return points


def draw(sweep: Sweep, folder: Path) -> list[Path]:
    """Write ``report.png`` and ``report.svg`` into ``folder``; returns their paths (empty without a study)."""
    study = sweep.study
    if study is None:
        return []
    head_key = study.metrics[study.headline]
    x_key, series_key = study.figure_x, study.figure_series
    ours = _points(sweep, head_key, x_key, series_key)
    chance = _points(sweep, random_key(head_key), x_key, series_key)
    xs = list(dict.fromkeys(x for per_series in ours.values() for x in per_series))
    numeric = all(isinstance(_as_number(x), float) for x in xs)
    if numeric:
        xs = sorted(xs, key=_as_number)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(xs) + 2), 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / max(1, len(ours))
    for i, (series, per_x) in enumerate(ours.items()):
        colour = colours[i % len(colours)]
        ys = [_mean(per_x.get(x, [])) for x in xs]
        rs = [_mean(chance[series].get(x, [])) for x in xs]
        pos = [_as_number(x) for x in xs] if study.figure_kind == "line" and numeric else \
            [j + (i - (len(ours) - 1) / 2) * width for j in range(len(xs))]
        label = series or "ours"
        if study.figure_kind == "line":
            ax.plot(pos, ys, "o-", color=colour, label=label)
        else:
            ax.bar(pos, [0 if math.isnan(y) else y for y in ys], width=width, color=colour, label=label)
            for p, y in zip(pos, ys):
                if math.isnan(y):
                    ax.annotate("no result", (p, 0), rotation=90, ha="center", va="bottom", fontsize=7)
        ax.plot(pos, rs, ":", color=colour, alpha=0.7, marker="_" if study.figure_kind == "bars" else None)
        for p, x in zip(pos, xs):
            published = [c.values[study.headline] for c in study.paper if study.headline in c.values and
                         _selects(c.where, x_key, x, series_key, series)]
            if published:
                ax.plot([p], [_mean(published)], marker="D", color="black", markersize=6, linestyle="none")
    ax.plot([], [], marker="D", color="black", linestyle="none", label="paper")
    ax.plot([], [], ":", color="grey", label="random scores")
    if study.figure_kind == "line" and numeric and len(xs) <= 12:
        ax.set_xticks([_as_number(x) for x in xs], [str(x) for x in xs])
    if study.figure_kind == "bars" or not numeric:
        ax.set_xticks(range(len(xs)), [str(x) for x in xs], rotation=30 if len(xs) > 4 else 0, ha="right"
                      if len(xs) > 4 else "center")
    ax.set_xlabel(x_key or "job")
    ax.set_ylabel(f"{study.headline} ({head_key}" + (f" x {study.scale:g})" if study.scale != 1 else ")"))
    finished = sum(j.status == "ok" for j in sweep.jobs)
    title = textwrap.fill(study.title, width=int(12 * fig.get_figwidth()))
    ax.set_title(f"{title}\n{finished} of {len(sweep.jobs)} jobs finished", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    paths = []
    for suffix in (".png", ".svg"):
        paths.append(atomic_write(folder / f"report{suffix}", lambda p, s=suffix: fig.savefig(p, format=s[1:],
                                                                                            dpi=120)))
    plt.close(fig)
    return paths


def _as_number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _selects(where: dict[str, Any], x_key: str | None, x: Any, series_key: str | None, series: str) -> bool:
    """A cell is drawn at (x, series) when it names both and they match (cells without the x key are not drawn)."""
    if x_key is None or x_key not in where or _label(where[x_key]) != x:
        return False
    return series_key is None or series_key not in where or _label(where[series_key]) == series


__all__ = ["draw", "matches"]
