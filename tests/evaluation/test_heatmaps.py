"""Heatmap panels: colours, blending, the choice of images per class, tiling."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.evaluation.heatmaps import choose, colourise, montage, overlay, panel


def test_colours_run_from_jets_blue_to_red_and_clip():
    amap = np.array([[0.0, 1.0, 2.0, -5.0]])
    colours = colourise(amap, low=0.0, high=1.0)
    assert colours.dtype == np.uint8 and colours.shape == (1, 4, 3)
    assert colours[0, 0, 2] > 100 and colours[0, 0, 0] == 0          # low end: dark blue
    assert colours[0, 1, 0] > 100 and colours[0, 1, 2] == 0          # high end: dark red
    assert np.array_equal(colours[0, 2], colours[0, 1]) and np.array_equal(colours[0, 3], colours[0, 0])
    assert np.array_equal(colourise(np.ones((2, 2)), 1.0, 1.0), colourise(np.zeros((2, 2)), 0.0, 1.0))


def test_overlay_blends_with_alpha_and_checks_sizes():
    image = np.full((2, 2, 3), 200, np.uint8)
    amap = np.zeros((2, 2))
    assert np.array_equal(overlay(image, amap, 0, 1, alpha=0.0), image)
    assert np.array_equal(overlay(image, amap, 0, 1, alpha=1.0), colourise(amap, 0, 1))
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, np.zeros((3, 2)), 0, 1)
    tile = panel(image, amap, np.eye(2, dtype=bool), 0, 1)
    assert tile.shape == (2, 3 * 2 + 2 * 4, 3) and tile[0, -2:].tolist() == [[255] * 3, [0] * 3]


def test_choice_takes_every_kind_in_turn():
    kinds = ["good", "good", "good", "crack", "crack", "hole"]
    assert choose(kinds, 3).tolist() == [0, 3, 5]
    assert choose(kinds, 4).tolist() == [0, 1, 3, 5]
    assert choose(kinds, 10).tolist() == list(range(6))
    assert choose(kinds, 0).tolist() == []


def test_montage_tiles_panels_row_by_row():
    panels = [np.full((2, 3, 3), k, np.uint8) for k in range(3)]
    tiled = montage(panels, width=2)
    assert tiled.shape == (2 * (2 + 4), 2 * (3 + 4), 3)
    assert tiled[0, 0, 0] == 0 and tiled[0, 7, 0] == 1 and tiled[6, 0, 0] == 2
    with pytest.raises(ValueError):
        montage([])
