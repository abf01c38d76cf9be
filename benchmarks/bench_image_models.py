"""Speed of the image methods against this machine's own limit: achieved FLOP/s as a fraction of its dense
float32 matrix-multiply rate, measured in the same run.

Setting: batch 16, 256 x 256 images, ``--threads`` intra-op threads (2 by default), the models as their config
files build them (``model=<name>``: the ResNet-34 teacher to layer3, the bottleneck and the decoder; random
weights: speed does not depend on them). For each (model, scan backend), one fresh child process:
  training step  teacher forward + bottleneck + decoder + loss + backward + optimiser step (the model's own:
                 AdamW for the Mamba decoders, ADer's setting; Adam for RD4AD);
  inference      the anomaly maps of a batch, smoothed (sigma 4) as the scoring does.
One warm-up call, then ``--repeats`` timed calls; wall seconds per call (mean). ``peak MB``: the child's peak
resident memory (``VmHWM``), i.e. the whole process including the model, the batch and the training state.

FLOPs: 2 x the multiply-adds counted by ``fsad.utils.complexity`` (convolutions, linear layers, matrix products;
not the element-wise work nor the scans, as ADer's table) of one image, times the batch, counted once per model on
its first backend (the pure backends' own matrix products would otherwise count as model FLOPs); the training step counts
the backward of the trained parts as twice their forward (gradients of inputs and of weights; the frozen teacher
has none). PyTorch's counter is not used on the backward itself: it counts a grouped convolution's backward as a
dense one. The matmul rate: the median of 5 products of two
4096 x 4096 float32 matrices with the same threads, measured before and after the models (both printed; the
fraction uses their mean). The rate of a large 3 x 3 convolution is printed beside it: where the convolution
library outruns BLAS (oneDNN's AVX-512 code against MKL's on AMD processors), convolution-bound models such as
RD4AD exceed 100 % of the matmul rate. ``max |d maps|``: the largest difference of the inference maps from the first backend
of the same model (same initial weights, same batch; inference is timed before training, so no optimiser step has
amplified rounding differences).

On a GPU (``--device cuda``, e.g. ``--backends mamba_ssm chunked``) the same table with CUDA-synchronised times,
the GPU's float32 matmul rate (PyTorch's defaults: no TF32 in matmuls) and ``peak MB`` the GPU's peak allocation
(``torch.cuda.max_memory_allocated``), the figure to set beside the paper's Table 2 (speed, memory).

Usage: ``python benchmarks/bench_image_models.py [--models wave_mambaad mambaad rd4ad]
[--backends native chunked sequential] [--batch 16] [--size 256] [--repeats 2] [--threads 2]
[--allocator system|keep] [--device cpu|cuda]``
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from memory import rss_mb

from fsad.layers.selective_scan import BACKENDS
from fsad.utils.allocator import ALLOCATORS, use_allocator

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = ("wave_mambaad", "mambaad", "rd4ad")


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dense_rate(kind: str, threads: int, device: torch.device) -> float:
    """float32 GFLOP/s of one large dense product, median of 5 after a warm-up: ``matmul``, two 4096 x 4096
    matrices (BLAS sgemm; the reference of the fractions), or ``conv3x3``, a 3 x 3 convolution of 16 x 256 x 64 x 64
    maps to 256 channels (the convolution library: oneDNN on CPU, cuDNN on GPU)."""
    torch.set_num_threads(threads)
    if kind == "matmul":
        a, b = torch.randn(4096, 4096, device=device), torch.randn(4096, 4096, device=device)
        product, flop = (lambda: torch.matmul(a, b)), 2 * 4096 ** 3
    else:
        x, w = torch.randn(16, 256, 64, 64, device=device), torch.randn(256, 256, 3, 3, device=device)
        product, flop = (lambda: torch.nn.functional.conv2d(x, w, padding=1)), 2 * 16 * 256 * 256 * 9 * 64 * 64
    product()
    times = []
    for _ in range(5):
        synchronise(device)
        start = time.perf_counter()
        product()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return flop / statistics.median(times) / 1e9


def build(name: str, backend: str, size: int) -> torch.nn.Module:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    overrides = [f"model={name}", f"data.image_size={size}", f"data.crop_size={size}", "data=synthetic_images"]
    if name != "rd4ad":
        overrides.append(f"model.decoder.scan_backend={backend}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    return instantiate(cfg.model, lr_drop_at=None)


def child(name: str, backend: str, maps_file: str, args: argparse.Namespace) -> dict:
    from fsad.utils.complexity import multiply_adds

    torch.set_num_threads(args.threads)
    use_allocator(args.allocator)
    logging.getLogger("fsad.layers.resnet").setLevel(logging.ERROR)  # the random-teacher warning
    device = torch.device(args.device)
    model = build(name, backend, args.size).to(device)
    optimiser = model.configure_optimizers()["optimizer"]
    images = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    one = images[:1]

    def train_step(x: torch.Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        model.training_loss(x)["loss"].backward()

    model.eval()
    with torch.no_grad():
        infer_macs = multiply_adds(model.anomaly_maps, one) * args.batch
        teacher_macs = multiply_adds(model.encoder, one) * args.batch
    train_macs = teacher_macs + 3 * (infer_macs - teacher_macs)  # backward: input and weight gradients

    def timed(step) -> float:
        step()
        synchronise(device)
        start = time.perf_counter()
        for _ in range(args.repeats):
            step()
        synchronise(device)
        return (time.perf_counter() - start) / args.repeats

    # inference first (the model is in eval mode): every backend's maps come from the same initial weights
    maps: list[torch.Tensor] = []
    infer_s = timed(lambda: maps.append(model.maps_at(images, (args.size, args.size))))
    torch.save(maps[-1].cpu(), maps_file)
    model.train()
    train_s = timed(lambda: (train_step(images), optimiser.step()))
    peak_mb = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else rss_mb()
    return {"train_s": train_s, "infer_s": infer_s, "train_flop": 2 * train_macs, "infer_flop": 2 * infer_macs,
            "peak_mb": peak_mb}


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["native", "chunked", "sequential"],
                        help="scan backends (on CUDA: mamba_ssm and the pure ones)")
    parser.add_argument("--batch", type=positive, default=16)
    parser.add_argument("--size", type=positive, default=256, help="a multiple of 64")
    parser.add_argument("--repeats", type=positive, default=2)
    parser.add_argument("--threads", type=positive, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (peak MB: then the GPU's peak allocation)")
    parser.add_argument("--allocator", choices=ALLOCATORS, default="system",
                        help="the C allocator of each child (fsad.utils.allocator; keep = allocator=keep)")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "BACKEND", "MAPS_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args=args)))
        return
    device = torch.device(args.device)
    before = dense_rate("matmul", args.threads, device)
    print(f"batch {args.batch}, {args.size} x {args.size}, {args.device}, {args.threads} threads, "
          f"allocator {args.allocator}; matmul rate {before:.1f} GFLOP/s, 3 x 3 convolution "
          f"{dense_rate('conv3x3', args.threads, device):.1f} GFLOP/s")
    header = (f"{'model':13s} {'backend':10s} {'train s':>8s} {'GFLOP/s':>8s} {'% mm':>5s} | {'infer s':>8s} "
              f"{'img/s':>6s} {'GFLOP/s':>8s} {'% mm':>5s} | {'peak MB':>8s} {'max |d maps|':>12s}")
    rows, counted = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            first = None
            for backend in (["-"] if name == "rd4ad" else args.backends):
                maps_file = str(Path(tmp) / f"{name}_{backend}.pt")
                cmd = [sys.executable, __file__, "--child", name, backend, maps_file, "--batch", str(args.batch),
                       "--size", str(args.size), "--repeats", str(args.repeats), "--threads", str(args.threads),
                       "--allocator", args.allocator, "--device", args.device]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    lines = done.stderr.strip().splitlines()
                    errors = [line for line in lines if "Error:" in line or "Exception:" in line]
                    reason = (errors or lines)[:1] or [f"exit status {done.returncode}"]  # the root cause comes first
                    if done.returncode < 0:  # killed by a signal: SIGKILL is usually the kernel's out-of-memory killer
                        reason = [f"killed by signal {-done.returncode}" + (" (out of memory?)" if done.returncode == -9
                                                                             else "")]
                    rows.append((name, backend, None, reason))
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                maps = torch.load(maps_file)
                first = maps if first is None else first
                flop = counted.setdefault(name, {k: result[k] for k in ("train_flop", "infer_flop")})
                result.update(flop, max_diff=float((maps - first).abs().max()))
                rows.append((name, backend, result, None))
    after = dense_rate("matmul", args.threads, device)
    rate = (before + after) / 2
    print(f"matmul rate after the models {after:.1f} GFLOP/s; fractions below use {rate:.1f}\n")
    print(header)
    for name, backend, r, error in rows:
        if r is None:
            print(f"{name:13s} {backend:10s} failed: {' '.join(error)}")
            continue
        train_rate, infer_rate = r["train_flop"] / r["train_s"] / 1e9, r["infer_flop"] / r["infer_s"] / 1e9
        print(f"{name:13s} {backend:10s} {r['train_s']:8.2f} {train_rate:8.1f} {100 * train_rate / rate:5.1f} | "
              f"{r['infer_s']:8.2f} {args.batch / r['infer_s']:6.2f} {infer_rate:8.1f} {100 * infer_rate / rate:5.1f} |"
              f" {r['peak_mb']:8.0f} {r['max_diff']:12.2e}")
    if counted:
        print("\nFLOP per training step / inference batch (G): " + ", ".join(
            f"{name} {flop['train_flop'] / 1e9:.1f} / {flop['infer_flop'] / 1e9:.1f}" for name, flop in counted.items()))
    if any(r is None for _, _, r, _ in rows):
        sys.exit("some models failed (rows above)")


if __name__ == "__main__":
    main()
