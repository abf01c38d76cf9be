"""MambaAD's decoder: the Hilbert directions, the HSS block against a direction-by-direction reference, the LSS
module, shapes, the code's grouping, stochastic depth and initialisation, the published parameter counts, backends,
gradients and the experiment config."""

from __future__ import annotations

import inspect

import pytest
import torch

from fsad.layers.half_fpn import HalfFPNBottleneck
from fsad.layers.native_scan import native_available
from fsad.layers.resnet import ResNet34Features
from fsad.layers.scan_orders import hilbert, inverse
from fsad.layers.selective_scan import selective_scan
from fsad.methods.mambaad.decoder import MambaADDecoder, blocks_per_module
from fsad.methods.mambaad.hss import HSSBlock, HybridScan, direction_orders
from fsad.methods.mambaad.lss import LocalityEnhancedStateSpace
from fsad.methods.wave_mambaad.block import WaveletMamba
from fsad.layers.upsampling import PatchExpand

# The released code's Hilbert table for a 4 x 4 map (``hilbert.decode(range(16), 2, 2)`` of numpy-hilbert-curve,
# flattened as ``loc[0] + 4 * loc[1]``); fsad.layers.scan_orders.hilbert equals that package's table for sides 1-64.
CODE_HILBERT_4 = [0, 1, 5, 4, 8, 12, 13, 9, 10, 14, 15, 11, 7, 6, 2, 3]


@pytest.fixture(scope="module")
def decoder64() -> MambaADDecoder:
    torch.manual_seed(0)
    return MambaADDecoder(image_size=64, scan_backend="chunked").eval()


@pytest.mark.parametrize("side", [2, 4, 8])
def test_every_direction_is_a_permutation_and_its_inverse_restores_the_layout(side: int):
    orders = direction_orders(side, side)
    assert orders.shape == (8, side * side)
    x = torch.randn(3, side, side)
    for order in orders:
        assert torch.equal(order.sort().values, torch.arange(side * side))
        seq = x.flatten(-2)[..., order]
        assert torch.equal(seq[..., inverse(order)].reshape(3, side, side), x)
        rows, cols = order // side, order % side  # a Hilbert curve in every view: neighbours stay 4-neighbours
        assert ((rows.diff().abs() + cols.diff().abs()) == 1).all()
    assert torch.equal(orders[4:], orders[:4].flip(-1))  # the second half: the first read backwards


def test_the_four_views_are_the_codes_transpose_and_rotation():
    assert hilbert(4, 4).tolist() == CODE_HILBERT_4
    x = torch.arange(16.0).reshape(4, 4)
    views = [x, x.t(), torch.rot90(x, 1, (0, 1)), torch.rot90(x, 1, (0, 1)).t()]
    orders = direction_orders(4, 4)
    for view, order in zip(views, orders[:4]):
        assert torch.equal(x.flatten()[order], view.flatten()[hilbert(4, 4)])
    assert [len(direction_orders(4, 4, directions=k)) for k in (2, 4)] == [2, 4]


def _reference_scan(m: HybridScan, u: torch.Tensor) -> torch.Tensor:
    """The code's forward_core written direction by direction: view (transpose / rot90), Hilbert-serialise, one
    sequential scan per direction (reversed ones flipped and flipped back), de-serialise, undo the view, sum."""
    b, d, h, w = u.shape
    curve, half = hilbert(h, w), m.directions // 2
    rotated = torch.rot90(u, 1, (2, 3))
    views = [u, u.transpose(2, 3), rotated, rotated.transpose(2, 3)][:half]
    undo = [lambda y: y, lambda y: y.transpose(2, 3), lambda y: torch.rot90(y, 3, (2, 3)),
            lambda y: torch.rot90(y.transpose(2, 3), 3, (2, 3))]
    total = torch.zeros_like(u)
    for k in range(m.directions):
        seq = views[k % half].reshape(b, d, h * w)[..., curve]
        seq = seq.flip(-1) if k >= half else seq
        dt, b_t, c_t = torch.split(torch.einsum("bdl,cd->bcl", seq, m.x_proj_weight[k]),
                                   [m.dt_rank, m.d_state, m.d_state], dim=1)
        delta = torch.einsum("brl,dr->bdl", dt, m.dt_proj_weight[k])
        rows = slice(k * d, (k + 1) * d)
        y = selective_scan(seq, delta, -torch.exp(m.A_log[rows]), b_t, c_t, m.D[rows], delta_bias=m.dt_proj_bias[k],
                           delta_softplus=True, backend="sequential")
        y = y.flip(-1) if k >= half else y
        total = total + undo[k % half](y[..., inverse(curve)].reshape(b, d, h, w))
    return total.flatten(2).transpose(1, 2)  # (B, L, d) as HybridScan.scan_directions


