"""The score plot: every threshold is visible or explicitly listed, and the y-range follows the scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fsad.evaluation import plots
from fsad.evaluation.plots import ThresholdMark, plot_scores, score_limits, threshold_marks

SCORES = np.array([0.0, 0.2, 1.0, 0.4, 0.1])  # in [0, 1]: y-range (-0.02, 1.1)
LABELS = np.array([0, 0, 1, 0, 0])


def test_score_limits():
    assert score_limits(SCORES) == pytest.approx((-0.02, 1.1))
    assert score_limits(np.full(4, 0.5)) == pytest.approx((0.48, 0.6))  # constant: spread 1
    assert score_limits(np.array([np.nan, np.nan])) == (0.0, 1.0)


def test_threshold_marks_place_each_threshold_against_the_limits():
    marks = threshold_marks({"paper": 0.5, "spot": 2.78, "low": -3.0, "edge": 1.1, "failed": None,
                             "nan": math.nan}, (-0.02, 1.1))
    assert marks == [
        ThresholdMark("paper", 0.5, "inside", "threshold paper = 0.5"),
        ThresholdMark("spot", 2.78, "above", "threshold spot = 2.78 (above the plot)"),
        ThresholdMark("low", -3.0, "below", "threshold low = -3 (below the plot)"),
        ThresholdMark("edge", 1.1, "inside", "threshold edge = 1.1"),
        ThresholdMark("failed", None, "missing", "threshold failed: none"),
        ThresholdMark("nan", None, "missing", "threshold nan: none"),
    ]


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """``plot_scores`` on SCORES; returns its axes (kept open) and the legend entries by label."""
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plot_scores(SCORES, LABELS, {"paper": 0.5, "spot": 2.78, "low": -3.0, "failed": None}, tmp_path / "scores.png")
    ax = figures[0].axes[0]
    handles, labels = ax.get_legend_handles_labels()
    yield ax, dict(zip(labels, handles))
    plots.plt.close(figures[0])


def test_off_range_thresholds_are_marked_on_the_edge_and_the_range_stays_on_the_scores(drawn):
    ax, legend = drawn
    bottom, top = ax.get_ylim()
    assert (bottom, top) == pytest.approx((-0.02, 1.1))
    assert list(legend["threshold paper = 0.5"].get_ydata()) == [0.5, 0.5]  # a horizontal line
    above = legend["threshold spot = 2.78 (above the plot)"]
    assert above.get_marker() == "^" and list(above.get_ydata()) == pytest.approx([top])
    below = legend["threshold low = -3 (below the plot)"]
    assert below.get_marker() == "v" and list(below.get_ydata()) == pytest.approx([bottom])
    assert "threshold failed: none" in legend

