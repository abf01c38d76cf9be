"""HFSS: one batched scan equals scanning every band and direction on its own; decodes; sizes; gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fsad.layers.scan_orders import SCANS, inverse
from fsad.layers.selective_scan import selective_scan
from fsad.methods.wave_mambaad.hfss import DirectionalScan, band_scans


def reference(module: DirectionalScan, x: torch.Tensor) -> torch.Tensor:
    """Band by band, direction by direction, with the sequential scan."""
    n3, h, w, _ = x.shape
    b = n3 // 3
    u, z = module.in_proj(x).chunk(2, dim=-1)
    u = F.silu(module.conv2d(u.permute(0, 3, 1, 2))).flatten(2)
    outputs = []
    for p, name in enumerate(module.scans):
        order = SCANS[name](h, w)
        seq = u[p * b:(p + 1) * b][..., order]
        total = 0
        for k, s in enumerate((seq, seq.flip(-1))):
            dt, b_t, c_t = torch.split(torch.einsum("ndl,cd->ncl", s, module.x_proj_weight[k]),
                                       [module.dt_rank, module.d_state, module.d_state], dim=1)
            d = module.d_inner
            y = selective_scan(s, torch.einsum("nrl,dr->ndl", dt, module.dt_proj_weight[k]),
                               -torch.exp(module.A_log[k * d:(k + 1) * d]), b_t, c_t, module.D[k * d:(k + 1) * d],
                               delta_bias=module.dt_proj_bias[k], delta_softplus=True, backend="sequential")
            total = total + (y if k == 0 else y.flip(-1))
        if module.decode == "paper":
            total = total[..., inverse(order)]
        outputs.append(total)
    y = torch.cat(outputs).reshape(n3, module.d_inner, h, w).permute(0, 2, 3, 1)
    return module.out_proj(module.out_norm(y) * F.silu(z))


@pytest.mark.parametrize("decode", ["code", "paper"])
def test_one_batched_scan_equals_every_band_and_direction_alone(decode: str):
    torch.manual_seed(0)
    module = DirectionalScan(8, d_state=4, decode=decode, scan_backend="chunked").double()
    x = torch.randn(6, 4, 4, 8, dtype=torch.float64)
    torch.testing.assert_close(module(x), reference(module, x), rtol=1e-10, atol=1e-10)


def test_decodes_agree_when_every_band_is_read_row_by_row():
    torch.manual_seed(1)
    code = DirectionalScan(8, d_state=4, scans=("raster",) * 3, decode="code").double()
    paper = DirectionalScan(8, d_state=4, scans=("raster",) * 3, decode="paper").double()
    paper.load_state_dict(code.state_dict())
    x = torch.randn(3, 4, 4, 8, dtype=torch.float64)
    torch.testing.assert_close(code(x), paper(x))


def test_parameter_count_follows_the_spec():
    c, n = 64, 16
    d, r = 2 * c, math.ceil(c / 16)
    expected = c * 2 * d + d * 9 + d + 2 * (r + 2 * n) * d + 2 * d * r + 2 * d + 2 * d * n + 2 * d + 2 * d + d * c
    assert sum(p.numel() for p in DirectionalScan(c).parameters()) == expected


def test_gradients_in_float64():
    torch.manual_seed(2)
    module = DirectionalScan(4, d_state=2, scan_backend="chunked").double()
    x = torch.randn(3, 2, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))


@pytest.mark.parametrize("kwargs, match", [({"decode": "both"}, "hfss_decode"), ({"scans": ("spiral",)}, "names of")])
def test_bad_options_are_named(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        DirectionalScan(8, **kwargs)


def test_the_hfss_scan_option():
    assert band_scans("directional") == ("raster", "column_major", "diagonal")
    assert band_scans("hilbert") == ("hilbert",) * 3
    assert band_scans(["raster", "column_major", "raster"]) == ("raster", "column_major", "raster")
    for bad in ("spiral", ["raster"], ["raster", "raster", "spiral"]):
        with pytest.raises(ValueError, match="hfss_scan="):
            band_scans(bad)


def test_one_band_is_scanned_as_the_first_of_three():
    """The spatial-LFSS ablation scans one band with the same module: a G = 1 stack equals the first group of G = 3."""
    torch.manual_seed(4)
    three = DirectionalScan(8, d_state=4, scans=("raster", "column_major", "diagonal"), scan_backend="chunked")
    one = DirectionalScan(8, d_state=4, scans=("raster",), scan_backend="chunked")
    one.load_state_dict(three.state_dict())
    x = torch.randn(6, 4, 4, 8)
    torch.testing.assert_close(one(x[:2]), three(x)[:2])


def test_state_dicts_that_call_the_convolution_conv_still_load():
    module = DirectionalScan(8, d_state=4)
    old = {k.replace("conv2d.", "conv."): v for k, v in module.state_dict().items()}
    fresh = DirectionalScan(8, d_state=4)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.conv2d.weight, module.conv2d.weight)
