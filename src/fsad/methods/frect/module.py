"""FreCT as a LightningModule: the network from ``network.py`` with the objective and score of ``objective.py``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fsad.methods.base import AnomalyDetector
from fsad.methods.frect.network import FreCTNetwork
from fsad.methods.frect.objective import frect_loss, frect_score


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
        temperature: multiplies the KL terms in the score (50 in the code).
        time_score_sign: sign of the KL term in the score (``-1`` as in the code, ``+1`` as the paper writes).
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
        temperature: float = 50.0,
        time_score_sign: float = -1.0,
        lr: float = 1e-4,
        lr_halving: bool = True,
    ):
        super().__init__(lr=lr, lr_halving=lr_halving)
        self.save_hyperparameters()
        self.network = FreCTNetwork(
            n_channels=n_channels, window=window, d_model=d_model, patch_sizes=tuple(patch_sizes),
            e_layers=e_layers, n_heads=n_heads, dropout=dropout, normalize=normalize, use_conv=use_conv,
        )
        self.alpha = alpha if use_freq else 1.0
        self.fft, self.temperature, self.time_score_sign = fft, temperature, time_score_sign
        self.stop_grad_series, self.stop_grad_prior = stop_grad_series, stop_grad_prior

    def training_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        series, prior = self.network(x)
        return frect_loss(series, prior, alpha=self.alpha, fft=self.fft,
                          stop_grad_series=self.stop_grad_series, stop_grad_prior=self.stop_grad_prior)

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        series, prior = self.network(x)
        return frect_score(series, prior, temperature=self.temperature, time_score_sign=self.time_score_sign,
                           fft=self.fft, alpha=self.alpha)
