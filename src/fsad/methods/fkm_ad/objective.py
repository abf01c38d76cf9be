"""FKM-AD training objective (paper Eqs. 12, 13, 34, 35, 36) and LEH anomaly score (Eqs. 15-18).

Pure functions of tensors; the network supplies them through :class:`fsad.methods.fkm_ad.network.MixerCache`.
Shapes: B = batch, L = window length (time), D = feature width of the signal the term is computed on
(``d_inner`` for the SSM signals), C = data channels.

Training terms (all scalars):

* ``L_recon = mean (x - x̂)²`` (``l2``) or ``mean |x - x̂|`` (``l1``).
* Sample energies ``e_y(b) = log(1 + mean_{t,d} y²)``, ``e_u(b) = log(1 + mean_{t,d} ũ²)``.
* ``L_pass = mean_b [e_y - log(1 + γ² (exp(e_u) - 1))]_+²`` (Eq. 34; the argument equals ``1 + γ² E_u``).
* ``L_margin = [m - (mean of the top-k_p e_y - mean of the bottom-k_q e_y)]_+`` (Eq. 35), ``k_p = max(1, ⌊p·B⌋)``.
* ``L_small = mean_{b,t} (Δ̄ - δ*)²`` and ``L_smooth = mean_{b,t} (Δ̄_{t+1} - Δ̄_t)²`` (Eqs. 12-13), ``L_δ`` their sum.
* ``L_z``: ``entropy`` = ``mean H(σ(z'))`` with the binary entropy in nats, or ``l1`` = ``mean σ(z')``.
* ``L = L_recon + λ_pass L_pass + λ_mar L_margin + λ_δ L_δ + λ_z L_z`` (Eq. 36).

LEH terms (per time step), on a signal ``s (B, L, D)`` (the energy optionally on another signal ``e (B, L, D')``):

* energy ``E_t = log(1 + mean_d e_{t,d}²)`` (Eq. 16); ``e`` is by default the pre-norm residual stream (see
  :class:`fsad.methods.fkm_ad.module.FKMAD`, ``energy_source``);
* locality ``Loc_t = mean_{0<|t-j|<=b} S_tj - mean_{|t-j|>b} S_tj`` with ``S`` the cosine similarity between time
  steps (Eq. 15; an empty set contributes 0), entering the score as ``locality_sign * Loc_t`` (``+1``: Eq. 18 as
  printed; ``-1``: the reading "lower locality = more anomalous");
* high-frequency ratio: centred length-``w`` segment of ``s`` around t (reflect padding), rFFT per feature,
  ``HFR_t = mean_d Σ_{f>=cut} |S_f|² / Σ_f |S_f|²``, ``cut = ceil((w/2 + 1) / 2)`` (Eq. 17, localised per step).

Fused score (Eq. 18): ``Σ_k λ_k (T_k - μ_k) / σ_k`` over k in (locality, energy, hfr) with the statistics μ, σ
estimated on training windows (see :mod:`fsad.methods.base`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fsad.methods.base import TermMoments  # noqa: F401  (the running moments, shared with other methods)

LEH_TERMS = ("locality", "energy", "hfr")  #: order of the term axis returned by :func:`leh_terms`
GATE_REGULARISERS = ("entropy", "l1")
RECON_KINDS = ("l2", "l1")


# --- training losses ------------------------------------------------------------------------------------------
def reconstruction_loss(x: Tensor, x_hat: Tensor, kind: str = "l2") -> Tensor:
    """``mean (x - x̂)²`` (``l2``) or ``mean |x - x̂|`` (``l1``) over all entries of two (B, L, C) tensors."""
    if kind == "l2":
        return (x - x_hat).pow(2).mean()
    if kind == "l1":
        return (x - x_hat).abs().mean()
    raise ValueError(f"recon_kind must be one of {RECON_KINDS}, got {kind!r}")


def sample_log_energy(signal: Tensor) -> Tensor:
    """``log(1 + mean_{t,d} s²)`` per sample: (B, L, D) -> (B,)."""
    return torch.log1p(signal.pow(2).mean(dim=(1, 2)))


def passivity_loss(y: Tensor, u_tilde: Tensor, gamma: float = 1.0) -> Tensor:
    """Passivity / gain-bound penalty (Eq. 34): ``mean_b [e_y - log(1 + γ² E_u)]_+²``.

    Args:
        y: (B, L, D) SSM output (before the gate).
        u_tilde: (B, L, D) SSM input after the step-size gain.
        gamma: the gain bound γ (1 = passivity).
    """
    e_y = sample_log_energy(y)
    energy_u = u_tilde.pow(2).mean(dim=(1, 2))
    bound = torch.log1p(gamma**2 * energy_u)  # = log(1 + γ² e^{e_u} - γ²)
    return F.relu(e_y - bound).pow(2).mean()


def tail_count(batch: int, fraction: float) -> int:
    """Samples in a top / bottom ``fraction`` of a batch: ``max(1, floor(fraction * batch))``."""
    return max(1, int(math.floor(fraction * batch + 1e-9)))


def margin_loss(e_y: Tensor, margin: float = 0.5, top_fraction: float = 0.1, bottom_fraction: float = 0.1) -> Tensor:
    """In-batch top-bottom margin (Eq. 35): ``[m - (mean top-p% e_y - mean bottom-q% e_y)]_+``.

    Args:
        e_y: (B,) per-sample log energies.
        margin: m.
        top_fraction, bottom_fraction: p and q as fractions (0.1 = 10 %), at least one sample each.
    """
    ordered = torch.sort(e_y.reshape(-1), descending=True).values
    k_top, k_bottom = tail_count(len(ordered), top_fraction), tail_count(len(ordered), bottom_fraction)
    gap = ordered[:k_top].mean() - ordered[-k_bottom:].mean()
    return F.relu(margin - gap)


def step_small_loss(delta_mean: Tensor, target: float = 0.02) -> Tensor:
    """``mean_{b,t} (Δ̄_t - δ*)²`` (Eq. 12) for the channel-mean step ``delta_mean`` (B, L)."""
    return (delta_mean - target).pow(2).mean()


def step_smooth_loss(delta_mean: Tensor) -> Tensor:
    """``mean_{b,t} (Δ̄_{t+1} - Δ̄_t)²`` (Eq. 13) for ``delta_mean`` (B, L); 0 when L = 1."""
    if delta_mean.shape[-1] < 2:
        return delta_mean.sum() * 0.0
    return (delta_mean[..., 1:] - delta_mean[..., :-1]).pow(2).mean()


def gate_regulariser(z_sharp: Tensor, kind: str = "entropy") -> Tensor:
    """Gate regulariser ``L_z`` on the sharpened gate logits ``z'`` (any shape).

    ``entropy``: ``mean H(σ(z'))``, ``H(p) = -p log p - (1-p) log(1-p)`` (nats), computed stably as
    ``σ(z') softplus(-z') + (1 - σ(z')) softplus(z')``; ``l1``: ``mean |σ(z')| = mean σ(z')``.
    """
    p = torch.sigmoid(z_sharp)
    if kind == "entropy":
        return (p * F.softplus(-z_sharp) + (1.0 - p) * F.softplus(z_sharp)).mean()
    if kind == "l1":
        return p.mean()
    raise ValueError(f"gate_regulariser must be one of {GATE_REGULARISERS}, got {kind!r}")


# --- LEH score terms ------------------------------------------------------------------------------------------
def leh_energy(signal: Tensor) -> Tensor:
    """Per-step log energy (Eq. 16): ``log(1 + mean_d s_{t,d}²)``, (B, L, D) -> (B, L)."""
    return torch.log1p(signal.pow(2).mean(dim=-1))


def leh_locality(signal: Tensor, band: int = 5, eps: float = 1e-8) -> Tensor:
    """Locality (Eq. 15): in-band minus off-band mean cosine similarity of each step, (B, L, D) -> (B, L).

    ``band`` = {j : 0 < |t - j| <= b}, ``off`` = {j : |t - j| > b}; the mean over an empty set is 0. Steps with a zero
    vector have similarity 0 to every step (``eps`` floors the norms).
    """
    length = signal.shape[1]
    unit = signal / signal.norm(dim=-1, keepdim=True).clamp_min(eps)
    sim = unit @ unit.transpose(1, 2)  # (B, L, L)
    idx = torch.arange(length, device=signal.device)
    dist = (idx[:, None] - idx[None, :]).abs()
    in_band = ((dist > 0) & (dist <= band)).to(sim.dtype)
    off_band = (dist > band).to(sim.dtype)
    band_mean = (sim * in_band).sum(-1) / in_band.sum(-1).clamp_min(1.0)
    off_mean = (sim * off_band).sum(-1) / off_band.sum(-1).clamp_min(1.0)
    return band_mean - off_mean


def hfr_cutoff(window: int) -> int:
    """First high-frequency rFFT bin of a length-``window`` segment: ``ceil((window/2 + 1) / 2)``."""
    return math.ceil((window / 2 + 1) / 2)


def leh_hfr(signal: Tensor, window: int = 16, eps: float = 1e-12) -> Tensor:
    """Localised high-frequency ratio (Eq. 17), (B, L, D) -> (B, L).

    For step t the segment is ``s[t - w//2 : t - w//2 + w]`` with reflect padding at both ends (``w`` is reduced
    to L when L < w); ``HFR_t = mean_d Σ_{f >= cut} |S_f|² / Σ_f |S_f|²`` over the ``w//2 + 1`` rFFT bins with
    ``cut = hfr_cutoff(w)`` (a segment of zeros has ratio 0).
    """
    length = signal.shape[1]
    w = max(1, min(window, length))
    left, right = w // 2, w - 1 - w // 2
    series = signal.transpose(1, 2)  # (B, D, L)
    if left or right:
        series = F.pad(series, (left, right), mode="reflect")
    segments = series.unfold(-1, w, 1)  # (B, D, L, w)
    power = torch.fft.rfft(segments, dim=-1).abs().pow(2)  # (B, D, L, w//2+1)
    high = power[..., hfr_cutoff(w):].sum(-1)
    ratio = high / power.sum(-1).clamp_min(eps)
    return ratio.mean(dim=1)


def leh_terms(signal: Tensor, band: int = 5, hfr_window: int = 16, locality_sign: float = 1.0,
              energy_signal: Tensor | None = None) -> Tensor:
    """The three LEH terms as they enter Eq. 18: (B, L, D) -> (B, 3, L), order ``LEH_TERMS``.

    ``locality_sign * Locality`` (Eq. 15), ``Energy`` (Eq. 16) of ``energy_signal`` (B, L, D') when given, else of
    ``signal``, and ``HFR`` (Eq. 17). Locality and HFR are unitless ratios, the energy is a log mean square.
    """
    energy = leh_energy(signal if energy_signal is None else energy_signal)
    return torch.stack([locality_sign * leh_locality(signal, band), energy, leh_hfr(signal, hfr_window)], dim=1)


def fuse_leh(terms: Tensor, mean: Tensor, std: Tensor, weights: Tensor) -> Tensor:
    """Eq. 18: ``Σ_k w_k (T_k - μ_k) / σ_k``; terms (B, 3, L), mean / std / weights (3,) -> (B, L)."""
    shape = (1, -1, 1)
    z = (terms - mean.to(terms).view(shape)) / std.to(terms).view(shape)
    return (weights.to(terms).view(shape) * z).sum(dim=1)


def reconstruction_score(x: Tensor, x_hat: Tensor) -> Tensor:
    """Ablation score ``score_type=recon``: ``mean_c (x - x̂)²``, (B, L, C) -> (B, L)."""
    return (x - x_hat).pow(2).mean(dim=-1)
