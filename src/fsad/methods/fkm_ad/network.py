"""FKM-AD network: a pre-norm residual stack of FKM mixers (Mamba S6 blocks with three modifications).

Shapes: B = batch, L = window length, C = data channels, d = ``d_model``, E = ``d_inner = expand * d``,
N = ``d_state``, R = ``dt_rank``, F = ``n_freqs``, r = ``kan_rank``.

``x (B, L, C) -> h0 = Linear(C -> d)(x) -> h_{l+1} = h_l + FKMMixer_l(LayerNorm(h_l))``, then
``x̂ = Linear(d -> C)(LayerNorm(h_last))`` (B, L, C).

One mixer on ``v (B, L, d)`` (paper Sec. 3.2-3.4, spec ``fkm_ad.md`` Sec. 2):

1. Input projection ``h = in_proj(v) + h_four(v)`` (B, L, 2E), split into the main branch ``x_m`` and the gate
   ``z``. ``h_four = U (V Φ(v)) + b_c`` is the low-rank Fourier-series KAN (:class:`FourierKAN`, Eqs. 3-6); off
   with ``use_fourier_kan=False`` (the plain Mamba ``in_proj``).
2. Temperature-sharpened gate ``z' = γ_z (z - sg(mean_t z))`` (Eq. 7, :func:`sharpen_gate`); ``z' = z`` with
   ``use_temp_gate=False``.
3. ``u = SiLU(causal depthwise conv(x_m))``, ``[δ̃, B, C] = x_proj(u)``,
   ``Δ = clamp(softplus(dt_proj(δ̃)), 0, δ_max)`` (B, L, E) (Eq. 8).
4. Step-size gain ``ũ = u (1 + α_δ tanh(Conv1d_k5(Δ̄)))`` with ``Δ̄ = mean_c Δ`` (B, L) (Eqs. 9-11,
   :func:`step_gain`); ``ũ = u`` with ``use_step_gain=False``.
5. ``y = S6(ũ, Δ, A = -exp(A_log), B, C, D)`` in (at least) float32 (Eq. 14), ``out = out_proj(y * act(z'))``
   with ``act`` = SiLU (Mamba) or sigmoid (the paper's analysis).

:class:`FKMMixer` subclasses the platform's :class:`fsad.layers.mamba.Mamba` (parameter names, shapes and
initialisation of ``mamba_ssm.Mamba``: ``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``). With the three flags off, ``delta_max=None`` (or not binding) and ``in_proj_bias=False`` a mixer
computes exactly what a Mamba block with the same weights computes, and the state dicts are interchangeable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.mamba import Mamba
from fsad.layers.selective_scan import selective_scan

GATE_FNS = ("silu", "sigmoid")


def sharpen_gate(z: Tensor, temperature: Tensor | float) -> Tensor:
    """Eq. 7: ``γ_z (z - stopgrad(mean_t z))`` for gate logits ``z (B, L, E)`` (time on axis 1).

    The mean over the L steps is detached, so ``∂z'_t/∂z_s = γ_z [t = s]`` (no ``-γ_z / L`` term).
    """
    return temperature * (z - z.mean(dim=1, keepdim=True).detach())


def step_gain(delta_mean: Tensor, conv: nn.Conv1d, alpha: Tensor | float) -> Tensor:
    """Eqs. 10-11 / 14: the input gain ``1 + α_δ tanh(Conv1d(Δ̄))``, (B, L) -> (B, L).

    ``conv`` is a 1 -> 1 channel convolution over time (kernel 5, padding 2 keeps the length).
    """
    return 1.0 + alpha * torch.tanh(conv(delta_mean.unsqueeze(1)).squeeze(1))


class FourierKAN(nn.Module):
    """Low-rank Fourier-series KAN branch (Eqs. 3-5): ``U (V Φ(v)) + b_c``, (B, L, d_in) -> (B, L, d_out).

    ``Φ(v) = [φ(v_1); ...; φ(v_d_in)]`` (2F·d_in values per step), ``φ(v_i) = [sin(2π f_k v_i / s_i)]_k ‖
    [cos(2π f_k v_i / s_i)]_k``. Learnable: per-dimension scales ``s_i = exp(log_scale_i)`` (positive, init 1),
    frequencies ``f_k`` (init uniformly spaced on [1, f_max]), ``V = down`` (2F·d_in -> r, no bias) and
    ``U = up`` (r -> d_out, bias ``b_c``). ``up`` starts at zero (``zero_init_up``), so the branch outputs 0 and
    the mixer starts as a plain Mamba block.
    """

    def __init__(self, d_in: int, d_out: int, n_freqs: int = 16, rank: int = 32, f_max: float = 4.0,
                 zero_init_up: bool = True):
        super().__init__()
        if n_freqs < 1 or rank < 1:
            raise ValueError(f"n_freqs and kan_rank must be >= 1, got {n_freqs}, {rank}")
        self.d_in, self.n_freqs = d_in, n_freqs
        self.log_scale = nn.Parameter(torch.zeros(d_in))
        self.freqs = nn.Parameter(torch.linspace(1.0, f_max, n_freqs) if n_freqs > 1 else torch.ones(1))
        self.down = nn.Linear(2 * n_freqs * d_in, rank, bias=False)
        self.up = nn.Linear(rank, d_out, bias=True)
        if zero_init_up:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def basis(self, v: Tensor) -> Tensor:
        """Φ(v): (B, L, d_in) -> (B, L, 2F·d_in), grouped per input dimension (sines then cosines)."""
        return _FourierBasis.apply(v / self.log_scale.exp(), self.freqs).flatten(-2)

    def forward(self, v: Tensor) -> Tensor:
        return self.up(self.down(self.basis(v)))


class _FourierBasis(torch.autograd.Function):
    """[sin(2π f_k x_i)]_k ‖ [cos(2π f_k x_i)]_k for x (..., d_in) and f (F,) -> (..., d_in, 2F).

    Written once into the output (no concatenation); backward reuses the saved sines and cosines:
    dθ = g_sin cos θ - g_cos sin θ with θ = 2π f x, then dx = Σ_k 2π f_k dθ_k and df_k = Σ 2π x dθ_k.
    About half the passes over the (..., d_in, 2F) tensor that plain autograd makes (FKM-AD's largest tensor).
    """

    @staticmethod
    def forward(ctx, x: Tensor, freqs: Tensor) -> Tensor:
        n = freqs.shape[0]
        angle = x.unsqueeze(-1) * ((2 * math.pi) * freqs)
        out = x.new_empty(*x.shape, 2 * n)
        torch.sin(angle, out=out[..., :n])
        torch.cos(angle, out=out[..., n:])
        ctx.save_for_backward(x, freqs, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        x, freqs, out = ctx.saved_tensors
        n = freqs.shape[0]
        grad_angle = grad[..., :n] * out[..., n:]
        grad_angle.addcmul_(grad[..., n:], out[..., :n], value=-1.0)  # (..., d_in, F)
        two_pi = 2 * math.pi
        grad_x = grad_angle @ (two_pi * freqs)
        grad_freqs = two_pi * (grad_angle.reshape(-1, n).T @ x.reshape(-1))
        return grad_x, grad_freqs


@dataclass
class MixerCache:
    """Signals of one mixer kept for the losses and the score (all (B, L, ·), time on axis 1).

    Attributes:
        u_tilde: (B, L, E) SSM input after the step-size gain.
        y: (B, L, E) SSM output before the gate.
        delta: (B, L, E) step sizes Δ.
        delta_mean: (B, L) channel-mean step Δ̄.
        z_sharp: (B, L, E) gate logits after sharpening (= z without the temperature gate).
    """

    u_tilde: Tensor
    y: Tensor
    delta: Tensor
    delta_mean: Tensor
    z_sharp: Tensor


class FKMMixer(Mamba):
    """One FKM mixer (see the module docstring), (B, L, d_model) -> ((B, L, d_model), :class:`MixerCache`).

    A subclass of :class:`fsad.layers.mamba.Mamba`: same parameters (names, shapes, initialisation:
    ``init_dt_projection``, ``s4d_real_a_log``, ``skip_parameter``), its causal convolution and its
    ``ssm_inputs``; the forward differs by the three switchable modifications and the clamp of Δ.

    Args:
        d_model, d_state, d_conv, expand, dt_rank: Mamba sizes (``dt_rank="auto"`` = ceil(d_model / 16)).
        n_freqs, kan_rank, f_max: Fourier-KAN sizes (F, r, initial highest frequency).
        delta_max: upper clamp of Δ (2.0 in the paper); ``None`` = no clamp (plain Mamba).
        use_fourier_kan: add the Fourier-KAN branch to ``in_proj`` (Table 2 "Fourier KAN" column).
        use_temp_gate: temperature-sharpened gate (Table 2 "Temp Gate. Control" column).
        use_step_gain: step-size-driven input gain (Sec. 3.4; not a column of Table 2, on in every row but the
            plain-Mamba one).
        gate_fn: ``silu`` (Mamba) | ``sigmoid`` (the paper's analysis).
        temp_init: initial γ_z (> 0, learned as ``log γ_z``); alpha_init: initial α_δ; gain_kernel: kernel of the
            step-size convolution (odd; padding keeps the length).
        dt_min, dt_max, dt_init_floor, dt_scale: Mamba's dt initialisation.
        in_proj_bias: ``b_l`` of Eq. 1 (``mamba_ssm`` uses no bias); conv_bias: bias of the depthwise conv.
        kan_zero_init: start the Fourier branch at zero (``U = 0``).
        scan_backend: a name of ``fsad.layers.selective_scan.BACKENDS``.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 32,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        n_freqs: int = 16,
        kan_rank: int = 32,
        f_max: float = 4.0,
        delta_max: float | None = 2.0,
        use_fourier_kan: bool = True,
        use_temp_gate: bool = True,
        use_step_gain: bool = True,
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
        kan_zero_init: bool = True,
        scan_backend: str = "auto",
    ):
        if gate_fn not in GATE_FNS:
            raise ValueError(f"gate_fn must be one of {GATE_FNS}, got {gate_fn!r}")
        if temp_init <= 0:
            raise ValueError(f"temp_init must be > 0, got {temp_init}")
        if gain_kernel < 1 or gain_kernel % 2 == 0:
            raise ValueError(f"gain_kernel must be odd, got {gain_kernel}")
        super().__init__(d_model, d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=dt_rank, dt_min=dt_min,
                         dt_max=dt_max, dt_scale=dt_scale, dt_init_floor=dt_init_floor, conv_bias=conv_bias,
                         bias=False, scan_backend=scan_backend)
        if in_proj_bias:  # Eq. 1 has a bias; mamba_ssm's in_proj has none (same default init otherwise)
            self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=True)
        self.delta_max = delta_max
        self.use_fourier_kan, self.use_temp_gate, self.use_step_gain = use_fourier_kan, use_temp_gate, use_step_gain
        self.gate_fn = gate_fn
        self.fourier = (FourierKAN(d_model, 2 * self.d_inner, n_freqs, kan_rank, f_max, kan_zero_init)
                        if use_fourier_kan else None)
        if use_temp_gate:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temp_init)))
        if use_step_gain:
            self.gain_conv = nn.Conv1d(1, 1, gain_kernel, padding=gain_kernel // 2, bias=True)
            self.alpha_delta = nn.Parameter(torch.tensor(float(alpha_init)))

    @property
    def temperature(self) -> Tensor:
        """γ_z = exp(log γ_z) (> 0)."""
        return self.log_temperature.exp()

    def project(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """Hybrid input projection (Eq. 6): (B, L, d_model) -> main branch, gate logits (B, L, E) each."""
        h = self.in_proj(v)
        if self.fourier is not None:
            h = h + self.fourier(v)
        x_main, z = h.chunk(2, dim=-1)
        return x_main, z

    def forward(self, v: Tensor) -> tuple[Tensor, MixerCache]:
        x_main, z = self.project(v)
        z_sharp = sharpen_gate(z, self.temperature) if self.use_temp_gate else z
        u = self.causal_conv(x_main.transpose(1, 2))  # (B, E, L)
        delta_raw, b_t, c_t = self.ssm_inputs(u)  # (B, E, L) before bias / softplus, (B, N, L) twice
        delta = F.softplus(delta_raw + self.dt_proj.bias[:, None])
        if self.delta_max is not None:
            delta = delta.clamp(max=self.delta_max)
        delta_mean = delta.mean(dim=1)  # (B, L)
        u_tilde = u * step_gain(delta_mean, self.gain_conv, self.alpha_delta)[:, None] if self.use_step_gain else u
        y = self.scan(u_tilde, delta, b_t, c_t).transpose(1, 2)  # (B, L, E)
        gate = F.silu(z_sharp) if self.gate_fn == "silu" else torch.sigmoid(z_sharp)
        out = self.out_proj((y * gate).to(v.dtype))  # y stays in (at least) float32 for the losses and the score
        cache = MixerCache(u_tilde=u_tilde.transpose(1, 2), y=y, delta=delta.transpose(1, 2), delta_mean=delta_mean,
                           z_sharp=z_sharp)
        return out, cache

    def scan(self, u: Tensor, delta: Tensor, b_t: Tensor, c_t: Tensor) -> Tensor:
        """S6 with D and without the gate, (B, E, L) -> (B, E, L), in at least float32 (the paper runs the scan
        in fp32; autocast is off here and ``selective_scan`` computes in float32, float64 inputs stay float64)."""
        dtype = torch.promote_types(u.dtype, torch.float32)
        with torch.autocast(device_type=u.device.type, enabled=False):
            return selective_scan(u.to(dtype), delta.to(dtype), -torch.exp(self.A_log.to(dtype)), b_t.to(dtype),
                                  c_t.to(dtype), self.D.to(dtype), delta_softplus=False, backend=self.scan_backend)


class FKMBlock(nn.Module):
    """Pre-norm residual block ``h + FKMMixer(LayerNorm(h))``: (B, L, d) -> ((B, L, d), MixerCache)."""

    def __init__(self, d_model: int, **mixer_kwargs):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mixer = FKMMixer(d_model, **mixer_kwargs)

    def forward(self, h: Tensor) -> tuple[Tensor, MixerCache]:
        out, cache = self.mixer(self.norm(h))
        return h + out, cache


@dataclass
class FKMOutput:
    """Network outputs: reconstruction ``x_hat`` (B, L, C), final normalised hidden states ``hidden``
    (B, L, d_model), one :class:`MixerCache` per block (first to last) and the pre-norm residual stream
    ``residual`` (B, L, d_model): the last block's output ``h`` before the final LayerNorm, which keeps the
    per-step amplitude that every LayerNorm removes."""

    x_hat: Tensor
    hidden: Tensor
    caches: list[MixerCache]
    residual: Tensor


class FKMADNetwork(nn.Module):
    """Embedding -> ``n_layers`` FKM blocks -> LayerNorm -> reconstruction head, (B, L, C) -> :class:`FKMOutput`.

    No positional encoding (the scan is ordered). ``mixer_kwargs`` go to every :class:`FKMMixer`.
    """

    def __init__(self, n_channels: int, d_model: int = 128, n_layers: int = 2, **mixer_kwargs):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_channels, self.d_model = n_channels, d_model
        self.embedding = nn.Linear(n_channels, d_model)
        self.blocks = nn.ModuleList([FKMBlock(d_model, **mixer_kwargs) for _ in range(n_layers)])
        self.norm_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_channels)

    def forward(self, x: Tensor) -> FKMOutput:
        h = self.embedding(x)
        caches = []
        for block in self.blocks:
            h, cache = block(h)
            caches.append(cache)
        hidden = self.norm_f(h)
        return FKMOutput(x_hat=self.head(hidden), hidden=hidden, caches=caches, residual=h)
