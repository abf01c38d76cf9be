"""FKM-AD as a LightningModule: the network of ``network.py`` with the objective and score of ``objective.py``.

How the LEH score gets its training-set statistics: Eq. 18 standardises the three LEH terms with a mean and a
standard deviation per term, which must come from training windows and belong to the scored weights. The base
class's term statistics do that (:mod:`fsad.methods.base`): ``score_terms`` gives the raw terms (B, 3, W), the
statistics are fitted on the scored ``train`` split's windows at the end of the test epoch and kept in the buffers
``leh_mean``, ``leh_std``, ``leh_fitted`` (saved in checkpoints), and ``scores_from_terms`` fuses the terms of every
split with them. :meth:`FKMAD.fit_leh_statistics` fits them from any loader of training windows. Cost: the raw
terms take 3x the memory of a fused score until the end of the test epoch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fsad.methods.base import AnomalyDetector, NotFittedError, TermMoments
from fsad.methods.fkm_ad.network import FKMADNetwork, FKMOutput
from fsad.methods.fkm_ad.objective import (
    GATE_REGULARISERS,
    LEH_TERMS,
    RECON_KINDS,
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
ENERGY_SOURCES = ("residual", "normed")
LOSS_BLOCKS = ("last", "mean")

__all__ = ["ENERGY_SOURCES", "FKMAD", "LEH_SOURCES", "NotFittedError", "SCORE_TYPES", "TABLE2_ROWS"]


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
        leh_source: signal of the locality and HFR terms (and of the energy with ``energy_source=normed``):
            ``y`` (last block's SSM output), ``hidden`` (final normalised hidden states), ``input`` (last block's
            SSM input ũ). All three lie behind a LayerNorm.
        energy_source: signal of the energy term (Eq. 16): ``residual`` (default), the pre-norm residual stream
            ``h`` (B, W, d_model) after the last block, before the final LayerNorm; ``normed``: the ``leh_source``
            signal, as the spec reads it. Every ``leh_source`` signal is computed from LayerNorm'ed inputs, which
            divide each step by its own scale, so their per-step energy hardly moves with the amplitude of the
            data (its per-step spread was ~4e-4 on MSL): the term meant to measure amplitude measures none. The
            residual stream keeps the amplitude (the embedding and each block add to it without normalising).
        locality_sign: the sign of the standardised locality in Eq. 18, ``+1`` (default) or ``-1``. The paper's
            Eq. 18 adds the standardised locality with a positive weight; the spec read the score with
            ``-Locality`` ("lower locality = more anomalous"). Measured, ``-Locality`` is anti-correlated with
            the labels (AUC-ROC 0.36 on MSL and 0.42 on SMD, even computed on the raw input) while ``+Locality``
            gives 0.62 / 0.56 with the same fusion, so the default is the literal equation. With both defaults
            (``+1``, ``residual``) the fused score went from AUC-ROC 0.34 to 0.67 on MSL and 0.42 to 0.73 on SMD
            after a short training.
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
        energy_source: str = "residual",
        locality_sign: float = 1.0,
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
                   ("leh_source", leh_source, LEH_SOURCES), ("energy_source", energy_source, ENERGY_SOURCES))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {value!r}")
        if len(leh_weights) != len(LEH_TERMS):
            raise ValueError(f"model.leh_weights needs {len(LEH_TERMS)} values {LEH_TERMS}, got {leh_weights}")
        if not (0 < top_fraction <= 1 and 0 < bottom_fraction <= 1):
            raise ValueError("model.top_fraction and model.bottom_fraction must be in (0, 1]")
        if locality_sign not in (1, -1):
            raise ValueError(f"model.locality_sign must be 1 or -1, got {locality_sign}")
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
        self.energy_source, self.locality_sign = energy_source, float(locality_sign)
        self.register_buffer("leh_weights", torch.tensor(leh_weights, dtype=torch.float32), persistent=False)
        self.register_term_statistics(LEH_TERMS, prefix="leh")  # buffers leh_mean, leh_std, leh_fitted

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
        """The (B, W, ·) signal of the locality and HFR terms (``leh_source``)."""
        if self.leh_source == "y":
            return out.caches[-1].y
        if self.leh_source == "input":
            return out.caches[-1].u_tilde
        return out.hidden

    def energy_signal(self, out: FKMOutput) -> Tensor:
        """The (B, W, ·) signal of the energy term (``energy_source``)."""
        return out.residual if self.energy_source == "residual" else self.leh_signal(out)

    @property
    def uses_term_statistics(self) -> bool:
        return self.score_type == "leh"

    @torch.no_grad()
    def score_terms(self, x: Tensor) -> Tensor:
        """Raw LEH terms (``locality_sign`` * Locality, Energy, HFR) of a batch (B, W, C) -> (B, 3, W), float32."""
        out = self.network(x)
        return leh_terms(self.leh_signal(out).float(), self.leh_band, self.hfr_window, self.locality_sign,
                         energy_signal=self.energy_signal(out).float())

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        """(B, W, C) -> (B, W): fused LEH score with the stored training statistics, or the recon score."""
        if self.score_type == "recon":
            out = self.network(x)
            return reconstruction_score(x, out.x_hat)
        return self.fuse(self.score_terms(x))

    def fuse(self, terms: Tensor) -> Tensor:
        """Eq. 18 with the stored statistics: (B, 3, W) -> (B, W); :class:`NotFittedError` before they are fitted."""
        return fuse_leh(terms, *self.term_statistics(), self.leh_weights)

    def scores_from_terms(self, terms: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(B, 3, W) raw terms -> fused score (B, W) and each standardised term as it enters Eq. 18 (unitless):
        ``leh/locality``, ``leh/energy``, ``leh/hfr``."""
        z = self.standardise_terms(terms)
        fused = (self.leh_weights.to(z).view(1, -1, 1) * z).sum(dim=1)
        return fused, {f"leh/{name}": z[:, k] for k, name in enumerate(LEH_TERMS)}

    def fit_leh_statistics(self, loader) -> TermMoments:
        """Estimate the LEH statistics from an iterable of training batches (dicts with ``x``, or tensors)."""
        return self.fit_term_statistics(loader)
