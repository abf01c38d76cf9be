"""TransMamba: network, materialising reference, objective, augmentations, two-optimiser training, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from fsad.layers.mamba import Mamba
from fsad.layers.patch_attention import Layout, upsample
from fsad.methods.base import AnomalyDetector
from fsad.methods.transmamba.augmentation import fine_view, mask_blocks, moving_average, point_noise, segment_swap
from fsad.methods.transmamba.materialised import materialised_forward, official_score, official_time_losses
from fsad.methods.transmamba.module import TransMamba
from fsad.methods.transmamba.network import TransMambaNetwork, TransMambaOutput, nt_xent
from fsad.methods.transmamba.objective import normalise_rows, time_discrepancy, time_losses, transmamba_loss, \
    transmamba_score
from tests.methods.windows import Windows

# (C, W, high, low, D, heads, layers)
CONFIGS = [
    (3, 12, (2, 3), (3, 4), 8, 1, 1),  # lcm(2, 3) = 6 < W, lcm(3, 4) = 12 = W
    (2, 30, (1, 5, 6), (2, 10, 15), 8, 2, 2),
]


pytestmark = pytest.mark.usefixtures("single_thread")


def _network(c, w, high, low, d, heads, layers, dtype=torch.float64, **kw) -> TransMambaNetwork:
    torch.manual_seed(0)
    net = TransMambaNetwork(c, w, high, low, d_model=d, n_heads=heads, e_layers=layers, d_state=4,
                            scan_backend="sequential", **kw)
    return net.to(dtype)


def _input(b, w, c, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(b, w, c, generator=gen) * 2 + 0.5).to(dtype)


# ----------------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------------
def test_output_shapes_and_order() -> None:
    net = _network(3, 30, (2, 3, 5), (6, 10, 15), 8, 2, 2, dtype=torch.float32)
    x = _input(4, 30, 3, torch.float32)
    out = net(x)
    assert [m.shape for m in out.high] == [(4, 2, p, p) for p in (2, 2, 3, 3, 5, 5)]  # patch sizes outer
    assert [m.shape for m in out.low] == [(4, 2, p, p) for p in (6, 6, 10, 10, 15, 15)]
    assert out.x_hat.shape == x.shape and out.loss_cl.dim() == 0 and out.recon_loss_f.dim() == 0
    net.eval()
    for m in net(x).high + net(x).low:  # without dropout every row of a softmax map sums to 1
        torch.testing.assert_close(m.sum(-1), torch.ones_like(m[..., 0]))
    assert net(x, contrastive=False).loss_cl.item() == 0.0 and net(x).loss_cl.item() != 0.0


@pytest.mark.parametrize("window,bins", [(90, 46), (240, 121)])
def test_frequency_tokens(window: int, bins: int) -> None:
    net = TransMambaNetwork(5, window, (3,), (6,), d_model=8, d_state=4)
    spectrum, tokens = net.spectrum_tokens(torch.randn(2, window, 5))
    assert spectrum.shape == (2, bins, 5) and tokens.shape == (2, bins, 8)


def test_mamba_dependency_parameter_count() -> None:
    mamba = Mamba(64)
    assert sum(p.numel() for p in mamba.parameters()) == 32_640
    assert {name.split(".")[0] for name, _ in mamba.named_parameters()} == {
        "in_proj", "conv1d", "x_proj", "dt_proj", "A_log", "D", "out_proj"}


def test_parameter_count_psm() -> None:
    """Paper Table 3 / spec section 7: 111,282 parameters in the PSM configuration, unused modules included."""
    net = TransMambaNetwork(25, 90, (1, 3), (2, 6))
    assert sum(p.numel() for p in net.parameters()) == 111_282
    frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
    assert frozen == 5 * 76 * 64  # the fixed temporal tables of the 5 DataEmbeddings
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert [count(e.token) for e in net.embedding_high] == [17_280, 5_760]
    assert [count(e.token) for e in net.embedding_low] == [8_640, 2_880]
    assert count(net.window_embedding.token) == 4_800 and count(net.unused_norm) == 128
    assert count(net.attention) == 8_320 and count(net.spectral_embedding) == 3_264
    assert count(net.mamba) == 32_640 and count(net.head_real) + count(net.head_imag) == 3_250


def test_branch_parameter_groups_are_disjoint_and_complete() -> None:
    net = _network(*CONFIGS[0])
    time_ids = {id(p) for p in net.time_parameters()}
    freq_ids = {id(p) for p in net.frequency_parameters()}
    unused = {id(p) for m in (net.window_embedding, net.unused_norm) for p in m.parameters()
              if p.requires_grad}
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert not time_ids & freq_ids and time_ids | freq_ids | unused == trainable
    assert not (time_ids | freq_ids) & unused


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_compact_matches_materialised_float64(config, mode: str) -> None:
    """Maps, losses, gradients and scores of the compact network equal the official W x W computation."""
    c, w = config[0], config[1]
    net = getattr(_network(*config), mode)()
    x = _input(12, w, c)
    torch.manual_seed(5)
    fast = net(x)
    torch.manual_seed(5)  # same dropout masks and augmentation draws
    ref = materialised_forward(net, x)
    for small, full in zip(fast.high + fast.low, ref.high + ref.low):
        assert full.shape[-2:] == (w, w)
        torch.testing.assert_close(upsample(small, small.shape[-1], Layout.TILE, w), full, atol=1e-14, rtol=0)
    torch.testing.assert_close(fast.x_hat, ref.x_hat, atol=1e-12, rtol=0)
    fast_loss = transmamba_loss(x, fast)
    ref_loss = official_time_losses(ref.high, ref.low)
    for key in ("high_loss", "low_loss", "loss_time"):
        torch.testing.assert_close(fast_loss[key], ref_loss[key], atol=1e-12, rtol=1e-12)
    params = list(net.time_parameters())
    for key in ("loss_time", "high_loss", "low_loss"):
        g_fast = torch.autograd.grad(fast_loss[key], params, retain_graph=True, allow_unused=True)
        g_ref = torch.autograd.grad(ref_loss[key], params, retain_graph=True, allow_unused=True)
        for a, b in zip(g_fast, g_ref):  # None: high_loss does not reach the low embeddings, and vice versa
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-9)
    torch.testing.assert_close(transmamba_score(x, fast), official_score(x, ref), atol=1e-12, rtol=0)


def test_branch_losses_reach_only_their_branch() -> None:
    net = _network(*CONFIGS[0])
    out = transmamba_loss(_input(12, 12, 3), net(_input(12, 12, 3)))
    time_params, freq_params = list(net.time_parameters()), list(net.frequency_parameters())
    assert all(g is None for g in torch.autograd.grad(out["loss_freq"], time_params, retain_graph=True,
                                                      allow_unused=True))
    assert all(g is None for g in torch.autograd.grad(out["loss_time"], freq_params, retain_graph=True,
                                                      allow_unused=True))
    assert all(g is not None for g in torch.autograd.grad(out["loss_time"], time_params, retain_graph=True))
    assert all(g is not None for g in torch.autograd.grad(out["loss_freq"], freq_params))


@pytest.mark.parametrize("kw", [{"n_channels": 0}, {"patch_size_high": (5,)}, {"patch_size_low": (3, 5)},
                                {"n_heads": 3}])
def test_bad_configuration_raises(kw: dict) -> None:
    args = {"n_channels": 2, "window": 12, "patch_size_high": (2,), "patch_size_low": (3,), "d_model": 8} | kw
    with pytest.raises(ValueError):
        TransMambaNetwork(**args)


def test_bad_input_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"\(B, 12, 3\)"):
        _network(*CONFIGS[0])(torch.randn(2, 12, 4, dtype=torch.float64))


# ----------------------------------------------------------------------------------------------------
# Objective
# ----------------------------------------------------------------------------------------------------
def test_losses_and_score_by_hand() -> None:
    """W = 4, uniform maps: tiled high map 0.5 everywhere (rows sum to W / p = 2), normalised low map 0.25."""
    high = [torch.full((1, 1, 2, 2), 0.5)]
    low = [torch.full((1, 1, 4, 4), 0.25)]
    # KL(A‖Â) = 4 * 0.5 * log(0.5001 / 0.2501), KL(Â‖A) = 4 * 0.25 * log(0.2501 / 0.5001):
    # the sum is log(0.5001 / 0.2501)
    expected = math.log(0.5001 / 0.2501)
    terms = time_losses(high, low, window=4)
    assert terms["high_loss"].item() == pytest.approx(expected, rel=1e-6)
    assert terms["low_loss"].item() == pytest.approx(expected, rel=1e-6)
    assert terms["loss_time"].item() == 0.0
    torch.testing.assert_close(time_discrepancy(high, low, 4), torch.full((1, 4), 50 * expected))
    x = torch.zeros(1, 4, 2)
    out = TransMambaOutput(high, low, x.clone(), torch.zeros(()), torch.zeros(()))
    torch.testing.assert_close(transmamba_score(x, out), torch.full((1, 4), 0.5))  # 1/4 + 1/4


def test_time_losses_on_periodic_maps_match_full_maps() -> None:
    """lcm(2, 3) = 6 < W = 12: the common-period evaluation equals the loss on the full tiled maps."""
    gen = torch.Generator().manual_seed(0)
    high = [torch.rand(3, 2, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)]
    low = [torch.rand(3, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)]
    full = [upsample(m, m.shape[-1], Layout.TILE, 12) for m in high], [upsample(m, m.shape[-1], Layout.TILE, 12)
                                                                      for m in low]
    fast, ref = time_losses(high, low, 12), official_time_losses(*full)
    for key in ("high_loss", "low_loss"):
        torch.testing.assert_close(fast[key], ref[key], atol=1e-12, rtol=0)
        for g_fast, g_ref in zip(torch.autograd.grad(fast[key], high + low, retain_graph=True, allow_unused=True),
                                 torch.autograd.grad(ref[key], high + low, retain_graph=True, allow_unused=True)):
            assert (g_fast is None) == (g_ref is None)
            if g_fast is not None:
                torch.testing.assert_close(g_fast, g_ref, atol=1e-12, rtol=0)
    # stop-gradients: high_loss moves only the high maps, low_loss only the low maps
    assert torch.autograd.grad(fast["high_loss"], low, retain_graph=True, allow_unused=True)[0] is None
    assert torch.autograd.grad(fast["low_loss"], high, retain_graph=True, allow_unused=True)[0] is None
    # the normalised low map tiles to rows summing to 1
    tiled = upsample(normalise_rows(low[0], 12), 3, Layout.TILE, 12)
    torch.testing.assert_close(tiled.sum(-1), torch.ones(3, 2, 12, dtype=torch.float64))


def test_score_sign_and_softmax_parts() -> None:
    """The time part is softmax(-D) (code) or softmax(+D); the frequency part softmax(mean_c (x - x̂)^2)."""
    w = 6
    high = [torch.full((1, 1, w, w), 1.0 / w)]
    high[0][0, 0, 2] = torch.tensor([0.9, 0.02, 0.02, 0.02, 0.02, 0.02])  # row 2 disagrees with the low map
    low = [torch.full((1, 1, w, w), 1.0 / w)]
    x = torch.zeros(1, w, 3)
    x_hat = x.clone()
    x_hat[0, 4] = 2.0  # reconstruction error only at step 4
    out = TransMambaOutput(high, low, x_hat, torch.zeros(()), torch.zeros(()))
    d = time_discrepancy(high, low, w)
    assert d.argmax().item() == 2 and d[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    code = transmamba_score(x, out)
    flipped = transmamba_score(x, out, time_score_sign=1.0)
    torch.testing.assert_close(code.sum(-1), torch.tensor([2.0]))
    s_freq = torch.softmax(torch.tensor([[0, 0, 0, 0, 4.0, 0]]), -1)
    torch.testing.assert_close(code, torch.softmax(-d, -1) + s_freq)
    torch.testing.assert_close(flipped, torch.softmax(d, -1) + s_freq)
    assert code[0, 2] < code[0, 0] and flipped[0, 2] > flipped[0, 0]  # the code's sign scores discrepancy low


def test_nt_xent_by_hand() -> None:
    """Orthogonal samples, positive = anchor: S = I, loss = -log(e^2 / e^0) = -2 per sample."""
    anchor = torch.tensor([[1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    positive = anchor.detach().clone().requires_grad_(True)
    loss = nt_xent(anchor, positive)
    assert loss.item() == pytest.approx(-2.0)
    assert torch.autograd.grad(loss, [anchor, positive], allow_unused=True)[1] is None  # positive detached
    a, p = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    cos = torch.nn.functional.cosine_similarity(a.flatten(1)[:, None], p.flatten(1)[None], dim=-1)
    e = torch.exp(cos / 0.5)
    expected = -torch.log(e.diagonal() / (e.sum(1) - e.diagonal())).mean()
    assert nt_xent(a, p).item() == pytest.approx(expected.item(), rel=1e-5)
    assert nt_xent(a[:1], p[:1]).item() == 0.0  # undefined for one sample: 0


# ----------------------------------------------------------------------------------------------------
# Augmentations
# ----------------------------------------------------------------------------------------------------
def test_moving_average_and_masking_positions() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 5.0]).view(1, 4, 1)
    torch.testing.assert_close(moving_average(x).view(-1), torch.tensor([4 / 3, 2.0, 10 / 3, 13 / 3]))
    x = torch.arange(1.0, 41.0).view(1, 20, 2)
    masked = mask_blocks(x, 0.1)  # m = 2: steps [9, 11) and [18, 20)
    zero_steps = (masked == 0).all(-1).view(-1).nonzero().view(-1).tolist()
    assert zero_steps == [9, 10, 18, 19] and torch.equal(masked[:, :9], x[:, :9])
    assert mask_blocks(x, 0.01) is x  # m = 0
    assert torch.equal(fine_view(x, 0.0), x)


def test_point_noise_hits_shared_steps() -> None:
    torch.manual_seed(0)
    x = torch.zeros(4, 50, 3)
    noisy = point_noise(x, 0.1)
    changed = (noisy != 0).any(-1)  # (B, W)
    assert 1 <= changed[0].sum() <= 5 and torch.equal(changed, changed[:1].expand_as(changed))
    assert torch.equal(x, torch.zeros(4, 50, 3))  # input untouched


def test_segment_swap_intended_and_faithful_bug() -> None:
    """Sample b is the constant b: the provenance of every value shows which axis was swapped."""
    b, w, c = 10, 20, 30
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1).expand(b, w, c).contiguous()
    torch.manual_seed(0)
    intended = segment_swap(x, 0.2)  # k = 2 pairs
    assert torch.equal(intended, intended[..., :1].expand_as(intended))  # whole time steps swapped
    assert torch.equal(intended[:, :7], x[:, :7])  # start t >= 7
    changed = (intended != x).any(-1).any(-1)
    assert 1 <= changed.sum() <= 2
    for i in changed.nonzero().view(-1).tolist():
        first = int((intended[i, :, 0] != i).nonzero()[0])
        assert (intended[i, first:, 0] != i).all()  # one tail from step t on (a later pair may overwrite part)
    torch.manual_seed(0)
    buggy = segment_swap(x, 0.2, faithful_bug=True)
    assert torch.equal(buggy, buggy[:, :1].expand_as(buggy))  # whole channels swapped, every time step
    assert torch.equal(buggy[..., :7], x[..., :7]) and not torch.equal(buggy, x)
    narrow = x[..., :5]  # C = 5 <= 7 <= t: the bug is a no-op
    torch.manual_seed(0)
    assert torch.equal(segment_swap(narrow, 0.2, faithful_bug=True), narrow)
    assert torch.equal(x, torch.arange(b, dtype=torch.float32).view(b, 1, 1).expand(b, w, c))  # input untouched


# ----------------------------------------------------------------------------------------------------
# LightningModule: two optimisers, schedule, checkpoints
# ----------------------------------------------------------------------------------------------------


def _model(**kw) -> TransMamba:
    torch.manual_seed(0)
    args = dict(n_channels=3, window=12, patch_size_high=(2, 3), patch_size_low=(3, 4), d_model=8, d_state=4,
                scan_backend="sequential") | kw
    return TransMamba(**args)


def _trainer(tmp_path: Path, **kw) -> L.Trainer:
    args = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                enable_checkpointing=False, default_root_dir=tmp_path, num_sanity_val_steps=0) | kw
    return L.Trainer(**args)


def _loader(n: int = 12, seed: int = 0) -> DataLoader:
    return DataLoader(Windows(torch.randn(n, 12, 3, generator=torch.Generator().manual_seed(seed))), batch_size=n)


class _RecordRates(L.Callback):
    """Learning rates of both optimisers at every training batch, and Adam's step count."""

    def __init__(self) -> None:
        self.rates: list[tuple[float, float]] = []
        self.steps: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rates.append(tuple(opt.param_groups[0]["lr"] for opt in trainer.optimizers))
        state = trainer.optimizers[0].state
        self.steps.append(int(next(iter(state.values()))["step"]) if state else 0)


