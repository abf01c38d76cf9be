"""Score forms beside the main score: base-class gathering (duplicated starts, training statistics), FreCT's
code / raw / paper forms and TransMamba's raw form standardised with training statistics only."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from fsad.methods.base import AnomalyDetector, NotFittedError, TermMoments
from fsad.methods.frect.module import FreCT
from fsad.methods.frect.objective import (
    frect_score,
    frect_score_forms,
    frect_score_terms,
    kl_per_step,
    normalise_features,
    spectral_difference,
)
from fsad.methods.transmamba.module import TransMamba
from fsad.methods.transmamba.network import TransMambaOutput
from fsad.methods.transmamba.objective import code_score, raw_scores, score_terms
from tests.methods.windows import Windows

pytestmark = pytest.mark.usefixtures("single_thread")


def _trainer(tmp_path: Path) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)


def _loaders(*arrays: torch.Tensor, batch_size: int = 4) -> list[DataLoader]:
    return [DataLoader(Windows(a), batch_size=batch_size) for a in arrays]


# ----------------------------------------------------------------------------------------------------
# Base class: forms gathered with the main score, de-duplicated by window start
# ----------------------------------------------------------------------------------------------------
class _StartedWindows(Dataset):
    """Windows with given starts (repeats allowed, as distributed padding produces): x[i] = starts[i] everywhere."""

    def __init__(self, starts: list[int], window: int = 3):
        self.starts = torch.tensor(starts)
        self.window = window

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict:
        start = self.starts[i]
        return {"x": torch.full((self.window, 1), float(start)) + torch.arange(self.window)[:, None], "start": start}


class _FormDetector(AnomalyDetector):
    """score = x, forms: ``raw`` = 10 x and ``raw/neg`` = -x (one channel)."""

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 0]

    def score_forms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"raw": 10 * x[..., 0], "raw/neg": -x[..., 0]}


class _TermDetector(AnomalyDetector):
    """Two terms (x, x²), main score = sum of the standardised terms, form ``z0`` = first standardised term."""

    def __init__(self) -> None:
        super().__init__()
        self.register_term_statistics(("x", "x2"), prefix="demo")

    def score_terms(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[..., 0], x[..., 0] ** 2], dim=1)

    def scores_from_terms(self, terms: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.standardise_terms(terms)
        return z.sum(dim=1), {"z0": z[:, 0]}


def test_forms_are_gathered_beside_the_score_with_duplicate_starts(tmp_path: Path) -> None:
    model = _FormDetector()
    model.scoring_splits = ["test"]
    loader = DataLoader(_StartedWindows([6, 0, 3, 0, 6, 9, 3]), batch_size=3)
    _trainer(tmp_path).test(model, dataloaders=[loader], verbose=False)
    starts, scores = model.scored["test"]
    np.testing.assert_array_equal(starts, [0, 3, 6, 9])
    np.testing.assert_array_equal(scores, starts[:, None] + np.arange(3))  # each row is its own window's
    forms = model.scored_forms["test"]
    assert set(forms) == {"raw", "raw/neg"}
    np.testing.assert_array_equal(forms["raw"], 10 * scores)
    np.testing.assert_array_equal(forms["raw/neg"], -scores)


def test_term_statistics_count_each_training_window_once(tmp_path: Path) -> None:
    model = _TermDetector()
    model.scoring_splits = ["train", "test"]
    train = DataLoader(_StartedWindows([0, 3, 0, 0, 6]), batch_size=2)  # window 0 three times
    test = DataLoader(_StartedWindows([100, 200]), batch_size=2)
    _trainer(tmp_path).test(model, dataloaders=[train, test], verbose=False)
    values = torch.arange(9, dtype=torch.float64)  # the unique training windows 0..2, 3..5, 6..8
    mean = torch.stack([values.mean(), (values**2).mean()])
    std = torch.stack([values.std(unbiased=False), (values**2).std(unbiased=False)])
    torch.testing.assert_close(model.demo_mean, mean)
    torch.testing.assert_close(model.demo_std, std)
    assert bool(model.demo_fitted)
    starts, scores = model.scored["test"]
    x = torch.tensor([100.0, 101, 102, 200, 201, 202], dtype=torch.float64).view(2, 3)
    z0, z1 = (x - mean[0]) / std[0], (x**2 - mean[1]) / std[1]
    np.testing.assert_allclose(scores, (z0 + z1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(model.scored_forms["test"]["z0"], z0.numpy(), rtol=1e-5)


def test_term_statistics_are_required_and_fit_from_a_loader() -> None:
    model = _TermDetector()
    x = torch.arange(6.0).view(2, 3, 1)
    with pytest.raises(NotFittedError, match="demo"):
        model.scores_from_terms(model.score_terms(x))
    moments = model.fit_term_statistics([x])
    reference = TermMoments(2)
    reference.update(model.score_terms(x))
    torch.testing.assert_close(moments.mean, reference.mean)
    torch.testing.assert_close(model.demo_std, reference.std)


def test_a_form_may_not_take_the_main_score_name(tmp_path: Path) -> None:
    class Clash(_FormDetector):
        def score_forms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"score": x[..., 0]}

    model = Clash()
    model.scoring_splits = ["test"]
    with pytest.raises(ValueError, match="reserved"):
        _trainer(tmp_path).test(model, dataloaders=[DataLoader(_StartedWindows([0]))], verbose=False)


# ----------------------------------------------------------------------------------------------------
# FreCT: code = softmax(raw), raw = the logit, paper = Eqs. 22-24
# ----------------------------------------------------------------------------------------------------
def _random_outputs(u: int = 2, b: int = 2, length: int = 6, d: int = 4):
    gen = torch.Generator().manual_seed(3)
    make = lambda: torch.rand(b, length, 1, d, generator=gen, dtype=torch.float64)  # noqa: E731
    return [make() for _ in range(u)], [make() for _ in range(u)]


@pytest.mark.parametrize("fft", ["fft", "rfft"])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_frect_raw_is_the_logit_before_the_softmax(fft: str, sign: float) -> None:
    series, prior = _random_outputs()
    forms = frect_score_forms(series, prior, temperature=50.0, time_score_sign=sign, fft=fft, alpha=0.3)
    k = sum(kl_per_step(s, normalise_features(q)) + kl_per_step(normalise_features(q), s)
            for s, q in zip(series, prior))
    f = sum(spectral_difference(s, q, fft).mean(dim=(2, 3)) for s, q in zip(series, prior))
    logit = 0.3 * sign * 50.0 * k + 0.7 * f
    torch.testing.assert_close(forms["raw"], logit, atol=1e-12, rtol=0)
    torch.testing.assert_close(forms["raw/kl"], sign * 50.0 * k, atol=1e-12, rtol=0)
    torch.testing.assert_close(forms["raw/fft"], f, atol=1e-12, rtol=0)
    torch.testing.assert_close(forms["code"], torch.softmax(forms["raw"], dim=-1), atol=0, rtol=0)
    torch.testing.assert_close(forms["code"], frect_score(series, prior, 50.0, sign, fft, 0.3), atol=0, rtol=0)
    torch.testing.assert_close(forms["paper"], 0.3 * k + 0.7 * f, atol=1e-12, rtol=0)
    # a constant added to a window moves raw but not code
    shifted = torch.softmax(forms["raw"] + torch.tensor([[5.0], [-3.0]], dtype=torch.float64), dim=-1)
    torch.testing.assert_close(shifted, forms["code"], atol=1e-12, rtol=0)


def test_frect_paper_form_by_hand() -> None:
    """L = 2, D = 2, one output pair: prior 0.5 everywhere (P̂ = 0.5), series [0.5, 0.5] then [0.75, 0.25]."""
    series = [torch.tensor([[0.5, 0.5], [0.75, 0.25]], dtype=torch.float64).view(1, 2, 1, 2)]
    prior = [torch.full((1, 2, 1, 2), 0.5, dtype=torch.float64)]
    eps = 1e-4
    k1 = 0.25 * math.log((0.75 + eps) / (0.5 + eps)) - 0.25 * math.log((0.25 + eps) / (0.5 + eps))
    # delta = series - prior: [0, 0], [0.25, -0.25]; FFT over time: X0 = [0.25, -0.25], X1 = [-0.25, 0.25]
    kl_term, freq_term = frect_score_terms(series, prior)
    torch.testing.assert_close(kl_term, torch.tensor([[0.0, k1]], dtype=torch.float64), atol=1e-15, rtol=0)
    torch.testing.assert_close(freq_term, torch.tensor([[0.25, 0.25]], dtype=torch.float64), atol=1e-15, rtol=0)
    forms = frect_score_forms(series, prior, temperature=50.0, time_score_sign=-1.0, alpha=0.5)
    torch.testing.assert_close(forms["paper"], torch.tensor([[0.125, 0.5 * k1 + 0.125]], dtype=torch.float64))
    torch.testing.assert_close(forms["raw"], torch.tensor([[0.125, -25.0 * k1 + 0.125]], dtype=torch.float64))
    assert forms["paper"][0, 1] > forms["paper"][0, 0] and forms["raw"][0, 1] < forms["raw"][0, 0]


def _frect(**kw) -> FreCT:
    torch.manual_seed(0)
    return FreCT(n_channels=3, window=12, d_model=8, patch_sizes=(3, 4), e_layers=1, **kw).eval()


def test_frect_score_form_picks_the_main_score_and_reports_the_others() -> None:
    x = torch.randn(3, 12, 3, generator=torch.Generator().manual_seed(0))
    code = _frect()
    main, forms = code.score_with_forms(x)
    assert set(forms) == {"raw", "raw/kl", "raw/fft", "paper_score"}
    torch.testing.assert_close(main, torch.softmax(forms["raw"], dim=-1))
    torch.testing.assert_close(code.score(x), main)
    for form, name in (("raw", "raw"), ("paper", "paper_score")):
        other = _frect(score_form=form)
        other.load_state_dict(code.state_dict())
        other_main, other_forms = other.score_with_forms(x)
        torch.testing.assert_close(other_main, forms[name])
        assert set(other_forms) == {"code", "raw", "raw/kl", "raw/fft", "paper_score"} - {name}
        torch.testing.assert_close(other_forms["code"], main)
    with pytest.raises(ValueError, match="score_form"):
        _frect(score_form="softmax")


# ----------------------------------------------------------------------------------------------------
# TransMamba: raw = sign z(D) + z(E), statistics of training windows only
# ----------------------------------------------------------------------------------------------------
def test_transmamba_code_and_raw_from_terms_by_hand() -> None:
    terms = torch.tensor([[[1.0, 3.0, 2.0], [0.0, 0.0, 4.0]]])  # D, E of one window of 3 steps
    code = code_score(terms, time_score_sign=-1.0)
    torch.testing.assert_close(code, torch.softmax(-terms[:, 0], -1) + torch.softmax(terms[:, 1], -1))
    z = torch.tensor([[[-1.0, 1.0, 0.0], [-0.5, -0.5, 1.5]]])
    forms = raw_scores(z, time_score_sign=-1.0)
    torch.testing.assert_close(forms["raw/discrepancy"], torch.tensor([[1.0, -1.0, 0.0]]))
    torch.testing.assert_close(forms["raw/recon"], torch.tensor([[-0.5, -0.5, 1.5]]))
    torch.testing.assert_close(forms["raw"], torch.tensor([[0.5, -1.5, 1.5]]))
    assert raw_scores(z, time_score_sign=1.0)["raw/discrepancy"].equal(z[:, 0])


def _transmamba(**kw) -> TransMamba:
    torch.manual_seed(0)
    args = dict(n_channels=3, window=12, patch_size_high=(2, 3), patch_size_low=(3, 4), d_model=8, d_state=4,
                scan_backend="sequential") | kw
    return TransMamba(**args).eval()


def test_transmamba_raw_standardisation_uses_training_windows_only(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(8, 12, 3, generator=gen), 30 * torch.randn(4, 12, 3, generator=gen) + 5
    model = _transmamba()
    model.scoring_splits = ["train", "test"]
    _trainer(tmp_path).test(model, dataloaders=_loaders(train_x, test_x), verbose=False)
    expected = TermMoments(2)
    expected.update(model.score_terms(train_x))
    assert bool(model.raw_fitted)
    torch.testing.assert_close(model.raw_mean, expected.mean, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(model.raw_std, expected.std, atol=1e-6, rtol=1e-6)
    # the test forms are the test terms standardised with those statistics
    terms = model.score_terms(test_x).double()
    z = (terms - expected.mean.view(1, 2, 1)) / expected.std.view(1, 2, 1)
    forms = model.scored_forms["test"]
    assert set(forms) == {"raw", "raw/discrepancy", "raw/recon"}
    np.testing.assert_allclose(forms["raw/discrepancy"], -z[:, 0].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(forms["raw/recon"], z[:, 1].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(forms["raw"], (z[:, 1] - z[:, 0]).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.scored["test"][1].sum(-1), 2.0, rtol=1e-5)  # main: the code score
    # other test data: the same statistics; other training data: other statistics
    mean, std = model.raw_mean.clone(), model.raw_std.clone()
    _trainer(tmp_path).test(model, dataloaders=_loaders(train_x, -3 * test_x), verbose=False)
    assert torch.equal(model.raw_mean, mean) and torch.equal(model.raw_std, std)
    _trainer(tmp_path).test(model, dataloaders=_loaders(2 * train_x, test_x), verbose=False)
    assert not torch.allclose(model.raw_mean, mean)


def test_transmamba_raw_main_score_and_unfitted_statistics(tmp_path: Path) -> None:
    x = torch.randn(4, 12, 3, generator=torch.Generator().manual_seed(1))
    raw = _transmamba(score_form="raw")
    with pytest.raises(NotFittedError):
        raw.score(x)
    raw.fit_term_statistics([x])
    z = raw.standardise_terms(raw.score_terms(x))
    torch.testing.assert_close(raw.score(x), z[:, 1] - z[:, 0])
    main, forms = raw.scores_from_terms(raw.score_terms(x))
    torch.testing.assert_close(forms["code"], code_score(raw.score_terms(x)))
    assert set(forms) == {"code", "raw/discrepancy", "raw/recon"}
    # the code score needs no statistics; without them its raw forms are left out
    code = _transmamba()
    code.scoring_splits = ["test"]
    _trainer(tmp_path).test(code, dataloaders=_loaders(x), verbose=False)
    assert code.scored_forms["test"] == {} and code.scored["test"][1].shape == (4, 12)
    with pytest.raises(ValueError, match="score_form"):
        _transmamba(score_form="paper")


def test_transmamba_old_checkpoint_without_statistics_loads(tmp_path: Path) -> None:
    model = _transmamba()
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, max_steps=1,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=_loaders(torch.randn(2, 12, 3))[0])
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=False)
    for name in ("raw_mean", "raw_std", "raw_fitted"):
        del ckpt["state_dict"][name]
    torch.save(ckpt, path)
    restored = TransMamba.load_from_checkpoint(path)
    assert not restored.term_statistics_fitted


def test_transmamba_terms_by_hand() -> None:
    """The uniform maps of the objective's hand test: D = 50 log(0.5001 / 0.2501) at every step, E = 0 or 4."""
    model = _transmamba()
    high, low = [torch.full((1, 1, 2, 2), 0.5)], [torch.full((1, 1, 4, 4), 0.25)]
    x = torch.zeros(1, 4, 2)
    x_hat = x.clone()
    x_hat[0, 1] = 2.0
    out = TransMambaOutput(high, low, x_hat, torch.zeros(()), torch.zeros(()))
    terms = score_terms(x, out, temperature=model.temperature)
    expected_d = 50 * math.log(0.5001 / 0.2501)
    torch.testing.assert_close(terms, torch.tensor([[[expected_d] * 4, [0.0, 4.0, 0.0, 0.0]]]))
