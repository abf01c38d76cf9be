"""The Wavelet-Mamba module: its two residual branches, shapes, stochastic depth, gradients."""

from __future__ import annotations

import torch

from fsad.layers.dropout import drop_path
from fsad.layers.wavelets import haar_dwt, haar_idwt
from fsad.methods.wave_mambaad.block import WaveletMamba


def test_the_module_is_its_two_residual_branches():
    torch.manual_seed(0)
    block = WaveletMamba(channels=8, size=4, groups=2, d_state=4, scan_backend="chunked").double().eval()
    x = torch.randn(2, 4, 4, 8, dtype=torch.float64)
    y1 = x + block.wavelet_branch(x)
    expected = y1 + block.dse(block.dse_norm(y1))
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == x.shape
    # the wavelet branch, written with the (B, C, H, W) transforms: IDWT(LFSS(LL), HFSS(HL, LH, HH)) of LN(x)
    ll, hl, lh, hh = haar_dwt(block.norm(x).permute(0, 3, 1, 2))
    high = block.hfss(torch.cat([hl, lh, hh]).permute(0, 2, 3, 1)).permute(0, 3, 1, 2).chunk(3)
    branch = haar_idwt(torch.stack([block.lfss(ll), *high])).permute(0, 2, 3, 1)
    torch.testing.assert_close(block.wavelet_branch(x), branch)


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


def test_without_both_scans_the_wavelet_branch_is_the_normalised_input():
    """w/o LFSS and w/o HFSS together leave DWT then IDWT, which is exact: the branch returns LN(x)."""
    torch.manual_seed(3)
    block = WaveletMamba(channels=8, size=4, groups=2, use_lfss=False, use_hfss=False).double().eval()
    x = torch.randn(2, 4, 4, 8, dtype=torch.float64)
    torch.testing.assert_close(block.wavelet_branch(x), block.norm(x))


def test_the_mlp_ablation_keeps_the_shapes():
    block = WaveletMamba(channels=8, size=4, groups=2, enhancement="mlp", scan_backend="chunked").eval()
    assert block(torch.randn(1, 4, 4, 8)).shape == (1, 4, 4, 8)
    assert sum(p.numel() for p in block.dse.parameters()) == 2 * 8 * 21


def test_table3_ablation_files_compose_and_build(tmp_path):
    from hydra.utils import instantiate

    from tests.conftest import PROJECT_ROOT
    from tests.pipeline.helpers import compose_cfg

    rows = sorted(p.stem for p in (PROJECT_ROOT / "conf" / "ablation" / "wave_mambaad").glob("*.yaml"))
    assert rows == ["dse_to_mlp", "full", "hfss_horizontal", "hfss_no_diagonal", "hfss_vertical", "lfss_spatial", "no_hfss",
                    "no_lfss", "wm_to_hss"]
    for row in rows:
        cfg = compose_cfg("train", ["experiment=wave_mambaad/synthetic_images", f"ablation=wave_mambaad/{row}",
                                    "data.crop_size=64", "model.decoder.depths=[1,1,1,1]"], tmp_path)
        instantiate(cfg.model.decoder)


def test_spatial_lfss_scans_the_ll_band_over_its_positions():
    torch.manual_seed(5)
    block = WaveletMamba(channels=8, size=4, groups=2, d_state=4, lfss_scan="spatial", scan_backend="chunked").eval()
    x = torch.randn(2, 4, 4, 8)
    bands = haar_dwt(block.norm(x), channels_last=True)
    high = block.hfss(bands[1:].flatten(0, 1)).unflatten(0, (3, -1))
    expected = haar_idwt(torch.cat([block.lfss(bands[0])[None], high]), channels_last=True)
    torch.testing.assert_close(block.wavelet_branch(x), expected)
    assert block.lfss.scans == ("raster",)