def _flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [rate for pair in pairs for rate in pair]


def test_manual_step_updates_each_branch_with_its_rate(tmp_path: Path) -> None:
    model = _model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    _trainer(tmp_path, max_steps=1).fit(model, train_dataloaders=_loader())
    time_ids = {id(p) for p in model.network.time_parameters()}
    freq_ids = {id(p) for p in model.network.frequency_parameters()}
    moved = {"time": 0.0, "freq": 0.0}
    for name, p in model.named_parameters():
        delta = (p.detach() - before[name]).abs().max().item()
        if id(p) in time_ids:
            moved["time"] = max(moved["time"], delta)
        elif id(p) in freq_ids:
            moved["freq"] = max(moved["freq"], delta)
        else:
            assert delta == 0.0, name  # frozen tables and the unused modules never move
    # Adam's first step moves an entry by lr * |g| / (|g| + eps): the largest move is the branch's rate
    # (up to the float32 spacing of the parameter's value)
    assert moved["time"] == pytest.approx(1e-4, rel=1e-2)
    assert moved["freq"] == pytest.approx(5e-5, rel=1e-2)
    opt_time, opt_freq = model.optimizers()
    assert {id(p) for p in opt_time.param_groups[0]["params"]} == time_ids
    assert {id(p) for p in opt_freq.param_groups[0]["params"]} == freq_ids


