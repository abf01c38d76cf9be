"""TransMamba as a LightningModule: two branches, two optimisers, manual optimisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import logging

import torch
from torch import Tensor

from fsad.methods.base import AnomalyDetector
from fsad.methods.transmamba.network import TransMambaNetwork
from fsad.methods.transmamba.objective import (
    SCORE_FORMS,
    TERM_NAMES,
    code_score,
    raw_scores,
    score_terms,
    transmamba_loss,
)

log = logging.getLogger(__name__)


def halving(epoch: int) -> float:
    """LR factor of 0-based epoch ``epoch``: 1, 1, 1/2, 1/4, ... (the official ``lr * 0.5 ** e`` after epoch e)."""
    return 0.5 ** max(epoch - 1, 0)


class TransMamba(AnomalyDetector):
    """TransMamba (mash0926/TransMamba): patch-attention discrepancy (time) + Mamba over the spectrum (frequency).

    Training (manual optimisation, one step per batch for each branch, as the official loop):
    ``opt_time`` (Adam, ``lr``) minimises ``loss_T = low_loss - high_loss`` over the time branch (patch
    embeddings, Q/K) and ``opt_freq`` (Adam, ``lr_freq``) minimises ``loss_F = MSE(x, x̂) + recon_loss_f +
    loss_cl`` over the frequency branch (spectral embedding, Mamba, heads). The official code gives both Adam
    optimisers all parameters and back-propagates each loss in turn; the two losses reach disjoint parameters,
    so restricting each optimiser to its branch, with one backward pass of ``loss_T + loss_F``, is the same
    update. Both rates follow ``lr * halving(epoch)``
    (epochs 0 and 1 at the base rate, then halving each epoch); the schedulers are stepped here per epoch,
    since Lightning does not step them under manual optimisation.

    Validation logs ``val/loss = loss_T + loss_F`` with the contrastive views computed (as the official ``vali``).
    ``score`` (no contrastive views), by ``score_form``: ``code`` = ``softmax_W(time_score_sign * D) +
    softmax_W(E)`` with ``E = mean_c (x - x̂)^2``; ``raw`` = ``time_score_sign * z(D) + z(E)``, z the
    standardisation with mean and standard deviation over the scored training windows (the base class's term
    statistics: buffers ``raw_mean``, ``raw_std``, ``raw_fitted``; test data never enters them). Each report carries
    the other form and the two standardised terms (``raw/discrepancy``, ``raw/recon``) beside the main score: a
    softmax over the window ignores whatever a window adds to all its steps, so only the raw form shows whether the
    model separates windows.

    Args:
        n_channels, window: C and W of the data.
        patch_size_high, patch_size_low, d_model, n_heads, e_layers, dropout, revin, aug_rate, coarse_kernel,
            ntx_temperature, seg_swap_faithful_bug, d_state, d_conv, expand, scan_backend: see
            ``TransMambaNetwork``.
        contrastive: compute ``loss_cl`` in training/validation (``False``: ablation without it).
        normalise_high: also row-normalise A_high in loss and score (the code does not: ablation flag).
        temperature: multiplies the KL terms of the score (50).
        time_score_sign: -1 (code, DCdetector lineage) or +1 (large discrepancy = anomalous).
        score_form: ``code`` (default, the official score) | ``raw`` (see above).
        lr, lr_freq: Adam rates of the time and frequency branches (code: 1e-4 and lr / 2).
        lr_halving: the per-epoch halving of both rates.
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        patch_size_high: Sequence[int] = (3, 5),
        patch_size_low: Sequence[int] = (6, 10),
        d_model: int = 64,
        n_heads: int = 1,
        e_layers: int = 1,
        dropout: float = 0.1,
        revin: bool = True,
        aug_rate: float = 0.1,
        coarse_kernel: int = 3,
        ntx_temperature: float = 0.5,
        seg_swap_faithful_bug: bool = False,
        contrastive: bool = True,
        normalise_high: bool = False,
        temperature: float = 50.0,
        time_score_sign: float = -1.0,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        scan_backend: str = "auto",
        score_form: str = "code",
        lr: float = 1e-4,
        lr_freq: float = 5e-5,
        lr_halving: bool = True,
    ):
        super().__init__(lr=lr, lr_halving=lr_halving)
        if score_form not in SCORE_FORMS:
            raise ValueError(f"model.score_form must be one of {SCORE_FORMS}, got {score_form!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.network = TransMambaNetwork(
            n_channels=n_channels, window=window, patch_size_high=tuple(patch_size_high),
            patch_size_low=tuple(patch_size_low), d_model=d_model, n_heads=n_heads, e_layers=e_layers,
            dropout=dropout, revin=revin, aug_rate=aug_rate, coarse_kernel=coarse_kernel,
            ntx_temperature=ntx_temperature, seg_swap_faithful_bug=seg_swap_faithful_bug, d_state=d_state,
            d_conv=d_conv, expand=expand, scan_backend=scan_backend,
        )
        self.lr_freq, self.contrastive, self.normalise_high = lr_freq, contrastive, normalise_high
        self.temperature, self.time_score_sign, self.score_form = temperature, time_score_sign, score_form
        self.register_term_statistics(TERM_NAMES, prefix="raw")  # buffers raw_mean, raw_std, raw_fitted

    # --- method contract ------------------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, W, C) -> ``loss`` (= loss_time + loss_freq), ``loss_time``, ``loss_freq`` and logged parts."""
        return transmamba_loss(x, self.network(x, contrastive=self.contrastive), self.normalise_high)

    @torch.no_grad()
    def score_terms(self, x: Tensor) -> Tensor:
        """x (B, W, C) -> (B, 2, W) raw terms: discrepancy D and reconstruction error E (``TERM_NAMES``)."""
        out = self.network(x, contrastive=False)
        return score_terms(x, out, self.temperature, self.normalise_high)

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        """x (B, W, C) -> (B, W): the ``score_form`` score (``code``: rows sum to 2; ``raw`` needs the fitted
        training statistics)."""
        terms = self.score_terms(x)
        if self.score_form == "code":
            return code_score(terms, self.time_score_sign)
        return raw_scores(self.standardise_terms(terms), self.time_score_sign)["raw"]

    def scores_from_terms(self, terms: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(B, 2, W) raw terms -> main score (B, W) and the other forms: ``code`` or ``raw``, ``raw/discrepancy``,
        ``raw/recon``. Without fitted statistics (no ``train`` split scored, none in the checkpoint) the code
        score has no raw forms beside it; the raw score raises :class:`~fsad.methods.base.NotFittedError`."""
        code = code_score(terms, self.time_score_sign)
        if self.score_form == "code" and not self.term_statistics_fitted:
            if not getattr(self, "_warned_unfitted", False):
                log.warning("TransMamba: no training statistics (no train split scored): raw score forms left out")
                self._warned_unfitted = True
            return code, {}
        forms = raw_scores(self.standardise_terms(terms), self.time_score_sign)
        if self.score_form == "code":
            return code, forms
        return forms.pop("raw"), {"code": code, **forms}

    # --- manual optimisation --------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.training_loss(batch["x"])
        optimisers = self.optimizers()
        for optimiser in optimisers:
            optimiser.zero_grad()
        # loss_T reaches only the time branch and loss_F only the frequency branch, so one backward pass of the
        # sum leaves every parameter with the gradient of its own branch's loss: the official two passes
        # (loss_T, step T, loss_F, step F) in one, which also keeps DDP to one gradient reduction per step.
        self.manual_backward(out["loss_time"] + out["loss_freq"])
        for optimiser in optimisers:
            optimiser.step()
        self.log_dict({f"train/{k}": v.detach() for k, v in out.items()}, prog_bar=False, on_step=False,
                      on_epoch=True, batch_size=len(batch["x"]))
        self.log("train/step_loss", out["loss"].detach(), on_step=True, on_epoch=False, prog_bar=True)
        return out["loss"].detach()

    def configure_optimizers(self) -> Any:
        opt_time = torch.optim.Adam(list(self.network.time_parameters()), lr=self.lr)
        opt_freq = torch.optim.Adam(list(self.network.frequency_parameters()), lr=self.lr_freq)
        if not self.lr_halving:
            return [opt_time, opt_freq]
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, halving) for opt in (opt_time, opt_freq)]
        names = ("lr-time", "lr-frequency")  # LearningRateMonitor keys
        configs = [{"scheduler": s, "interval": "epoch", "name": n} for s, n in zip(schedulers, names)]
        return [opt_time, opt_freq], configs

    def on_train_epoch_start(self) -> None:
        self._sync_schedulers(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self._sync_schedulers(self.current_epoch + 1)

    def _sync_schedulers(self, epoch: int) -> None:
        """Step every scheduler until it stands at ``epoch`` (idempotent, so resuming from a checkpoint written
        before or after the end-of-epoch step gives the same rates)."""
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            while scheduler.last_epoch < epoch:
                scheduler.step()
