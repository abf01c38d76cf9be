"""FreCT options added for the paper's studies: the divergence of the time-domain consistency loss
(``model.consistency``: sym_kl | asym_kl | js, paper Sec. V-E / Fig. 3), checked on hand-made inputs."""

from __future__ import annotations

import math

import pytest
import torch

from fsad.methods.frect.module import FreCT
from fsad.methods.frect.objective import CONSISTENCIES, _divergence_loss, consistency_per_step, frect_loss

EPS = 1e-4


def _kl(p: list[float], q: list[float]) -> float:
    """KL(p‖q) with the code's epsilon inside both logarithms, by hand."""
    return sum(pi * (math.log(pi + EPS) - math.log(qi + EPS)) for pi, qi in zip(p, q))


def _pair(requires_grad: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One output pair (B = L = H = 1, D = 2): series S = [0.5, 0.5], raw prior [1, 3] (P̂ = [0.25, 0.75])."""
    s = torch.tensor([0.5, 0.5], dtype=torch.float64).reshape(1, 1, 1, 2).requires_grad_(requires_grad)
    q = torch.tensor([1.0, 3.0], dtype=torch.float64).reshape(1, 1, 1, 2).requires_grad_(requires_grad)
    return [s], [q]


S, P_HAT = [0.5, 0.5], [0.25, 0.75]
M = [0.375, 0.625]  # (S + P̂) / 2
FREQ = 1.5          # L = 1: the time FFT is the identity, mean |S - Q| = (0.5 + 2.5) / 2


def test_divergence_per_step_by_hand() -> None:
    a = torch.tensor(S, dtype=torch.float64).reshape(1, 1, 1, 2)
    b = torch.tensor(P_HAT, dtype=torch.float64).reshape(1, 1, 1, 2)
    expected = {
        "sym_kl": _kl(S, P_HAT) + _kl(P_HAT, S),
        "asym_kl": _kl(S, P_HAT),
        "js": 0.5 * _kl(S, M) + 0.5 * _kl(P_HAT, M),
    }
    for kind, value in expected.items():
        out = consistency_per_step(a, b, kind)
        assert out.shape == (1, 1)
        assert out.item() == pytest.approx(value, abs=1e-12), kind
    # asymmetric: the other order is the other KL; sym_kl and js are symmetric
    assert consistency_per_step(b, a, "asym_kl").item() == pytest.approx(_kl(P_HAT, S), abs=1e-12)
    for kind in ("sym_kl", "js"):
        assert consistency_per_step(b, a, kind).item() == pytest.approx(expected[kind], abs=1e-12)
    with pytest.raises(ValueError, match="consistency"):
        consistency_per_step(a, b, "mse")


def test_divergence_is_averaged_over_heads() -> None:
    # two heads: the second head compares S with itself (divergence 0), so the mean halves the first head's
    a = torch.tensor([S, S], dtype=torch.float64).reshape(1, 1, 2, 2)
    b = torch.tensor([P_HAT, S], dtype=torch.float64).reshape(1, 1, 2, 2)
    assert consistency_per_step(a, b, "asym_kl").item() == pytest.approx(0.5 * _kl(S, P_HAT), abs=1e-12)


def test_asymmetric_kl_loss_by_hand() -> None:
    series, prior = _pair()
    out = frect_loss(series, prior, alpha=0.5, consistency="asym_kl")
    l_series, l_prior = _kl(S, P_HAT), _kl(P_HAT, S)
    assert out["loss_series"].item() == pytest.approx(l_series, abs=1e-12)
    assert out["loss_prior"].item() == pytest.approx(l_prior, abs=1e-12)
    assert out["loss_time"].item() == pytest.approx(l_prior - l_series, abs=1e-12)
    assert out["loss_freq"].item() == pytest.approx(FREQ, abs=1e-12)
    assert out["loss"].item() == pytest.approx(0.5 * (l_prior - l_series) + 0.5 * FREQ, abs=1e-12)
    # both stop-gradients on: S gets -d KL(S‖sg(P̂)) / dS = -(log(s + eps) + s / (s + eps) - log(p + eps))
    (grad_s,) = torch.autograd.grad(out["loss_time"], series)
    expected = [-(math.log(s + EPS) + s / (s + EPS) - math.log(p + EPS)) for s, p in zip(S, P_HAT)]
    torch.testing.assert_close(grad_s.reshape(-1), torch.tensor(expected, dtype=torch.float64), atol=1e-12,
                               rtol=0)


def test_js_loss_by_hand() -> None:
    series, prior = _pair()
    out = frect_loss(series, prior, alpha=0.5, consistency="js")
    js = 0.5 * _kl(S, M) + 0.5 * _kl(P_HAT, M)
    assert out["loss_series"].item() == pytest.approx(js, abs=1e-12)
    assert out["loss_prior"].item() == pytest.approx(js, abs=1e-12)
    assert out["loss_time"].item() == pytest.approx(0.0, abs=1e-15)  # symmetric: the two terms share their value
    assert out["loss"].item() == pytest.approx(0.5 * FREQ, abs=1e-12)


@pytest.mark.parametrize("stop_grad_series", [True, False])
@pytest.mark.parametrize("stop_grad_prior", [True, False])
def test_written_out_symmetric_kl_equals_the_default_loss(stop_grad_series: bool, stop_grad_prior: bool) -> None:
    """The autograd path of the variants, given sym_kl, reproduces the default loss in value and gradient."""
    gen = torch.Generator().manual_seed(0)
    series = [torch.rand(2, 6, 1, 5, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(2)]
    prior = [(torch.rand(2, 6, 1, 5, generator=gen, dtype=torch.float64) + 0.1).requires_grad_() for _ in range(2)]
    flags = dict(stop_grad_series=stop_grad_series, stop_grad_prior=stop_grad_prior)
    default = frect_loss(series, prior, alpha=0.5, fft="fft", **flags)
    written = _divergence_loss(series, prior, 0.5, "fft", consistency="sym_kl", **flags)
    for key in ("loss", "loss_time", "loss_freq", "loss_series", "loss_prior"):
        torch.testing.assert_close(written[key], default[key], atol=1e-12, rtol=0)
    leaves = series + prior
    for g, g_ref in zip(torch.autograd.grad(written["loss"], leaves), torch.autograd.grad(default["loss"], leaves)):
        torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=1e-10)


def test_model_option() -> None:
    assert CONSISTENCIES == ("sym_kl", "asym_kl", "js")
    x = torch.randn(2, 12, 3)
    for kind in CONSISTENCIES:
        model = FreCT(n_channels=3, window=12, d_model=8, patch_sizes=(2, 3), e_layers=1, consistency=kind)
        assert torch.isfinite(model.training_loss(x)["loss"])
    assert FreCT(n_channels=3, window=12, d_model=8, patch_sizes=(2, 3), e_layers=1).consistency == "sym_kl"
    with pytest.raises(ValueError, match="model.consistency"):
        FreCT(n_channels=3, window=12, d_model=8, patch_sizes=(2, 3), e_layers=1, consistency="kl")
