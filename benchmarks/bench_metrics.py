"""Time every metric of ``fsad.evaluation.metrics`` on one long series with realistic anomaly segments.

Usage: ``python benchmarks/bench_metrics.py [--length 100000] [--window 100] [--repeat 3] [--seed 0]``.

The series has about a hundred anomaly segments of lengths 1..400 (log-normal, 15 % point anomalies; about
5 % of the points), a score that rises inside segments with a random lag plus noise and ties, and the
prediction "score above its 95th percentile". Prints the best-of-``repeat`` seconds of each metric, the
total of the metrics an evaluation report computes (budget: 2 s for 100,000 points), then the others.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from fsad.evaluation import metrics as M


def make_series(length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, scores, pred)``, each of shape (length,)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(length, dtype=np.int64)
    bump = np.zeros(length)
    position = int(rng.integers(0, 500))
    while position < length:
        seg_len = 1 if rng.random() < 0.15 else int(np.clip(rng.lognormal(3.5, 1.0), 2, 400))
        lag = int(rng.integers(0, 20))
        labels[position:position + seg_len] = 1
        bump[position + lag:position + seg_len + lag] += rng.uniform(0.3, 2.0)
        position += seg_len + int(rng.exponential(800)) + 20
    scores = np.round(rng.normal(size=length) * 0.5 + bump[:length], 3)  # rounding creates ties
    pred = (scores > np.quantile(scores, 0.95)).astype(np.int64)
    return labels, scores, pred


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    labels, scores, pred = make_series(args.length, args.seed)
    print(f"length {args.length}, anomaly ratio {labels.mean():.3f}, "
          f"{int(np.sum(np.diff(labels, prepend=0) == 1))} segments, "
          f"{int(np.sum(np.diff(pred, prepend=0) == 1))} predicted events, VUS window {args.window}")

    report_metrics: dict[str, Callable[[], object]] = {
        "auc_roc": lambda: M.auc_roc(labels, scores),
        "auc_pr": lambda: M.auc_pr(labels, scores),
        "vus_roc": lambda: M.vus_roc(labels, scores, window=args.window),
        "vus_pr": lambda: M.vus_pr(labels, scores, window=args.window),
        "precision_recall_f1": lambda: M.precision_recall_f1(labels, pred),
        "point_adjust (+ f1)": lambda: M.precision_recall_f1(labels, M.point_adjust(labels, pred)),
        "affiliation": lambda: M.affiliation(labels, pred),
        "range_based_f1": lambda: M.range_based_f1(labels, pred),
        "event_based_f1": lambda: M.event_based_f1(labels, pred),
    }
    extras: dict[str, Callable[[], object]] = {
        "vus (roc + pr, one pass)": lambda: M.vus(labels, scores, window=args.window),
        "vus_pred": lambda: M.vus_pred(labels, pred, window=args.window),
        "best_f1 (exact)": lambda: M.best_f1(labels, scores),
        "best_f1_pa (exact)": lambda: M.best_f1_pa(labels, scores),
        "best_f1_pa (100-grid)": lambda: M.best_f1_pa(labels, scores, thresholds=M.threshold_grid(scores)),
        "oracle affiliation (100-grid)": lambda: M.best_over_thresholds(
            lambda y, p: M.affiliation(y, p)["f1"], labels, scores),
        "oracle range_based_f1 (100-grid)": lambda: M.best_over_thresholds(M.range_based_f1, labels, scores),
        "oracle event_based_f1 (100-grid)": lambda: M.best_over_thresholds(M.event_based_f1, labels, scores),
    }

    total = 0.0
    for name, fn in report_metrics.items():
        seconds = best_time(fn, args.repeat)
        total += seconds
        print(f"{name:34s} {seconds:8.4f} s")
    print(f"{'TOTAL (report metrics)':34s} {total:8.4f} s")
    print("-- not in the report budget --")
    for name, fn in extras.items():
        print(f"{name:34s} {best_time(fn, args.repeat):8.4f} s")


if __name__ == "__main__":
    main()
