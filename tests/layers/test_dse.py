"""DSE: channel shuffle, the symmetric GELU gating, parameter count, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fsad.layers import dse
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
    y = torch.randn(2, 3, 10, dtype=torch.float64, requires_grad=True)
    a, b = y.chunk(2, dim=-1)
    torch.testing.assert_close(symmetric_gelu_gate(y), a * F.gelu(b) + b * F.gelu(a), rtol=1e-14, atol=1e-15)
    assert torch.autograd.gradcheck(symmetric_gelu_gate, (y,))
    with pytest.raises(ValueError, match="two halves, got 9 channels"):
        symmetric_gelu_gate(y[..., :9])


@pytest.mark.parametrize("native", [True, False], ids=["native", "pytorch"])
def test_the_float32_gate_and_its_gradients_match_float64(native: bool, monkeypatch: pytest.MonkeyPatch):
    """Both paths (the C kernel's erf approximation and PyTorch's GELU) agree with the float64 expression to float32
    rounding, from the tails (|x| = 12, where GELU is 0 or x) through 0."""
    if not native:
        monkeypatch.setattr(dse, "native_elementwise", lambda *_: False)
    grid = torch.tensor([-12.0, -6.0, -3.0, -1.0, -0.3, 0.0, 0.3, 1.0, 3.0, 6.0, 12.0])
    a, b = (x.reshape(-1, 1) for x in torch.meshgrid(grid, grid, indexing="ij"))
    y = torch.cat([a, b], dim=-1).requires_grad_()  # rows of (a, b)
    grad = torch.linspace(-1, 1, a.numel()).view(-1, 1)
    out = dse.symmetric_gelu_gate(y)
    y64 = y.detach().double().requires_grad_()
    ref = y64[:, :1] * F.gelu(y64[:, 1:]) + y64[:, 1:] * F.gelu(y64[:, :1])
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=3e-5)  # values up to 144: float32 steps of 1.5e-5
    got, = torch.autograd.grad(out, y, grad)
    want, = torch.autograd.grad(ref, y64, grad.double())
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=3e-5)


def test_an_empty_input_gives_an_empty_gate() -> None:
    for shape in ((3, 0), (0, 4)):
        y = torch.zeros(shape, requires_grad=True)
        out = symmetric_gelu_gate(y)
        assert out.shape == (shape[0], shape[1] // 2)
        out.sum().backward()
        assert y.grad.shape == shape
