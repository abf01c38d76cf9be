"""Scan orders: each a permutation with its inverse, and the exact visit order on small maps."""

from __future__ import annotations

import pytest
import torch

from fsad.layers.scan_orders import (SCANS, column_major, deserialise, diagonal, hilbert, inverse, raster, serialise,
                                     unreadable, z_order, zigzag)


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


def _orders(h: int, w: int) -> torch.Tensor:
    reads = [SCANS[name](h, w) for name in ("raster", "column_major", "diagonal")]
    return torch.stack([torch.stack([o, o.flip(0)]) for o in reads])  # (3, 2, L)


def test_serialise_reads_each_group_in_each_order_and_deserialise_puts_it_back():
    maps = torch.randn(3, 2, 16, 5)  # (G, B, L, F)
    orders = _orders(4, 4)
    seqs = serialise(maps, orders)
    assert seqs.shape == (3, 2, 2, 5, 16) and seqs.is_contiguous()
    for g in range(3):
        for k in range(2):
            torch.testing.assert_close(seqs[g, :, k], maps[g][:, orders[g, k]].transpose(1, 2), rtol=0, atol=0)
    rows = serialise(maps, orders, steps_last=False)
    torch.testing.assert_close(rows, seqs.transpose(3, 4), rtol=0, atol=0)
    torch.testing.assert_close(deserialise(seqs, orders), 2 * maps, rtol=0, atol=0)  # both orders give it back
    torch.testing.assert_close(deserialise(rows, orders, steps_last=False), 2 * maps, rtol=0, atol=0)


def test_serialise_with_features_per_order():
    maps = torch.randn(3, 2, 16, 2, 5)  # (G, B, L, K, F)
    orders = _orders(4, 4)
    seqs = serialise(maps, orders)
    for g in range(3):
        for k in range(2):
            torch.testing.assert_close(seqs[g, :, k], maps[g, :, orders[g, k], k].transpose(1, 2), rtol=0, atol=0)


@pytest.mark.parametrize("steps_last", [True, False])
@pytest.mark.parametrize("shared", [True, False])
def test_serialise_and_deserialise_gradients(steps_last, shared):
    orders = _orders(2, 2)
    shape = (3, 2, 4, 3) if shared else (3, 2, 4, 2, 3)
    maps = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: serialise(m, orders, steps_last), (maps,))
    seqs = torch.randn(3, 2, 2, *((3, 4) if steps_last else (4, 3)), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: deserialise(s, orders, steps_last), (seqs,))


def test_unreadable_names_the_scans_a_side_does_not_fit():
    assert unreadable(["hilbert", "z_order", "raster", "diagonal"], 6) == ["hilbert", "z_order"]
    assert unreadable(["hilbert", "z_order"], 8) == []
