"""Mamba (S6) block with ``mamba_ssm.modules.mamba_simple.Mamba``'s parameter names, shapes and initialisation.

Notation: B batch, L length, d_model width, E = expand, d_inner = E * d_model, N = d_state,
R = dt_rank (``ceil(d_model / 16)`` for "auto"), K = d_conv. Parameters (``specs/common.md`` 6.1):

  in_proj.weight   (2 d_inner, d_model)   [+ in_proj.bias with ``bias=True``]
  conv1d.weight    (d_inner, 1, K)        depthwise, causal
  conv1d.bias      (d_inner,)             [only with ``conv_bias=True``]
  x_proj.weight    (R + 2N, d_inner)
  dt_proj.weight   (d_inner, R)           U(-R^-1/2 dt_scale, R^-1/2 dt_scale) ("random") or constant
  dt_proj.bias     (d_inner,)             softplus^-1(dt), dt = exp(U(log dt_min, log dt_max)) >= dt_init_floor
  A_log            (d_inner, N)           log(1..N) in every row (S4D-real), A = -exp(A_log), float32
  D                (d_inner,)             ones, float32
  out_proj.weight  (d_model, d_inner)     [+ out_proj.bias with ``bias=True``]

so that a state dict moves between this block and the CUDA one in both directions. ``A_log`` and ``D`` carry
``_no_weight_decay = True`` and ``dt_proj.bias`` carries ``_no_reinit = True``, as there.

Forward, (B, L, d_model) -> (B, L, d_model):
  x, z = in_proj(h).chunk(2);  u = silu(causal_conv(x));  (dt, B_t, C_t) = split(x_proj(u), [R, N, N]);
  delta = softplus(dt_proj.weight @ dt + dt_proj.bias);  y = scan(u, delta, A, B_t, C_t, D) * silu(z);
  out = out_proj(y).
Not implemented: the kernel's step-by-step decoding cache (``inference_params``); ``layer_idx`` is stored only.

Bidirectional use (``bidirectional``, ``BiMamba``, ``SelectiveSSM``): the methods of this platform scan both
ways in two flavours, and both are ``y = f_fwd(x) + flip(f_bwd(flip(x)))`` along the sequence axis:
  * a second, independent block on the reversed sequence (Vim/"BiMamba" style): ``BiMamba`` = two ``Mamba``;
  * a shared in/out projection and convolution with one SSM per direction (Wave-MambaAD's HFSS ``D_SS2D``
    and LFSS ``ChannelMamba``): one ``SelectiveSSM`` per direction (x_proj, dt_proj, A_log, D each),
    combined with ``bidirectional(ssm_fwd, ssm_bwd, u, dim=-1)``; quirks such as re-using the forward dt
    bias or the unflipped gate in the backward direction are passed explicitly (``delta_bias=``, ``z=``).
TransMamba's GPRM and FKM-AD use the plain unidirectional block.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsad.layers.selective_scan import resolve_backend, selective_scan


def resolve_dt_rank(dt_rank: int | str, d_model: int) -> int:
    """``"auto"`` -> ceil(d_model / 16), as in mamba_ssm."""
    return math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)


def init_dt_projection(dt_proj: nn.Linear, dt_rank: int, dt_min: float = 0.001, dt_max: float = 0.1,
                       dt_init: str = "random", dt_scale: float = 1.0, dt_init_floor: float = 1e-4) -> None:
    """Mamba's step-size initialisation of ``dt_proj`` (weight (d_inner, R), bias (d_inner,)), in place.

    weight: constant R^-1/2 dt_scale ("constant") or U(-R^-1/2 dt_scale, +R^-1/2 dt_scale) ("random");
    bias: inverse softplus of dt = exp(U(log dt_min, log dt_max)) clamped below at dt_init_floor, so that
    softplus(bias) = dt at initialisation; inverse softplus(y) = y + log(-expm1(-y)).
    """
    std = dt_rank ** -0.5 * dt_scale
    with torch.no_grad():
        if dt_init == "constant":
            dt_proj.weight.fill_(std)
        elif dt_init == "random":
            dt_proj.weight.uniform_(-std, std)
        else:
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        d_inner = dt_proj.bias.shape[0]
        log_dt = torch.rand(d_inner, device=dt_proj.bias.device) * (math.log(dt_max) - math.log(dt_min))
        dt = torch.exp(log_dt + math.log(dt_min)).clamp(min=dt_init_floor)
        dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
    dt_proj.bias._no_reinit = True


def s4d_real_a_log(d_inner: int, d_state: int, device: torch.device | str | None = None) -> nn.Parameter:
    """A_log (d_inner, N) = log(1..N) in every row, float32, excluded from weight decay."""
    a = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).expand(d_inner, d_state)
    a_log = nn.Parameter(torch.log(a).contiguous())
    a_log._no_weight_decay = True
    return a_log


def skip_parameter(d_inner: int, device: torch.device | str | None = None) -> nn.Parameter:
    """D (d_inner,) = 1, float32, excluded from weight decay."""
    skip = nn.Parameter(torch.ones(d_inner, device=device))
    skip._no_weight_decay = True
    return skip


class _SelectiveCore(nn.Module):
    """The selective SSM shared by ``Mamba`` and ``SelectiveSSM``: needs x_proj, dt_proj, A_log, D, dt_rank,
    d_state and scan_backend on the module."""

    x_proj: nn.Linear
    dt_proj: nn.Linear
    A_log: nn.Parameter
    D: nn.Parameter
    dt_rank: int
    d_state: int
    scan_backend: str

    def ssm_inputs(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """u (B, d_inner, L) -> delta before bias and softplus (B, d_inner, L), B_t and C_t (B, N, L)."""
        x_dbl = self.x_proj(u.transpose(1, 2))  # (B, L, R + 2N)
        dt, b_t, c_t = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias goes to the scan (delta_bias)
        return delta, b_t.transpose(1, 2), c_t.transpose(1, 2)

    def ssm(self, u: Tensor, z: Tensor | None = None, delta_bias: Tensor | None = None) -> Tensor:
        """y = S6(u) [* silu(z)]: u, z (B, d_inner, L) -> (B, d_inner, L); delta_bias defaults to dt_proj.bias."""
        delta, b_t, c_t = self.ssm_inputs(u)
        bias = self.dt_proj.bias if delta_bias is None else delta_bias
        return selective_scan(u, delta, -torch.exp(self.A_log.float()), b_t, c_t, self.D.float(), z=z,
                              delta_bias=bias.float(), delta_softplus=True, backend=self.scan_backend)


class Mamba(_SelectiveCore):
    """Mamba block, (B, L, d_model) -> (B, L, d_model); arguments as ``mamba_ssm``'s ``Mamba``.

    ``scan_backend`` is any name of ``fsad.layers.selective_scan.BACKENDS`` ("auto": the CUDA kernel when it
    imports and the input is on CUDA, else the pure ``chunked`` scan).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2,
                 dt_rank: int | str = "auto", dt_min: float = 0.001, dt_max: float = 0.1, dt_init: str = "random",
                 dt_scale: float = 1.0, dt_init_floor: float = 1e-4, conv_bias: bool = True, bias: bool = False,
                 scan_backend: str = "auto", layer_idx: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        resolve_backend(scan_backend)  # reject unknown names (and a missing kernel) at construction
        factory = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = resolve_dt_rank(dt_rank, d_model)
        self.scan_backend, self.layer_idx = scan_backend, layer_idx
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **factory)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1,
                                bias=conv_bias, **factory)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)
        init_dt_projection(self.dt_proj, self.dt_rank, dt_min, dt_max, dt_init, dt_scale, dt_init_floor)
        self.A_log = s4d_real_a_log(self.d_inner, d_state, device)
        self.D = skip_parameter(self.d_inner, device)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def in_projection(self, hidden_states: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L, d_model) -> x, z, each (B, d_inner, L)."""
        x, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)
        return x, z

    def causal_conv(self, x: Tensor) -> Tensor:
        """silu(depthwise conv) keeping the first L outputs of the (K - 1)-padded convolution: causal."""
        return F.silu(self.conv1d(x)[..., : x.shape[-1]])

    def forward(self, hidden_states: Tensor) -> Tensor:
        x, z = self.in_projection(hidden_states)
        y = self.ssm(self.causal_conv(x), z=z)
        return self.out_proj(y.transpose(1, 2))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_inner={self.d_inner}, d_state={self.d_state}, d_conv={self.d_conv}, "
                f"dt_rank={self.dt_rank}, scan_backend={self.scan_backend!r}")


class SelectiveSSM(_SelectiveCore):
    """One scan direction of a Mamba-style mixer without its projections and convolution.

    Parameters with mamba_ssm names: ``x_proj.weight`` (R + 2N, d_inner), ``dt_proj.weight`` (d_inner, R),
    ``dt_proj.bias`` (d_inner,), ``A_log`` (d_inner, N), ``D`` (d_inner,); same initialisation as ``Mamba``.
    forward(u (B, d_inner, L), z=None, delta_bias=None) -> (B, d_inner, L).
    """

    def __init__(self, d_inner: int, d_state: int = 16, dt_rank: int = 1, dt_min: float = 0.001,
                 dt_max: float = 0.1, dt_init: str = "random", dt_scale: float = 1.0, dt_init_floor: float = 1e-4,
                 scan_backend: str = "auto", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        resolve_backend(scan_backend)
        factory = {"device": device, "dtype": dtype}
        self.d_inner, self.d_state, self.dt_rank, self.scan_backend = d_inner, d_state, dt_rank, scan_backend
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True, **factory)
        init_dt_projection(self.dt_proj, dt_rank, dt_min, dt_max, dt_init, dt_scale, dt_init_floor)
        self.A_log = s4d_real_a_log(d_inner, d_state, device)
        self.D = skip_parameter(d_inner, device)

    def forward(self, u: Tensor, z: Tensor | None = None, delta_bias: Tensor | None = None) -> Tensor:
        return self.ssm(u, z=z, delta_bias=delta_bias)


def bidirectional(forward_fn: Callable[[Tensor], Tensor], backward_fn: Callable[[Tensor], Tensor], x: Tensor,
                  dim: int = 1) -> Tensor:
    """``forward_fn(x) + flip(backward_fn(flip(x, dim)), dim)``: the backward function reads the sequence
    axis ``dim`` from its end; output position t of both terms refers to input position t.

    dim = 1 for (B, L, d_model) blocks (``Mamba``), dim = -1 for (B, d_inner, L) cores (``SelectiveSSM``).
    """
    return forward_fn(x) + torch.flip(backward_fn(torch.flip(x, (dim,))), (dim,))


class BiMamba(nn.Module):
    """Two independent ``Mamba`` blocks, one on the sequence and one on its reverse, summed:
    (B, L, d_model) -> (B, L, d_model). Keys ``fwd.*`` and ``bwd.*`` are ``Mamba`` state dicts."""

    def __init__(self, d_model: int, **mamba_kwargs: object) -> None:
        super().__init__()
        self.fwd = Mamba(d_model, **mamba_kwargs)
        self.bwd = Mamba(d_model, **mamba_kwargs)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return bidirectional(self.fwd, self.bwd, hidden_states, dim=1)