def test_time_step_leaves_frequency_branch_alone(tmp_path: Path) -> None:
    """``loss_T`` alone with ``lr_freq = 0``: only the time branch moves; ``lr = 0``: only the frequency branch."""
    for kw, still in (({"lr_freq": 0.0}, "frequency"), ({"lr": 0.0}, "time")):
        model = _model(**kw)
        params = list(getattr(model.network, f"{still}_parameters")())
        other = list(model.network.time_parameters() if still == "frequency" else model.network.frequency_parameters())
        before = [p.detach().clone() for p in params + other]
        _trainer(tmp_path, max_steps=1).fit(model, train_dataloaders=_loader())
        after = [p.detach() for p in params + other]
        assert all(torch.equal(a, b) for a, b in zip(after[: len(params)], before[: len(params)]))
        assert any(not torch.equal(a, b) for a, b in zip(after[len(params):], before[len(params):]))


def test_learning_rates_per_epoch_and_resume(tmp_path: Path) -> None:
    """Epochs 1-2 at the base rates (1e-4, 5e-5), then halving; a resumed run continues the same schedule and
    both Adam states, whether its checkpoint was written before or after the end-of-epoch scheduler step."""
    expected = [(1e-4, 5e-5), (1e-4, 5e-5), (5e-5, 2.5e-5), (2.5e-5, 1.25e-5)]
    record = _RecordRates()
    _trainer(tmp_path / "full", max_epochs=4, callbacks=[record]).fit(
        _model(), train_dataloaders=_loader(), val_dataloaders=_loader(seed=1))
    assert _flat(record.rates) == pytest.approx(_flat(expected))

    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = _RecordRates()
    _trainer(tmp_path / "a", max_epochs=2, callbacks=[first, checkpoint], enable_checkpointing=True).fit(
        _model(), train_dataloaders=_loader(), val_dataloaders=_loader(seed=1))
    path = tmp_path / "ckpt" / "last.ckpt"
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["epoch"] == 1 and len(ckpt["optimizer_states"]) == 2 and len(ckpt["lr_schedulers"]) == 2
    assert ckpt["fsad_method"] == "fsad.methods.transmamba.module.TransMamba"
    assert [state["last_epoch"] for state in ckpt["lr_schedulers"]] == [2, 2]  # written after the epoch-end step
    # the same state as if written before the end-of-epoch step (scheduler one epoch behind)
    early = tmp_path / "early.ckpt"
    for state, opt_state in zip(ckpt["lr_schedulers"], ckpt["optimizer_states"]):
        state["last_epoch"], state["_step_count"] = 1, state["_step_count"] - 1
        state["_last_lr"] = [lr * 2 for lr in state["_last_lr"]]
        opt_state["param_groups"][0]["lr"] *= 2
    torch.save(ckpt, early)
    for resume_from in (path, early):
        resumed = _RecordRates()
        _trainer(tmp_path / "b", max_epochs=4, callbacks=[resumed]).fit(
            _model(), train_dataloaders=_loader(), val_dataloaders=_loader(seed=1), ckpt_path=str(resume_from))
        assert _flat(first.rates + resumed.rates) == pytest.approx(_flat(expected))
        assert first.steps + resumed.steps == [0, 1, 2, 3]  # Adam state restored, not restarted


