"""The ``native`` selective-scan backend: small C kernels for CPU tensors (``native/selective_scan.c``: the scan of
``selective_scan``; ``native/ordered_scan.c``: the scans of maps read in several orders, ``ordered_scan``;
``native/gelu_gate.c``: the DSE gate of :mod:`fsad.layers.dse`).

The C files are compiled on first use with the machine's C compiler (``$CC``, default ``cc``; ``-O3 -march=native``,
falling back to portable flags) into ``$FSAD_CACHE_DIR`` (default ``~/.cache/fsad``), one shared library per
sources, flags and CPU, written atomically so that concurrent processes (DDP, multirun) can share it; later
processes load it in milliseconds. Without a working compiler the backend reports itself unavailable and
``auto`` uses the pure-PyTorch ``chunked`` scan.

Why a kernel: on CPU the scan is bound by memory traffic over the (b, d, n, L) states; eager PyTorch makes about
twenty passes over them for forward + backward, the kernel keeps one row's state in registers and its backward
recomputes the row's (L, n) states in a thread-local buffer, so nothing state-sized is stored or re-read.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

_PORTABLE_FLAGS = ("-O3", "-fPIC", "-std=gnu11", "-fopenmp-simd", "-ffp-contract=fast", "-fno-math-errno",
                   "-fno-trapping-math")
# Best first: tuned for this CPU with OpenMP threads, then portable, then single-threaded.
_FLAG_SETS = ((*_PORTABLE_FLAGS, "-march=native", "-fopenmp"), (*_PORTABLE_FLAGS, "-fopenmp"), _PORTABLE_FLAGS)
_VARIANTS = {torch.float32: ("f32", ()), torch.float64: ("f64", ("-DREAL=double", "-DSUFFIX=f64", "-DSCAN_DOUBLE"))}


class _Args(ctypes.Structure):
    """Mirror of ``scan_args`` in the C file (fields in the same order)."""

    _fields_ = [(name, ctypes.c_int64) for name in (
        "batch", "channels", "length", "state",
        "b_groups", "b_batch_stride", "b_group_stride", "b_time_stride",
        "c_groups", "c_batch_stride", "c_group_stride", "c_time_stride",
        "unit_channels", "grad_b_partial", "grad_c_partial", "threads", "delta_softplus")] + [
        (name, ctypes.c_void_p) for name in (
            "u", "delta", "delta_bias", "A", "B", "C", "D", "z", "out", "last", "ungated", "grad_out", "grad_last",
            "grad_u", "grad_delta", "grad_delta_bias", "grad_A", "grad_B", "grad_C", "grad_D", "grad_z")]


class _OrderedArgs(ctypes.Structure):
    """Mirror of ``ordered_args`` in ``native/ordered_scan.c``."""

    _fields_ = [(name, ctypes.c_int64) for name in (
        "batch", "length", "channels", "orders", "state", "groups", "threads", "delta_softplus")] + [
        (name, ctypes.c_void_p) for name in (
            "reads", "slots", "u", "delta", "delta_bias", "A", "B", "C", "D", "out", "grad_out", "grad_u",
            "grad_delta", "grad_A", "grad_B", "grad_C", "grad_D", "grad_delta_bias")]


_SOURCES = ("selective_scan.c", "ordered_scan.c", "gelu_gate.c", "scan_math.h")
_ENTRY_POINTS = ("scan_forward", "scan_backward", "ordered_forward", "ordered_backward")


_ELEMENTWISE = {"gelu_gate_forward": (2, 2), "gelu_gate_backward": (3, 2)}  # entry point: tensors, sizes


def native_elementwise(name: str, tensors: tuple[Tensor, ...], sizes: tuple[int, ...]) -> bool:
    """Run the element-wise entry point ``name`` of the library (``_ELEMENTWISE``: its tensor and size arguments)
    on contiguous CPU tensors of one dtype (float32 or float64), with PyTorch's intra-op threads. False, doing
    nothing, when the library is unavailable or the tensors do not qualify (the caller computes it in PyTorch)."""
    first = tensors[0]
    if _library() is None or first.dtype not in _VARIANTS or any(
            t.dtype != first.dtype or not t.is_contiguous() or t.is_cuda for t in tensors):
        return False
    entry = getattr(_library(), f"{name}_{_VARIANTS[first.dtype][0]}")
    entry(*(t.data_ptr() for t in tensors), *sizes, max(1, torch.get_num_threads()))
    return True


def native_available() -> bool:
    """True when the kernel is compiled (or compiles now) and loads."""
    return _library() is not None


def native_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                z: Tensor | None = None, delta_bias: Tensor | None = None,
                delta_softplus: bool = False) -> tuple[Tensor, Tensor]:
    """``selective_scan``'s definition on CPU tensors of one float dtype (float32 or float64), every step fused.

    Args:
        u, delta: (b, d, L); A: (d, n); B, C: (d, n), (b, n, L) or (b, g, n, L) as in ``selective_scan``;
        D: (d,) or None; z: (b, d, L) or None; delta_bias: (d,) or None.

    Returns:
        out (b, d, L) and the last state (b, d, n), differentiable with respect to every tensor input.
    """
    if _library() is None:
        raise RuntimeError("the native selective scan did not compile on this machine (see the log); "
                           "use backend 'chunked'")
    if u.dtype not in _VARIANTS or u.is_cuda:
        raise ValueError(f"the native selective scan runs on float32/float64 CPU tensors, got {u.dtype} on {u.device}")
    d = u.shape[1]
    return _NativeScan.apply(u, delta, A, _state_last(B, d), _state_last(C, d), D, z, delta_bias, delta_softplus)


def _state_last(m: Tensor, d: int) -> Tensor:
    """B or C as a contiguous (b', g, L', n) tensor: (d, n) -> (1, d, 1, n), (b, n, L) -> (b, 1, L, n)."""
    if m.dim() == 2:
        return m.reshape(1, d, 1, m.shape[1]).contiguous()
    if m.dim() == 3:
        m = m.unsqueeze(1)
    return m.transpose(2, 3).contiguous()


def _strides(m: Tensor) -> tuple[int, int, int, int]:
    """(groups, batch, group, time) strides of a (b', g, L', n) tensor; broadcast dimensions get stride 0."""
    return m.shape[1], *(0 if m.shape[i] == 1 else m.stride(i) for i in (0, 1, 2))


def _pointer(x: Tensor | None) -> int | None:
    return None if x is None else x.data_ptr()


def _contiguous(x: Tensor | None) -> Tensor | None:
    return None if x is None else x.contiguous()


class _NativeScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                delta_bias: Tensor | None, delta_softplus: bool) -> tuple[Tensor, Tensor]:
        u, delta, A, D, z, delta_bias = (_contiguous(x) for x in (u, delta, A, D, z, delta_bias))
        out, last = torch.empty_like(u), u.new_empty(*u.shape[:2], A.shape[1])
        ungated = None if z is None else torch.empty_like(u)
        ctx.delta_softplus = delta_softplus
        args = _arguments(u, delta, A, B, C, D, z, delta_bias, delta_softplus, ungated)
        args.out, args.last = _pointer(out), _pointer(last)
        _call("scan_forward", u.dtype, args)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, ungated)
        return out, last

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_last: Tensor | None) -> tuple[Tensor | None, ...]:
        u, delta, A, B, C, D, z, delta_bias, ungated = ctx.saved_tensors
        args = _arguments(u, delta, A, B, C, D, z, delta_bias, ctx.delta_softplus, ungated)
        threads = args.threads
        grads = {
            "grad_out": torch.zeros_like(u) if grad_out is None else grad_out.contiguous(),
            "grad_last": _contiguous(grad_last),
            "grad_u": torch.empty_like(u), "grad_delta": torch.empty_like(delta),
            "grad_A": A.new_zeros(threads, *A.shape),
            "grad_B": B.new_zeros(threads if args.b_batch_stride == 0 else 1, *B.shape),
            "grad_C": C.new_zeros(threads if args.c_batch_stride == 0 else 1, *C.shape),
            "grad_D": None if D is None else D.new_zeros(threads, *D.shape),
            "grad_delta_bias": None if delta_bias is None else delta_bias.new_zeros(threads, *delta_bias.shape),
            "grad_z": None if z is None else torch.empty_like(z),
        }
        args.grad_b_partial = B.numel() if grads["grad_B"].shape[0] > 1 else 0
        args.grad_c_partial = C.numel() if grads["grad_C"].shape[0] > 1 else 0
        for name, value in grads.items():
            setattr(args, name, _pointer(value))
        _call("scan_backward", u.dtype, args)
        summed = {name: None if grads[name] is None else grads[name].sum(0)
                  for name in ("grad_A", "grad_B", "grad_C", "grad_D", "grad_delta_bias")}
        return (grads["grad_u"], grads["grad_delta"], summed["grad_A"], summed["grad_B"], summed["grad_C"],
                summed["grad_D"], grads["grad_z"], summed["grad_delta_bias"], None)


def native_ordered_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                        delta_bias: Tensor | None, delta_softplus: bool, reads: Tensor, slots: Tensor) -> Tensor:
    """``ordered_scan``'s definition on CPU tensors of one float dtype (float32 or float64): the maps read, scanned
    and put back in one pass (``native/ordered_scan.c``).

    Args:
        u: (b, L, d); delta: (K, b, L, d); A: (K d, n); B, C: (b, L, K, n); D, delta_bias: (K d,) or None;
        reads, slots: (G, K, L) int64 positions in [0, L), b divisible by G.

    Returns:
        (b, L, d), differentiable with respect to every float input.
    """
    if _library() is None:
        raise RuntimeError("the native selective scan did not compile on this machine (see the log); "
                           "use backend 'chunked'")
    if u.dtype not in _VARIANTS or u.is_cuda:
        raise ValueError(f"the native selective scan runs on float32/float64 CPU tensors, got {u.dtype} on {u.device}")
    return _NativeOrderedScan.apply(u, delta, A, B, C, D, delta_bias, delta_softplus, reads, slots)


class _NativeOrderedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                delta_bias: Tensor | None, delta_softplus: bool, reads: Tensor, slots: Tensor) -> Tensor:
        tensors = [_contiguous(x) for x in (u, delta, A, B, C, D, delta_bias)]
        reads, slots = reads.to(torch.int64).contiguous(), slots.to(torch.int64).contiguous()
        out = torch.empty_like(tensors[0])
        args = _ordered_arguments(*tensors, delta_softplus, reads, slots)
        args.out = _pointer(out)
        _call("ordered_forward", u.dtype, args)
        ctx.save_for_backward(*tensors, reads, slots)
        ctx.delta_softplus = delta_softplus
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        u, delta, A, B, C, D, delta_bias, reads, slots = ctx.saved_tensors
        args = _ordered_arguments(u, delta, A, B, C, D, delta_bias, ctx.delta_softplus, reads, slots)
        threads = args.threads
        grads = {"grad_out": grad_out.contiguous(), "grad_u": torch.zeros_like(u), "grad_delta": torch.zeros_like(delta),
                 "grad_A": A.new_zeros(threads, *A.shape), "grad_B": torch.zeros_like(B), "grad_C": torch.zeros_like(C),
                 "grad_D": None if D is None else D.new_zeros(threads, *D.shape),
                 "grad_delta_bias": None if delta_bias is None else delta_bias.new_zeros(threads, *delta_bias.shape)}
        for name, value in grads.items():
            setattr(args, name, _pointer(value))
        _call("ordered_backward", u.dtype, args)
        partial = {name: None if grads[name] is None else grads[name].sum(0)
                   for name in ("grad_A", "grad_D", "grad_delta_bias")}
        return (grads["grad_u"], grads["grad_delta"], partial["grad_A"], grads["grad_B"], grads["grad_C"],
                partial["grad_D"], partial["grad_delta_bias"], None, None, None)


def _ordered_arguments(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                       delta_bias: Tensor | None, delta_softplus: bool, reads: Tensor, slots: Tensor) -> _OrderedArgs:
    b, length, d = u.shape
    groups, orders, _ = reads.shape
    pointers = {name: _pointer(x) for name, x in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D),
                                                   ("delta_bias", delta_bias), ("reads", reads), ("slots", slots))}
    return _OrderedArgs(b, length, d, orders, A.shape[1], groups, max(1, torch.get_num_threads()),
                        int(delta_softplus), **pointers)


def _arguments(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
               delta_bias: Tensor | None, delta_softplus: bool, ungated: Tensor | None) -> _Args:
    b, d, length = u.shape
    b_groups, *b_strides = _strides(B)
    c_groups, *c_strides = _strides(C)
    unit = math.lcm(d // b_groups, d // c_groups)  # whole groups of B and of C per backward unit
    pointers = {name: _pointer(x) for name, x in (("u", u), ("delta", delta), ("delta_bias", delta_bias), ("A", A),
                                                   ("B", B), ("C", C), ("D", D), ("z", z), ("ungated", ungated))}
    return _Args(b, d, length, A.shape[1], b_groups, *b_strides, c_groups, *c_strides, unit, 0, 0,
                 max(1, torch.get_num_threads()), int(delta_softplus), **pointers)


def _call(name: str, dtype: torch.dtype, args: _Args) -> None:
    suffix = _VARIANTS[dtype][0]
    status = getattr(_library(), f"{name}_{suffix}")(ctypes.byref(args))
    if status:
        raise MemoryError(f"native selective scan: {name} could not allocate its per-thread buffers")


# ----------------------------------------------------------------------------------------------------------------
# Building and loading
# ----------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    if os.environ.get("FSAD_NATIVE_SCAN", "1") == "0":
        log.warning("native selective scan switched off (FSAD_NATIVE_SCAN=0): backend 'auto' uses 'chunked'")
        return None
    sources = {name: resources.files("fsad.layers").joinpath(f"native/{name}").read_bytes() for name in _SOURCES}
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        log.warning("native selective scan unavailable: no C compiler %r on PATH", compiler)
        return None
    for flags in _FLAG_SETS:
        path = _cache_dir() / f"selective_scan-{_build_key(sources, compiler, flags)}.so"
        if not path.exists():
            error = _build(sources, compiler, flags, path)
            if error:
                log.warning("native selective scan did not compile with %s: %s", " ".join(flags), error)
                continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError as error:  # e.g. an OpenMP runtime this process cannot provide
            log.warning("native selective scan built with %s does not load: %s", " ".join(flags), error)
            continue
        for suffix, _ in _VARIANTS.values():
            for name in _ENTRY_POINTS:
                getattr(library, f"{name}_{suffix}").restype = ctypes.c_int
            for name, (pointers, sizes) in _ELEMENTWISE.items():
                getattr(library, f"{name}_{suffix}").argtypes = [ctypes.c_void_p] * pointers + [ctypes.c_int64] * (
                    sizes + 1)
        return library
    return None


def _cache_dir() -> Path:
    path = Path(os.environ.get("FSAD_CACHE_DIR") or Path.home() / ".cache" / "fsad")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path)
        probe.close()
        return path
    except OSError:
        path = Path(tempfile.gettempdir()) / "fsad-cache"
        path.mkdir(parents=True, exist_ok=True)
        return path


def _build_key(sources: dict[str, bytes], compiler: str, flags: tuple[str, ...]) -> str:
    """Hash of what the library depends on: sources, compiler, flags, and the CPU (for -march=native)."""
    digest = hashlib.sha256()
    for name, text in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + text)
    for part in (compiler, " ".join(flags), platform.machine(), _cpu_flags()):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    return next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")


def _build(sources: dict[str, bytes], compiler: str, flags: tuple[str, ...], target: Path) -> str | None:
    """Compile the float and double variants of every C file and link them into ``target`` atomically; the error
    text or None."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        for name, text in sources.items():
            (work / name).write_bytes(text)
        objects = []
        for name in (name for name in sources if name.endswith(".c")):
            for suffix, defines in _VARIANTS.values():
                objects.append(str(work / f"{Path(name).stem}_{suffix}.o"))
                command = [compiler, *flags, *defines, "-c", str(work / name), "-o", objects[-1]]
                if error := _run(command):
                    return error
        library = work / "scan.so"
        openmp = ["-fopenmp"] if "-fopenmp" in flags else []
        if error := _run([compiler, "-shared", *openmp, *objects, "-o", str(library), "-lm"]):
            return error
        os.replace(library, target)
    return None


def _run(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return (result.stderr.strip() or f"exit status {result.returncode}") if result.returncode else None