@pytest.mark.parametrize("directions", [2, 4, 8])
def test_one_batched_scan_equals_the_direction_by_direction_reference(directions: int):
    torch.manual_seed(1)
    m = HybridScan(4, 4, d_state=3, directions=directions, scan_backend="chunked").double()
    u = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(m.scan_directions(u.flatten(2).transpose(1, 2), 4, 4), _reference_scan(m, u))


def test_hss_block_is_the_residual_of_the_mixer_and_its_parameters_are_the_codes():
    torch.manual_seed(2)
    block = HSSBlock(16, 4, d_state=4, scan_backend="chunked").double().eval()
    x = torch.randn(2, 4, 4, 16, dtype=torch.float64)
    torch.testing.assert_close(block(x), x + block.mixer(block.norm(x)))
    shapes = {n: tuple(p.shape) for n, p in block.mixer.named_parameters()}
    assert shapes == {"in_proj.weight": (64, 16), "conv2d.weight": (32, 1, 3, 3), "conv2d.bias": (32,),
                      "x_proj_weight": (8, 1 + 8, 32), "dt_proj_weight": (8, 32, 1), "dt_proj_bias": (8, 32),
                      "A_log": (8 * 32, 4), "D": (8 * 32,), "out_norm.weight": (32,), "out_norm.bias": (32,),
                      "out_proj.weight": (16, 32), "index_flat": (1, 1, 16), "index_flat_inv": (1, 1, 16)}
    assert not block.mixer.index_flat.requires_grad and block.mixer.index_flat.dtype == torch.int64
    assert block.mixer.index_flat.flatten().tolist() == CODE_HILBERT_4


def test_a_map_of_another_size_gets_its_orders_on_the_fly():
    torch.manual_seed(3)
    m = HybridScan(4, 4, d_state=2, scan_backend="chunked").double()
    u = torch.randn(1, 8, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(m.scan_directions(u.flatten(2).transpose(1, 2), 2, 2), _reference_scan(m, u))


def test_lss_fuses_the_hss_chain_and_the_two_depthwise_branches():
    torch.manual_seed(4)
    lss = LocalityEnhancedStateSpace(8, 4, depth=2, drop_path=0.1, d_state=2, scan_backend="chunked").double().eval()
    x = torch.randn(2, 4, 4, 8, dtype=torch.float64)
    spatial = x.permute(0, 3, 1, 2)
    parts = [lss.hss[1](lss.hss[0](x)).permute(0, 3, 1, 2), lss.local5(spatial), lss.local7(spatial)]
    torch.testing.assert_close(lss(x), lss.fuse(torch.cat(parts, 1)).permute(0, 2, 3, 1) + x)
    assert [b.drop_path for b in lss.hss] == [0.1, 0.1]
    assert [branch[1][0].kernel_size for branch in (lss.local5, lss.local7)] == [(5, 5), (7, 7)]
    assert sum(p.numel() for p in lss.unused_conv.parameters()) == 9 * 8


def test_gradients_of_an_hss_block_in_float64():
    torch.manual_seed(5)
    block = HSSBlock(4, 4, d_state=2, scan_backend="chunked").double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def test_gradients_of_an_lss_module_in_float64():
    torch.manual_seed(6)
    lss = LocalityEnhancedStateSpace(4, 4, depth=2, d_state=2, scan_backend="chunked").double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lss, (x,))


