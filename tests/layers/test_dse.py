"""DSE: channel shuffle, the symmetric GELU gating, parameter count, gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fsad.layers.dse import DynamicSpatialEnhancement, channel_shuffle, symmetric_gelu_gate


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert channel_shuffle(x, 3).flatten().tolist() == [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]


def test_gating_is_symmetric_and_the_size_is_the_codes():
    torch.manual_seed(0)
    dse = DynamicSpatialEnhancement(8).double()
    assert dse.hidden == 21  # int(2.66 * 8)
    assert sum(p.numel() for p in dse.parameters()) == 8 * 42 + 42 * 9 + 21 * 8
    assert sum(p.numel() for p in DynamicSpatialEnhancement(256).parameters()) == 534_480
    x = torch.randn(2, 8, 5, 4, dtype=torch.float64)
    y = dse.depthwise(channel_shuffle(dse.project_in(x), 2))
    a, b = y[:, :21], y[:, 21:]
    expected = F.conv2d(a * F.gelu(b) + b * F.gelu(a), dse.project_out.weight)
    torch.testing.assert_close(dse(x.permute(0, 2, 3, 1)), expected.permute(0, 2, 3, 1))  # channel-last
    assert torch.autograd.gradcheck(dse, (x[:1, :, :3, :3].permute(0, 2, 3, 1).clone().requires_grad_(),))


def test_the_fused_gate_equals_the_expression_and_its_gradients():
    a, b = (torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    torch.testing.assert_close(symmetric_gelu_gate(a, b), a * F.gelu(b) + b * F.gelu(a), rtol=0, atol=0)
    assert torch.autograd.gradcheck(symmetric_gelu_gate, (a, b))
