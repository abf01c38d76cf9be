"""FKM-AD: network pieces, ablation switches, losses and LEH terms on hand-made inputs, train-only statistics."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from fsad.methods.base import AnomalyDetector
from fsad.methods.fkm_ad.module import FKMAD, TABLE2_ROWS, NotFittedError
from fsad.methods.fkm_ad.network import FKMADNetwork, FKMMixer, FourierKAN, sharpen_gate, step_gain
from fsad.methods.fkm_ad.objective import (
    TermMoments,
    fuse_leh,
    gate_regulariser,
    hfr_cutoff,
    leh_energy,
    leh_hfr,
    leh_locality,
    leh_terms,
    margin_loss,
    passivity_loss,
    reconstruction_score,
    sample_log_energy,
    step_small_loss,
    step_smooth_loss,
)
from tests.methods.windows import Windows

SMALL = dict(d_model=8, d_state=4, d_conv=3, expand=2, n_freqs=3, kan_rank=4)


pytestmark = pytest.mark.usefixtures("single_thread")


def _mixer(seed: int = 0, **kw) -> FKMMixer:
    torch.manual_seed(seed)
    args = {**SMALL, **kw}
    return FKMMixer(**args).double()


def _randomise_fourier(mixer: FKMMixer, seed: int = 5) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mixer.fourier.up.weight.copy_(torch.randn(mixer.fourier.up.weight.shape, generator=gen) * 0.3)
        mixer.fourier.up.bias.copy_(torch.randn(mixer.fourier.up.bias.shape, generator=gen) * 0.1)


def _input(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _model(**kw) -> FKMAD:
    torch.manual_seed(0)
    args = dict(n_channels=3, window=12, d_model=8, n_layers=2, d_state=4, n_freqs=3, kan_rank=4, leh_band=2,
                hfr_window=4)
    return FKMAD(**{**args, **kw})


# ----------------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------------
def test_network_shapes() -> None:
    torch.manual_seed(0)
    net = FKMADNetwork(n_channels=5, d_model=8, n_layers=3, d_state=4, n_freqs=2, kan_rank=3)
    out = net(torch.randn(2, 11, 5))
    assert out.x_hat.shape == (2, 11, 5) and out.hidden.shape == (2, 11, 8) and len(out.caches) == 3
    for cache in out.caches:
        assert cache.u_tilde.shape == cache.y.shape == cache.delta.shape == cache.z_sharp.shape == (2, 11, 16)
        assert cache.delta_mean.shape == (2, 11)
        assert (cache.delta >= 0).all() and (cache.delta <= 2.0).all()
    mixer = net.blocks[0].mixer
    assert mixer.dt_rank == 1 and mixer.A_log.shape == (16, 4)
    assert mixer.fourier.basis(torch.zeros(1, 1, 8)).shape == (1, 1, 2 * 2 * 8)  # 2F values per input dimension


def test_fourier_kan_zero_up_gives_zero_and_basis_values() -> None:
    torch.manual_seed(0)
    kan = FourierKAN(d_in=2, d_out=6, n_freqs=3, rank=4, f_max=3.0).double()
    v = _input(2, 5, 2)
    assert torch.equal(kan(v), torch.zeros(2, 5, 6, dtype=torch.float64))  # U = 0, b_c = 0: h_four = 0
    assert torch.allclose(kan.freqs, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    with torch.no_grad():
        kan.log_scale.copy_(torch.tensor([1.0, 2.0], dtype=torch.float64).log())
    phi = kan.basis(torch.tensor([[[0.25, 0.25]]], dtype=torch.float64))[0, 0]
    # dim 1: x~ = 0.25 -> sin(2 pi f / 4), cos(2 pi f / 4); dim 2: x~ = 0.125
    expected = []
    for scaled in (0.25, 0.125):
        expected += [math.sin(2 * math.pi * f * scaled) for f in (1, 2, 3)]
        expected += [math.cos(2 * math.pi * f * scaled) for f in (1, 2, 3)]
    assert torch.allclose(phi, torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_fresh_fourier_mixer_equals_linear_mixer() -> None:
    """With U = 0 the Fourier branch adds nothing: same output as use_fourier_kan=False with the shared weights."""
    with_kan, without = _mixer(use_fourier_kan=True), _mixer(use_fourier_kan=False)
    without.load_state_dict(with_kan.state_dict(), strict=False)
    v = _input(2, 7, 8)
    assert torch.allclose(with_kan(v)[0], without(v)[0], atol=1e-12)


@pytest.mark.parametrize("flag", ["use_fourier_kan", "use_temp_gate", "use_step_gain"])
def test_each_mixer_flag_changes_the_output(flag: str) -> None:
    on, off = _mixer(**{flag: True}), _mixer(**{flag: False})
    if flag == "use_fourier_kan":
        _randomise_fourier(on)
    missing, unexpected = off.load_state_dict(on.state_dict(), strict=False)
    assert not missing and unexpected  # the switched-off part's parameters are the only difference
    v = _input(2, 9, 8)
    (out_on, cache_on), (out_off, cache_off) = on(v), off(v)
    assert (out_on - out_off).abs().max() > 1e-4
    if flag == "use_temp_gate":  # z' = gamma (z - mean_t z) vs z' = z, on the same z
        z = cache_off.z_sharp
        assert torch.allclose(cache_on.z_sharp, on.temperature * (z - z.mean(dim=1, keepdim=True)), atol=1e-12)


def _plain_mamba(mixer: FKMMixer, v: torch.Tensor) -> torch.Tensor:
    """Mamba forward (spec common.md 6.1) written out with a sequential scan, using the mixer's weights."""
    length = v.shape[1]
    x, z = mixer.in_proj(v).chunk(2, dim=-1)
    u = F.silu(F.conv1d(x.transpose(1, 2), mixer.conv1d.weight, mixer.conv1d.bias, padding=mixer.d_conv - 1,
                        groups=mixer.d_inner)[..., :length]).transpose(1, 2)  # (B, L, E)
    dt, b, c = mixer.x_proj(u).split([mixer.dt_rank, mixer.d_state, mixer.d_state], dim=-1)
    delta = F.softplus(mixer.dt_proj(dt))
    a = -mixer.A_log.exp()
    h = torch.zeros(v.shape[0], mixer.d_inner, mixer.d_state, dtype=v.dtype)
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, t, :, None] * a) * h + delta[:, t, :, None] * b[:, t, None, :] * u[:, t, :, None]
        ys.append((h * c[:, t, None, :]).sum(-1) + mixer.D * u[:, t])
    y = torch.stack(ys, dim=1)
    return mixer.out_proj(y * F.silu(z))


