"""FreCT as a LightningModule: the network from ``network.py`` with the objective and score of ``objective.py``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fsad.methods.base import AnomalyDetector
from fsad.methods.frect.network import FreCTNetwork
from fsad.methods.frect.objective import (
    CONSISTENCIES, FORM_REPORT_NAMES, SCORE_FORMS, frect_loss, frect_score_forms,
)


class FreCT(AnomalyDetector):
    """Frequency-augmented Convolutional Transformer (Zhang et al.), following the official code's math.

    Args:
        n_channels, window: C and W of the data.
        d_model, patch_sizes, e_layers, n_heads, dropout: network size (``paper`` preset: D = 128; ``code``
            preset: D = 256; patch sizes per dataset, see the experiment files).
        normalize, use_conv: ablation switches (sequence normalisation of the patch streams, convolution module).
        alpha: weight of the time-domain term; the frequency term gets ``1 - alpha`` (0.5 in the paper).
        fft: ``fft`` (paper headline) | ``rfft`` | ``rfft2`` (Table V variants).
        use_freq: ``False`` drops the frequency term from loss and score (ablation "w/o frequency").
        stop_grad_series, stop_grad_prior: stop-gradient placement (ablation of Table IV).
        consistency: divergence of the time-domain loss (paper Sec. V-E, Fig. 3): ``sym_kl`` (default, Eqs.
            17-18), ``asym_kl`` or ``js`` (see :func:`fsad.methods.frect.objective.consistency_per_step`); the
            score keeps the symmetric KL.
        temperature: multiplies the KL terms in the score (50 in the code).
        time_score_sign: sign of the KL term in the score (``-1`` as in the code, ``+1`` as the paper writes).
        score_form: the main score (see :func:`fsad.methods.frect.objective.frect_score_forms`): ``code``
            (default, the official ``softmax_W`` of the logit), ``raw`` (the logit before the softmax) or ``paper``
            (Eqs. 22-24: ``alpha * K + (1 - alpha) * F`` with positive KL, no temperature, no softmax). Whatever
            the choice, the other forms and the two terms of the logit (``raw/kl``, ``raw/fft``) are scored beside
            it (reports: ``test/<form>/...``; the paper form as ``paper_score``). The softmax removes every
            difference between windows: FreCT's code score is one spike per window even untrained; measured on
            the 7 SMD machines after a short training, AUC-ROC 0.500 for ``code``, 0.700 for ``raw``, 0.799 for
            ``raw/fft`` alone.
        lr, lr_halving: optimiser settings (Adam).
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        d_model: int = 128,
        patch_sizes: Sequence[int] = (3, 5),
        e_layers: int = 3,
        n_heads: int = 1,
        dropout: float = 0.0,
        normalize: bool = True,
        use_conv: bool = True,
        alpha: float = 0.5,
        fft: str = "fft",
        use_freq: bool = True,
        stop_grad_series: bool = True,
        stop_grad_prior: bool = True,
        consistency: str = "sym_kl",
        temperature: float = 50.0,
        time_score_sign: float = -1.0,
        score_form: str = "code",
        lr: float = 1e-4,
        lr_halving: bool = True,
    ):
        super().__init__(lr=lr, lr_halving=lr_halving)
        if score_form not in SCORE_FORMS:
            raise ValueError(f"model.score_form must be one of {SCORE_FORMS}, got {score_form!r}")
        if consistency not in CONSISTENCIES:
            raise ValueError(f"model.consistency must be one of {CONSISTENCIES}, got {consistency!r}")
        self.save_hyperparameters()
        self.network = FreCTNetwork(
            n_channels=n_channels, window=window, d_model=d_model, patch_sizes=tuple(patch_sizes),
            e_layers=e_layers, n_heads=n_heads, dropout=dropout, normalize=normalize, use_conv=use_conv,
        )
        self.alpha = alpha if use_freq else 1.0
        self.fft, self.temperature, self.time_score_sign = fft, temperature, time_score_sign
        self.score_form = score_form
        self.stop_grad_series, self.stop_grad_prior = stop_grad_series, stop_grad_prior
        self.consistency = consistency

    def training_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        series, prior = self.network(x)
        return frect_loss(series, prior, alpha=self.alpha, fft=self.fft,
                          stop_grad_series=self.stop_grad_series, stop_grad_prior=self.stop_grad_prior,
                          consistency=self.consistency)

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, W, C) -> (B, W): the ``score_form`` score."""
        return self.score_with_forms(x)[0]

    @torch.no_grad()
    def score_forms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, W, C) -> the forms other than ``score_form``, each (B, W): ``code``, ``raw``, ``raw/kl``,
        ``raw/fft``, ``paper_score``."""
        return self.score_with_forms(x)[1]

    @torch.no_grad()
    def score_with_forms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One forward pass: (main score (B, W), other forms {report name: (B, W)})."""
        series, prior = self.network(x)
        forms = frect_score_forms(series, prior, temperature=self.temperature,
                                  time_score_sign=self.time_score_sign, fft=self.fft, alpha=self.alpha)
        main = forms.pop(self.score_form)
        return main, {FORM_REPORT_NAMES.get(name, name): value for name, value in forms.items()}
