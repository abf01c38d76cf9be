"""Training-step time and peak memory of FreCT: efficient network vs the materialising reference.

Setting: MSL (window 90, C = 55), batch 64, 1 head, 3 layers, torch threads 2 (CPU). Presets: ``code``
(patch sizes 3/5/9, D = 256, the official script) and ``paper`` (patch sizes 3/5, D = 128).

Variants:
  efficient         ``FreCTNetwork.forward`` (structured aggregation + affine attention + grouped convolution);
  aggregation-only  only the structured aggregation (plain embedding/Q/K and convolution module);
  materialised      the official order: per-channel L x L maps, channel mean, then values.

Timing: one child process per preset runs the variants interleaved (after one warm-up step each), in rounds,
so that every round sees the same machine load; a step is forward + loss + backward + Adam step. Wall and
process-CPU seconds are reported (wall time is sensitive to other load on the machine).
Memory: a fresh child process per (preset, variant) runs two steps and reports its peak RSS (``VmHWM``).

Usage: ``python benchmarks/bench_frect.py [--presets code paper] [--rounds 2] [--repeats 3] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from memory import rss_mb

from fsad.methods.frect.materialised import materialised_forward
from fsad.methods.frect.network import EfficientPath, FreCTNetwork
from fsad.methods.frect.objective import frect_loss

WINDOW, CHANNELS = 90, 55
PRESETS: dict[str, dict] = {
    "code": {"patch_sizes": (3, 5, 9), "d_model": 256},
    "paper": {"patch_sizes": (3, 5), "d_model": 128},
}
VARIANTS = ("efficient", "aggregation-only", "materialised")
Forward = Callable[[torch.Tensor], tuple[list[torch.Tensor], list[torch.Tensor]]]


def build(preset: str, batch: int) -> tuple[FreCTNetwork, torch.Tensor]:
    torch.manual_seed(0)
    net = FreCTNetwork(CHANNELS, WINDOW, n_heads=1, e_layers=3, **PRESETS[preset])
    return net, torch.randn(batch, WINDOW, CHANNELS)


def forward_of(variant: str, net: FreCTNetwork) -> Forward:
    if variant == "efficient":
        return net
    if variant == "aggregation-only":
        return lambda x: net.encode(x, EfficientPath(affine_attention=False, grouped_conv=False))
    if variant == "materialised":
        return lambda x: materialised_forward(net, x)
    raise ValueError(f"unknown variant {variant!r}")



def train_step(forward: Forward, net: FreCTNetwork, optimiser: torch.optim.Optimizer, x: torch.Tensor) -> None:
    """Forward + loss + backward + Adam step."""
    optimiser.zero_grad(set_to_none=True)
    series, prior = forward(x)
    frect_loss(series, prior)["loss"].backward()
    optimiser.step()


def memory_child(preset: str, variant: str, batch: int) -> dict:
    """Peak RSS of one variant: a fresh process, two training steps."""
    net, x = build(preset, batch)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
    base_mb = rss_mb()  # model and batch built, no step yet
    for _ in range(2):
        train_step(forward_of(variant, net), net, optimiser, x)
    return {"peak_mb": rss_mb(), "base_mb": base_mb}


def timing_child(preset: str, variants: list[str], batch: int, rounds: int, inner: dict[str, int]) -> dict:
    """Wall/CPU seconds per step, the variants interleaved so that each round sees the same machine load.

    One warm-up step per variant, then ``rounds`` rounds; in a round every variant runs ``inner[variant]`` steps
    and keeps its fastest. Also checks fp32 parity of the efficient and materialised outputs at full scale.
    """
    net, x = build(preset, batch)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
    forwards = {variant: forward_of(variant, net) for variant in variants}
    for forward in forwards.values():
        train_step(forward, net, optimiser, x)  # warm-up (allocator, kernel selection)
    wall: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant, forward in forwards.items():
            best_wall, best_cpu = float("inf"), float("inf")
            for _ in range(inner[variant]):
                w0, c0 = time.perf_counter(), time.process_time()
                train_step(forward, net, optimiser, x)
                best_wall = min(best_wall, time.perf_counter() - w0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            wall[variant].append(best_wall)
            cpu[variant].append(best_cpu)
    return {"wall": wall, "cpu": cpu, "parity": parity(net, x)}


@torch.no_grad()
def parity(net: FreCTNetwork, x: torch.Tensor) -> tuple[float, float]:
    """Max |efficient - materialised| over all outputs, and |loss difference|, at full scale in fp32."""
    eff, ref = net(x), materialised_forward(net, x)
    out_diff = max((a - b).abs().max().item() for a, b in zip(eff[0] + eff[1], ref[0] + ref[1]))
    loss_diff = (frect_loss(*eff)["loss"] - frect_loss(*ref)["loss"]).abs().item()
    return out_diff, loss_diff


def spawn(args: argparse.Namespace, *child: str) -> dict:
    """Run this script as a child (``--child MODE PRESET [VARIANT]``) and parse its JSON line."""
    cmd = [sys.executable, __file__, "--child", *child, "--batch", str(args.batch), "--threads", str(args.threads),
           "--rounds", str(args.rounds), "--repeats", str(args.repeats), "--variants", *args.variants]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    mode, preset, *rest = args.child
    if mode == "memory":
        result = memory_child(preset, rest[0], args.batch)
    else:
        inner = {v: (1 if v != "efficient" else args.repeats) for v in args.variants}
        result = timing_child(preset, args.variants, args.batch, args.rounds, inner)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    parser.add_argument("--repeats", type=int, default=3, help="steps of the efficient variant per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    print(f"FreCT training step (forward + loss + backward + Adam), MSL setting: window {WINDOW}, C = {CHANNELS}, "
          f"batch {args.batch}, 1 head, 3 layers, torch threads {args.threads}")
    print(f"{'preset':<22} {'variant':<17} {'s/batch':>8} {'CPU s':>7} {'speed-up':>9} {'per round':>13} "
          f"{'peak MB':>8} {'base MB':>8}")
    for preset in args.presets:
        timing = spawn(args, "timing", preset)
        label = f"{preset} p={','.join(map(str, PRESETS[preset]['patch_sizes']))} D={PRESETS[preset]['d_model']}"
        ref = timing["wall"].get("materialised")
        for variant in args.variants:
            memory = spawn(args, "memory", preset, variant)
            wall = timing["wall"][variant]
            speed = f"{min(ref) / min(wall):8.1f}x" if ref else "-"
            rounds = "-" if not ref else "/".join(f"{r / w:.1f}" for r, w in zip(ref, wall))
            print(f"{label:<22} {variant:<17} {min(wall):8.2f} {min(timing['cpu'][variant]):7.2f} {speed:>9} "
                  f"{rounds:>13} {memory['peak_mb']:8.0f} {memory['base_mb']:8.0f}", flush=True)
        if "materialised" in args.variants and "efficient" in args.variants:
            out_diff, loss_diff = timing["parity"]
            print(f"{'':<22} fp32 parity efficient vs materialised: max |output diff| {out_diff:.1e}, "
                  f"|loss diff| {loss_diff:.1e}")
    print("s/batch, CPU s: fastest step (wall, process CPU); speed-up: materialised / variant (fastest steps); "
          "per round: the same ratio within each interleaved round;")
    print("peak MB: peak RSS (VmHWM) of a fresh process running two steps of that variant alone; "
          "base MB: its RSS before the first step.")


if __name__ == "__main__":
    main()
