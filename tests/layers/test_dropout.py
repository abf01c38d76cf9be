"""FastDropout: drop rate, scale, gradient, identity cases, and no lane of the random words biased."""

from __future__ import annotations

import pytest
import torch

from fsad.layers.dropout import FastDropout, fast_dropout, keep_mask


def test_drop_rate_and_scale() -> None:
    torch.manual_seed(0)
    mask, scale = keep_mask((1000, 1000), 0.1)
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    assert scale == 32768 / (32768 - 3277)  # p' = round(0.1 * 2^15) / 2^15
    dropped = 1 - mask.float().mean().item()
    assert abs(dropped - 3277 / 32768) < 0.0015  # 5 standard deviations of a 10^6-sample rate


def test_every_lane_of_the_random_words_is_uniform() -> None:
    """Elements 4k + j come from lane j of a 64-bit word; the top lane's sign bit is always 0 and must not matter."""
    torch.manual_seed(1)
    mask, _ = keep_mask((4 * 250_000,), 0.5)
    for lane in range(4):
        dropped = 1 - mask[lane::4].float().mean().item()
        assert abs(dropped - 0.5) < 0.005, lane


def test_values_and_gradient() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    out = fast_dropout(x, 0.25)
    kept = out != 0
    scale = 32768 / (32768 - 8192)
    torch.testing.assert_close(out[kept], x[kept] * scale, rtol=0, atol=0)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35
    out.backward(torch.ones_like(out))
    torch.testing.assert_close(x.grad, kept.float() * scale, rtol=0, atol=0)


def test_identity_and_edge_cases() -> None:
    x = torch.randn(10, 10)
    layer = FastDropout(0.3)
    layer.eval()
    assert layer(x) is x
    assert fast_dropout(x, 0.0) is x
    assert (fast_dropout(x, 1.0) == 0).all()
    tiny = fast_dropout(x, 1e-6)  # rounds to p' = 0: torch's dropout instead
    assert tiny.shape == x.shape


def test_state_dict_matches_nn_dropout() -> None:
    assert FastDropout(0.1).state_dict().keys() == torch.nn.Dropout(0.1).state_dict().keys()
    assert repr(FastDropout(0.1)) == "FastDropout(p=0.1, inplace=False)"


@pytest.mark.parametrize("seed", [3, 4])
def test_seeded_masks_repeat(seed: int) -> None:
    torch.manual_seed(seed)
    first = keep_mask((50, 7), 0.1)[0]
    torch.manual_seed(seed)
    assert torch.equal(first, keep_mask((50, 7), 0.1)[0])
