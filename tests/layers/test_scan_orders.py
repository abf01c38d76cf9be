"""Scan orders: each a permutation with its inverse, and the exact visit order on small maps."""

from __future__ import annotations

import pytest
import torch

from fsad.layers.scan_orders import SCANS, column_major, diagonal, hilbert, inverse, raster, z_order, zigzag


@pytest.mark.parametrize("name", sorted(SCANS))
@pytest.mark.parametrize("side", [1, 2, 4, 8])
def test_every_scan_is_a_permutation_that_its_inverse_undoes(name: str, side: int):
    order = SCANS[name](side, side)
    assert sorted(order.tolist()) == list(range(side * side))
    x = torch.randn(2, 3, side, side)
    sequence = x.flatten(-2)[..., order]
    assert torch.equal(sequence[..., inverse(order)].reshape(x.shape), x)


def test_visit_orders_on_a_3_by_3_map():
    # cell numbers r * 3 + c:  0 1 2 / 3 4 5 / 6 7 8
    assert raster(3, 3).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert column_major(3, 3).tolist() == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    assert diagonal(3, 3).tolist() == [0, 4, 8, 1, 2, 5, 3, 6, 7]  # diagonal, upper row by row, lower row by row
    assert zigzag(3, 3).tolist() == [0, 1, 2, 5, 4, 3, 6, 7, 8]
    assert column_major(2, 3).tolist() == [0, 3, 1, 4, 2, 5]


def test_z_order_and_hilbert_on_a_4_by_4_map():
    assert z_order(4, 4).tolist() == [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    order = hilbert(4, 4).tolist()
    assert order[0] == 0 and order[-1] == 3
    steps = [abs(a // 4 - b // 4) + abs(a % 4 - b % 4) for a, b in zip(order, order[1:])]
    assert steps == [1] * 15  # consecutive cells are always neighbours
    assert order == [0, 1, 5, 4, 8, 12, 13, 9, 10, 14, 15, 11, 7, 6, 2, 3]


@pytest.mark.parametrize("scan, size, match", [(diagonal, (2, 3), "square"), (hilbert, (6, 6), "power of two"),
                                               (z_order, (4, 2), "square")])
def test_shapes_a_scan_is_not_defined_on_are_refused(scan, size, match):
    with pytest.raises(ValueError, match=match):
        scan(*size)
