"""Selective scan (Mamba S6) in pure PyTorch, with the ``mamba_ssm`` CUDA kernel as an optional backend.

Same call, tensor layout and semantics as ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``
(see ``specs/common.md`` section 6). Notation: b batch, d channels (``d_inner``), L length, n state size,
g groups of B/C (d divisible by g; channel c uses group ``c // (d / g)``).

Inputs:
  u, delta: (b, d, L); A: (d, n), real (A < 0 for a stable scan);
  B, C: (d, n) time-invariant, (b, n, L) input-dependent, or (b, g, n, L) grouped;
  D: (d,) skip; z: (b, d, L) gate; delta_bias: (d,) added to delta before the optional softplus.

Definition (arithmetic in float32 as in the kernel -- float64 inputs stay float64 --, per b, d and n; h_{-1} = 0):
  delta_t   = softplus(delta_t + delta_bias)        (softplus only when ``delta_softplus``)
  h_t       = exp(delta_t A) h_{t-1} + delta_t B_t u_t
  y_t       = sum_n C_{t,n} h_{t,n} + D u_t,   y_t *= silu(z_t) when z is given.
Output: y (b, d, L) in u's dtype, and with ``return_last_state`` also h_{L-1} (b, d, n) in float32
(float64 for float64 inputs).

Backends (same outputs up to float32 rounding; all but ``mamba_ssm`` run anywhere PyTorch runs):
  sequential  reference: autograd through a Python loop over the L steps. Simple and slow.
  chunked     default pure backend. L is cut into chunks of T steps; a custom autograd function runs the
              recurrence of a chunk as T fused multiply-adds on contiguous time-major (T, b, d, n) slices,
              carries h across chunks and keeps only the chunk-start states; its hand-written backward
              recomputes one chunk at a time and runs the adjoint recurrence backwards. Work O(b d n L), the
              minimum; memory O(b d n (T + L / T)) instead of O(b d n L) per saved activation.
              ``compile=True`` runs each chunk's forward and backward as ``torch.compile``d functions whose
              unrolled steps fuse into one kernel (opt-in: compiling takes tens of seconds per chunk shape).
  decay       the lower-triangular decay form of ``common.md`` 6.3(b): inside a chunk,
              h_t = exp(S_t) h_in + sum_{s<=t} exp(S_t - S_s) delta_s B_s u_s with S the prefix sums of
              delta A (only differences S_t - S_s <= 0 are exponentiated), L padded with delta = 0; plain
              autograd, ``checkpoint=True`` recomputes each chunk in backward. O(b d n L T) work: matmul-shaped
              and suited to accelerators, slower than ``chunked`` on CPU.
  parallel    Hillis-Steele doubling scan over the pairs (exp(delta A), delta B u): ceil(log2 L) vectorised
              steps, O(b d n L log L) work and autograd memory; for accelerators without the kernel.
  native      a C kernel for CPU tensors (``fsad.layers.native_scan``: compiled on first use with the machine's C
              compiler, OpenMP threads shared with PyTorch): one pass per row with the state in registers, delta
              bias, softplus, D and z fused; the backward recomputes each row's states in a thread-local buffer.
              Unavailable (and skipped by ``auto``) without a C compiler or with FSAD_NATIVE_SCAN=0.
  mamba_ssm   the CUDA kernel (only when ``mamba_ssm`` imports and u is on CUDA).
  auto        ``mamba_ssm`` for CUDA tensors when it imports; on CPU ``native`` when it builds, else ``chunked``.

Maps read in several orders (the 2-D mixers of MambaAD and Wave-MambaAD): :func:`ordered_scan` takes a channel-last
map with the step, B and C of every position for each order, and the orders as index tables. ``native`` reads the
map in each order, scans and writes the outputs back in one kernel (channels in SIMD lanes, no gathered copies);
the other backends gather the sequences, call :func:`selective_scan` and scatter back (the same numbers).

Why ``chunked`` is the pure-PyTorch default: on CPU the scan is bound by memory traffic over the (b, d, n, L) states, so
the work-optimal recurrence with cache-sized chunks beats the O(T) and O(log L) extra work of ``decay`` and
``parallel`` (see ``benchmarks/bench_scan.py``), and its memory is a fraction of the others'; the per-step
Python overhead is small against b d n elements per step. In eager mode every elementwise pass still reads and
writes (T, b, d, n) tensors (about 20 passes for forward + backward), which bounds its speed-up over the
reference at short L; ``compile=True`` removes most of those passes, and ``native`` all of them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint as _checkpoint

from fsad.layers.native_scan import native_available, native_ordered_scan, native_scan
from fsad.layers.scan_orders import deserialise, serialise

PURE_BACKENDS = ("sequential", "chunked", "decay", "parallel")
BACKENDS = ("auto", *PURE_BACKENDS, "native", "mamba_ssm")
_STATE_ELEMENTS_PER_CHUNK = 1 << 20  # adaptive chunk: about 4 MB of float32 state per chunk tensor


# ----------------------------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------------------------


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
    chunk_size: int | None = None,
    checkpoint: bool = False,
    compile: bool = False,  # noqa: A002 - the natural name of the option
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective scan with the semantics of ``mamba_ssm``'s ``selective_scan_fn`` (module docstring).

    Args:
        backend: one of ``BACKENDS``.
        chunk_size: T for ``chunked`` and ``decay``; ``None`` picks it from the sizes (``default_chunk_size``).
        checkpoint: ``decay`` only: recompute each chunk in backward instead of storing its (T, T) decays.
        compile: ``chunked`` only: run each chunk's forward and backward as ``torch.compile``d (fused) functions.
            Needs a working C++ compiler (CPU) or Triton (GPU); the first call per shape compiles (tens of
            seconds), later calls are several times faster (``benchmarks/bench_scan.py``).

    Returns:
        out (b, d, L) in u's dtype, or (out, last_state (b, d, n) float32) with ``return_last_state``.
    """
    backend = resolve_backend(backend, u)
    if backend == "mamba_ssm":
        return _mamba_ssm_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    _check_shapes(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias)
    work = _compute_dtype(u)
    u_work = u.to(work)
    if backend == "native":
        D, z, delta_bias = (None if x is None else x.to(work) for x in (D, z, delta_bias))
        out, last = native_scan(u_work, delta.to(work), A.to(work), B.to(work), C.to(work), D, z, delta_bias,
                                delta_softplus)
    else:
        out, last = _pure_scan(backend, u_work, delta, A.to(work), B.to(work), C.to(work), delta_bias,
                               delta_softplus, chunk_size=chunk_size, checkpoint=checkpoint, compile=compile)
        if D is not None:
            out = out + D.to(work).unsqueeze(-1) * u_work
        if z is not None:
            out = out * F.silu(z.to(work))
    out = out.to(u.dtype)
    return (out, last) if return_last_state else out


