"""FreCT network, its materialising reference, the loss and the score."""

from __future__ import annotations

import math

import pytest
import torch

from fsad.layers.embedding import DataEmbedding
from fsad.layers.patch_attention import Layout, channel_mean, group_expand, mix_compact, upsample
from fsad.methods.frect.materialised import materialised_forward
from fsad.methods.frect.network import ConvolutionModule, EfficientPath, FreCTNetwork
from fsad.methods.frect.objective import (
    frect_loss,
    frect_score,
    kl_per_step,
    mean_abs_time_spectrum,
    normalise_features,
    spectral_difference,
)

# (C, L, D, patch sizes, layers, heads, use_conv, normalize)
CONFIGS = [
    (3, 12, 16, (1, 3, 4, 12), 2, 1, True, True),
    (2, 10, 8, (2, 5), 1, 2, True, False),
    (4, 6, 6, (1, 2, 3, 6), 2, 2, False, True),
]
PATHS = [EfficientPath(), EfficientPath(affine_attention=False), EfficientPath(grouped_conv=False)]


pytestmark = pytest.mark.usefixtures("single_thread")


def _network(c, length, d, patches, layers, heads, use_conv, normalize, dtype=torch.float64, **kw) -> FreCTNetwork:
    torch.manual_seed(0)
    net = FreCTNetwork(
        n_channels=c, window=length, d_model=d, patch_sizes=patches, e_layers=layers, n_heads=heads,
        use_conv=use_conv, normalize=normalize, **kw,
    )
    return net.to(dtype)


def _input(b, length, c, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(b, length, c, generator=gen) * 2 + 0.5).to(dtype)