def test_all_flags_off_is_a_plain_mamba_mixer() -> None:
    mixer = _mixer(use_fourier_kan=False, use_temp_gate=False, use_step_gain=False, delta_max=None,
                   in_proj_bias=False)
    v = _input(2, 10, 8)
    assert torch.allclose(mixer(v)[0], _plain_mamba(mixer, v), atol=1e-8)
    mamba_module = pytest.importorskip("fsad.layers.mamba")
    torch.manual_seed(3)
    mamba = mamba_module.Mamba(d_model=8, d_state=4, d_conv=3, expand=2).double()
    mixer.load_state_dict(mamba.state_dict(), strict=True)  # same parameter names and shapes
    assert torch.allclose(mixer(v)[0], mamba(v), atol=1e-8)


def test_scan_runs_in_float32_for_bfloat16_weights() -> None:
    torch.manual_seed(0)
    mixer = FKMMixer(**SMALL).to(torch.bfloat16)
    out, cache = mixer(torch.randn(2, 6, 8, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and cache.y.dtype == torch.float32 and torch.isfinite(cache.y).all()


def test_temperature_gate_subtracts_detached_time_mean() -> None:
    z = _input(2, 6, 3).requires_grad_(True)
    gamma = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    sharp = sharpen_gate(z, gamma)
    assert torch.allclose(sharp, 1.7 * (z - z.mean(dim=1, keepdim=True)), atol=1e-12)
    weights = _input(2, 6, 3, seed=4)
    (sharp * weights).sum().backward()
    assert torch.allclose(z.grad, 1.7 * weights, atol=1e-12)  # no -gamma/L * sum_t weights term: mean is detached
    centred = (z - z.mean(dim=1, keepdim=True)).detach()
    assert torch.allclose(gamma.grad, (centred * weights).sum(), atol=1e-12)


def test_step_gain_formula_by_hand() -> None:
    conv = torch.nn.Conv1d(1, 1, 5, padding=2).double()
    with torch.no_grad():
        conv.weight.fill_(0.5)
        conv.bias.fill_(0.1)
    delta_mean = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    # zero padding: windowed sums 6, 10, 10, 9 -> conv 3.1, 5.1, 5.1, 4.6
    expected = 1 + 0.3 * torch.tanh(torch.tensor([[3.1, 5.1, 5.1, 4.6]], dtype=torch.float64))
    assert torch.allclose(step_gain(delta_mean, conv, 0.3), expected, atol=1e-12)


def test_mixer_applies_the_step_gain_to_the_scan_input() -> None:
    on, off = _mixer(use_step_gain=True), _mixer(use_step_gain=False)
    off.load_state_dict(on.state_dict(), strict=False)
    v = _input(2, 9, 8)
    cache_on, cache_off = on(v)[1], off(v)[1]
    assert torch.allclose(cache_on.delta, cache_off.delta, atol=1e-12)  # delta does not depend on the gain
    gain = step_gain(cache_on.delta_mean, on.gain_conv, on.alpha_delta)
    assert torch.allclose(cache_on.u_tilde, cache_off.u_tilde * gain.unsqueeze(-1), atol=1e-12)
    assert torch.allclose(cache_on.delta_mean, cache_on.delta.mean(-1), atol=1e-12)


def test_delta_is_clamped_at_delta_max() -> None:
    mixer = _mixer(delta_max=0.05)
    with torch.no_grad():
        mixer.dt_proj.bias.fill_(3.0)  # softplus(~3) > 0.05
    delta = mixer(_input(1, 5, 8))[1].delta
    assert torch.allclose(delta, torch.full_like(delta, 0.05))


# ----------------------------------------------------------------------------------------------------
# Losses on hand-made inputs
# ----------------------------------------------------------------------------------------------------
def test_passivity_loss_exact() -> None:
    y = torch.tensor([[[3.0, 1.0]], [[0.0, 0.0]]], dtype=torch.float64)  # E_y = 5, 0
    u = torch.tensor([[[1.0, 1.0]], [[2.0, 0.0]]], dtype=torch.float64)  # E_u = 1, 2
    assert math.isclose(passivity_loss(y, u, 1.0).item(), math.log(6 / 2) ** 2 / 2, rel_tol=1e-12)
    assert math.isclose(passivity_loss(y, u, 2.0).item(), math.log(6 / 5) ** 2 / 2, rel_tol=1e-12)
    assert passivity_loss(y, u, 3.0).item() == 0.0  # log 6 < log(1 + 9)
    assert torch.allclose(sample_log_energy(y), torch.tensor([math.log(6), 0.0], dtype=torch.float64))


def test_margin_loss_exact() -> None:
    e_y = torch.tensor([0.1, 0.5, 0.9, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 1.0], dtype=torch.float64)
    assert margin_loss(e_y, 0.5, 0.1, 0.1).item() == 0.0  # gap 1.0 - 0.1 = 0.9 > 0.5
    assert math.isclose(margin_loss(e_y, 1.5, 0.1, 0.1).item(), 0.6, rel_tol=1e-12)
    # top 20 %: (1.0 + 0.9) / 2 = 0.95, bottom 30 %: (0.1 + 0.2 + 0.3) / 3 = 0.2, gap 0.75
    assert math.isclose(margin_loss(e_y, 1.0, 0.2, 0.3).item(), 0.25, rel_tol=1e-12)
    # 3 samples, 10 %: at least one sample each
    assert math.isclose(margin_loss(e_y[:3], 1.0, 0.1, 0.1).item(), 1.0 - (0.9 - 0.1), rel_tol=1e-12)


def test_step_regularisers_exact() -> None:
    delta_mean = torch.tensor([[0.02, 0.04, 0.01]], dtype=torch.float64)
    assert math.isclose(step_small_loss(delta_mean, 0.02).item(), (0.0 + 0.0004 + 0.0001) / 3, rel_tol=1e-9)
    assert math.isclose(step_smooth_loss(delta_mean).item(), (0.0004 + 0.0009) / 2, rel_tol=1e-9)
    assert step_smooth_loss(delta_mean[:, :1]).item() == 0.0


def test_gate_regulariser_exact() -> None:
    z = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)  # sigma = 0.5, 0.75
    entropy = (math.log(2) + (-0.75 * math.log(0.75) - 0.25 * math.log(0.25))) / 2
    assert math.isclose(gate_regulariser(z, "entropy").item(), entropy, rel_tol=1e-12)
    assert math.isclose(gate_regulariser(z, "l1").item(), (0.5 + 0.75) / 2, rel_tol=1e-12)
    assert gate_regulariser(torch.tensor([60.0, -60.0], dtype=torch.float64), "entropy").item() < 1e-20


def test_bound_losses_flag_changes_the_objective_by_exactly_their_terms() -> None:
    x = torch.randn(6, 12, 3, generator=torch.Generator().manual_seed(0))
    on, off = _model(use_bound_losses=True), _model(use_bound_losses=False)
    off.load_state_dict(on.state_dict())
    out_on, out_off = on.training_loss(x), off.training_loss(x)
    assert set(out_on) == {"loss", "recon", "pass", "margin", "step_small", "step_smooth", "gate"}
    assert out_on["margin"] > 0
    expected = out_off["loss"] + 0.01 * out_on["pass"] + 0.01 * out_on["margin"]
    assert torch.allclose(out_on["loss"], expected, atol=1e-6)
    total = (out_on["recon"] + 0.01 * (out_on["pass"] + out_on["margin"])
             + 1e-3 * (out_on["step_small"] + out_on["step_smooth"] + out_on["gate"]))
    assert torch.allclose(out_on["loss"], total, atol=1e-6)
    out_on["loss"].backward()
    assert all(p.grad is not None for p in on.parameters())


# ----------------------------------------------------------------------------------------------------
# LEH terms
# ----------------------------------------------------------------------------------------------------
def test_leh_energy_exact() -> None:
    y = torch.tensor([[[3.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)
    assert torch.allclose(leh_energy(y), torch.tensor([[math.log(6.0), 0.0]], dtype=torch.float64))


def test_leh_locality_exact() -> None:
    y = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 0.0]]], dtype=torch.float64)
    # cosines: S01 = 1, S02 = 0, S03 = 1, S12 = 0, S13 = 1, S23 = 0
    # b = 1: t0 band {1} 1, off {2,3} 0.5 -> 0.5; t1 band {0,2} 0.5, off {3} 1 -> -0.5
    #        t2 band {1,3} 0, off {0} 0 -> 0;     t3 band {2} 0, off {0,1} 1 -> -1
    expected = torch.tensor([[0.5, -0.5, 0.0, -1.0]], dtype=torch.float64)
    assert torch.allclose(leh_locality(y, band=1), expected, atol=1e-12)
    # b >= L - 1: empty off-band set counts 0, locality = band mean; t0 band {1,2,3} -> 2/3
    assert math.isclose(leh_locality(y, band=3)[0, 0].item(), 2 / 3, rel_tol=1e-12)
    terms = leh_terms(y, band=1, hfr_window=2)  # locality_sign = +1: Eq. 18 as printed
    assert terms.shape == (1, 3, 4) and torch.allclose(terms[:, 0], expected)
    flipped = leh_terms(y, band=1, hfr_window=2, locality_sign=-1.0)  # the spec's -Locality
    assert torch.allclose(flipped[:, 0], -expected) and torch.equal(flipped[:, 1:], terms[:, 1:])


