"""Training-step time and scoring speed of RD4AD (reverse distillation, ResNet-34 teacher) on this machine.

Setting: batch 16, 256 x 256 images (the papers'), the RD4AD decoder (de_resnet34 depths 3/4/6) and the light one
of the synthetic demo (1/1/1), torch threads from ``--threads``. A training step is teacher forward + bottleneck +
decoder + loss + backward + Adam step; scoring is the anomaly maps of a batch, smoothed (sigma 4) as the pipeline
does. One warm-up step, then ``--repeats`` timed steps; wall and process-CPU seconds and the parameter counts are
printed (the frozen teacher up to layer3 has 8,170,304 parameters; ADer's fvcore count is 8.17 M).

Usage: ``python benchmarks/bench_rd4ad.py [--batch 16] [--size 256] [--repeats 3] [--threads 2]``
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
from memory import rss_mb

from fsad.methods.reverse_distillation import ReverseDistillation

DECODERS = {"rd4ad (3,4,6)": [3, 4, 6], "light (1,1,1)": [1, 1, 1]}


def timed(step, repeats: int) -> tuple[float, float]:
    """(wall, process-CPU) seconds per call of ``step`` after one warm-up call."""
    step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("fsad.layers.resnet").setLevel(logging.ERROR)  # the random-teacher warning
    images = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(f"batch {args.batch}, {args.size} x {args.size}, threads {args.threads}")
    for name, depths in DECODERS.items():
        torch.manual_seed(0)
        model = ReverseDistillation(decoder={"_target_": "fsad.methods.reverse_distillation.ConvStudentDecoder",
                                             "depths": depths}, lr_drop_at=None)
        optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3, betas=(0.5, 0.999))
        model.train()

        def train_step() -> None:
            optimiser.zero_grad(set_to_none=True)
            model.training_loss(images)["loss"].backward()
            optimiser.step()

        def score_step() -> None:
            with torch.no_grad():
                model.maps_at(images, (args.size, args.size))

        train_wall, train_cpu = timed(train_step, args.repeats)
        model.eval()
        score_wall, score_cpu = timed(score_step, args.repeats)
        frozen = sum(p.numel() for p in model.encoder.parameters())
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"{name:15s} params: teacher {frozen / 1e6:.2f} M (frozen), trained {trained / 1e6:.2f} M | "
              f"train step {train_wall:.2f} s wall ({train_cpu:.2f} s CPU) = {args.batch / train_wall:.1f} img/s | "
              f"scoring {score_wall:.2f} s per batch = {args.batch / score_wall:.1f} img/s | peak RSS "
              f"{rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
