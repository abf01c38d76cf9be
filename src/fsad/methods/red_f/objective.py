"""RED-F's losses (paper Eqs. 15-22) and scores (Eq. 23; REM as a detector, Table IV)."""

from __future__ import annotations

from torch import Tensor

from fsad.methods.red_f.rem import REMOutput

SCORE_REDUCTIONS = ("sum", "mean")


def rem_loss(x: Tensor, rem: REMOutput, lambda_time: float = 1.0, lambda_freq: float = 0.2) -> dict[str, Tensor]:
    """``L_rem = λ_time mean((x - x_rec)^2) + λ_freq (mean|XR - XR_rec| + mean|XI - XI_rec|)`` (Eqs. 16-18).

    x: (B, L, C) in the scaled data space (the time term is taken there, after de-normalisation); the frequency
    term compares the spectrum of the instance-normalised window with the heads' outputs (CATCH convention).
    Returns ``rem`` (the weighted sum), ``rem_time`` and ``rem_freq`` (unweighted terms).
    """
    time = (x - rem.x_rec).pow(2).mean()
    freq = sum((a - b).abs().mean() for a, b in zip(rem.spectrum, rem.spectrum_rec))
    return {"rem": lambda_time * time + lambda_freq * freq, "rem_time": time, "rem_freq": freq}


def dfm_loss(y0: Tensor, y0_hat: Tensor, y0_rec: Tensor | None, msp_targets: list[Tensor],
             msp_forecasts: list[Tensor], lambda_main: float = 0.5, lambda_msp: float = 0.5,
             lambda_contra: float = 1.0) -> dict[str, Tensor]:
    """``L_dfm = λ_main MSE(Y0, Ŷ0) + λ_msp Σ_k MSE(Y_k, Ŷ_k) + λ_contra MSE(Ŷ0, Ŷ0_rec)`` (Eqs. 19-22).

    All forecasts and targets are (B, H, C). ``y0_rec`` may be None when ``λ_contra = 0`` (the term is skipped).
    Returns ``dfm`` (weighted sum) and the unweighted ``main``, ``msp`` (sum over modules) and ``contra``.
    """
    main = (y0 - y0_hat).pow(2).mean()
    msp = sum(((y - y_hat).pow(2).mean() for y, y_hat in zip(msp_targets, msp_forecasts)), main.new_zeros(()))
    out = {"main": main, "msp": msp}
    total = lambda_main * main + lambda_msp * msp
    if y0_rec is not None:
        out["contra"] = (y0_hat - y0_rec).pow(2).mean()
        total = total + lambda_contra * out["contra"]
    out["dfm"] = total
    return out


def future_score(y0_hat: Tensor, y0_rec: Tensor, reduction: str = "sum") -> Tensor:
    """Eq. 23: ``S[j] = Σ_c (Ŷ0[j, c] - Ŷ0_rec[j, c])^2`` (``mean`` over channels with ``reduction="mean"``).

    (B, H, C) x 2 -> (B, H). The two forecasts come from the same DFM on the window and on REM's reconstruction
    of it; where REM removed an emerging anomaly the forecasts disagree.
    """
    if reduction not in SCORE_REDUCTIONS:
        raise ValueError(f"score_reduction must be one of {SCORE_REDUCTIONS}, got {reduction!r}")
    squared = (y0_hat - y0_rec).pow(2)
    return squared.sum(dim=-1) if reduction == "sum" else squared.mean(dim=-1)


def reconstruction_score(x: Tensor, rem: REMOutput, freq_weight: float = 0.0) -> Tensor:
    """REM as a detector: ``mean_c (x - x_rec)^2`` per step, (B, W, C) -> (B, W).

    With ``freq_weight > 0`` CATCH's frequency term is added: ``freq_weight * mean_c (|XR - XR_rec| +
    |XI - XI_rec|)`` at frequency bin j, placed at step j (CATCH adds the spectral error bin by bin).
    """
    score = (x - rem.x_rec).pow(2).mean(dim=-1)
    if freq_weight:
        spectral = sum((a - b).abs() for a, b in zip(rem.spectrum, rem.spectrum_rec))  # (B, C, W)
        score = score + freq_weight * spectral.mean(dim=1)
    return score


def split_sample(x: Tensor, window: int, horizon: int) -> tuple[list[Tensor], list[Tensor]]:
    """Algorithm 1: a sample of ``L + (n + 1) H`` steps -> look-backs ``X_k = x[kH : kH + L]`` and targets
    ``Y_k = x[kH + L : kH + L + H]`` for k = 0..n. (B, T, C) -> two lists of n + 1 tensors, (B, L, C) / (B, H, C).
    """
    blocks, rest = divmod(x.shape[1] - window, horizon)
    if blocks < 1 or rest:
        raise ValueError(f"a training sample must hold L + k H steps (L={window}, H={horizon}, k >= 1), "
                         f"got {x.shape[1]}: check data.window, data.horizon and data.horizon_blocks")
    looks = [x[:, k * horizon: k * horizon + window] for k in range(blocks)]
    targets = [x[:, k * horizon + window: (k + 1) * horizon + window] for k in range(blocks)]
    return looks, targets

