"""Forward + backward time and peak memory of the selective-scan backends (and of one Mamba block).

Setting: batch 32, d_inner 128, d_state 16 (TransMamba's block; Wave-MambaAD's HFSS has the same width), B and C
input-dependent (b, n, L), delta_bias + softplus, z gate, D skip; L in (100, 1000, 4096); CPU.
One step = ``selective_scan(...)`` forward, ``out.sum().backward()``.
Threads: the default is 1. On a 2-core machine shared with other jobs, 2 intra-op threads make every small op wait
for a descheduled thread at its barrier: measured here under load, L = 100 took 17 s wall / 4.8 s CPU (sequential)
with 2 threads against 1.4 s / 0.24 s with 1. Use ``--threads 2`` on an idle machine.

Timing: one fresh child process per (backend, L): one warm-up step, then ``repeats`` steps; the median wall and
process-CPU seconds are reported (CPU seconds add up over threads). Long reference runs are cut: where a row says
``n=1`` its time is one step without warm-up (an estimate). The machine may be shared: wall time then measures the
load as much as the code, the CPU column is the steadier one.
Memory: ``peak MB`` is the peak RSS (``VmHWM`` of /proc/self/status) of that child minus its RSS once the inputs
were built, i.e. the extra resident memory of the step (autograd activations, temporaries, allocator caching).
Skipped cells (``-``) would need more memory than this machine has (estimated in the row).

Backends (``fsad.layers.selective_scan``): sequential (reference), chunked (default: fused chunk recurrence with a
recomputing hand-written backward), decay (lower-triangular decay form; run with ``checkpoint=True`` so that its
(T, T) decays are kept for one chunk at a time), parallel (Hillis-Steele, plain autograd), chunked+compile
(``compile=True``: each chunk's forward and backward fused by ``torch.compile``; its first step, which compiles, is
not timed and is shown separately), native (the C kernel of ``fsad.layers.native_scan``; ``auto`` on CPU).

Usage: ``python benchmarks/bench_scan.py [--quick] [--lengths 100 1000 4096] [--repeats 2] [--threads 1]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from memory import rss_mb

from fsad.layers.mamba import Mamba
from fsad.layers.selective_scan import PURE_BACKENDS, selective_scan

BATCH, D_INNER, D_STATE = 32, 128, 16
STATE_BYTES = BATCH * D_INNER * D_STATE * 4  # one float32 state (b, d, n)
VARIANTS = (*PURE_BACKENDS, "chunked+compile", "native")
MEMORY_LIMIT_GB = 12.0  # skip a cell whose estimated activation memory exceeds this



def estimated_gb(backend: str, length: int) -> float:
    """Rough activation memory: number of (b, d, n, L)-sized float32 tensors autograd keeps."""
    full = STATE_BYTES * length / 1e9
    if backend == "parallel":
        return full * 2 * max(1, (length - 1).bit_length())  # decays and states at every doubling level
    if backend == "sequential":
        return full * 6
    if backend == "native":
        return 0.0  # inputs-sized only
    return full * 0.5  # chunked (+compile) / decay (checkpointed): inputs, chunk-start states, one chunk


def scan_inputs(length: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(BATCH, D_INNER, length), (BATCH, D_INNER, length), (D_INNER, D_STATE), (BATCH, D_STATE, length),
              (BATCH, D_STATE, length), (D_INNER,), (BATCH, D_INNER, length), (D_INNER,)]
    u, delta, a_log, b, c, d, z, bias = (torch.randn(*s, generator=gen) for s in shapes)
    a = -torch.exp(a_log * 0.5)
    return [t.requires_grad_() for t in (u, delta * 0.5, a, b, c, d, z, bias * 0.5 - 3.0)]


def scan_step(variant: str, tensors: list[torch.Tensor]) -> None:
    u, delta, a, b, c, d, z, bias = tensors
    backend, compiled = variant.removesuffix("+compile"), variant.endswith("+compile")
    out = selective_scan(u, delta, a, b, c, d, z=z, delta_bias=bias, delta_softplus=True, backend=backend,
                         checkpoint=backend == "decay", compile=compiled)
    out.sum().backward()


def block_step(block: Mamba, x: torch.Tensor) -> None:
    block(x).sum().backward()


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    kind, backend, length, repeats = args.child[0], args.child[1], int(args.child[2]), int(args.child[3])
    if kind == "block":
        torch.manual_seed(0)
        block = Mamba(D_INNER // 2, d_state=D_STATE, scan_backend=backend)
        x = torch.randn(BATCH, length, D_INNER // 2)
        step = lambda: block_step(block, x)  # noqa: E731
    else:
        tensors = scan_inputs(length)
        step = lambda: scan_step(backend, tensors)  # noqa: E731
    base = rss_mb("VmRSS")
    wall, cpu, first = [], [], 0.0
    warm_up = repeats > 1 or backend.endswith("+compile")  # the first compiled step compiles
    for index in range(repeats + (1 if warm_up else 0)):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        if warm_up and index == 0:
            first = time.perf_counter() - w0
            continue
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"wall": statistics.median(wall), "cpu": statistics.median(cpu), "n": len(wall),
                      "peak_mb": rss_mb("VmHWM") - base, "first": first}))


def spawn(args: argparse.Namespace, kind: str, backend: str, length: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--threads", str(args.threads), "--child", kind, backend, str(length),
           str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def repeats_for(args: argparse.Namespace, backend: str, length: int) -> int:
    """Fewer repeats for the slow reference on long sequences (one step, no warm-up, is an estimate)."""
    if (backend == "sequential" and length >= args.single_from) or (
            backend == "decay" and length >= args.decay_single_from):
        return 1
    return args.repeats


def row(label: str, backend: str, length: int, result: dict, reference: dict | None) -> str:
    if "error" in result or "skipped" in result:
        return f"{label:<14} {backend:<15} {length:>5} {'-':>8} {'-':>7} {'-':>9} {'-':>9} {'-':>8}  " + \
            result.get("skipped", result.get("error", ""))
    speed_wall = speed_cpu = "-"
    if reference and "wall" in reference:
        speed_wall = f"{reference['wall'] / result['wall']:.1f}x"
        speed_cpu = f"{reference['cpu'] / result['cpu']:.1f}x"
    return (f"{label:<14} {backend:<15} {length:>5} {result['wall']:8.3f} {result['cpu']:7.3f} {speed_wall:>9} "
            f"{speed_cpu:>9} {result['peak_mb']:8.0f}  n={result['n']}"
            + (f", first step (compiles) {result['first']:.0f} s" if backend.endswith("+compile") else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="L in (100, 400), 1 repeat: a smoke run")
    parser.add_argument("--lengths", nargs="+", type=int, default=[100, 1000, 4096])
    parser.add_argument("--backends", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--single-from", type=int, default=2000, help="sequential: one step from this L on")
    parser.add_argument("--decay-single-from", type=int, default=1000, help="decay: one step from this L on")
    parser.add_argument("--block-length", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--decay-max-length", type=int, default=100, help="skip decay above this L (slow)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.lengths, args.repeats, args.block_length = [100, 400], 1, 100

    print(f"selective scan forward + backward: batch {BATCH}, d_inner {D_INNER}, d_state {D_STATE}, "
          f"torch threads {args.threads}, {torch.__version__}")
    print(f"{'':<14} {'backend':<15} {'L':>5} {'wall s':>8} {'CPU s':>7} {'vs seq':>9} {'vs seq':>9} "
          f"{'peak MB':>8}")
    print(f"{'':<14} {'':<15} {'':>5} {'':>8} {'':>7} {'(wall)':>9} {'(CPU)':>9}")
    for length in args.lengths:
        reference = None
        for backend in args.backends:
            need = estimated_gb(backend, length)
            if backend == "decay" and length > args.decay_max_length:
                result = {"skipped": f"skipped: L > --decay-max-length {args.decay_max_length} (O(L T) work, slow)"}
            elif need > MEMORY_LIMIT_GB:
                result = {"skipped": f"skipped: needs about {need:.0f} GB of activations"}
            else:
                result = spawn(args, "scan", backend, length, repeats_for(args, backend, length))
            if backend == "sequential":
                reference = result
            print(row("scan", backend, length, result, reference), flush=True)
    reference = None
    for backend in ("sequential", "chunked", "native"):
        result = spawn(args, "block", backend, args.block_length, repeats_for(args, backend, args.block_length))
        reference = reference or result
        print(row(f"Mamba({D_INNER // 2})", backend, args.block_length, result, reference), flush=True)
    print("wall s / CPU s: median of the timed steps (n) of one step; vs seq: sequential time / backend time "
          "(n=1: one step without warm-up, an estimate);")
    print("peak MB: peak RSS of a fresh process running the steps minus its RSS after building the inputs.")


if __name__ == "__main__":
    main()
