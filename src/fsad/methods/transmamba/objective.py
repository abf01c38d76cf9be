"""TransMamba losses and anomaly score (pure functions of the network outputs).

Attention maps come as channel-averaged maps of shape (B, H, t, t) whose up-sampling by tiling to the window
W is the official (B, H, W, W) map: entry (i, j) of the full map is ``m[i mod t, j mod t]`` (t = p for the
compact maps of ``TransMambaNetwork``; t = W for the materialised maps, which are their own tiling).

Exact evaluation on small maps. For a pair (high map a with period t_a, low map b with period t_b), every
quantity below is a function of (a[i mod t_a, j mod t_a], b[i mod t_b, j mod t_b]), hence periodic with
period q = lcm(t_a, t_b) (q divides W) in both i and j. So, with a_q, b_q the tilings to q x q:

* a full row sum over j < W equals ``(W / q) *`` the row sum over j < q;
* the mean over the W rows equals the mean over the first q rows;
* the per-row KL of row i equals that of row ``i mod q``.

The low map is normalised with its full-window row sums, ``Â_low = A_low / rowsum_W(A_low)``, where
``rowsum_W = (W / t_b) * rowsum_t``; the high map is used unnormalised (rows sum to W / p_h), as the
official code does (flag ``normalise_high`` normalises it too, an ablation).

Definitions (``KL(p‖q) = sum_j p (log(p + 1e-4) - log(q + 1e-4))`` per row, mean over heads):

* ``high_loss = mean_u [ mean KL(A_high‖sg(Â_low)) + mean KL(sg(Â_low)‖A_high) ]``;
* ``low_loss = mean_u [ mean KL(Â_low‖sg(A_high)) + mean KL(sg(A_high)‖Â_low) ]``;
* ``loss_T = low_loss - high_loss`` (value 0: both are the same symmetric KL; only the gradients differ: the
  low maps are pulled towards the high maps, the high maps pushed away from the low maps);
* ``loss_F = MSE(x, x̂) + recon_loss_f + loss_cl``;
* score: ``softmax_W(sign * D) + softmax_W(mean_c (x - x̂)^2)`` with
  ``D_t = sum_u temperature * (KL_t(A_high‖Â_low) + KL_t(Â_low‖A_high))``, sign = -1 in the code;
* raw score (no softmax): ``sign * z(D) + z(E)``, each term standardised with its mean and standard deviation over
  the training windows (:func:`raw_scores`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fsad.layers.patch_attention import Layout, group_expand, upsample
from fsad.methods.transmamba.network import TransMambaOutput

KL_EPS = 1e-4


def normalise_rows(maps: Tensor, window: int) -> Tensor:
    """Row-normalise the tiled map: (B, H, t, t) -> (B, H, t, t), ``m / ((W / t) * rowsum(m))``.

    The result's tiling to W x W has rows summing to 1 (the official ``A / rowsum(A)`` on the full map).
    """
    t = maps.shape[-1]
    return maps / (maps.sum(dim=-1, keepdim=True) * (window // t))


def common_period(a: Tensor, b: Tensor, window: int) -> tuple[Tensor, Tensor, int]:
    """Tile two maps (B, H, t_a, t_a), (B, H, t_b, t_b) to their common period q = lcm(t_a, t_b): -> (B, H, q, q)."""
    ta, tb = a.shape[-1], b.shape[-1]
    if window % ta or window % tb:
        raise ValueError(f"map sizes {ta}, {tb} must divide the window {window}")
    q = math.lcm(ta, tb)
    return upsample(a, ta, Layout.TILE, q), upsample(b, tb, Layout.TILE, q), q


def kl_rows(p: Tensor, q: Tensor) -> Tensor:
    """``sum_j p (log(p + eps) - log(q + eps))`` over the last axis, then mean over heads: (B, H, t, t) -> (B, t)."""
    return (p * (torch.log(p + KL_EPS) - torch.log(q + KL_EPS))).sum(dim=-1).mean(dim=1)


def _check_pairs(high: list[Tensor], low: list[Tensor]) -> None:
    if not high or len(high) != len(low):
        raise ValueError(f"high and low must be non-empty lists of equal length, got {len(high)}, {len(low)}")


def time_losses(high: list[Tensor], low: list[Tensor], window: int, normalise_high: bool = False) -> dict[str, Tensor]:
    """``loss_time = low_loss - high_loss`` with the official stop-gradients (module docstring).

    Returns:
        ``loss_time`` (with gradients), ``high_loss`` and ``low_loss`` (with gradients; equal values).
    """
    _check_pairs(high, low)
    high_loss = high[0].new_zeros(())
    low_loss = high[0].new_zeros(())
    for a, b in zip(high, low):
        b_hat = normalise_rows(b, window)
        a = normalise_rows(a, window) if normalise_high else a
        a_q, b_q, q = common_period(a, b_hat, window)
        reps = window // q  # full-row sums = reps * period-row sums; row means are equal

        def mean_kl(p: Tensor, r: Tensor) -> Tensor:
            return reps * kl_rows(p, r).mean()

        high_loss = high_loss + mean_kl(a_q, b_q.detach()) + mean_kl(b_q.detach(), a_q)
        low_loss = low_loss + mean_kl(b_q, a_q.detach()) + mean_kl(a_q.detach(), b_q)
    high_loss, low_loss = high_loss / len(high), low_loss / len(high)
    return {"loss_time": low_loss - high_loss, "high_loss": high_loss, "low_loss": low_loss}


def frequency_losses(x: Tensor, out: TransMambaOutput) -> dict[str, Tensor]:
    """``loss_freq = MSE(x, x̂) + recon_loss_f + loss_cl`` (all weights 1); x (B, W, C) in the scaled input space."""
    recon_time = torch.nn.functional.mse_loss(out.x_hat, x)
    return {
        "loss_freq": recon_time + out.recon_loss_f + out.loss_cl,
        "recon_time": recon_time,
        "recon_freq": out.recon_loss_f,
        "contrastive": out.loss_cl,
    }


def transmamba_loss(x: Tensor, out: TransMambaOutput, normalise_high: bool = False) -> dict[str, Tensor]:
    """All training terms: ``loss = loss_time + loss_freq`` (the validation loss of the code) plus the parts.

    ``loss_time`` trains the time branch and ``loss_freq`` the frequency branch (disjoint parameters); the
    other entries are for logging.
    """
    terms = time_losses(out.high, out.low, x.shape[1], normalise_high)
    terms.update(frequency_losses(x, out))
    terms["loss"] = terms["loss_time"] + terms["loss_freq"]
    return terms


def time_discrepancy(
    high: list[Tensor], low: list[Tensor], window: int, temperature: float = 50.0, normalise_high: bool = False
) -> Tensor:
    """``D_t = sum_u temperature * (KL_t(A_high‖Â_low) + KL_t(Â_low‖A_high))``: -> (B, W)."""
    _check_pairs(high, low)
    total = None
    for a, b in zip(high, low):
        b_hat = normalise_rows(b, window)
        a = normalise_rows(a, window) if normalise_high else a
        a_q, b_q, q = common_period(a, b_hat, window)
        per_row = (temperature * (window // q)) * (kl_rows(a_q, b_q) + kl_rows(b_q, a_q))  # (B, q)
        full = group_expand(per_row, -1, q, Layout.TILE, window)  # row i -> i mod q
        total = full if total is None else total + full
    return total


def reconstruction_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """``mean_c (x - x̂)^2``: (B, W, C) x2 -> (B, W)."""
    return ((x - x_hat) ** 2).mean(dim=-1)


#: values of ``model.score_form``: the official code's sum of two softmaxes, or the standardised raw terms
SCORE_FORMS = ("code", "raw")
#: order of the term axis of :func:`score_terms`
TERM_NAMES = ("discrepancy", "recon")


def score_terms(x: Tensor, out: TransMambaOutput, temperature: float = 50.0, normalise_high: bool = False) -> Tensor:
    """The two raw per-step quantities of the score: (B, W, C) -> (B, 2, W), order ``TERM_NAMES``.

    Term 0: the attention discrepancy ``D_t`` (:func:`time_discrepancy`, nats times ``temperature``); term 1: the
    reconstruction error ``mean_c (x - x̂)^2`` (squared units of the scaled input).
    """
    discrepancy = time_discrepancy(out.high, out.low, x.shape[1], temperature, normalise_high)
    return torch.stack([discrepancy, reconstruction_error(x, out.x_hat)], dim=1)


def code_score(terms: Tensor, time_score_sign: float = -1.0) -> Tensor:
    """The official score from the raw terms (B, 2, W): ``softmax_W(sign * D) + softmax_W(E)`` -> (B, W)."""
    return torch.softmax(time_score_sign * terms[:, 0], dim=-1) + torch.softmax(terms[:, 1], dim=-1)


def raw_scores(standardised: Tensor, time_score_sign: float = -1.0) -> dict[str, Tensor]:
    """The pre-softmax forms from the terms standardised with training statistics (B, 2, W), each (B, W):

    ``raw/discrepancy = sign * z(D)``, ``raw/recon = z(E)`` (the quantities the code softmaxes, in units of their
    training standard deviation) and ``raw = raw/discrepancy + raw/recon`` (the code's sum without the softmaxes).
    """
    discrepancy = time_score_sign * standardised[:, 0]
    recon = standardised[:, 1]
    return {"raw": discrepancy + recon, "raw/discrepancy": discrepancy, "raw/recon": recon}


def transmamba_score(
    x: Tensor,
    out: TransMambaOutput,
    temperature: float = 50.0,
    time_score_sign: float = -1.0,
    normalise_high: bool = False,
) -> Tensor:
    """Per-step score ``softmax_W(sign * D) + softmax_W(mean_c (x - x̂)^2)``: -> (B, W), rows sum to 2.

    ``time_score_sign = -1`` is the official code (inherited from DCdetector's ``softmax(-KL)``: a *larger*
    attention discrepancy gives a *smaller* time part); ``+1`` is the ablation that scores large discrepancies
    high.
    """
    return code_score(score_terms(x, out, temperature, normalise_high), time_score_sign)
