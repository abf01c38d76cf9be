"""Mamba block: parameter names/shapes/count, initialisation, causality, backends, state dict, bidirectional."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fsad.layers.mamba import BiMamba, Mamba, SelectiveSSM, bidirectional
from fsad.layers.selective_scan import PURE_BACKENDS

D_MODEL = 16  # d_inner = 32, dt_rank = ceil(16 / 16) = 1, d_state = 16, d_conv = 4

# Literally the keys and shapes of mamba_ssm.modules.mamba_simple.Mamba(16) (bias=False, conv_bias=True).
EXPECTED_STATE = [
    ("A_log", (32, 16)),
    ("D", (32,)),
    ("in_proj.weight", (64, 16)),
    ("conv1d.weight", (32, 1, 4)),
    ("conv1d.bias", (32,)),
    ("x_proj.weight", (33, 32)),
    ("dt_proj.weight", (32, 1)),
    ("dt_proj.bias", (32,)),
    ("out_proj.weight", (16, 32)),
]


pytestmark = pytest.mark.usefixtures("single_thread")


def _block(seed: int = 0, **kwargs: object) -> Mamba:
    torch.manual_seed(seed)
    return Mamba(D_MODEL, **kwargs)


def _x(batch: int = 2, length: int = 21, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, D_MODEL, generator=torch.Generator().manual_seed(seed))


def _closed_form_count(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, bias: bool = False) -> int:
    d_inner, rank = expand * d_model, math.ceil(d_model / 16)
    count = (d_model * 2 * d_inner  # in_proj
             + d_inner * d_conv + d_inner  # depthwise conv weight + bias
             + d_inner * (rank + 2 * d_state)  # x_proj
             + rank * d_inner + d_inner  # dt_proj weight + bias
             + d_inner * d_state + d_inner  # A_log, D
             + d_inner * d_model)  # out_proj
    return count + (2 * d_inner + d_model if bias else 0)


def test_parameter_names_and_shapes() -> None:
    assert [(k, tuple(v.shape)) for k, v in _block().state_dict().items()] == EXPECTED_STATE


def test_optional_biases_change_keys() -> None:
    keys = set(Mamba(D_MODEL, bias=True, conv_bias=False).state_dict())
    assert keys == {k for k, _ in EXPECTED_STATE} - {"conv1d.bias"} | {"in_proj.bias", "out_proj.bias"}


@pytest.mark.parametrize(("d_model", "bias", "expected"), [(16, False, 3360), (64, False, 32640), (16, True, 3440)])
def test_parameter_count(d_model: int, bias: bool, expected: int) -> None:
    """16: 1024 + 160 + 1056 + 64 + 512 + 32 + 512 = 3360; 64: TransMamba's Mamba, 32,640 (spec section 7);
    bias=True adds 2 d_inner + d_model = 80."""
    assert _closed_form_count(d_model, bias=bias) == expected
    assert sum(p.numel() for p in Mamba(d_model, bias=bias).parameters()) == expected


def test_initialisation() -> None:
    block = _block(dt_min=0.002, dt_max=0.05)
    torch.testing.assert_close(block.A_log, torch.log(torch.arange(1.0, 17.0)).expand(32, 16))
    torch.testing.assert_close(block.D, torch.ones(32))
    dt = F.softplus(block.dt_proj.bias)
    assert (dt >= 0.002 * (1 - 1e-4)).all() and (dt <= 0.05 * (1 + 1e-4)).all()
    assert block.dt_proj.weight.abs().max() <= 1.0  # U(-R^-1/2, R^-1/2), R = 1
    assert block.A_log._no_weight_decay and block.D._no_weight_decay and block.dt_proj.bias._no_reinit
    assert block.A_log.dtype == block.D.dtype == torch.float32
    constant = Mamba(32, dt_init="constant", dt_scale=2.0)  # R = 2: weight = 2 / sqrt(2)
    torch.testing.assert_close(constant.dt_proj.weight, torch.full((64, 2), math.sqrt(2.0)))
    floor = Mamba(D_MODEL, dt_min=1e-6, dt_max=2e-6, dt_init_floor=1e-4)
    torch.testing.assert_close(F.softplus(floor.dt_proj.bias), torch.full((32,), 1e-4))


def test_forward_shape_and_causality() -> None:
    block, x = _block(), _x()
    out = block(x)
    assert out.shape == x.shape
    t = 9
    changed = x.clone()
    changed[:, t + 1 :] = torch.randn_like(changed[:, t + 1 :])
    out_changed = block(changed)
    torch.testing.assert_close(out_changed[:, : t + 1], out[:, : t + 1], atol=0, rtol=0)
    assert not torch.allclose(out_changed[:, t + 1 :], out[:, t + 1 :])


def test_backends_give_the_same_block() -> None:
    x = _x(length=37)
    outputs, grads = {}, {}
    for backend in PURE_BACKENDS:
        block = _block(scan_backend=backend)
        out = block(x)
        out.square().mean().backward()
        outputs[backend] = out.detach()
        grads[backend] = {k: p.grad for k, p in block.named_parameters()}
    for backend in PURE_BACKENDS:
        torch.testing.assert_close(outputs[backend], outputs["sequential"], atol=1e-5, rtol=1e-5)
        for name, grad in grads[backend].items():
            torch.testing.assert_close(grad, grads["sequential"][name], atol=1e-5, rtol=1e-4)


def test_state_dict_round_trip() -> None:
    block, x = _block(seed=0), _x()
    fresh = _block(seed=123)
    assert not torch.allclose(fresh(x), block(x))
    fresh.load_state_dict(block.state_dict(), strict=True)
    torch.testing.assert_close(fresh(x), block(x), atol=0, rtol=0)


def test_module_reference_matches_explicit_formula() -> None:
    """The block equals the spec's forward written out with the sequential reference scan."""
    block, x = _block(scan_backend="chunked"), _x()
    xz = x @ block.in_proj.weight.T
    x_in, z = xz[..., :32].transpose(1, 2), xz[..., 32:].transpose(1, 2)
    u = F.silu(F.conv1d(F.pad(x_in, (3, 0)), block.conv1d.weight, block.conv1d.bias, groups=32))
    dt, b_t, c_t = (u.transpose(1, 2) @ block.x_proj.weight.T).split([1, 16, 16], dim=-1)
    delta = F.softplus(dt @ block.dt_proj.weight.T + block.dt_proj.bias)  # (B, L, d_inner)
    a = -torch.exp(block.A_log)
    h = torch.zeros(x.shape[0], 32, 16)
    ys = []
    for t in range(x.shape[1]):
        h = torch.exp(delta[:, t, :, None] * a) * h + delta[:, t, :, None] * b_t[:, t, None, :] * u[:, :, t, None]
        ys.append((h * c_t[:, t, None, :]).sum(-1) + block.D * u[:, :, t])
    y = torch.stack(ys, dim=1) * F.silu(z.transpose(1, 2))
    torch.testing.assert_close(block(x), y @ block.out_proj.weight.T, atol=1e-5, rtol=1e-5)


