"""What chance scores on the same labels: the reference printed beside every metric.

- Threshold-free metrics (AUC-ROC, AUC-PR, VUS-ROC, VUS-PR): the mean over ``seeds`` of the metric of a score
  drawn uniformly at random per step. Its expected value is not always the textbook one: VUS with a wide buffer
  on dense short anomalies gives random scores VUS-ROC above 0.9, and AUC-PR of a random score sits slightly
  above the anomaly ratio.
- Thresholded metrics of a strategy that flagged a fraction ``r`` of the test steps: the mean over ``seeds`` of the
  same metrics for ``round(r T)`` steps chosen uniformly at random (the same predicted ratio, no information).

Keys: ``test/random/<metric>`` and ``test/random/<strategy>/<metric>``; the seeds are listed in
``reference/random_seeds``. Metrics undefined for the labels (one-class test splits) have no reference: the report already marks them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

SEEDS = (0, 1, 2)


def random_scores(length: int, seed: int) -> np.ndarray:
    """(length,) scores uniform on [0, 1) from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(seed).random(length)


def random_prediction(length: int, ratio: float, seed: int) -> np.ndarray:
    """(length,) 0/1 prediction with exactly ``round(ratio * length)`` ones at uniformly random steps."""
    pred = np.zeros(length, dtype=np.int64)
    count = int(round(min(max(ratio, 0.0), 1.0) * length))
    pred[np.random.default_rng(seed).permutation(length)[:count]] = 1
    return pred


def mean_over_seeds(compute: Callable[[int], dict[str, object]], seeds: Sequence[int]) -> dict[str, float]:
    """Mean of each metric that ``compute(seed)`` returns as a float for every seed; metrics these labels leave
    undefined (any other value, e.g. the report's ``Undefined``) are left out."""
    runs = [compute(seed) for seed in seeds]
    return {key: float(np.mean([run[key] for run in runs])) for key in (runs[0] if runs else {})
            if all(isinstance(run[key], float) for run in runs)}


def random_reference(labels: np.ndarray, predicted_ratios: dict[str, float],
                     ranking: Callable[[np.ndarray, np.ndarray], dict[str, object]],
                     thresholded: Callable[[np.ndarray, np.ndarray], dict[str, object]],
                     seeds: Sequence[int] = SEEDS) -> dict[str, float | str]:
    """The chance references of the module docstring for (T,) 0/1 ``labels``.

    Args:
        labels: (T,) 0/1 test labels.
        predicted_ratios: strategy name -> fraction of test steps it flagged.
        ranking: ``(labels, scores) -> {metric: value}``, the report's threshold-free metrics.
        thresholded: ``(labels, pred) -> {metric: value}``, the report's metrics of one binary prediction.
        seeds: random seeds averaged over.
    """
    n = len(labels)
    out: dict[str, float | str] = {"reference/random_seeds": ",".join(map(str, seeds))}
    free = mean_over_seeds(lambda seed: _per_metric(ranking, labels, random_scores(n, seed)), seeds)
    out.update({f"test/random/{k}": v for k, v in free.items()})
    for strategy, ratio in predicted_ratios.items():
        fixed = mean_over_seeds(lambda seed: thresholded(labels, random_prediction(n, ratio, seed)), seeds)
        out.update({f"test/random/{strategy}/{k}": v for k, v in fixed.items()})
    return out


def _per_metric(ranking: Callable[[np.ndarray, np.ndarray], dict[str, object]], labels: np.ndarray,
                scores: np.ndarray) -> dict[str, object]:
    values = ranking(labels, scores)
    return {k: v for k, v in values.items() if k != "anomaly_ratio"}
