"""RED-F (anomaly prediction) and REM alone (anomaly detection) as LightningModules.

RED-F (Chen et al., arXiv 2511.20044), spec ``red_f.md``. Training (Algorithm 2, one optimiser over both models):
a sample of ``L + (n + 1) H`` steps is cut into look-backs ``X_k`` and targets ``Y_k`` (Algorithm 1); REM
reconstructs ``X_0``; the DFM forecasts ``Ŷ0`` from ``X_0`` and ``Ŷ0_rec`` from the reconstruction (same weights),
and its MSP modules forecast ``Y_1..Y_n`` from ``X_1..X_n``. Loss ``L_rem + L_dfm`` (Eq. 15). Scoring: a window of
``L + H`` steps gives ``S[j] = Σ_c (Ŷ0 - Ŷ0_rec)^2`` for its last H steps, which the model never sees.

Ablations (paper Table III, averaged Aff-F1 over H on six datasets; ``TABLE3_ROWS`` and ``conf/ablation/red_f``).
Model size (paper Table VI: 3.62 M trainable parameters on GECCO): ``MODEL_SIZE_READINGS``; the default (DFM at width
256, REM at width 32 with single linear heads) holds 3,606,240 at H = 64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fsad.methods.base import AnomalyDetector
from fsad.methods.red_f.dfm import DFM
from fsad.methods.red_f.objective import (
    SCORE_REDUCTIONS,
    dfm_loss,
    future_score,
    reconstruction_score,
    rem_loss,
    split_sample,
)
from fsad.methods.red_f.rem import REM

#: Paper Table III rows (average Aff-F1 over the six datasets) -> the overrides that reproduce each one.
#: ``data.horizon_blocks=1`` means no MSP module (a sample is then L + H steps).
TABLE3_ROWS: dict[str, dict[str, Any]] = {
    "full": {},  # 0.731
    "wo_frequency": {"model.rem.use_frequency": False},  # 0.653
    "wo_patching": {"model.rem.patching": False},  # 0.687
    "wo_inter": {"model.rem.use_inter": False},  # 0.703
    "wo_intra": {"model.rem.use_intra": False},  # 0.708
    "wo_graph": {"model.rem.use_graph": False},  # 0.699
    "wo_l_freq": {"model.lambda_freq": 0.0},  # 0.686
    "wo_l_time": {"model.lambda_time": 0.0},  # 0.667
    "wo_msp": {"data.horizon_blocks": 1},  # 0.695
    "wo_l_main": {"model.lambda_main": 0.0},  # 0.685
    "wo_l_contra": {"model.lambda_contra": 0.0},  # 0.682
}


#: Paper Table VI: trainable parameters of the whole model (5 epochs, batch 128; H and n are not stated).
TABLE6_PARAMETERS: dict[str, float] = {"GECCO": 3.62e6, "CICIDS": 5.03e6}

#: Readings of the model size -> (the ``model.rem`` settings, trainable parameters of the whole RED-F at GECCO's
#: shape: C = 9, L = 192, H = 64, n = 2 MSP modules). The DFM is the same in every reading (width 256, d_ff 512,
#: 3 layers, 2 MSP modules: 3,304,000 at H = 64; its head ``Linear(24 * 256, H)`` makes it grow with H: 3.41 M in
#: all at H = 32, 3.80 M at 96, 4.00 M at 128 with the default REM). Each reading is a ``rem_network`` option:
#: ``model/rem_network@model.rem=<name>``. No reading gives the 5.03 M reported on CICIDS: REM and DFM are both
#: independent of the channel count C (REM's graph weights are shared, DFM is channel-independent; only the
#: ``learned`` graph adds D * C + C), so CICIDS (C = 72) has exactly the GECCO count.
MODEL_SIZE_READINGS: dict[str, tuple[dict[str, Any], int]] = {
    # default: REM at CATCH's GECCO channel-fusion width (cf_dim 32) with single linear heads: REM 302,240
    "default": ({"d_model": 32, "head": "linear"}, 3_606_240),
    # REM at the paper's D = 256 with single linear heads: REM 3,332,736
    "wide_linear": ({"d_model": 256, "head": "linear"}, 6_636_736),
    # D = 256 with Linear(N D, 256) + ReLU + Linear(256, L) heads: REM 4,185,216
    "wide_mlp": ({"d_model": 256, "head": "mlp"}, 7_489_216),
    # the spec's CATCH-style heads (three residual Linear(5888, 5888) blocks each): REM 211,379,328
    "spec": ({"d_model": 256, "head": "residual"}, 214_683_328),
}


def trainable_parameters(model: torch.nn.Module) -> int:
    """The number of trainable parameters (what Table VI counts), e.g. 3,606,240 for the default RED-F on GECCO."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class REDF(AnomalyDetector):
    """RED-F: REM + DFM trained jointly, scored by the contrastive future score.

    Args:
        n_channels, window, horizon: C, the look-back L and the horizon H (from the data config).
        horizon_blocks: horizons in a training sample (``data.horizon_blocks``): n = horizon_blocks - 1 MSP modules.
        rem: keyword arguments of :class:`~fsad.methods.red_f.rem.REM` (sizes, Table III switches, [SR] choices).
        dfm: keyword arguments of :class:`~fsad.methods.red_f.dfm.DFM` (sizes, norm, Eq. 11 residual, ...).
        lambda_time, lambda_freq: REM loss weights (1, 0.2). lambda_main, lambda_msp, lambda_contra: DFM loss
            weights (0.5, 0.5, 1).
        score_reduction: ``sum`` (Eq. 23) | ``mean`` over channels.
        lr, lr_halving, weight_decay: Adam, halving per epoch ([SR] PatchTST ``type1``).
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        horizon: int,
        horizon_blocks: int = 3,
        rem: dict[str, Any] | None = None,
        dfm: dict[str, Any] | None = None,
        lambda_time: float = 1.0,
        lambda_freq: float = 0.2,
        lambda_main: float = 0.5,
        lambda_msp: float = 0.5,
        lambda_contra: float = 1.0,
        score_reduction: str = "sum",
        lr: float = 1e-4,
        lr_halving: bool = True,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr=lr, lr_halving=lr_halving, weight_decay=weight_decay)
        if horizon < 1:
            raise ValueError(f"RED-F predicts the next H steps: set data.horizon >= 1 (got {horizon})")
        if horizon_blocks < 1:
            raise ValueError(f"data.horizon_blocks must be >= 1 (1 + the MSP modules), got {horizon_blocks}")
        self.save_hyperparameters()
        self.window, self.horizon = window, horizon
        self.rem = REM(n_channels=n_channels, window=window, **(rem or {}))
        self.dfm = DFM(window=window, horizon=horizon, msp_modules=horizon_blocks - 1, **(dfm or {}))
        self.lambda_time, self.lambda_freq = lambda_time, lambda_freq
        self.lambda_main, self.lambda_msp, self.lambda_contra = lambda_main, lambda_msp, lambda_contra
        if score_reduction not in SCORE_REDUCTIONS:
            raise ValueError(f"model.score_reduction must be one of {SCORE_REDUCTIONS}, got {score_reduction!r}")
        self.score_reduction = score_reduction

    def training_loss(self, x: Tensor) -> dict[str, Tensor]:
        """x: (B, L + (n + 1) H, C) -> ``loss`` = L_rem + L_dfm and its terms."""
        looks, targets = split_sample(x, self.window, self.horizon)
        if len(looks) != len(self.dfm.msp) + 1:
            raise ValueError(f"samples hold {len(looks)} horizons but the model has {len(self.dfm.msp)} MSP modules "
                             "+ 1: data.horizon_blocks and model.horizon_blocks disagree")
        rem = self.rem(looks[0])
        y0_hat, h0 = self.dfm(looks[0])
        y0_rec = self.dfm(rem.x_rec)[0] if self.lambda_contra else None
        msp = self.dfm.forward_msp(looks[1:], h0)  # [] without MSP modules
        out = rem_loss(looks[0], rem, self.lambda_time, self.lambda_freq)
        out.update(dfm_loss(targets[0], y0_hat, y0_rec, targets[1:], msp, self.lambda_main, self.lambda_msp,
                            self.lambda_contra))
        out["loss"] = out["rem"] + out["dfm"]
        return out

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        """x: (B, L + H, C), only the first L steps are read -> (B, H) scores of the H steps that follow them."""
        look = x[:, : self.window]
        y0_hat = self.dfm(look)[0]
        y0_rec = self.dfm(self.rem(look).x_rec)[0]
        return future_score(y0_hat, y0_rec, self.score_reduction)


class REMDetector(AnomalyDetector):
    """REM alone as an anomaly detector (paper Table IV: window 100): trained with ``L_rem``, scored per step by
    ``mean_c (x - x_rec)^2`` (+ ``score_freq_weight`` times CATCH's per-bin frequency term).

    Args:
        n_channels, window: C and W. rem: keyword arguments of :class:`~fsad.methods.red_f.rem.REM`.
        lambda_time, lambda_freq: loss weights (1, 0.2). score_freq_weight: 0 (CATCH uses 0.05).
        lr, lr_halving, weight_decay: optimiser.
    """

    def __init__(self, n_channels: int, window: int, rem: dict[str, Any] | None = None, lambda_time: float = 1.0,
                 lambda_freq: float = 0.2, score_freq_weight: float = 0.0, lr: float = 1e-4, lr_halving: bool = True,
                 weight_decay: float = 0.0):
        super().__init__(lr=lr, lr_halving=lr_halving, weight_decay=weight_decay)
        self.save_hyperparameters()
        self.rem = REM(n_channels=n_channels, window=window, **(rem or {}))
        self.lambda_time, self.lambda_freq, self.score_freq_weight = lambda_time, lambda_freq, score_freq_weight

    def training_loss(self, x: Tensor) -> dict[str, Tensor]:
        out = rem_loss(x, self.rem(x), self.lambda_time, self.lambda_freq)
        out["loss"] = out.pop("rem")
        return out

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        return reconstruction_score(x, self.rem(x), self.score_freq_weight)