def test_leh_hfr_exact() -> None:
    assert hfr_cutoff(16) == 5 and hfr_cutoff(4) == 2 and hfr_cutoff(2) == 1
    # w = 2, reflect padding of one step on the left: segments [2,1] [1,2] [2,3] [3,4];
    # bins X0 = a + b, X1 = a - b, cut = 1 -> HFR = (a-b)^2 / ((a+b)^2 + (a-b)^2)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).view(1, 4, 1)
    expected = torch.tensor([[1 / 10, 1 / 10, 1 / 26, 1 / 50]], dtype=torch.float64)
    assert torch.allclose(leh_hfr(x, window=2), expected, atol=1e-12)
    alternating = torch.tensor([1.0, -1.0] * 4, dtype=torch.float64).view(1, 8, 1)
    constant = torch.ones(1, 8, 1, dtype=torch.float64)
    both = torch.cat([alternating, constant], dim=-1)  # mean over the two features
    assert torch.allclose(leh_hfr(both, window=4), torch.full((1, 8), 0.5, dtype=torch.float64), atol=1e-12)
    assert leh_hfr(x, window=16).shape == (1, 4)  # window longer than the series: w = L


def test_fuse_and_moments() -> None:
    terms = torch.tensor([[[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]]])  # (1, 3, 2)
    moments = TermMoments()
    moments.update(terms)
    assert torch.allclose(moments.mean, torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64))
    assert torch.allclose(moments.std, torch.tensor([1.0, 1e-6, 2.0], dtype=torch.float64))
    fused = fuse_leh(terms, moments.mean, torch.tensor([1.0, 1.0, 2.0]), torch.tensor([0.45, 0.2, 0.05]))
    assert torch.allclose(fused, torch.tensor([[0.45 * -1 + 0.05 * -1, 0.45 + 0.05]]), atol=1e-6)
    packed = TermMoments.from_tensor(moments.as_tensor() * 2)  # e.g. summed over two processes
    assert torch.allclose(packed.mean, moments.mean) and torch.allclose(packed.std, moments.std)


