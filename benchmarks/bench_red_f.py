"""RED-F training-step and scoring time, parameters and peak memory, and the 5-epoch training time they imply.

Settings (L = 192, H = 64, n = 2 MSP modules, batch 128 as the paper's Table VI):
  paper       the defaults, the reading of the paper's Table VI size: DFM D = 256 (d_ff 512, 8 heads), REM D = 32
              with single linear heads (3.61 M parameters on GECCO at H = 64);
  spec        REM at D = 256 as the spec reads it, with ``--head`` heads (``residual`` = CATCH's three
              Linear(N D, N D) blocks; ``linear``; ``mlp``), DFM as above;
  small       D = 64, d_ff 128, 4 heads, linear heads: the size used for the CPU runs in the README.
Channels: GECCO (C = 9) and MSL (C = 55), or ``--channels``.

A step is ``training_loss`` (REM + two DFM streams + MSP modules) + backward + one Adam step on random data of the
right shape; the fastest of ``--repeats`` steps after one warm-up is kept. Scoring: one batch of L + H windows.
Each setting runs in a fresh child process, which also reports its peak RSS (``VmHWM``). The 5-epoch estimate
multiplies the step time by the steps of 5 epochs over the training split with stride-1 starts (``--train-rows``,
default GECCO's 55,408 rows: the first half of the 138,521 rows minus the 20 % validation tail).

Usage: ``python benchmarks/bench_red_f.py [--settings paper spec small] [--channels 9 55] [--head linear]
[--threads 2] [--repeats 2] [--batch 128]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from memory import rss_mb

from fsad.methods.red_f.module import REDF

WINDOW, HORIZON, BLOCKS = 192, 64, 3


def sizes(setting: str, head: str) -> dict:
    if setting == "paper":
        return dict(rem={}, dfm={})
    if setting == "spec":
        return dict(rem=dict(d_model=256, head=head), dfm={})
    if setting == "small":
        return dict(rem=dict(d_model=64, head="linear"), dfm=dict(d_model=64, d_ff=128, n_heads=4))
    raise ValueError(f"unknown setting {setting!r}")


def measure(setting: str, channels: int, head: str, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = REDF(n_channels=channels, window=WINDOW, horizon=HORIZON, horizon_blocks=BLOCKS, **sizes(setting, head))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, WINDOW + BLOCKS * HORIZON, channels)
    steps = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        model.training_loss(x)["loss"].backward()
        optimiser.step()
        steps.append(time.perf_counter() - started)
    model.eval()
    started = time.perf_counter()
    model.score(x[:, : WINDOW + HORIZON])
    score = time.perf_counter() - started
    return {"setting": setting, "channels": channels, "head": head if setting == "spec" else "linear",
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6, "step_s": min(steps[1:]),
            "score_batch_s": score, "peak_MB": rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", nargs="+", default=["paper", "spec", "small"])
    parser.add_argument("--channels", nargs="+", type=int, default=[9, 55])
    parser.add_argument("--head", default="linear", choices=["residual", "mlp", "linear"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-rows", type=int, default=55_408)
    parser.add_argument("--child", nargs=2, metavar=("SETTING", "CHANNELS"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.head, args.batch, args.repeats)))
        return
    samples = args.train_rows - (WINDOW + BLOCKS * HORIZON) + 1
    epoch_steps = -(-samples // args.batch)
    print(f"L={WINDOW} H={HORIZON} n={BLOCKS - 1} batch={args.batch} threads={args.threads}; "
          f"5 epochs = {5 * epoch_steps} steps over {args.train_rows} training rows")
    print(f"{'setting':8} {'C':>3} {'head':>8} {'params':>9} {'step':>8} {'score/batch':>12} {'peak MB':>8} "
          f"{'5 epochs':>10}")
    for setting in args.settings:
        for channels in args.channels:
            cmd = [sys.executable, __file__, "--child", setting, str(channels), "--head", args.head,
                   "--threads", str(args.threads), "--repeats", str(args.repeats), "--batch", str(args.batch)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:  # e.g. killed by the kernel when the step does not fit in memory
                reason = "killed (out of memory?)" if done.returncode < 0 else done.stderr.strip().splitlines()[-1]
                print(f"{setting:8} {channels:>3} {args.head:>8} {reason}")
                continue
            out = json.loads(done.stdout.splitlines()[-1])
            print(f"{setting:8} {channels:>3} {out['head']:>8} {out['params_M']:>8.2f}M {out['step_s']:>7.2f}s "
                  f"{out['score_batch_s']:>11.2f}s {out['peak_MB']:>8.0f} {5 * epoch_steps * out['step_s']:>9.0f}s")


if __name__ == "__main__":
    main()