def test_stages_group_blocks_as_the_code_and_reach_the_teacher_scales(decoder64: MambaADDecoder):
    lss = [[m for m in stage if isinstance(m, LocalityEnhancedStateSpace)] for stage in decoder64.stages]
    assert [[len(m.hss) for m in stage] for stage in lss] == [[3], [2, 2], [3, 3], [3]]
    assert [isinstance(stage[0], PatchExpand) for stage in decoder64.stages] == [False, True, True, True]
    rates = torch.linspace(0, 0.2, 16).flip(0).tolist()  # the j-th module of a stage: its slice's j-th rate
    assert [[m.hss[0].drop_path for m in stage] for stage in lss] == [[rates[0]], [rates[3], rates[4]],
                                                                      [rates[7], rates[8]], [rates[13]]]
    with torch.no_grad():
        outputs = decoder64(torch.randn(2, 512, 2, 2))
    assert [tuple(o.shape) for o in outputs] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]


def test_output_shapes_at_128():
    torch.manual_seed(7)
    decoder = MambaADDecoder(image_size=128, depths=(3, 2, 2, 3), scan_backend="chunked").eval()
    with torch.no_grad():
        outputs = decoder(torch.randn(1, 512, 4, 4))
    assert [tuple(o.shape) for o in outputs] == [(1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8)]


def test_initialisation_is_the_codes(decoder64: MambaADDecoder):
    mixers = [m for m in decoder64.modules() if isinstance(m, HybridScan)]
    in_proj = torch.cat([m.in_proj.weight.flatten() for m in mixers])
    assert abs(in_proj.std().item() - 0.02) < 1e-3  # trunc_normal_(std=0.02), cut at +-2 (absolute) as timm's
    conv = mixers[0].conv2d
    assert float(conv.bias.detach().abs().max()) == 0.0 and abs(conv.weight.std().item() - (2 / 9) ** 0.5) < 0.05
    softplus_bias = torch.nn.functional.softplus(mixers[0].dt_proj_bias)
    assert 0.001 - 1e-7 <= softplus_bias.min() and softplus_bias.max() <= 0.1 + 1e-7  # Mamba's step init kept
    assert torch.equal(mixers[0].A_log[:, 1].exp(), torch.full((mixers[0].A_log.shape[0],), 2.0))


def test_parameter_count_is_aders_published_16_038_m_and_25_667_m_in_all():
    """ADer's fvcore table (every parameter, frozen ones too): net_s.layers_up 16.038M, model 25.667M (net_t 8.17M,
    mff_oce 1.458M). Exactly 16,038,016 with ADer's unused 3x3 conv (9 C per LSS module, 12,096 in all) and the
    code's Hilbert tables (2 L per HSS block, 39,296); without both, 15,986,624."""
    decoder = sum(p.numel() for p in MambaADDecoder(scan_backend="chunked").parameters())
    assert decoder == 16_038_016 and round(decoder / 1e6, 3) == 16.038
    teacher = sum(p.numel() for p in ResNet34Features().parameters())
    bottleneck = sum(p.numel() for p in HalfFPNBottleneck(norm="batch").parameters())
    assert (teacher, bottleneck) == (8_170_304, 1_458_304)
    assert teacher + bottleneck + decoder == 25_666_624 and round((teacher + bottleneck + decoder) / 1e6, 3) == 25.667


def test_the_count_only_parts():
    full, plain = (MambaADDecoder(image_size=64, depths=(3, 2, 2, 3), unused_conv=flag, index_parameters=flag)
                   for flag in (True, False))
    count = [sum(p.numel() for p in m.parameters()) for m in (full, plain)]
    sides, blocks, modules = (2, 4, 8, 16), (3, 2, 2, 3), (1, 1, 1, 1)
    tables = sum(2 * s * s * n for s, n in zip(sides, blocks))
    assert count[0] - count[1] == tables + 9 * sum(c * n for c, n in zip((512, 256, 128, 64), modules))