# ----------------------------------------------------------------------------------------------------
# LightningModule: score types, train-only statistics, checkpoint
# ----------------------------------------------------------------------------------------------------


def _trainer(tmp_path: Path, **kw) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path, **kw)


def test_score_types() -> None:
    model = _model().eval()
    x = torch.randn(2, 12, 3)
    with pytest.raises(NotFittedError):
        model.score(x)
    model.fit_leh_statistics(DataLoader(Windows(torch.randn(8, 12, 3)), batch_size=4))
    assert model.score(x).shape == (2, 12)
    recon = _model(score_type="recon").eval()
    recon.load_state_dict(model.state_dict())
    assert torch.allclose(recon.score(x), reconstruction_score(x, recon.network(x).x_hat))
    assert not torch.allclose(recon.score(x), model.score(x))


@pytest.mark.parametrize("row", sorted(TABLE2_ROWS))
def test_table2_rows_train_and_score(row: str) -> None:
    model = _model(**TABLE2_ROWS[row])
    x = torch.randn(4, 12, 3, generator=torch.Generator().manual_seed(0))
    model.training_loss(x)["loss"].backward()
    model.eval().fit_leh_statistics([x])
    scores = model.score(x)
    assert scores.shape == (4, 12) and torch.isfinite(scores).all()
    mixer = model.network.blocks[0].mixer
    assert (mixer.fourier is not None) == TABLE2_ROWS[row].get("use_fourier_kan", True)


