"""Time and measure the image metrics of ``fsad.evaluation.image`` on an MVTec-sized synthetic test set.

Usage: ``python benchmarks/bench_image_metrics.py [--classes 15] [--images 115] [--size 256]
[--dtype float32|float16] [--seed 0] [--skip-sklearn]``.

The test set: ``classes`` classes of ``images`` maps of ``size`` x ``size`` (defaults: 15 x 115 = 1,725 maps
of 256 x 256, 113 M pixels, like MVTec AD's test split), about 30 % normal images per class, anomalous images
with one to three elliptic defects of log-normal size, smooth anomaly maps (bilinearly upsampled noise) with
a bump of random strength over each defect, stored as ``dtype`` with bool masks. Seeded.

Each measurement runs in its own subprocess that builds the test set, so peaks do not mix:
- ``exact`` and ``ader``: wall time of :func:`image_report` over all classes (best of ``--repeat``), the
  process's peak resident memory (``VmHWM``, the test set included) and the peak of the memory the report
  allocates on top of the test set (``tracemalloc``, a separate call);
- ``sklearn``: a straightforward computation of the exact image and pixel AUROC and AP with
  ``roc_auc_score`` / ``average_precision_score`` on the raveled pixels of each class, for comparison, with
  the largest difference from the ``exact`` protocol.

Prints numbers; asserts nothing. Requirement: both protocols in under 30 s and under 3 GB peak together.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc

import numpy as np
from memory import rss_mb

from fsad.evaluation.image import image_report

GRID = 17  # control points per side of the smooth background noise


def _upsampler(size: int, points: int) -> np.ndarray:
    """(size, points) matrix of linear interpolation weights from ``points`` control points to ``size``."""
    position = np.linspace(0.0, points - 1.0, size)
    left = np.minimum(np.floor(position).astype(int), points - 2)
    frac = position - left
    weights = np.zeros((size, points))
    weights[np.arange(size), left] = 1.0 - frac
    weights[np.arange(size), left + 1] = frac
    return weights


def make_class(rng: np.random.Generator, n_images: int, size: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``(maps (n, size, size) dtype, masks (n, size, size) bool)`` of one synthetic class."""
    up = _upsampler(size, GRID)
    background = up @ rng.normal(size=(n_images, GRID, GRID)) @ up.T
    maps = 0.2 * background + 0.03 * rng.normal(size=(n_images, size, size))
    masks = np.zeros((n_images, size, size), dtype=bool)
    rows, cols = np.mgrid[0:size, 0:size]
    n_normal = int(round(0.3 * n_images))
    for i in range(n_normal, n_images):
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, size, 2)
            ry, rx = np.clip(rng.lognormal(np.log(10.0), 0.8, 2), 1.5, size / 3)
            angle = rng.uniform(0, np.pi)
            dy, dx = rows - cy, cols - cx
            u = (dy * np.cos(angle) + dx * np.sin(angle)) / ry
            v = (-dy * np.sin(angle) + dx * np.cos(angle)) / rx
            dist2 = u * u + v * v
            masks[i] |= dist2 <= 1.0
            maps[i] += rng.uniform(0.1, 0.8) * np.exp(-0.5 * dist2)
    order = rng.permutation(n_images)
    return (maps[order] + 1.0).astype(dtype), masks[order]


def make_test_set(n_classes: int, n_images: int, size: int, dtype: str, seed: int
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {f"class{c:02d}": make_class(rng, n_images, size, dtype) for c in range(n_classes)}


def _sklearn_metrics(test_set: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = {}
    for name, (maps, masks) in test_set.items():
        labels = masks.reshape(len(masks), -1).any(axis=1)
        scores = maps.reshape(len(maps), -1).max(axis=1).astype(np.float64)
        out[f"{name}/image_auroc"] = roc_auc_score(labels, scores)
        out[f"{name}/image_ap"] = average_precision_score(labels, scores)
        out[f"{name}/pixel_auroc"] = roc_auc_score(masks.ravel(), maps.ravel())
        out[f"{name}/pixel_ap"] = average_precision_score(masks.ravel(), maps.ravel())
    return out


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line."""
    start = time.perf_counter()
    test_set = make_test_set(args.classes, args.images, args.size, args.dtype, args.seed)
    result = {"build_s": time.perf_counter() - start, "data_mb": rss_mb("VmRSS")}
    if args.worker == "sklearn":
        start = time.perf_counter()
        values = _sklearn_metrics(test_set)
        result["seconds"] = time.perf_counter() - start
        result["values"] = values
    else:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            values = image_report(test_set, protocol=args.worker)
            times.append(time.perf_counter() - start)
        result["seconds"] = min(times)
        tracemalloc.start()
        image_report(test_set, protocol=args.worker)
        result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        result["values"] = {k: v for k, v in values.items() if not k.startswith("random/")}
    result["peak_mb"] = rss_mb("VmHWM")
    print(json.dumps(result))


def run(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--classes", str(args.classes), "--images",
           str(args.images), "--size", str(args.size), "--dtype", args.dtype, "--seed", str(args.seed),
           "--repeat", str(args.repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=15)
    parser.add_argument("--images", type=int, default=115, help="test images per class")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--worker", choices=["exact", "ader", "sklearn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    n_pixels = args.classes * args.images * args.size**2
    print(f"test set: {args.classes} classes x {args.images} maps of {args.size}x{args.size} {args.dtype} "
          f"({n_pixels / 1e6:.1f} M pixels), bool masks, seed {args.seed}")
    results = {kind: run(kind, args) for kind in ("exact", "ader")}
    print(f"building the test set: {results['exact']['build_s']:.1f} s, resident {results['exact']['data_mb']:.0f} MB")
    for kind, res in results.items():
        print(f"{kind:>6}: {res['seconds']:6.2f} s  peak RSS {res['peak_mb']:6.0f} MB (test set included)  "
              f"traced peak of the report {res['traced_peak_mb']:6.0f} MB")
    total = results["exact"]["seconds"] + results["ader"]["seconds"]
    print(f"both protocols: {total:.2f} s (requirement < 30 s), largest peak "
          f"{max(r['peak_mb'] for r in results.values()):.0f} MB (requirement < 3072 MB)")
    exact = results["exact"]["values"]
    print("exact means: " + ", ".join(f"{m} {exact[f'mean/{m}']:.4f}" for m in
                                      ("image_auroc", "pixel_auroc", "pixel_ap", "au_pro", "mad")))
    ader = results["ader"]["values"]
    print("ader means:  " + ", ".join(f"{m} {ader[f'mean/{m}']:.4f}" for m in
                                      ("image_auroc", "pixel_auroc", "pixel_ap", "au_pro", "mad")))
    if args.skip_sklearn:
        return
    sk = run("sklearn", args)
    gap = max(abs(sk["values"][k] - exact[k]) for k in sk["values"])
    print(f"sklearn image+pixel AUROC and AP only: {sk['seconds']:.2f} s, peak RSS {sk['peak_mb']:.0f} MB; "
          f"largest difference from exact: {gap:.2e}")


if __name__ == "__main__":
    main()
