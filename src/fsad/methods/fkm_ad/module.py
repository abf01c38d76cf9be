"""FKM-AD as a LightningModule: the network of ``network.py`` with the objective and score of ``objective.py``.

How the LEH score gets its training-set statistics
--------------------------------------------------
Eq. 18 standardises the three LEH terms with a mean and standard deviation per term; they must come from
training windows (statistics of the test windows would leak test data into the score). They must also belong to
the weights that are scored: the pipeline scores the *best* checkpoint, which was written during ``fit``, so
statistics computed at the end of ``fit`` (after the last epoch) would describe other weights, and computing them
at every checkpoint save would cost a pass over the training set per save. Hence a post-processing hook:

1. ``test_step`` stores the raw terms (B, 3, W) of every window of every scoring split (instead of a fused score);
2. ``on_test_epoch_end`` accumulates count / sum / sum of squares of the terms over the windows of the split named
   ``train`` only (summed over processes under DDP), writes mean and std into the registered buffers
   ``leh_mean``, ``leh_std`` (``leh_fitted`` = 1), fuses the stored terms of every split with them, and hands the
   fused (B, W) scores to the base class, which gathers them as for every other method.

The pipeline always scores train, (val,) test through one ``trainer.test`` call, so the statistics are those of the
scored weights over the scored training windows (every position of every window, the same windows that feed the
papers' threshold). The buffers travel in any checkpoint saved afterwards and are used by :meth:`FKMAD.score` and by a
``trainer.test`` without a ``train`` split; :meth:`FKMAD.fit_leh_statistics` fits them from any loader of training
windows. Validation and test windows never enter the statistics. Cost: the raw terms take 3x the memory of a fused
score until the end of the test epoch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fsad.methods.base import AnomalyDetector
from fsad.methods.fkm_ad.network import FKMADNetwork, FKMOutput
from fsad.methods.fkm_ad.objective import (
    GATE_REGULARISERS,
    LEH_TERMS,
    RECON_KINDS,
    TermMoments,
    fuse_leh,
    gate_regulariser,
    leh_terms,
    margin_loss,
    passivity_loss,
    reconstruction_loss,
    reconstruction_score,
    sample_log_energy,
    step_small_loss,
    step_smooth_loss,
)

SCORE_TYPES = ("leh", "recon")
#: Paper Table 2 (ablation, F1 on MSL / SMAP / SWaT): the model overrides of each row; the full model is the default.
#: The table has no column for the step-size gain: it is read as part of every FKM variant and off only in row 1,
#: whose "plain Mamba" also drops the step and gate regularisers ([SR]).
TABLE2_ROWS: dict[str, dict[str, object]] = {
    "mamba_recon": dict(use_fourier_kan=False, use_temp_gate=False, use_step_gain=False, use_bound_losses=False,
                        score_type="recon", lambda_delta=0.0, lambda_gate=0.0),  # 51.44 / 62.35 / 74.10
    "tempgate_recon": dict(use_fourier_kan=False, use_bound_losses=False, score_type="recon"),  # 47.67 / 63.89 / 69.46
    "tempgate_leh": dict(use_fourier_kan=False, use_bound_losses=False),  # 90.99 / 91.87 / 91.98
    "tempgate_bound_leh": dict(use_fourier_kan=False),  # 92.03 / 92.79 / 94.95
    "fourier_tempgate_recon": dict(use_bound_losses=False, score_type="recon"),  # 44.64 / 64.45 / 70.75
    "fourier_tempgate_leh": dict(use_bound_losses=False),  # 93.27 / 93.26 / 95.80
    "full": {},  # 95.05 / 96.59 / 96.73
}
LEH_SOURCES = ("y", "hidden", "input")
LOSS_BLOCKS = ("last", "mean")


class NotFittedError(RuntimeError):
    """The LEH statistics were requested before they were estimated on training windows."""


class FKMAD(AnomalyDetector):
    """Fourier-KAN-Mamba anomaly detector (Wang et al., arXiv 2511.15083), spec ``fkm_ad.md``.

    Ablation switches (paper Table 2; the overrides of each row are ``TABLE2_ROWS`` and ``conf/model/fkm_ad.yaml``):
        use_fourier_kan: hybrid Linear + Fourier-KAN input projection ("Fourier KAN" column).
        use_temp_gate: temperature-sharpened gate ("Temp Gate. Control" column).
        use_step_gain: step-size-driven input gain (Sec. 3.4; off only in the plain-Mamba row, [SR]).
        use_bound_losses: passivity (Eq. 34) and margin (Eq. 35) losses ("Bound." column); off = weight 0.
        score_type: ``leh`` (Eq. 18, "LEH" column) | ``recon`` (``mean_c (x - x̂)²``, "Recon." column).

    Args:
        n_channels: C. window: W (recorded only; the network works for any length).
        d_model, n_layers, d_state, d_conv, expand, dt_rank: backbone sizes ([SR] 128, 2, 32, 4, 2, auto).
        n_freqs, kan_rank, f_max, kan_zero_init: Fourier-KAN (F = 16, r = 32, frequencies on [1, 4], U = 0).
        delta_max: clamp of the step sizes (2.0, paper). gate_fn: ``silu`` | ``sigmoid``.
        temp_init, alpha_init, gain_kernel: initial γ_z (1.0), initial α_δ (0.1), step-gain kernel (5).
        dt_min, dt_max, dt_init_floor, dt_scale, in_proj_bias, conv_bias, scan_backend: Mamba details.
        recon_kind: ``l2`` | ``l1`` reconstruction loss.
        lambda_pass, lambda_margin, lambda_delta, lambda_gate: weights of Eq. 36 ([SR] 0.01, 0.01, 1e-3, 1e-3).
        gain_bound: γ of Eq. 34 (1 = passivity). margin, top_fraction, bottom_fraction: m, p, q of Eq. 35.
        delta_target: δ* of Eq. 12 (0.02). gate_regulariser: ``entropy`` | ``l1``.
        loss_blocks: ``last`` (losses on the last block's cache) | ``mean`` (averaged over blocks).
        leh_source: signal of the LEH terms: ``y`` (last block's SSM output), ``hidden`` (final normalised hidden
            states), ``input`` (last block's SSM input ũ).
        leh_band: b of the locality band (5). hfr_window: w of the local spectrum (16).
        leh_weights: λ_locality, λ_energy, λ_hfr (0.45, 0.20, 0.05).
        lr, lr_halving, weight_decay: optimiser (Adam, per-epoch halving).
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        d_model: int = 128,
        n_layers: int = 2,
        d_state: int = 32,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        n_freqs: int = 16,
        kan_rank: int = 32,
        f_max: float = 4.0,
        kan_zero_init: bool = True,
        delta_max: float | None = 2.0,
        gate_fn: str = "silu",
        temp_init: float = 1.0,
        alpha_init: float = 0.1,
        gain_kernel: int = 5,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        dt_scale: float = 1.0,
        in_proj_bias: bool = True,
        conv_bias: bool = True,
        scan_backend: str = "auto",
        use_fourier_kan: bool = True,
        use_temp_gate: bool = True,
        use_step_gain: bool = True,
        use_bound_losses: bool = True,
        score_type: str = "leh",
        recon_kind: str = "l2",
        lambda_pass: float = 0.01,
        lambda_margin: float = 0.01,
        lambda_delta: float = 1e-3,
        lambda_gate: float = 1e-3,
        gain_bound: float = 1.0,
        margin: float = 0.5,
        top_fraction: float = 0.1,
        bottom_fraction: float = 0.1,
        delta_target: float = 0.02,
        gate_regulariser: str = "entropy",
        loss_blocks: str = "last",
        leh_source: str = "y",
        leh_band: int = 5,
        hfr_window: int = 16,
        leh_weights: tuple[float, float, float] = (0.45, 0.20, 0.05),
        lr: float = 1e-4,
        lr_halving: bool = True,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr=lr, lr_halving=lr_halving, weight_decay=weight_decay)
        choices = (("score_type", score_type, SCORE_TYPES), ("recon_kind", recon_kind, RECON_KINDS),
                   ("gate_regulariser", gate_regulariser, GATE_REGULARISERS), ("loss_blocks", loss_blocks, LOSS_BLOCKS),
                   ("leh_source", leh_source, LEH_SOURCES))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {value!r}")
        if len(leh_weights) != len(LEH_TERMS):
            raise ValueError(f"model.leh_weights needs {len(LEH_TERMS)} values {LEH_TERMS}, got {leh_weights}")
        if not (0 < top_fraction <= 1 and 0 < bottom_fraction <= 1):
            raise ValueError("model.top_fraction and model.bottom_fraction must be in (0, 1]")
        self.save_hyperparameters()
        self.network = FKMADNetwork(
            n_channels=n_channels, d_model=d_model, n_layers=n_layers, d_state=d_state, d_conv=d_conv, expand=expand,
            dt_rank=dt_rank, n_freqs=n_freqs, kan_rank=kan_rank, f_max=f_max, kan_zero_init=kan_zero_init,
            delta_max=delta_max, use_fourier_kan=use_fourier_kan, use_temp_gate=use_temp_gate,
            use_step_gain=use_step_gain, gate_fn=gate_fn, temp_init=temp_init, alpha_init=alpha_init,
            gain_kernel=gain_kernel, dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_init_floor, dt_scale=dt_scale,
            in_proj_bias=in_proj_bias, conv_bias=conv_bias, scan_backend=scan_backend,
        )
        self.use_bound_losses, self.score_type, self.recon_kind = use_bound_losses, score_type, recon_kind
        self.lambda_pass, self.lambda_margin = lambda_pass, lambda_margin
        self.lambda_delta, self.lambda_gate = lambda_delta, lambda_gate
        self.gain_bound, self.margin = gain_bound, margin
        self.top_fraction, self.bottom_fraction = top_fraction, bottom_fraction
        self.delta_target, self.gate_regulariser, self.loss_blocks = delta_target, gate_regulariser, loss_blocks
        self.leh_source, self.leh_band, self.hfr_window = leh_source, leh_band, hfr_window
        self.register_buffer("leh_weights", torch.tensor(leh_weights, dtype=torch.float32), persistent=False)
        self.register_buffer("leh_mean", torch.zeros(len(LEH_TERMS), dtype=torch.float64))
        self.register_buffer("leh_std", torch.ones(len(LEH_TERMS), dtype=torch.float64))
        self.register_buffer("leh_fitted", torch.zeros((), dtype=torch.bool))

    # --- training ---------------------------------------------------------------------------------------------
    def training_loss(self, x: Tensor) -> dict[str, Tensor]:
        """Eq. 36 on a batch (B, W, C); returns ``loss`` and every term (unweighted) for logging.

        With ``use_bound_losses=False`` the passivity and margin terms are still reported but not added.
        """
        out = self.network(x)
        caches = out.caches if self.loss_blocks == "mean" else out.caches[-1:]
        terms = {"pass": [], "margin": [], "step_small": [], "step_smooth": [], "gate": []}
        for cache in caches:
            terms["pass"].append(passivity_loss(cache.y, cache.u_tilde, self.gain_bound))
            terms["margin"].append(margin_loss(sample_log_energy(cache.y), self.margin, self.top_fraction,
                                               self.bottom_fraction))
            terms["step_small"].append(step_small_loss(cache.delta_mean, self.delta_target))
            terms["step_smooth"].append(step_smooth_loss(cache.delta_mean))
            terms["gate"].append(gate_regulariser(cache.z_sharp, self.gate_regulariser))
        losses = {k: torch.stack(v).mean() for k, v in terms.items()}
        losses["recon"] = reconstruction_loss(x, out.x_hat, self.recon_kind)
        loss = (losses["recon"] + self.lambda_delta * (losses["step_small"] + losses["step_smooth"])
                + self.lambda_gate * losses["gate"])
        if self.use_bound_losses:
            loss = loss + self.lambda_pass * losses["pass"] + self.lambda_margin * losses["margin"]
        return {"loss": loss, **{k: v.detach() for k, v in losses.items()}}

    # --- scoring ----------------------------------------------------------------------------------------------
    def leh_signal(self, out: FKMOutput) -> Tensor:
        """The (B, W, ·) signal the LEH terms are computed on (``leh_source``)."""
        if self.leh_source == "y":
            return out.caches[-1].y
        if self.leh_source == "input":
            return out.caches[-1].u_tilde
        return out.hidden

    @torch.no_grad()
    def score_terms(self, x: Tensor) -> Tensor:
        """Raw LEH terms (-Locality, Energy, HFR) of a batch (B, W, C) -> (B, 3, W), float32."""
        signal = self.leh_signal(self.network(x)).float()
        return leh_terms(signal, self.leh_band, self.hfr_window)

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        """(B, W, C) -> (B, W): fused LEH score with the stored training statistics, or the recon score."""
        if self.score_type == "recon":
            out = self.network(x)
            return reconstruction_score(x, out.x_hat)
        return self.fuse(self.score_terms(x))

    def fuse(self, terms: Tensor) -> Tensor:
        """Eq. 18 with the stored statistics: (B, 3, W) -> (B, W); error before they are fitted."""
        if not bool(self.leh_fitted):
            raise NotFittedError("FKM-AD's LEH statistics are not fitted: score through the pipeline (its train "
                                 "split fits them) or call fit_leh_statistics(train_loader) first")
        return fuse_leh(terms, self.leh_mean, self.leh_std, self.leh_weights)

    def set_leh_statistics(self, moments: TermMoments) -> None:
        """Store mean and std of training-window terms in the buffers (``leh_fitted`` = 1)."""
        self.leh_mean.copy_(moments.mean.to(self.leh_mean))
        self.leh_std.copy_(moments.std.to(self.leh_std))
        self.leh_fitted.fill_(True)

    @torch.no_grad()
    def fit_leh_statistics(self, loader) -> TermMoments:
        """Estimate the LEH statistics from an iterable of training batches (dicts with ``x``, or tensors)."""
        was_training = self.training
        self.eval()
        moments = TermMoments()
        for batch in loader:
            x = batch["x"] if isinstance(batch, dict) else batch
            moments.update(self.score_terms(x.to(self.device)))
        self.set_leh_statistics(moments)
        self.train(was_training)
        return moments

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.score_type == "recon":
            return super().test_step(batch, batch_idx, dataloader_idx)
        terms = self.score_terms(batch["x"])
        self._window_scores.setdefault(dataloader_idx, []).append((batch["start"], terms.detach().float()))

    def on_test_epoch_end(self) -> None:
        if self.score_type == "leh":
            self._standardise_stored_terms()
        super().on_test_epoch_end()

    def _standardise_stored_terms(self) -> None:
        """Fit the statistics on the ``train`` split's stored terms (all processes) and fuse every split."""
        if "train" in self.scoring_splits:
            moments = TermMoments()
            for _, terms in self._window_scores.get(self.scoring_splits.index("train"), []):
                moments.update(terms)
            packed = moments.as_tensor().to(self.device)
            if self.trainer.world_size > 1:
                packed = self.all_gather(packed).reshape(-1, packed.numel()).sum(dim=0)
            moments = TermMoments.from_tensor(packed)
            if moments.count > 0:
                self.set_leh_statistics(moments)
        for idx, parts in self._window_scores.items():
            self._window_scores[idx] = [(starts, self.fuse(terms)) for starts, terms in parts]
