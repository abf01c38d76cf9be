"""Parameter and multiply-add counting on layers whose counts are known by hand."""

from __future__ import annotations

import torch
from torch import nn

from fsad.utils.complexity import multiply_adds, parameter_count


def test_counts_of_a_linear_a_convolution_and_a_training_step():
    linear, conv = nn.Linear(5, 3), nn.Conv2d(2, 4, 3, padding=1, bias=False)
    assert parameter_count(linear) == 18 and parameter_count(conv) == 72
    assert multiply_adds(linear, torch.zeros(7, 5)) == 7 * 5 * 3
    assert multiply_adds(conv, torch.zeros(1, 2, 6, 6)) == 36 * 4 * 2 * 9  # per output pixel and channel: 2 x 9
    x = torch.zeros(2, 2, 6, 6, requires_grad=True)
    forward = 2 * 36 * 4 * 2 * 9
    assert multiply_adds(lambda: conv(x).sum().backward()) == 3 * forward  # + input and weight gradients (dense)
    conv.weight.requires_grad_(False)
    assert parameter_count(conv, trainable_only=True) == 0
    with torch.no_grad():
        assert multiply_adds(conv, x) == forward
