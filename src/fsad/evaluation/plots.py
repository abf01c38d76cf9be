"""Score plots written next to the metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from fsad.utils.io import atomic_write  # noqa: E402

THRESHOLD_COLORS = ("k", "tab:green", "tab:purple", "tab:orange", "0.5")


@dataclass(frozen=True)
class ThresholdMark:
    """How one threshold appears on the plot.

    Attributes:
        name: the strategy.
        value: the threshold, or None when the strategy produced none.
        place: ``"inside"`` (a horizontal line), ``"above"`` / ``"below"`` (beyond the y-range: a marker on the top
            / bottom edge), or ``"missing"`` (no value: listed in the legend only).
        label: the legend entry.
    """

    name: str
    value: float | None
    place: str
    label: str


def score_limits(scores: np.ndarray) -> tuple[float, float]:
    """The y-range for (T,) scores: their finite minimum minus 2 % and maximum plus 10 % of their spread.

    Constant scores get a spread of ``max(|score|, 1)``; no finite score at all gives ``(0, 1)``.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    spread = high - low if high > low else max(abs(high), 1.0)
    return low - 0.02 * spread, high + 0.1 * spread


def threshold_marks(thresholds: dict[str, float | None], limits: tuple[float, float]) -> list[ThresholdMark]:
    """Place every threshold against the y-range ``limits = (bottom, top)``, in the order given.

    A value within the limits (inclusive) is ``inside`` (label ``"threshold s = 0.5"``); a larger one (``+inf``
    too) is ``above`` (``"threshold s = 2.78 (above the plot)"``), a smaller one ``below``; None or NaN is
    ``missing`` (``"threshold s: none"``).
    """
    bottom, top = limits
    marks = []
    for name, value in thresholds.items():
        if value is None or math.isnan(value):
            marks.append(ThresholdMark(name, None, "missing", f"threshold {name}: none"))
            continue
        value = float(value)
        place = "above" if value > top else "below" if value < bottom else "inside"
        where = "" if place == "inside" else f" ({place} the plot)"
        marks.append(ThresholdMark(name, value, place, f"threshold {name} = {value:.4g}{where}"))
    return marks


def draw_scores(ax: Axes, scores: np.ndarray, labels: np.ndarray,
                thresholds: dict[str, float | None]) -> list[ThresholdMark]:
    """Draw (T,) scores on ``ax`` with the labelled anomalies (T,) shaded and the thresholds marked.

    The y-range is :func:`score_limits` of the scores whatever the thresholds; a threshold inside it is a dashed
    horizontal line, one beyond it a triangle on the top (``^``) or bottom (``v``) edge, one without value a
    legend entry only (see :func:`threshold_marks`, whose result is returned).
    """
    t = np.arange(len(scores))
    limits = score_limits(scores)
    ax.plot(t, scores, lw=0.6, color="tab:blue", label="score")
    finite = scores[np.isfinite(scores)]
    if finite.size:
        ax.fill_between(t, float(finite.min()), float(finite.max()), where=labels.astype(bool), color="tab:red",
                        alpha=0.25, step="mid", label="labelled anomaly")
    edge = blended_transform_factory(ax.transAxes, ax.transData)  # x in axes fraction, y in score units
    off_range = 0
    marks = threshold_marks(thresholds, limits)
    for mark, color in zip(marks, cycle(THRESHOLD_COLORS)):
        if mark.place == "inside":
            ax.axhline(mark.value, color=color, lw=0.8, ls="--", label=mark.label)
        elif mark.place == "missing":
            ax.plot([], [], ls="none", label=mark.label)
        else:
            y = limits[1] if mark.place == "above" else limits[0]
            ax.plot([0.01 + 0.02 * off_range], [y], transform=edge, ls="none", marker="^" if mark.place == "above"
                    else "v", ms=8, color=color, clip_on=False, label=mark.label)
            off_range += 1
    ax.set_ylim(*limits)
    return marks


def plot_scores(scores: np.ndarray, labels: np.ndarray, thresholds: dict[str, float | None], path: str | Path,
                title: str = "test scores") -> Path:
    """Plot (T,) test scores with labelled anomalies (T,) shaded and the thresholds marked; save a PNG at ``path``.

    See :func:`draw_scores`: thresholds beyond the scores' range are marked on the plot's edge with their value in
    the legend, thresholds that are None or NaN are listed as ``none``. Returns ``path``.
    """
    fig, ax = plt.subplots(figsize=(14, 3.5), dpi=100)
    draw_scores(ax, np.asarray(scores, dtype=np.float64), np.asarray(labels), thresholds)
    ax.set_xlabel("time step")
    ax.set_ylabel("anomaly score")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return Path(path)
