"""Haar DWT / IDWT: the exact 2 x 2 formulas, PyWavelets as the reference, round trip, energy, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from fsad.layers.wavelets import haar_dwt, haar_idwt


def test_one_block_gives_the_specs_formulas():
    x = torch.tensor([[[[1.0, 3.0], [5.0, 11.0]]]])  # x1 = 1, x3 = 3 (row 0); x2 = 5, x4 = 11 (row 1)
    x1, x2, x3, x4 = 0.5, 2.5, 1.5, 5.5  # each sample / 2
    ll, hl, lh, hh = (band.item() for band in haar_dwt(x))
    assert (ll, hl, lh, hh) == (x1 + x2 + x3 + x4, -x1 - x2 + x3 + x4, -x1 + x2 - x3 + x4, x1 - x2 - x3 + x4)


def test_sub_bands_are_pywavelets_haar_up_to_the_sign_of_the_details():
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 6))
    ll, hl, lh, hh = (band.numpy() for band in haar_dwt(torch.from_numpy(x)))
    ca, (ch, cv, cd) = pywt.dwt2(x, "haar", axes=(-2, -1))
    np.testing.assert_allclose(ll, ca, atol=1e-12)
    np.testing.assert_allclose(lh, -ch, atol=1e-12)
    np.testing.assert_allclose(hl, -cv, atol=1e-12)
    np.testing.assert_allclose(hh, cd, atol=1e-12)


def test_inverse_is_exact_and_energy_is_kept():
    x = torch.randn(2, 4, 16, 12, dtype=torch.float64)
    bands = haar_dwt(x)
    torch.testing.assert_close(haar_idwt(bands), x, rtol=0, atol=1e-12)
    assert sum(float((b ** 2).sum()) for b in bands) == pytest.approx(float((x ** 2).sum()), rel=1e-12)
    np.testing.assert_allclose(haar_idwt(bands).numpy(),
                               pywt.idwt2((bands[0].numpy(), (-bands[2].numpy(), -bands[1].numpy(),
                                                              bands[3].numpy())), "haar", axes=(-2, -1)), atol=1e-12)


def test_gradients_in_float64():
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: haar_dwt(t), (x,))
    bands = torch.randn(4, 1, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_idwt, (bands,))
    assert torch.autograd.gradcheck(lambda t: haar_dwt(t, channels_last=True), (x.permute(0, 2, 3, 1),))
    assert torch.autograd.gradcheck(lambda t: haar_idwt(t, channels_last=True), (bands.permute(0, 1, 3, 4, 2),))


def test_channel_last_layout_gives_the_same_bands():
    x = torch.randn(2, 3, 6, 4, dtype=torch.float64)
    bands = haar_dwt(x.permute(0, 2, 3, 1), channels_last=True)
    assert bands.shape == (4, 2, 3, 2, 3) and bands.is_contiguous()
    torch.testing.assert_close(bands, haar_dwt(x).permute(0, 1, 3, 4, 2), rtol=0, atol=0)
    torch.testing.assert_close(haar_idwt(bands, channels_last=True), x.permute(0, 2, 3, 1), rtol=0, atol=1e-12)


def test_odd_sizes_are_refused():
    with pytest.raises(ValueError, match="even height and width, got 5 x 4"):
        haar_dwt(torch.zeros(1, 1, 5, 4))
