"""FreCT training objective and anomaly score (pure functions of the network outputs).

Inputs are the two lists returned by ``FreCTNetwork``: ``series[u]`` (inter view Z'_N) and ``prior[u]``
(intra view Z'_P), u = 0..U-1, each of shape (B, L, H, D) (H = 1 with the convolution module).

Frequency term, ``fft`` option (as in the official solver):

* ``"fft"`` (headline): complex FFT along the **time** axis (dim 1). The resulting axis 1 holds frequency
  bins 0..L-1; in the score, bin k is added to time step k (the code's position-wise sum, kept as is).
* ``"rfft"``: real FFT along the **feature** axis D (dim -1) -> (B, L, H, D//2+1), as the official solver does
  for ``auxi_mode=rfft`` with its default ``auxi_type=complex``. Axis 1 stays the time axis, so the score's
  per-step term is aligned with time steps and needs no padding of the bin axis.
* ``"rfft2"``: ``torch.fft.rfft2`` over the last two axes (H, D); with H = 1 it equals ``"rfft"`` up to
  rounding. Time alignment as for ``"rfft"``.

In every mode the modulus of the complex difference is averaged over all entries (loss) or over the
non-time axes (score). For the ``"fft"`` loss term, ``mean_abs_time_spectrum`` computes the same mean from the
half spectrum of the real difference (Hermitian symmetry) with one matrix product along time, which avoids the
strided FFT and its transposes on the large (B, L, 1, D) outputs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

KL_EPS = 1e-4
FFT_MODES = ("fft", "rfft", "rfft2")


def normalise_features(prior: Tensor) -> Tensor:
    """``P̂ = prior / sum_D prior``: (B, L, H, D) -> (B, L, H, D), rows over D sum to 1."""
    return prior / prior.sum(dim=-1, keepdim=True)


def kl_per_step(p: Tensor, q: Tensor) -> Tensor:
    """``sum_D p * (log(p + 1e-4) - log(q + 1e-4))``, then mean over the head axis: (B, L, H, D) -> (B, L)."""
    return (p * (torch.log(p + KL_EPS) - torch.log(q + KL_EPS))).sum(dim=-1).mean(dim=2)


def spectral_difference(series: Tensor, prior: Tensor, fft: str = "fft") -> Tensor:
    """Modulus of the spectral difference of two (B, L, H, D) outputs (see the module docstring).

    Returns:
        ``"fft"``: (B, L, H, D), axis 1 = frequency bin; ``"rfft"``/``"rfft2"``: (B, L, H, D//2+1), axis 1 = time.
    """
    delta = series - prior  # the transforms are linear: FFT(S) - FFT(P) = FFT(S - P)
    if fft == "fft":
        diff = torch.fft.fft(delta, dim=1)
    elif fft == "rfft":
        diff = torch.fft.rfft(delta, dim=-1)
    elif fft == "rfft2":
        diff = torch.fft.rfft2(delta)
    else:
        raise ValueError(f"fft must be one of {FFT_MODES}, got {fft!r}")
    return diff.abs()


def _half_spectrum_basis(length: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Real DFT rows for bins k = 0 .. L//2 and their multiplicities in the full spectrum.

    Returns:
        basis: (2K, L), rows ``cos(2 pi k t / L)`` then ``-sin(2 pi k t / L)`` (real and imaginary parts).
        weights: (K,), 1 for bin 0 (and bin L/2 when L is even), else 2 (bin k and its mirror L - k).
    """
    k = torch.arange(length // 2 + 1, dtype=torch.float64, device=device)
    angle = torch.outer(k, torch.arange(length, dtype=torch.float64, device=device)) * (2 * math.pi / length)
    weights = torch.full_like(k, 2.0)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    return torch.cat([angle.cos(), -angle.sin()]).to(dtype), weights.to(dtype)


class _HalfSpectrumAbsMean(torch.autograd.Function):
    """``mean |FFT_time(delta)|`` over all L bins from the half spectrum; closed-form backward.

    Forward: ``spectrum = basis @ delta`` (real rows then imaginary rows), ``|X_k| = hypot(re_k, im_k)``,
    weighted sum over k = 0 .. L//2. Backward: ``d|X_k|/d(re, im) = (re, im) / |X_k|`` (0 where |X_k| = 0, the
    convention of ``torch.abs`` on complex numbers), then ``basis^T @``.
    """

    @staticmethod
    def forward(ctx, delta: Tensor) -> Tensor:  # type: ignore[override]
        b, length = delta.shape[:2]
        basis, weights = _half_spectrum_basis(length, delta.dtype, delta.device)  # (2K, L), (K,)
        n_bins = weights.shape[0]
        spectrum = torch.matmul(basis, delta.reshape(b, length, -1))  # (B, 2K, R)
        modulus = torch.hypot(spectrum[:, :n_bins], spectrum[:, n_bins:])  # (B, K, R)
        ctx.save_for_backward(basis, weights, spectrum, modulus)
        ctx.delta_shape = delta.shape
        return torch.einsum("bkr,k->", modulus, weights) / delta.numel()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        basis, weights, spectrum, modulus = ctx.saved_tensors
        per_bin = weights[:, None] * (grad / math.prod(ctx.delta_shape))  # (K, 1)
        coef = torch.where(modulus > 0, per_bin / modulus, torch.zeros_like(modulus))  # (B, K, R)
        grad_spectrum = spectrum * torch.cat([coef, coef], dim=1)  # (B, 2K, R)
        return torch.matmul(basis.T, grad_spectrum).reshape(ctx.delta_shape)


def mean_abs_time_spectrum(delta: Tensor) -> Tensor:
    """``torch.fft.fft(delta, dim=1).abs().mean()`` for real ``delta`` (B, L, ...), via the half spectrum.

    ``|X[L - k]| = |X[k]|`` for real input, so the mean over the L bins is a weighted mean over k = 0 .. L//2,
    computed with one (2K x L) real matrix product along time (no strided FFT on the large outputs).
    """
    return _HalfSpectrumAbsMean.apply(delta)


def _frequency_loss(series: Tensor, prior: Tensor, fft: str) -> Tensor:
    """Scalar ``mean |spectral difference|`` of one output pair."""
    if fft == "fft":
        return mean_abs_time_spectrum(series - prior)
    return spectral_difference(series, prior, fft).mean()


def _check_pairs(series: list[Tensor], prior: list[Tensor]) -> None:
    if not series or len(series) != len(prior):
        raise ValueError(f"series and prior must be non-empty lists of equal length, got {len(series)}, {len(prior)}")


def _log_ratio(a: Tensor, b: Tensor) -> Tensor:
    """``log(a + eps) - log(b + eps)``, elementwise."""
    return torch.log((a + KL_EPS) / (b + KL_EPS))


def symmetric_kl_per_step(a: Tensor, b: Tensor) -> Tensor:
    """``KL(a‖b) + KL(b‖a) = sum_D (a - b) * (log(a + eps) - log(b + eps))``, mean over heads: -> (B, L)."""
    return ((a - b) * _log_ratio(a, b)).sum(dim=-1).mean(dim=2)


#: values of ``model.consistency``: the divergence of the time-domain consistency loss (paper Sec. V-E, Fig. 3)
CONSISTENCIES = ("sym_kl", "asym_kl", "js")


def consistency_per_step(a: Tensor, b: Tensor, consistency: str = "sym_kl") -> Tensor:
    """The divergence ``Div(a, b)`` of the consistency loss, per step: (B, L, H, D) pairs -> (B, L), mean over heads.

    With ``KL(p‖q) = sum_D p * (log(p + eps) - log(q + eps))`` (:func:`kl_per_step`):

    * ``"sym_kl"`` (the paper's Eqs. 17-18, the default): ``KL(a‖b) + KL(b‖a)``;
    * ``"asym_kl"`` (Sec. V-E's "asymmetrical KL" variant): ``KL(a‖b)`` alone, i.e. the first term of each of
      Eqs. 17-18, ``KL(Z'_P, Ω(Z'_N))`` and ``KL(Z'_N, Ω(Z'_P))``;
    * ``"js"`` (Sec. V-E's "JS divergence" variant): ``KL(a‖m) / 2 + KL(b‖m) / 2`` with ``m = (a + b) / 2``.
    """
    if consistency == "sym_kl":
        return symmetric_kl_per_step(a, b)
    if consistency == "asym_kl":
        return kl_per_step(a, b)
    if consistency == "js":
        m = 0.5 * (a + b)
        return 0.5 * kl_per_step(a, m) + 0.5 * kl_per_step(b, m)
    raise ValueError(f"consistency must be one of {CONSISTENCIES}, got {consistency!r}")


class _SymmetricKLSum(torch.autograd.Function):
    """``V = sum over all entries of (a - b) * (log(a + eps) - log(b + eps))`` with scaled gradients.

    Backward returns ``scale_a * dV/da`` and ``scale_b * dV/db``, where
    ``dV/da = log_ratio + (a - b) / (a + eps)`` and ``dV/db = -(log_ratio + (a - b) / (b + eps))``.
    This evaluates the equal-valued series and prior terms of the loss once and places their gradients in
    closed form, with in-place arithmetic on temporaries (fewer passes over the large outputs than autograd
    through two KL pairs).
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, scale_a: float, scale_b: float) -> Tensor:  # type: ignore[override]
        log_ratio = (a + KL_EPS).div_(b + KL_EPS).log_()  # _log_ratio, in place on a temporary (no autograd here)
        diff = a - b
        ctx.save_for_backward(a, b, diff, log_ratio)
        ctx.scales = (scale_a, scale_b)
        return torch.dot(diff.reshape(-1), log_ratio.reshape(-1))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # type: ignore[override]
        a, b, diff, log_ratio = ctx.saved_tensors
        grads: list[Tensor | None] = []
        for x, scale, sign, needed in zip((a, b), ctx.scales, (1.0, -1.0), ctx.needs_input_grad):
            if not (scale and needed):
                grads.append(None)
                continue
            g = x + KL_EPS
            torch.div(diff, g, out=g)  # (a - b) / (x + eps)
            grads.append(g.add_(log_ratio).mul_(grad * (sign * scale)))
        return grads[0], grads[1], None, None


def frect_loss(
    series: list[Tensor],
    prior: list[Tensor],
    alpha: float = 0.5,
    fft: str = "fft",
    stop_grad_series: bool = True,
    stop_grad_prior: bool = True,
    consistency: str = "sym_kl",
) -> dict[str, Tensor]:
    """``loss = alpha * (L_prior - L_series) + (1 - alpha) * L_freq`` (code / paper Eqs. 17-21).

    ``L_series = mean_u[ KL(S‖sg(P̂)) + KL(sg(P̂)‖S) ]`` and ``L_prior = mean_u[ KL(P̂‖sg(S)) + KL(sg(S)‖P̂) ]``
    (each KL averaged over (B, L)); ``L_freq = sum_u mean|spectral difference|`` on the raw prior.

    Both time terms equal the same symmetric KL value V; only their gradients differ. So ``loss_time`` has value
    0 and the gradient of ``L_prior - L_series``: ``[stop_grad_prior] * dV/dP̂ - [stop_grad_series] * dV/dS``
    (e.g. with the spec's default, S is pushed by ``-dV/dS`` and P̂ by ``+dV/dP̂``).

    Args:
        stop_grad_prior: detach P̂ inside ``L_series`` (paper's "intra" stop-gradient).
        stop_grad_series: detach S inside ``L_prior`` (paper's "inter" stop-gradient).
            With both False, ``L_series`` and ``L_prior`` are the same symmetric quantity, so ``loss_time`` is
            identically 0 (value and gradient).
        consistency: the divergence in ``L_series`` and ``L_prior`` (:func:`consistency_per_step`): ``"sym_kl"``
            (default, as above), ``"asym_kl"`` (``L_series = mean_u KL(S‖sg(P̂))``, ``L_prior = mean_u KL(P̂‖sg(S))``:
            their values differ, so ``loss_time`` is not 0) or ``"js"``. The anomaly score keeps the symmetric KL
            (Sec. V-E varies the loss function only).

    Returns:
        Scalars ``loss``, ``loss_time``, ``loss_freq`` (with gradients) and ``loss_series``, ``loss_prior``
        (values, detached, for logging).
    """
    _check_pairs(series, prior)
    if consistency != "sym_kl":
        return _divergence_loss(series, prior, alpha, fft, stop_grad_series, stop_grad_prior, consistency)
    scale_series, scale_prior = -float(stop_grad_series), float(stop_grad_prior)
    sym = series[0].new_zeros(())
    loss_freq = series[0].new_zeros(())
    for s, q in zip(series, prior):
        n_steps = s.numel() // s.shape[-1]  # B * L * H: the KL is summed over D, averaged over the rest
        sym = sym + _SymmetricKLSum.apply(s, normalise_features(q), scale_series, scale_prior) / n_steps
        loss_freq = loss_freq + _frequency_loss(s, q, fft)
    sym = sym / len(series)
    return _loss_terms(alpha, sym - sym.detach(), loss_freq, sym, sym)


def _loss_terms(alpha: float, loss_time: Tensor, loss_freq: Tensor, loss_series: Tensor,
                loss_prior: Tensor) -> dict[str, Tensor]:
    """The objective's dict: ``loss = alpha * L_tim + (1 - alpha) * L_fre`` and its logged parts."""
    return {
        "loss": alpha * loss_time + (1.0 - alpha) * loss_freq,
        "loss_time": loss_time,
        "loss_freq": loss_freq,
        "loss_series": loss_series.detach(),
        "loss_prior": loss_prior.detach(),
    }


def _divergence_loss(
    series: list[Tensor],
    prior: list[Tensor],
    alpha: float,
    fft: str,
    stop_grad_series: bool,
    stop_grad_prior: bool,
    consistency: str,
) -> dict[str, Tensor]:
    """:func:`frect_loss` for any ``consistency``, written out with autograd (no shared-value shortcut):
    ``L_series = mean_u mean_(B, L) Div(S, sg(P̂))``, ``L_prior = mean_u mean_(B, L) Div(P̂, sg(S))``."""
    if consistency not in CONSISTENCIES:
        raise ValueError(f"consistency must be one of {CONSISTENCIES}, got {consistency!r}")
    loss_series = series[0].new_zeros(())
    loss_prior = series[0].new_zeros(())
    loss_freq = series[0].new_zeros(())
    for s, q in zip(series, prior):
        p_hat = normalise_features(q)
        loss_series = loss_series + consistency_per_step(
            s, p_hat.detach() if stop_grad_prior else p_hat, consistency).mean()
        loss_prior = loss_prior + consistency_per_step(
            p_hat, s.detach() if stop_grad_series else s, consistency).mean()
        loss_freq = loss_freq + _frequency_loss(s, q, fft)
    loss_series, loss_prior = loss_series / len(series), loss_prior / len(series)
    return _loss_terms(alpha, loss_prior - loss_series, loss_freq, loss_series, loss_prior)


#: values of ``model.score_form``: the official code's softmaxed score, its pre-softmax logit, Eqs. 22-24
SCORE_FORMS = ("code", "raw", "paper")
#: name of each score form in reports (``test/<name>/auc_roc``, ``test_scores_<name>``); ``paper_score`` keeps the
#: paper's form apart from the ``paper`` threshold strategy's keys (``test/paper/f1``)
FORM_REPORT_NAMES = {"code": "code", "raw": "raw", "paper": "paper_score"}


def frect_score_terms(series: list[Tensor], prior: list[Tensor], fft: str = "fft") -> tuple[Tensor, Tensor]:
    """The two per-step consistency terms, before temperature, sign and weights: -> ``(K, F)``, each (B, L).

    ``K_t = sum_u (KL_t(S‖P̂) + KL_t(P̂‖S))`` (nats; paper Eq. 22 without the stop-gradients, which change no
    value) and ``F_t = sum_u mean_{H, bins} |spectral diff|[t]`` (paper Eq. 23 read per position as the code does;
    in the units of the network outputs).
    """
    _check_pairs(series, prior)
    kl_term = series[0].new_zeros(series[0].shape[:2])  # (B, L)
    freq_term = series[0].new_zeros(series[0].shape[:2])  # (B, L)
    for s, q in zip(series, prior):
        kl_term = kl_term + symmetric_kl_per_step(s, normalise_features(q))
        freq_term = freq_term + spectral_difference(s, q, fft).mean(dim=-1).mean(dim=-1)
    return kl_term, freq_term


def frect_score_forms(
    series: list[Tensor],
    prior: list[Tensor],
    temperature: float = 50.0,
    time_score_sign: float = -1.0,
    fft: str = "fft",
    alpha: float = 0.5,
) -> dict[str, Tensor]:
    """Every per-step score form of one batch, each (B, L):

    * ``raw/kl = sign * temperature * K`` and ``raw/fft = F`` (:func:`frect_score_terms`): the two terms as they
      enter the code's logit;
    * ``raw = alpha * raw/kl + (1 - alpha) * raw/fft``: the code's logit before its softmax;
    * ``code = softmax_L(raw)``: the official score (rows sum to 1). A softmax over the window ignores any
      constant added to a window, so it keeps the ranking within a window but not between windows;
    * ``paper = alpha * K + (1 - alpha) * F``: the paper's Eqs. 22-24 as printed (positive KL, no temperature, no
      softmax).
    """
    kl_term, freq_term = frect_score_terms(series, prior, fft)
    kl_logit = time_score_sign * temperature * kl_term
    raw = alpha * kl_logit + (1.0 - alpha) * freq_term
    return {
        "code": torch.softmax(raw, dim=-1),
        "raw": raw,
        "raw/kl": kl_logit,
        "raw/fft": freq_term,
        "paper": alpha * kl_term + (1.0 - alpha) * freq_term,
    }


def frect_score(
    series: list[Tensor],
    prior: list[Tensor],
    temperature: float = 50.0,
    time_score_sign: float = -1.0,
    fft: str = "fft",
    alpha: float = 0.5,
) -> Tensor:
    """Per-step anomaly score ``softmax_L(alpha * sign * K + (1 - alpha) * F)``: -> (B, L), rows sum to 1.

    ``K_t = sum_u temperature * (KL_t(S‖P̂) + KL_t(P̂‖S))``; ``F_t = sum_u mean_{H, bins} |spectral diff|[t]``.
    ``time_score_sign = -1`` is the official code (inherited from DCdetector), ``+1`` the paper's Eq. 24.
    """
    return frect_score_forms(series, prior, temperature, time_score_sign, fft, alpha)["code"]
