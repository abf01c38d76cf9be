"""The Wavelet-Mamba module: its two residual branches, shapes, stochastic depth, gradients."""

from __future__ import annotations

import torch

from fsad.layers.dropout import drop_path
from fsad.methods.wave_mambaad.block import WaveletMamba


def test_the_module_is_its_two_residual_branches():
    torch.manual_seed(0)
    block = WaveletMamba(channels=8, size=4, groups=2, d_state=4, scan_backend="chunked").double().eval()
    x = torch.randn(2, 4, 4, 8, dtype=torch.float64)
    y1 = x + block.wavelet_branch(x)
    expected = y1 + block.dse(block.dse_norm(y1).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == x.shape


def test_unused_conv_only_changes_the_parameter_count():
    with_conv, without = (WaveletMamba(64, 8, 2, unused_conv=flag) for flag in (True, False))
    count = [sum(p.numel() for p in m.parameters()) for m in (with_conv, without)]
    assert count[0] - count[1] == 3 * 64 * 64 + 64


def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    torch.manual_seed(1)
    x = torch.ones(20000, 3, 2)
    out = drop_path(x, 0.25)
    per_sample = out.reshape(20000, -1)
    assert set(per_sample.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    assert (per_sample == per_sample[:, :1]).all()  # one decision per sample
    assert abs(out.mean().item() - 1.0) < 0.03
    assert torch.equal(drop_path(x, 0.25, training=False), x)


def test_gradients_in_float64():
    torch.manual_seed(2)
    block = WaveletMamba(channels=4, size=4, groups=2, d_state=2, scan_backend="chunked").double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))