def test_leh_statistics_come_from_the_train_split_only(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    train_x, val_x = torch.randn(10, 12, 3, generator=gen), torch.randn(4, 12, 3, generator=gen)
    test_x = 50 * torch.randn(6, 12, 3, generator=gen) + 20  # very different: would move the statistics
    model = _model().eval()
    model.scoring_splits = ["train", "val", "test"]
    loaders = [DataLoader(Windows(a), batch_size=4) for a in (train_x, val_x, test_x)]
    _trainer(tmp_path).test(model, dataloaders=loaders, verbose=False)
    expected = TermMoments()
    expected.update(model.score_terms(train_x))
    assert bool(model.leh_fitted)
    assert torch.allclose(model.leh_mean, expected.mean, atol=1e-6)
    assert torch.allclose(model.leh_std, expected.std, atol=1e-6)
    for name, x in (("train", train_x), ("val", val_x), ("test", test_x)):
        starts, scores = model.scored[name]
        assert list(starts) == list(range(len(x)))
        assert torch.allclose(torch.from_numpy(scores).float(), model.score(x), atol=1e-5)
    # other test data: same statistics; other training data: other statistics
    mean = model.leh_mean.clone()
    loaders[2] = DataLoader(Windows(-test_x), batch_size=4)
    _trainer(tmp_path).test(model, dataloaders=loaders, verbose=False)
    assert torch.allclose(model.leh_mean, mean)
    loaders[0] = DataLoader(Windows(3 * train_x), batch_size=4)
    _trainer(tmp_path).test(model, dataloaders=loaders, verbose=False)
    assert not torch.allclose(model.leh_mean, mean)


def test_scoring_without_train_split_uses_stored_statistics(tmp_path: Path) -> None:
    model = _model().eval()
    model.scoring_splits = ["test"]
    loader = [DataLoader(Windows(torch.randn(4, 12, 3)), batch_size=4)]
    with pytest.raises(NotFittedError):
        _trainer(tmp_path).test(model, dataloaders=loader, verbose=False)
    model.fit_leh_statistics(DataLoader(Windows(torch.randn(8, 12, 3)), batch_size=4))
    mean = model.leh_mean.clone()
    _trainer(tmp_path).test(model, dataloaders=loader, verbose=False)
    assert torch.equal(model.leh_mean, mean) and model.scored["test"][1].shape == (4, 12)


def test_fit_and_checkpoint_round_trip(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    train_x = torch.randn(8, 12, 3, generator=gen)
    model = _model()
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(model, train_dataloaders=DataLoader(Windows(train_x), batch_size=4))
    model.scoring_splits = ["train", "test"]
    loaders = [DataLoader(Windows(train_x), batch_size=4), DataLoader(Windows(train_x[:2] * 2), batch_size=4)]
    trainer.test(model, dataloaders=loaders, verbose=False)
    path = tmp_path / "fkm.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=False)["fsad_method"] == "fsad.methods.fkm_ad.module.FKMAD"
    restored = FKMAD.load_from_checkpoint(path).eval()
    assert isinstance(restored, AnomalyDetector) and bool(restored.leh_fitted)
    assert torch.equal(restored.leh_mean, model.leh_mean) and torch.equal(restored.leh_std, model.leh_std)
    x = torch.randn(3, 12, 3)
    assert torch.allclose(restored.score(x), model.eval().score(x), atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# Locality sign and energy source
# ----------------------------------------------------------------------------------------------------
def test_locality_sign_flips_only_the_locality_term() -> None:
    x = torch.randn(4, 12, 3, generator=torch.Generator().manual_seed(2))
    plus, minus = _model().eval(), _model(locality_sign=-1).eval()
    minus.load_state_dict(plus.state_dict())
    t_plus, t_minus = plus.score_terms(x), minus.score_terms(x)
    out = plus.network(x)
    torch.testing.assert_close(t_plus[:, 0], leh_locality(out.caches[-1].y.float(), band=2))  # +Loc: Eq. 18
    torch.testing.assert_close(t_minus[:, 0], -t_plus[:, 0])
    torch.testing.assert_close(t_minus[:, 1:], t_plus[:, 1:])
    for model in (plus, minus):
        model.fit_leh_statistics([x])
    z_plus = plus.standardise_terms(t_plus)
    # the standardised locality changes sign, so the fused scores differ by twice its weighted term
    torch.testing.assert_close(minus.standardise_terms(t_minus)[:, 0], -z_plus[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plus.score(x) - minus.score(x), 2 * 0.45 * z_plus[:, 0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="locality_sign"):
        _model(locality_sign=0.5)


def test_energy_of_the_residual_stream_follows_the_step_amplitude() -> None:
    """One block, embedding without bias: scaling step t of the input by a_t scales the embedding h_t by a_t.
    The block's LayerNorm removes that scale, so everything computed from it (the SSM output y, ``normed``)
    stays the same, while the residual stream ``h + mixer(LN(h))`` keeps it."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 12, 3, generator=gen, dtype=torch.float64)
    amplitude = torch.linspace(0.5, 8.0, 12, dtype=torch.float64).view(1, 12, 1)
    energies = {}
    for source in ("residual", "normed"):
        model = _model(n_layers=1, energy_source=source).double().eval()
        with torch.no_grad():
            model.network.embedding.bias.zero_()
        energies[source] = (model.score_terms(x)[:, 1], model.score_terms(x * amplitude)[:, 1])
        if source == "residual":
            expected = leh_energy(model.network(x).residual)
            torch.testing.assert_close(energies[source][0], expected.float(), atol=1e-6, rtol=1e-6)
    normed, scaled_normed = energies["normed"]
    residual, scaled_residual = energies["residual"]
    torch.testing.assert_close(scaled_normed, normed, atol=1e-4, rtol=0)  # the LayerNorm'ed energy: no change
    change = scaled_residual - residual
    assert change[:, -1].min() > 1.0  # the loudest steps gain energy
    assert change[:, 0].max() < 0.0  # the steps scaled by 0.5 lose energy
    with pytest.raises(ValueError, match="energy_source"):
        _model(energy_source="hidden")


def test_leh_forms_are_the_standardised_terms(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(5)
    train_x, test_x = torch.randn(8, 12, 3, generator=gen), torch.randn(4, 12, 3, generator=gen)
    model = _model().eval()
    model.scoring_splits = ["train", "test"]
    _trainer(tmp_path).test(model, dataloaders=[DataLoader(Windows(a), batch_size=4) for a in (train_x, test_x)],
                            verbose=False)
    forms = model.scored_forms["test"]
    assert set(forms) == {"leh/locality", "leh/energy", "leh/hfr"}
    z = model.standardise_terms(model.score_terms(test_x))
    for k, name in enumerate(("locality", "energy", "hfr")):
        np.testing.assert_allclose(forms[f"leh/{name}"], z[:, k].numpy(), atol=1e-5)
    fused = sum(w * forms[f"leh/{name}"] for w, name in zip((0.45, 0.20, 0.05), ("locality", "energy", "hfr")))
    np.testing.assert_allclose(model.scored["test"][1], fused, atol=1e-5)
