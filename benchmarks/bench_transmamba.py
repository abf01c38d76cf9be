"""Training-step time and peak memory of TransMamba: compact network vs the materialising reference.

Setting: MSL (window 90, C = 55), batch 128, patch sizes high [2, 3, 5] / low [6, 9, 15], d_model 64, 1 head,
1 layer, dropout 0.1 (train mode), contrastive views on, torch threads 2 (CPU).

Variants:
  compact       ``TransMambaNetwork.forward``: channel mean on the small (p x p) maps, objective on the common
                period lcm(p_high, p_low) of each pair (``objective.py``); no W x W tensor;
  materialised  the official order: every channel's map tiled to (B*C, H, W, W), channel mean, the losses on the
                full (B, H, W, W) maps (``materialised.py``).
Both share the frequency branch (Mamba over the spectrum, three views), so the difference is the time branch.

A step is forward + both losses + one backward pass + both Adam steps (the module's manual optimisation).
Timing: one child process runs the variants interleaved (one warm-up step each, then rounds; the fastest step of
each round is kept); wall and process-CPU seconds are reported. Memory: a fresh child per variant runs two steps
and reports its peak RSS (``VmHWM``). Wall times depend on other load on the machine: compare within a run.

Usage: ``python benchmarks/bench_transmamba.py [--rounds 2] [--repeats 3] [--threads 2] [--batch 128]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from memory import rss_mb

from fsad.layers.patch_attention import Layout, upsample
from fsad.methods.transmamba.materialised import materialised_forward, official_time_losses
from fsad.methods.transmamba.network import TransMambaNetwork
from fsad.methods.transmamba.objective import frequency_losses, time_losses

WINDOW, CHANNELS = 90, 55
HIGH, LOW = (2, 3, 5), (6, 9, 15)
VARIANTS = ("compact", "materialised")


def build(batch: int, scan_backend: str) -> tuple[TransMambaNetwork, torch.Tensor, list[torch.optim.Optimizer]]:
    torch.manual_seed(0)
    net = TransMambaNetwork(CHANNELS, WINDOW, HIGH, LOW, d_model=64, scan_backend=scan_backend).train()
    optimisers = [torch.optim.Adam(net.time_parameters(), lr=1e-4),
                  torch.optim.Adam(net.frequency_parameters(), lr=5e-5)]
    return net, torch.randn(batch, WINDOW, CHANNELS), optimisers


def losses(variant: str, net: TransMambaNetwork, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss_T, loss_F) of one batch."""
    if variant == "compact":
        out = net(x)
        loss_time = time_losses(out.high, out.low, WINDOW)["loss_time"]
    elif variant == "materialised":
        out = materialised_forward(net, x)
        loss_time = official_time_losses(out.high, out.low)["loss_time"]
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return loss_time, frequency_losses(x, out)["loss_freq"]


def train_step(variant: str, net: TransMambaNetwork, optimisers: list, x: torch.Tensor) -> None:
    """Forward + losses, one backward pass of loss_T + loss_F, both Adam steps (as ``TransMamba.training_step``)."""
    for optimiser in optimisers:
        optimiser.zero_grad(set_to_none=True)
    loss_time, loss_freq = losses(variant, net, x)
    (loss_time + loss_freq).backward()
    for optimiser in optimisers:
        optimiser.step()



def memory_child(variant: str, args: argparse.Namespace) -> dict:
    net, x, optimisers = build(args.batch, args.scan_backend)
    base_mb = rss_mb()
    for _ in range(2):
        train_step(variant, net, optimisers, x)
    return {"peak_mb": rss_mb(), "base_mb": base_mb}


def timing_child(args: argparse.Namespace) -> dict:
    net, x, optimisers = build(args.batch, args.scan_backend)
    for variant in args.variants:
        train_step(variant, net, optimisers, x)  # warm-up
    wall: dict[str, list[float]] = {v: [] for v in args.variants}
    cpu: dict[str, list[float]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            best_wall, best_cpu = float("inf"), float("inf")
            for _ in range(args.repeats if variant == "compact" else 1):
                w0, c0 = time.perf_counter(), time.process_time()
                train_step(variant, net, optimisers, x)
                best_wall, best_cpu = min(best_wall, time.perf_counter() - w0), min(best_cpu, time.process_time() - c0)
            wall[variant].append(best_wall)
            cpu[variant].append(best_cpu)
    return {"wall": wall, "cpu": cpu, "parity": parity(net, x) if len(args.variants) == 2 else None}


@torch.no_grad()
def parity(net: TransMambaNetwork, x: torch.Tensor) -> tuple[float, float]:
    """Max |tiled compact map - materialised map| and |loss_T difference| at full scale (eval mode, fp32)."""
    net.eval()
    fast, ref = net(x, contrastive=False), materialised_forward(net, x, contrastive=False)
    map_diff = max((upsample(a, a.shape[-1], Layout.TILE, WINDOW) - b).abs().max().item()
                   for a, b in zip(fast.high + fast.low, ref.high + ref.low))
    fast_terms, ref_terms = time_losses(fast.high, fast.low, WINDOW), official_time_losses(ref.high, ref.low)
    net.train()
    return map_diff, abs(fast_terms["high_loss"].item() - ref_terms["high_loss"].item())


def spawn(args: argparse.Namespace, *child: str) -> dict:
    cmd = [sys.executable, __file__, "--child", *child, "--batch", str(args.batch), "--threads", str(args.threads),
           "--rounds", str(args.rounds), "--repeats", str(args.repeats), "--scan-backend", args.scan_backend,
           "--variants", *args.variants]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    parser.add_argument("--repeats", type=int, default=3, help="steps of the compact variant per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scan-backend", default="auto")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(args.threads)
        mode, *rest = args.child
        print(json.dumps(memory_child(rest[0], args) if mode == "memory" else timing_child(args)))
        return

    print(f"TransMamba training step (forward + loss_T/loss_F + backward + two Adam steps), MSL setting: "
          f"window {WINDOW}, C = {CHANNELS}, batch {args.batch}, high {list(HIGH)} / low {list(LOW)}, d_model 64, "
          f"scan backend {args.scan_backend}, torch threads {args.threads}")
    timing = spawn(args, "timing")
    ref = timing["wall"].get("materialised")
    print(f"{'variant':<14} {'s/batch':>8} {'CPU s':>7} {'speed-up':>9} {'per round':>13} {'peak MB':>8} "
          f"{'base MB':>8}")
    for variant in args.variants:
        memory = spawn(args, "memory", variant)
        wall = timing["wall"][variant]
        speed = f"{min(ref) / min(wall):8.1f}x" if ref else "-"
        rounds = "-" if not ref else "/".join(f"{r / w:.1f}" for r, w in zip(ref, wall))
        print(f"{variant:<14} {min(wall):8.3f} {min(timing['cpu'][variant]):7.2f} {speed:>9} {rounds:>13} "
              f"{memory['peak_mb']:8.0f} {memory['base_mb']:8.0f}", flush=True)
    if timing["parity"] is not None:
        map_diff, loss_diff = timing["parity"]
        print(f"fp32 parity compact vs materialised: max |map diff| {map_diff:.1e}, |high_loss diff| {loss_diff:.1e}")
    print("s/batch, CPU s: fastest step (wall, process CPU); speed-up: materialised / variant; per round: the same "
          "ratio within each interleaved round; peak MB: peak RSS (VmHWM) of a fresh process running two steps of "
          "that variant alone; base MB: its RSS before the first step.")


if __name__ == "__main__":
    main()