@pytest.mark.skipif(not native_available(), reason="the native scan kernel cannot be built here")
def test_the_same_weights_give_the_same_outputs_under_native_and_chunked(decoder64: MambaADDecoder):
    native = MambaADDecoder(image_size=64, scan_backend="native").eval()
    native.load_state_dict(decoder64.state_dict())
    x = torch.randn(2, 512, 2, 2)
    with torch.no_grad():
        for a, b in zip(decoder64(x), native(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [({"image_size": 96}, "power of two"), ({"image_size": 32}, "at least 64"),
                                           ({"depths": (3, 4, 5, 3)}, "multiple of 3 or of 2"),
                                           ({"dims": (512, 256, 128, 32)}, "half"), ({"directions": 6}, "directions"),
                                           ({"scan_backend": "fast"}, "model.decoder.scan_backend='fast'")])
def test_bad_settings_are_named(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        MambaADDecoder(**kwargs)


def test_blocks_per_module():
    assert [blocks_per_module(d) for d in (2, 3, 4, 6, 8, 9)] == [2, 3, 2, 3, 2, 3]


def test_the_hss_block_takes_the_wavelet_mamba_modules_keywords():
    """The ablation WM -> HSS: a decoder builds either module with these keywords."""
    shared = {"channels", "size", "drop_path", "d_state", "scan_backend"}
    assert shared <= set(inspect.signature(WaveletMamba).parameters) & set(inspect.signature(HSSBlock).parameters)
    block = HSSBlock(channels=8, size=4, drop_path=0.1, d_state=4, scan_backend="chunked").eval()
    assert block(torch.randn(1, 4, 4, 8)).shape == (1, 4, 4, 8)


def test_no_weight_decay_on_a_log_and_d_and_the_tables_are_not_trained(single_thread):
    from fsad.methods.reverse_distillation import ReverseDistillation

    model = ReverseDistillation(decoder={"_target_": "fsad.methods.mambaad.decoder.MambaADDecoder", "image_size": 64,
                                         "depths": [3, 2, 2, 3], "scan_backend": "chunked"},
                                bottleneck_norm="batch", loss="mse", optimizer="adamw", weight_decay=1e-4,
                                lr_drop_at=None)
    decayed, free = model.configure_optimizers()["optimizer"].param_groups
    assert decayed["weight_decay"] == 1e-4 and free["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].rsplit(".", 1)[-1] for p in free["params"]} == {"A_log", "D"}
    trained = {names[id(p)] for g in (decayed, free) for p in g["params"]}
    assert not any(n.startswith("encoder.") or "index_flat" in n for n in trained)
    assert any("index_flat" in n for n in names.values())


def test_the_experiment_composes_with_aders_setting(tmp_path):
    from hydra.utils import instantiate

    from tests.pipeline.helpers import compose_cfg

    cfg = compose_cfg("train", ["experiment=mambaad/synthetic_images"], tmp_path)
    assert cfg.model.decoder._target_ == "fsad.methods.mambaad.decoder.MambaADDecoder"
    assert list(cfg.model.decoder.depths) == [3, 4, 6, 3] and cfg.model.decoder.image_size == cfg.data.crop_size
    assert (cfg.model.bottleneck_norm, cfg.model.loss, cfg.model.mse_weight) == ("batch", "mse", 5.0)
    assert (cfg.model.optimizer, cfg.model.lr, cfg.model.weight_decay, cfg.model.lr_drop_at) == \
        ("adamw", 0.005, 1e-4, 0.8)
    assert (cfg.trainer.gradient_clip_val, cfg.data.batch_size, cfg.model.gaussian_sigma) == (5.0, 16, 4.0)
    for dataset in ("mvtec", "visa", "mpdd"):
        bench = compose_cfg("train", [f"experiment=mambaad/{dataset}"], tmp_path)
        assert (bench.data.crop_size, bench.trainer.max_epochs, bench.trainer.gradient_clip_val) == (256, 100, 5.0)
    model = instantiate(cfg.model)
    assert isinstance(model.decoder, MambaADDecoder)