def ordered_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, reads: Tensor,
                 slots: Tensor, delta_bias: Tensor | None = None, delta_softplus: bool = False,
                 backend: str = "auto") -> Tensor:
    """Maps read in K orders, each order scanned with its own parameters, the outputs summed back onto the map:
    the scan of the 2-D mixers (VMamba's ``SS2D``, MambaAD's HSS, Wave-MambaAD's HFSS), channel-last.

    Notation: b = G B' rows in G groups of B' (row i is in group i // B'), L positions, d channels, K orders.

    Args:
        u: (b, L, d) the maps, positions flattened. delta: (K, b, L, d) the step of every position for each order.
        A: (K d, n); D, delta_bias: (K d,) or None (channel k d + c holds order k's parameters of channel c).
        B, C: (b, L, K, n) at every position for each order. reads, slots: (G, K, L) int64: order k of group g
            reads position ``reads[g, k, s]`` at step s and its output of that step goes to ``slots[g, k, s]``.
        delta_softplus, backend: as in :func:`selective_scan` (the pure backends and ``mamba_ssm`` gather the
            sequences, run :func:`selective_scan`, and scatter back; ``native`` does it all in one kernel).

    Definition: for every row i, order k and channel c, the scan of :func:`selective_scan` over the sequence
    ``x_s = u[i, reads[g, k, s], c]`` with ``delta``, B and C read at the same positions gives y_s + D x_s, which is
    added to ``out[i, slots[g, k, s], c]``. Returns out (b, L, d) in u's dtype.

    Raises:
        ValueError: a shape that does not match the above, an input on another device than u or not real
            floating point, index tables that are not integer permutations (checked before any kernel runs).
    """
    _check_ordered(u, delta, A, B, C, D, delta_bias, reads, slots)
    b, length, d = u.shape
    groups, k, _ = reads.shape
    backend = resolve_backend(backend, u)
    if backend == "native":
        work = _compute_dtype(u)
        D, delta_bias = (None if x is None else x.to(work) for x in (D, delta_bias))
        out = native_ordered_scan(u.to(work), delta.to(work), A.to(work), B.to(work), C.to(work), D, delta_bias,
                                  delta_softplus, reads, slots)
        return out.to(u.dtype)
    rows = (groups, b // groups)
    seqs = serialise(u.view(*rows, length, d), reads).view(b, k * d, length)
    steps = serialise(delta.permute(1, 2, 0, 3).unflatten(0, rows), reads).view(b, k * d, length)  # a view, no copy
    B_seq, C_seq = (serialise(m.reshape(*rows, length, k, -1), reads).flatten(0, 1) for m in (B, C))
    out = selective_scan(seqs, steps, A, B_seq, C_seq, D, delta_bias=delta_bias, delta_softplus=delta_softplus,
                         backend=backend)
    return deserialise(out.view(*rows, k, d, length), slots).view(b, length, d)


def _pure_scan(backend: str, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, delta_bias: Tensor | None,
               delta_softplus: bool, **options: object) -> tuple[Tensor, Tensor]:
    """y (b, d, L) and the last state (b, d, n) of a pure-PyTorch backend; inputs in the compute dtype.

    Everything runs time-major, (L, b, d): contiguous per step, and the gradients of these element-wise ops
    keep one layout (mixed layouts fall back to slow strided kernels)."""
    d = u.shape[1]
    delta_t = _effective_delta(_time_major(delta, u.dtype), delta_bias, delta_softplus)
    B_int, C_int = _common_groups(_time_major_groups(B, d), _time_major_groups(C, d))
    y, last = _SCANS[backend](_time_major(u, u.dtype), delta_t, A, B_int, C_int, **options)
    return y.permute(1, 2, 0).contiguous(), last


def resolve_backend(backend: str, u: Tensor | None = None) -> str:
    """The backend that ``selective_scan`` will run: ``auto`` resolved, unknown names and impossible requests
    rejected (``ValueError`` listing the names; ``RuntimeError`` for ``mamba_ssm`` without package or CUDA)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown selective-scan backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    on_cuda = u is None or u.is_cuda
    on_cpu = u is None or not u.is_cuda
    if backend == "auto":
        if u is not None and u.is_cuda and mamba_ssm_available():
            return "mamba_ssm"
        return "native" if on_cpu and native_available() else "chunked"
    if backend == "native":
        if not native_available():
            raise RuntimeError("backend 'native' needs a C compiler (cc or $CC) to build its CPU kernel, and "
                               "FSAD_NATIVE_SCAN not set to 0; use 'chunked' instead")
        if not on_cpu:
            raise RuntimeError("backend 'native' runs only on CPU tensors; use 'mamba_ssm' or 'chunked' on CUDA")
    if backend == "mamba_ssm":
        if not mamba_ssm_available():
            raise RuntimeError(f"backend 'mamba_ssm' {MAMBA_SSM_MISSING}; use 'chunked' instead")
        if not on_cuda:
            raise RuntimeError("backend 'mamba_ssm' runs only on CUDA tensors; use 'chunked' on CPU")
    return backend


MAMBA_SSM_MISSING = "needs the mamba_ssm package with its CUDA extension (pip install fsad[cuda] on a GPU machine)"


def mamba_ssm_available() -> bool:
    """True when ``mamba_ssm``'s selective-scan kernel imports and a CUDA device is visible."""
    return _mamba_ssm_fn() is not None and torch.cuda.is_available()


def default_chunk_size(batch: int, d: int, n: int, length: int) -> int:
    """T for ``chunked``: a power of two in [8, 256] with T * b * d * n close to 2^20 elements (about 4 MB per
    chunk tensor, cache-friendly), never longer than needed for ``length``."""
    per_step = max(1, batch * d * n)
    t = 2 ** round(math.log2(max(1.0, _STATE_ELEMENTS_PER_CHUNK / per_step)))
    return int(min(max(t, 8), 256, max(1, 2 ** math.ceil(math.log2(max(1, length))))))


# ----------------------------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------------------------


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, **optional: Tensor | None) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be (batch, d, L); got {tuple(u.shape)} and {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != u.shape[1]:
        raise ValueError(f"A must be (d, n) = ({u.shape[1]}, n); got {tuple(A.shape)}")
    for name, m in (("B", B), ("C", C)):
        n, (b, d, length) = A.shape[1], u.shape
        ok = (m.dim() == 2 and m.shape == (d, n)) or (m.dim() == 3 and m.shape == (b, n, length)) or (
            m.dim() == 4 and m.shape[0] == b and m.shape[2:] == (n, length) and d % m.shape[1] == 0)
        if not ok:
            raise ValueError(f"{name} must be (d, n), (b, n, L) or (b, g, n, L) with g | d; got {tuple(m.shape)}")
    expected = {"D": (u.shape[1],), "delta_bias": (u.shape[1],), "z": tuple(u.shape)}
    _check_common("selective_scan", u, dict(u=u, delta=delta, A=A, B=B, C=C, **optional),
                  {name: expected[name] for name in optional})


def _check_ordered(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                   delta_bias: Tensor | None, reads: Tensor, slots: Tensor) -> None:
    if u.dim() != 3 or reads.dim() != 3:
        raise ValueError(f"ordered_scan: u must be (b, L, d) and reads (G, K, L); got {tuple(u.shape)}, "
                         f"{tuple(reads.shape)}")
    (b, length, d), (groups, k, _) = u.shape, reads.shape
    n = A.shape[-1] if A.dim() else 0
    expected = {"delta": (k, b, length, d), "A": (k * d, n), "B": (b, length, k, n), "C": (b, length, k, n),
                "D": (k * d,), "delta_bias": (k * d,), "slots": tuple(reads.shape)}
    _check_common("ordered_scan", u, dict(u=u, delta=delta, A=A, B=B, C=C, D=D, delta_bias=delta_bias), expected)
    if slots.shape != reads.shape or groups == 0 or b % groups or reads.shape[2] != length:
        raise ValueError(f"ordered_scan: reads {tuple(reads.shape)} and slots {tuple(slots.shape)} must both be "
                         f"(G, K, L) with L = {length} and G > 0 dividing b = {b}")
    identity = torch.arange(length, device=reads.device)
    for name, table in (("reads", reads), ("slots", slots)):
        if table.dtype not in (torch.int32, torch.int64) or table.device != u.device:
            raise ValueError(f"ordered_scan: {name} must be an int64 or int32 tensor on {u.device}; got "
                             f"{table.dtype} on {table.device}")
        if not torch.equal(table.sort(dim=-1).values, identity.to(table.dtype).expand_as(table)):
            raise ValueError(f"ordered_scan: every row {name}[g, k] must be a permutation of 0 .. {length - 1}")


def _check_common(caller: str, u: Tensor, tensors: dict[str, Tensor | None], shapes: dict[str, tuple]) -> None:
    """Shapes (where ``shapes`` names one), device and dtype of a scan's inputs beside ``u``; None is allowed."""
    for name, x in tensors.items():
        if x is None:
            continue
        if name in shapes and tuple(x.shape) != shapes[name]:
            raise ValueError(f"{caller}: {name} must be {shapes[name]}; got {tuple(x.shape)}")
        if x.device != u.device:
            raise ValueError(f"{caller}: {name} is on {x.device}, u on {u.device}; all inputs must share a device")
        if not x.is_floating_point():
            raise ValueError(f"{caller}: {name} must be a real floating-point tensor; got {x.dtype}")


def _compute_dtype(u: Tensor) -> torch.dtype:
    """float32 (as the kernel) for half, bfloat16 and float32 inputs; float64 stays float64 (for gradcheck)."""
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _time_major(x: Tensor, dtype: torch.dtype) -> Tensor:
    """(b, d, L) -> contiguous (L, b, d) in the compute dtype."""
    return x.to(dtype).permute(2, 0, 1).contiguous()


def _effective_delta(delta: Tensor, delta_bias: Tensor | None, softplus: bool) -> Tensor:
    """delta (L, b, d) [+ bias (d,)], [softplus]."""
    if delta_bias is not None:
        delta = delta + delta_bias.to(delta.dtype)
    return F.softplus(delta) if softplus else delta


def _time_major_groups(m: Tensor, d: int) -> Tensor:
    """B or C as a (L', b', g, 1, n) tensor with L' in {1, L}, b' in {1, b}; broadcasts against states viewed as
    (L, b, g, d / g, n). Time-invariant (d, n) becomes g = d groups of one channel."""
    if m.dim() == 2:
        return m.reshape(1, 1, d, 1, m.shape[1])
    if m.dim() == 3:
        m = m.unsqueeze(1)
    return m.permute(3, 0, 1, 2).contiguous().unsqueeze(3)


def _common_groups(B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """Give B and C the same number of groups (the finer one, or one per channel)."""
    gb, gc = B.shape[2], C.shape[2]
    if gb == gc:
        return B, C
    g = max(gb, gc)
    if g % min(gb, gc):
        g = math.lcm(gb, gc)
    return B.repeat_interleave(g // gb, dim=2), C.repeat_interleave(g // gc, dim=2)


def _states_view(x: Tensor, groups: int) -> Tensor:
    """(L, b, d) -> (L, b, g, d / g, 1), to broadcast against (L', b', g, 1, n) B/C."""
    length, b, d = x.shape
    return x.reshape(length, b, groups, d // groups, 1)


def _row_dot(x: Tensor, v: Tensor) -> Tensor:
    """sum_n x[..., k, n] v[..., 0, n] -> (..., k, 1); x (..., k, n), v broadcastable (..., 1, n)."""
    if x.shape[-2] == 1 or v.shape[:-2] != x.shape[:-2]:
        return (x * v).sum(-1, keepdim=True)
    return torch.einsum("...kn,...n->...k", x, v.squeeze(-2)).unsqueeze(-1)  # a batched GEMV, faster than matmul


def _column_dot(w: Tensor, x: Tensor) -> Tensor:
    """sum_k w[..., k, 0] x[..., k, n] -> (..., 1, n); w (..., k, 1), x (..., k, n)."""
    if x.shape[-2] == 1:
        return w * x
    return torch.matmul(w.transpose(-1, -2), x)


def _sum_to(x: Tensor, shape: torch.Size) -> Tensor:
    return x.sum_to_size(shape) if x.shape != shape else x


# ----------------------------------------------------------------------------------------------------------------
# sequential: the reference
# ----------------------------------------------------------------------------------------------------------------


def _scan_sequential(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, **_: object) -> tuple[Tensor, Tensor]:
    """Loop over L: h = exp(delta_t A) h + delta_t B_t u_t, y_t = <C_t, h>. u, delta: (L, b, d)."""
    length, b, d = u.shape
    g, n = B.shape[2], A.shape[1]
    log_decay = _states_view(delta, g) * A.reshape(g, d // g, n)
    decay = torch.exp(log_decay).unbind(0)
    inputs = (_states_view(delta * u, g) * B).unbind(0)
    h = u.new_zeros(b, g, d // g, n)
    ys = []
    for t in range(length):
        h = decay[t] * h + inputs[t]
        ys.append((h * C[t if C.shape[0] > 1 else 0]).sum(-1))
    y = torch.stack(ys).reshape(length, b, d)
    return y, h.reshape(b, d, n)


# ----------------------------------------------------------------------------------------------------------------
# chunked: fused recurrence with a hand-written, chunk-wise recomputing backward
# ----------------------------------------------------------------------------------------------------------------


def _chunk_states(delta: Tensor, w: Tensor, A: Tensor, B: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
    """States of one chunk. delta, w = delta * u: (T, b, g, k, 1); A (g, k, n); B (T', b', g, 1, n);
    h0 (b, g, k, n). Returns (H, decay), both (T, b, g, k, n); H[t] = decay[t] * H[t-1] + w[t] B[t]."""
    decay = torch.exp(delta * A)
    states = w * B
    if states.shape != decay.shape:
        states = states.expand_as(decay).contiguous()
    states[0].addcmul_(decay[0], h0)
    for t in range(1, states.shape[0]):
        states[t].addcmul_(decay[t], states[t - 1])
    return states, decay


class _ChunkedScan(torch.autograd.Function):
    """y, h_last = scan(delta, w, A, B, C) on time-major views; see ``_scan_chunked``."""

    @staticmethod
    def forward(ctx, delta: Tensor, w: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int,
                fused: bool) -> tuple[Tensor, Tensor]:
        length, b, g, k, _ = delta.shape
        h = delta.new_zeros(b, g, k, A.shape[-1])
        starts, ys = [], []
        for t0 in range(0, length, chunk):
            sl = slice(t0, t0 + chunk)
            starts.append(h)
            if fused:
                y, h = _compiled(_fused_chunk_forward)(delta[sl], w[sl], A, _time_slice(B, sl), _time_slice(C, sl), h)
                ys.append(y)
                continue
            states, _ = _chunk_states(delta[sl], w[sl], A, _time_slice(B, sl), h)
            ys.append(_row_dot(states, _time_slice(C, sl)))
            h = states[-1].clone()
        ctx.save_for_backward(delta, w, A, B, C, torch.stack(starts))
        ctx.chunk, ctx.fused = chunk, fused
        return torch.cat(ys), h

    @staticmethod
    def backward(ctx, grad_y: Tensor | None, grad_last: Tensor | None) -> tuple[Tensor | None, ...]:
        delta, w, A, B, C, starts = ctx.saved_tensors
        chunk, length = ctx.chunk, delta.shape[0]
        grads = {"delta": torch.empty_like(delta), "w": torch.empty_like(w), "A": torch.zeros_like(A),
                 "B": torch.zeros_like(B), "C": torch.zeros_like(C)}
        if grad_y is None:
            grad_y = torch.zeros(*delta.shape[:-1], 1, dtype=delta.dtype, device=delta.device)
        grad_y = grad_y.contiguous()  # e.g. the expanded gradient of a sum: batched GEMVs would copy per item
        carry = grad_last  # d loss / d h at the first step after the current chunk (times its decay)
        for index in reversed(range(len(starts))):
            sl = slice(index * chunk, min(length, (index + 1) * chunk))
            if ctx.fused:
                carry = _fused_backward_step(delta, w, A, B, C, starts[index], grad_y, carry, sl, grads)
            else:
                carry = _chunk_backward(delta, w, A, B, C, starts[index], grad_y, carry, sl, grads)
        return grads["delta"], grads["w"], grads["A"], grads["B"], grads["C"], None, None


def _time_slice(m: Tensor, sl: slice) -> Tensor:
    return m[sl] if m.shape[0] > 1 else m


def _chunk_backward(delta: Tensor, w: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor, grad_y: Tensor,
                    carry: Tensor | None, sl: slice, grads: dict[str, Tensor]) -> Tensor:
    """Adjoint of one chunk; accumulates into ``grads`` and returns the carry for the previous chunk.

    G_t = dL/dh_t = C_t grad_y_t + decay_{t+1} G_{t+1}; then dL/d(w_t B_t) = G_t and
    dL/d(delta_t A) = G_t * decay_t * h_{t-1} =: Q_t.
    """
    Bc, Cc, gy, dc = _time_slice(B, sl), _time_slice(C, sl), grad_y[sl], delta[sl]
    states, decay = _chunk_states(dc, w[sl], A, Bc, h0)
    adj = gy * Cc
    if adj.shape != states.shape:
        adj = adj.expand_as(states).contiguous()
    if carry is not None:
        adj[-1].add_(carry)
    for t in range(adj.shape[0] - 2, -1, -1):
        adj[t].addcmul_(decay[t + 1], adj[t + 1])
    new_carry = decay[0] * adj[0]
    _accumulate(grads["C"], sl, _column_dot(gy, states))
    q = adj * decay
    q[1:] *= states[:-1]  # times h_{t-1}
    q[0] *= h0
    grads["delta"][sl] = (q * A).sum(-1, keepdim=True)
    grads["A"] += (q.mul_(dc)).sum((0, 1))
    grads["w"][sl] = _row_dot(adj, Bc)
    _accumulate(grads["B"], sl, _column_dot(w[sl], adj))
    return new_carry


def _accumulate(target: Tensor, sl: slice, value: Tensor) -> None:
    """Add a chunk's gradient into B's or C's gradient (time-invariant or batch-shared: summed)."""
    if target.shape[0] > 1:
        target[sl] += _sum_to(value, target[sl].shape)
    else:
        target += _sum_to(value, target.shape)


def _compiled(fn: Callable) -> Callable:
    """``torch.compile(fn)`` once per function (static shapes: one graph per chunk shape and B/C layout)."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False)
    return _COMPILED[fn]


_COMPILED: dict[Callable, Callable] = {}


def _at(m: Tensor, t: int) -> Tensor:
    return m[t] if m.shape[0] > 1 else m[0]


def _fused_chunk_forward(delta: Tensor, w: Tensor, A: Tensor, B: Tensor, C: Tensor,
                         h: Tensor) -> tuple[Tensor, Tensor]:
    """Out-of-place chunk forward for ``torch.compile`` (the unrolled steps fuse into one kernel):
    y (T, b, g, k, 1), h_last."""
    decay, inputs, ys = torch.exp(delta * A), w * B, []
    for t in range(delta.shape[0]):
        h = decay[t] * h + inputs[t]
        ys.append((h * _at(C, t)).sum(-1, keepdim=True))
    return torch.stack(ys), h


def _fused_chunk_backward(delta: Tensor, w: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor, gy: Tensor,
                          carry: Tensor) -> tuple[Tensor, ...]:
    """Out-of-place adjoint of one chunk (same algebra as ``_chunk_backward``) for ``torch.compile``.
    Returns grads of delta, w (T, b, g, k, 1), A (g, k, n), B and C per step (T, b, g, 1, n), the new carry."""
    steps = delta.shape[0]
    decay, inputs = torch.exp(delta * A), w * B
    states, h = [], h0
    for t in range(steps):
        h = decay[t] * h + inputs[t]
        states.append(h)
    adj, g = [None] * steps, carry
    for t in range(steps - 1, -1, -1):
        g = gy[t] * _at(C, t) + g
        adj[t] = g
        g = decay[t] * g
    adjoint, hs = torch.stack(adj), torch.stack(states)
    q = adjoint * decay * torch.cat([h0.unsqueeze(0), hs[:-1]])
    return ((q * A).sum(-1, keepdim=True), (adjoint * B).sum(-1, keepdim=True), (q * delta).sum((0, 1)),
            (adjoint * w).sum(-2, keepdim=True), (gy * hs).sum(-2, keepdim=True), g)


def _fused_backward_step(delta: Tensor, w: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor, grad_y: Tensor,
                         carry: Tensor | None, sl: slice, grads: dict[str, Tensor]) -> Tensor:
    carry = torch.zeros_like(h0) if carry is None else carry
    g_delta, g_w, g_a, g_b, g_c, carry = _compiled(_fused_chunk_backward)(
        delta[sl], w[sl], A, _time_slice(B, sl), _time_slice(C, sl), h0, grad_y[sl], carry)
    grads["delta"][sl], grads["w"][sl] = g_delta, g_w
    grads["A"] += g_a
    _accumulate(grads["B"], sl, g_b)
    _accumulate(grads["C"], sl, g_c)
    return carry


def _scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int | None = None,
                  compile: bool = False, **_: object) -> tuple[Tensor, Tensor]:  # noqa: A002
    length, b, d = u.shape
    g, n = B.shape[2], A.shape[1]
    chunk = chunk_size or default_chunk_size(b, d, n, length)
    delta_t, w_t = _states_view(delta, g), _states_view(delta * u, g)
    y, last = _ChunkedScan.apply(delta_t, w_t, A.reshape(g, d // g, n), B, C, chunk, compile)
    return y.reshape(length, b, d), last.reshape(b, d, n)


# ----------------------------------------------------------------------------------------------------------------
# decay: lower-triangular decay form inside chunks (common.md 6.3 b)
# ----------------------------------------------------------------------------------------------------------------


def _decay_chunk(log_decay: Tensor, inputs: Tensor, C: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
    """log_decay, inputs: (T, b, g, k, n); C (T', b', g, 1, n); h0 (b, g, k, n) -> y (T, b, g, k, 1), h_last."""
    steps = log_decay.shape[0]
    prefix = log_decay.cumsum(0)
    lower = torch.ones(steps, steps, dtype=torch.bool, device=prefix.device).tril()
    lower = lower.reshape(steps, steps, *([1] * (prefix.dim() - 1)))
    diff = prefix.unsqueeze(1) - prefix.unsqueeze(0)  # [t, s] = S_t - S_s <= 0 for s <= t
    weights = torch.exp(torch.where(lower, diff, torch.full_like(diff, -math.inf)))
    states = torch.einsum("ts...,s...->t...", weights, inputs) + torch.exp(prefix) * h0
    return _row_dot(states, C), states[-1]


def _scan_decay(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int | None = None,
                checkpoint: bool = False, **_: object) -> tuple[Tensor, Tensor]:
    length, b, d = u.shape
    g, n = B.shape[2], A.shape[1]
    chunk = chunk_size or 16
    pad = (-length) % chunk
    delta_p, u_p = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (delta, u))  # delta = 0: decay 1, h unchanged
    B, C = (F.pad(m, (0, 0, 0, 0, 0, 0, 0, 0, 0, pad)) if m.shape[0] > 1 else m for m in (B, C))
    log_decay = _states_view(delta_p, g) * A.reshape(g, d // g, n)
    inputs = _states_view(delta_p * u_p, g) * B
    inputs = inputs.expand_as(log_decay)
    h = u.new_zeros(b, g, d // g, n)
    ys = []
    for t0 in range(0, length + pad, chunk):
        sl = slice(t0, t0 + chunk)
        args = (log_decay[sl], inputs[sl], _time_slice(C, sl), h)
        y, h = _checkpoint(_decay_chunk, *args, use_reentrant=False) if checkpoint else _decay_chunk(*args)
        ys.append(y)
    y = torch.cat(ys)[:length].reshape(length, b, d)
    return y, h.reshape(b, d, n)


# ----------------------------------------------------------------------------------------------------------------
# parallel: Hillis-Steele doubling scan
# ----------------------------------------------------------------------------------------------------------------


def _scan_parallel(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, **_: object) -> tuple[Tensor, Tensor]:
    """Inclusive scan of (a_t, x_t) under (a1, x1) o (a2, x2) = (a1 a2, a2 x1 + x2), doubling the offset."""
    length, b, d = u.shape
    g, n = B.shape[2], A.shape[1]
    decay = torch.exp(_states_view(delta, g) * A.reshape(g, d // g, n))
    states = (_states_view(delta * u, g) * B).expand_as(decay)
    if length == 1:  # no decay is applied, but A stays in the graph with its zero gradient, as in the other scans
        states = states + 0 * decay
    offset = 1
    while offset < length:
        states = torch.cat([states[:offset], torch.addcmul(states[offset:], decay[offset:], states[:-offset])])
        if offset * 2 < length:  # the last products of decays are not needed
            decay = torch.cat([decay[:offset], decay[offset:] * decay[:-offset]])
        offset *= 2
    y = _row_dot(states, C).reshape(length, b, d)
    return y, states[-1].reshape(b, d, n)


_SCANS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    "sequential": _scan_sequential,
    "chunked": _scan_chunked,
    "decay": _scan_decay,
    "parallel": _scan_parallel,
}


# ----------------------------------------------------------------------------------------------------------------
# mamba_ssm kernel
# ----------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mamba_ssm_fn() -> Callable | None:
    """``selective_scan_fn`` of mamba_ssm, or None when it (or its CUDA extension) does not import."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - ImportError, or a missing/broken CUDA extension
        return None
    return selective_scan_fn


def _mamba_ssm_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                    delta_bias: Tensor | None, delta_softplus: bool,
                    return_last_state: bool) -> Tensor | tuple[Tensor, Tensor]:
    kernel = _mamba_ssm_fn()
    return kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