def _loss_and_grads(net: FreCTNetwork, outputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loss = frect_loss(*outputs)["loss"]
    return loss, list(torch.autograd.grad(loss, list(net.parameters())))  # every parameter is used


# ----------------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------------
def test_output_shapes_and_order() -> None:
    net = FreCTNetwork(n_channels=5, window=30, d_model=16, patch_sizes=(3, 5), e_layers=3)
    series, prior = net(torch.randn(2, 30, 5))
    assert len(series) == len(prior) == net.n_outputs == 6
    for s, p in zip(series, prior):
        assert s.shape == p.shape == (2, 30, 1, 16)
        assert ((s > 0) & (s < 1)).all() and ((p > 0) & (p < 1)).all()  # sigmoid outputs
    # Order "patch sizes outer, layers inner": without the convolution module, the inter outputs of patch size p
    # repeat inside blocks of p rows and the intra outputs repeat with period p.
    net = FreCTNetwork(n_channels=5, window=30, d_model=16, patch_sizes=(3, 5), e_layers=3, use_conv=False)
    series, prior = net(torch.randn(2, 30, 5))
    for u, s in enumerate(series):
        p = net.patch_sizes[u // net.e_layers]
        blocks = s.view(2, 30 // p, p, 1, 16)
        assert torch.allclose(blocks, blocks[:, :, :1].expand_as(blocks))  # rows repeat inside each block
    for u, q in enumerate(prior):
        p = net.patch_sizes[u // net.e_layers]
        tiles = q.view(2, 30 // p, p, 1, 16)
        assert torch.allclose(tiles, tiles[:, :1].expand_as(tiles))  # rows repeat with period p


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("path", PATHS, ids=["full", "no-affine", "no-grouped-conv"])
def test_efficient_matches_materialised_float64(config, path) -> None:
    c, length = config[0], config[1]
    net = _network(*config)
    x = _input(3, length, c)
    eff = net.encode(x, path)
    ref = materialised_forward(net, x)
    for a, b in zip(eff[0] + eff[1], ref[0] + ref[1]):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    loss_eff, grads_eff = _loss_and_grads(net, eff)
    loss_ref, grads_ref = _loss_and_grads(net, ref)
    torch.testing.assert_close(loss_eff, loss_ref, atol=1e-12, rtol=0)
    for g_eff, g_ref in zip(grads_eff, grads_ref):
        torch.testing.assert_close(g_eff, g_ref, atol=1e-10, rtol=1e-9)


def test_efficient_matches_materialised_float32() -> None:
    net = _network(5, 30, 32, (1, 3, 5, 30), 2, 1, True, True, dtype=torch.float32)
    x = _input(4, 30, 5, dtype=torch.float32)
    eff, ref = net(x), materialised_forward(net, x)
    for a, b in zip(eff[0] + eff[1], ref[0] + ref[1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    loss_eff, grads_eff = _loss_and_grads(net, eff)
    loss_ref, grads_ref = _loss_and_grads(net, ref)
    torch.testing.assert_close(loss_eff, loss_ref, atol=1e-5, rtol=0)
    for g_eff, g_ref in zip(grads_eff, grads_ref):
        torch.testing.assert_close(g_eff, g_ref, atol=1e-5, rtol=1e-4)


def test_dropout_paths_agree_under_the_same_seed() -> None:
    net = _network(3, 12, 8, (3, 4), 2, 1, True, True, dropout=0.3).train()
    x = _input(2, 12, 3)
    torch.manual_seed(7)
    eff = net(x)
    torch.manual_seed(7)
    ref = materialised_forward(net, x)
    for a, b in zip(eff[0] + eff[1], ref[0] + ref[1]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("bad", [4, 7, 0])
def test_bad_patch_size_raises(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"patch size {bad} does not divide the window 30"):
        FreCTNetwork(n_channels=2, window=30, patch_sizes=(3, bad))


def test_bad_input_shape_raises() -> None:
    net = FreCTNetwork(n_channels=2, window=6, d_model=8, patch_sizes=(2,))
    with pytest.raises(ValueError, match="expected input of shape"):
        net(torch.randn(1, 6, 3))


# ----------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [5, 6, 7, 8, 16, 33, 128])
def test_convolution_module_width_and_grouped_form(d: int) -> None:
    torch.manual_seed(0)
    conv = ConvolutionModule(window=12).double()
    z = torch.rand(2, 12, 1, d, dtype=torch.float64)
    out = conv(z)
    assert out.shape == (2, 12, 1, d)
    for layout, p in [(Layout.BLOCK, 3), (Layout.TILE, 3), (Layout.BLOCK, 1), (Layout.TILE, 12)]:
        t = 12 // p if layout is Layout.BLOCK else p
        compact = torch.rand(2, t, 1, d, dtype=torch.float64)
        expected = conv(group_expand(compact, 1, p, layout, 12))
        torch.testing.assert_close(conv.forward_grouped(compact, p, layout), expected, atol=1e-12, rtol=0)


def test_upsampling_matches_official_ops_and_structured_product() -> None:
    gen = torch.Generator().manual_seed(0)
    p, n = 3, 4
    block = torch.rand(6, 1, n, n, generator=gen, dtype=torch.float64)
    tile = torch.rand(6, 1, p, p, generator=gen, dtype=torch.float64)
    expected_block = block.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)  # einops "(m r) (n r)"
    expected_tile = tile.repeat(1, 1, n, n)  # Tensor.repeat in the official code
    torch.testing.assert_close(upsample(block, p, Layout.BLOCK, 12), expected_block)
    torch.testing.assert_close(upsample(tile, p, Layout.TILE, 12), expected_tile)
    torch.testing.assert_close(upsample(block, p, "block", 12), expected_block)  # plain strings work too
    for maps, layout in [(block, Layout.BLOCK), (tile, Layout.TILE)]:  # channel mean commutes with up-sampling
        torch.testing.assert_close(
            upsample(channel_mean(maps, 3), p, layout, 12), channel_mean(upsample(maps, p, layout, 12), 3)
        )
    values = torch.rand(2, 12, 1, 5, generator=gen, dtype=torch.float64)
    for maps, layout in [(block, Layout.BLOCK), (tile, Layout.TILE)]:
        mean = channel_mean(maps, 3)  # (2, 1, t, t)
        full = torch.einsum("bhls,bshe->blhe", upsample(mean, p, layout, 12), values)
        compact = mix_compact(mean, values, p, layout)
        torch.testing.assert_close(group_expand(compact, 1, p, layout, 12), full, atol=1e-12, rtol=0)


def test_embedding_affine_form_and_positions() -> None:
    torch.manual_seed(0)
    emb = DataEmbedding(c_in=3, d_model=7).double()
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(emb.affine(x).dense(), emb(x), atol=1e-12, rtol=0)
    table = emb.position(5)
    assert table.shape == (5, 7)
    assert table[3, 0].item() == pytest.approx(math.sin(3.0), abs=1e-6)
    assert table[3, 3].item() == pytest.approx(math.cos(3.0 * 10000 ** (-2 / 7)), abs=1e-6)
    assert "position.table" not in emb.state_dict()


# ----------------------------------------------------------------------------------------------------
# Objective
# ----------------------------------------------------------------------------------------------------
def _random_outputs(u=3, b=2, length=6, d=4, requires_grad=True):
    gen = torch.Generator().manual_seed(3)
    make = lambda: torch.rand(b, length, 1, d, generator=gen, dtype=torch.float64).requires_grad_(requires_grad)  # noqa: E731
    return [make() for _ in range(u)], [make() for _ in range(u)]


def test_kl_per_step_exact_values() -> None:
    p = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64).view(1, 1, 1, 3)
    assert kl_per_step(p, p).shape == (1, 1)
    assert kl_per_step(p, p).item() == 0.0
    one_hot = torch.tensor([1.0, 0.0], dtype=torch.float64).view(1, 1, 1, 2)
    uniform = torch.full((1, 1, 1, 2), 0.5, dtype=torch.float64)
    # 1 * (log(1 + 1e-4) - log(0.5 + 1e-4)) + 0 * (...) -- the epsilon keeps it below log 2
    assert kl_per_step(one_hot, uniform).item() == pytest.approx(math.log(1.0001 / 0.5001), abs=1e-15)
    # reversed: 0.5 * (log 0.5001 - log 1.0001) + 0.5 * (log 0.5001 - log 0.0001)
    expected = 0.5 * math.log(0.5001 / 1.0001) + 0.5 * math.log(0.5001 / 0.0001)
    assert kl_per_step(uniform, one_hot).item() == pytest.approx(expected, abs=1e-12)


def test_loss_on_identical_sigmoid_outputs_by_hand() -> None:
    # series = prior = 0.5 everywhere (D = 4): P̂ = 0.25, series is not renormalised.
    s = [torch.full((1, 2, 1, 4), 0.5, dtype=torch.float64, requires_grad=True)]
    q = [s[0].detach().clone().requires_grad_()]
    out = frect_loss(s, q)
    sym = 4 * 0.5 * math.log(0.5001 / 0.2501) + 4 * 0.25 * math.log(0.2501 / 0.5001)
    assert out["loss_series"].item() == pytest.approx(sym, abs=1e-12)
    assert out["loss_prior"].item() == pytest.approx(sym, abs=1e-12)
    assert out["loss_time"].item() == 0.0
    assert out["loss_freq"].item() == 0.0
    assert out["loss"].item() == 0.0
    # zero spectrum: the modulus' subgradient is 0 (as for torch.abs on complex), never NaN
    grads = torch.autograd.grad(out["loss"], s + q)
    assert all(torch.isfinite(g).all() for g in grads)


def _literal_loss(series, prior, stop_grad_series, stop_grad_prior):
    """The spec's four-KL form written with ``kl_per_step`` only."""
    sg_p = (lambda t: t.detach()) if stop_grad_prior else (lambda t: t)
    sg_s = (lambda t: t.detach()) if stop_grad_series else (lambda t: t)
    ls = lp = lf = 0.0
    for s, q in zip(series, prior):
        p_hat = q / q.sum(dim=-1, keepdim=True)
        ls = ls + kl_per_step(s, sg_p(p_hat)).mean() + kl_per_step(sg_p(p_hat), s).mean()
        lp = lp + kl_per_step(p_hat, sg_s(s)).mean() + kl_per_step(sg_s(s), p_hat).mean()
        lf = lf + (torch.fft.fft(s, dim=1) - torch.fft.fft(q, dim=1)).abs().mean()
    u = len(series)
    return 0.5 * (lp / u - ls / u) + 0.5 * lf


@pytest.mark.parametrize("stop_grad_series", [True, False])
@pytest.mark.parametrize("stop_grad_prior", [True, False])
def test_loss_matches_literal_form(stop_grad_series: bool, stop_grad_prior: bool) -> None:
    series, prior = _random_outputs()
    flags = dict(stop_grad_series=stop_grad_series, stop_grad_prior=stop_grad_prior)
    out = frect_loss(series, prior, **flags)
    assert set(out) >= {"loss", "loss_time", "loss_freq"} and all(v.dim() == 0 for v in out.values())
    assert abs(out["loss_time"].item()) < 1e-12  # L_prior and L_series share their value
    literal = _literal_loss(series, prior, **flags)
    torch.testing.assert_close(out["loss"], literal, atol=1e-12, rtol=0)
    leaves = series + prior
    for g, g_lit in zip(torch.autograd.grad(out["loss"], leaves), torch.autograd.grad(literal, leaves)):
        torch.testing.assert_close(g, g_lit, atol=1e-12, rtol=1e-10)
    if not (stop_grad_series or stop_grad_prior):
        grads = torch.autograd.grad(frect_loss(series, prior, **flags)["loss_time"], leaves, allow_unused=True)
        assert all(g is None or g.abs().max() < 1e-12 for g in grads)


def test_spectral_difference_modes() -> None:
    series, prior = _random_outputs(u=1, d=6, requires_grad=False)
    s, q = series[0], prior[0]
    assert spectral_difference(s, q, "fft").shape == (2, 6, 1, 6)
    assert spectral_difference(s, q, "rfft").shape == (2, 6, 1, 4)
    torch.testing.assert_close(spectral_difference(s, q, "rfft2"), spectral_difference(s, q, "rfft"))
    torch.testing.assert_close(
        spectral_difference(s, q, "fft"), (torch.fft.fft(s, dim=1) - torch.fft.fft(q, dim=1)).abs()
    )
    with pytest.raises(ValueError, match="fft must be one of"):
        spectral_difference(s, q, "dct")


@pytest.mark.parametrize("length", [1, 2, 7, 12])
def test_half_spectrum_mean_matches_full_fft(length: int) -> None:
    gen = torch.Generator().manual_seed(length)
    delta = torch.randn(3, length, 1, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    fast, full = mean_abs_time_spectrum(delta), torch.fft.fft(delta, dim=1).abs().mean()
    torch.testing.assert_close(fast, full, atol=1e-12, rtol=0)
    (g_fast,), (g_full,) = torch.autograd.grad(fast, delta), torch.autograd.grad(full, delta)
    torch.testing.assert_close(g_fast, g_full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("fft", ["fft", "rfft", "rfft2"])
def test_score_shape_and_rows_sum_to_one(fft: str) -> None:
    series, prior = _random_outputs(requires_grad=False)
    score = frect_score(series, prior, fft=fft)
    assert score.shape == (2, 6)
    torch.testing.assert_close(score.sum(dim=-1), torch.ones(2, dtype=torch.float64))
    # literal form: softmax(0.5 * (-K) + 0.5 * F)
    k = sum(50.0 * (kl_per_step(s, normalise_features(q)) + kl_per_step(normalise_features(q), s))
            for s, q in zip(series, prior))
    f = sum(spectral_difference(s, q, fft).mean(dim=(2, 3)) for s, q in zip(series, prior))
    torch.testing.assert_close(score, torch.softmax(-0.5 * k + 0.5 * f, dim=-1), atol=1e-12, rtol=0)
    flipped = frect_score(series, prior, fft=fft, time_score_sign=1.0)
    torch.testing.assert_close(flipped, torch.softmax(0.5 * k + 0.5 * f, dim=-1), atol=1e-12, rtol=0)


def test_score_of_network_outputs() -> None:
    net = FreCTNetwork(n_channels=3, window=12, d_model=8, patch_sizes=(3, 4), e_layers=2)
    with torch.no_grad():
        score = frect_score(*net(torch.randn(5, 12, 3)))
    assert score.shape == (5, 12)
    torch.testing.assert_close(score.sum(dim=-1), torch.ones(5))