def test_validation_loss_includes_contrastive_term() -> None:
    model = _model().eval()
    with torch.no_grad():
        out = model.training_loss(_input(12, 12, 3, torch.float32))
    assert out["contrastive"].item() != 0.0 and out["loss_time"].item() == pytest.approx(0.0, abs=1e-5)
    torch.testing.assert_close(out["loss"], out["loss_time"] + out["recon_time"] + out["recon_freq"]
                               + out["contrastive"])


def test_scoring_and_checkpoint_round_trip(tmp_path: Path) -> None:
    model = _model()
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(model, train_dataloaders=_loader())
    model.scoring_splits = ["test"]
    trainer.test(model, dataloaders=[_loader(seed=2)], verbose=False)
    starts, scores = model.scored["test"]
    assert list(starts) == list(range(12)) and scores.shape == (12, 12)
    assert scores.sum(-1) == pytest.approx(2.0)  # two softmax parts
    path = tmp_path / "transmamba.ckpt"
    trainer.save_checkpoint(path)
    restored = TransMamba.load_from_checkpoint(path).eval()
    assert isinstance(restored, AnomalyDetector) and not restored.automatic_optimization
    for (name, a), (_, b) in zip(model.state_dict().items(), restored.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(3, 12, 3)
    torch.testing.assert_close(restored.score(x), model.eval().score(x))
    torch.testing.assert_close(restored.score(x), restored.score(x))  # scoring draws nothing at random