def test_unknown_backend_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown selective-scan backend"):
        Mamba(D_MODEL, scan_backend="fast")


# ----------------------------------------------------------------------------------------------------------------
# Bidirectional helpers
# ----------------------------------------------------------------------------------------------------------------


def test_bimamba_is_forward_plus_flipped_backward() -> None:
    torch.manual_seed(0)
    bi, x = BiMamba(D_MODEL, scan_backend="chunked"), _x()
    expected = bi.fwd(x) + torch.flip(bi.bwd(torch.flip(x, (1,))), (1,))
    torch.testing.assert_close(bi(x), expected, atol=0, rtol=0)
    assert {k.split(".", 1)[0] for k in bi.state_dict()} == {"fwd", "bwd"}
    changed = x.clone()
    changed[:, -1] += 1.0
    assert not torch.allclose(bi(changed)[:, 0], bi(x)[:, 0])  # position 0 now sees the future


def test_backward_direction_is_anti_causal() -> None:
    """The flipped term at position t depends only on x[t:]."""
    block, x = _block(), _x()
    only_backward = bidirectional(lambda s: torch.zeros_like(s), block, x, dim=1)
    t = 8
    changed = x.clone()
    changed[:, :t] = torch.randn_like(changed[:, :t])
    torch.testing.assert_close(bidirectional(lambda s: torch.zeros_like(s), block, changed, dim=1)[:, t:],
                               only_backward[:, t:], atol=0, rtol=0)


def test_selective_ssm_core() -> None:
    torch.manual_seed(0)
    fwd, bwd = SelectiveSSM(32, d_state=8, dt_rank=2), SelectiveSSM(32, d_state=8, dt_rank=2)
    assert [(k, tuple(v.shape)) for k, v in fwd.state_dict().items()] == [
        ("A_log", (32, 8)), ("D", (32,)), ("x_proj.weight", (18, 32)), ("dt_proj.weight", (32, 2)),
        ("dt_proj.bias", (32,))]
    u = torch.randn(2, 32, 11)
    out = bidirectional(fwd, bwd, u, dim=-1)
    assert out.shape == u.shape
    torch.testing.assert_close(out, fwd(u) + torch.flip(bwd(torch.flip(u, (-1,))), (-1,)))
    # Wave-MambaAD's ChannelMamba quirk: the backward direction uses the forward dt bias.
    shared_bias = bwd(u, delta_bias=fwd.dt_proj.bias)
    assert not torch.allclose(shared_bias, bwd(u))


# ----------------------------------------------------------------------------------------------------------------
# CUDA kernel (only where mamba_ssm and a GPU are present)
# ----------------------------------------------------------------------------------------------------------------


def test_block_with_mamba_ssm_kernel_matches_reference() -> None:
    pytest.importorskip("mamba_ssm")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    block = _block(scan_backend="mamba_ssm").cuda()
    x = _x(length=64).cuda()
    out = block(x)
    block.scan_backend = "sequential"
    torch.testing.assert_close(out, block(x), atol=1e-4, rtol=1e-4)
