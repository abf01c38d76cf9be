"""The binned pixel metrics of the ADer benchmark (``use_adeval=True``): adeval 1.1.0's accumulator, 50 bins.

ADer (zhangzjn/ADer ``util/metric.py``, the evaluation behind the MambaAD and Wave-MambaAD tables) feeds each
class's maps to adeval's ``EvalAccumulatorCuda(..., anomap_min, anomap_max, nstrips=50)`` for pixel AUROC,
pixel AP and AU-PRO, and computes pixel F1-max itself on 21 thresholds. The rules below follow adeval 1.1.0's
numpy accumulator (``adeval.iterative.EvalAccumulator`` with ``mem_effic._AccumulateStatCurve``) and reproduce
its numbers on the golden cases (``../shared/golden/image_metrics``) to ~1e-15:

- Bin edges: ``e_i = float32(i / 50) * float32(max - min) + float32(min)``, i = 0..50, in float32 arithmetic
  (numpy 2 promotion of a float32 ``linspace`` with Python floats), ``min``/``max`` over the class's maps; two
  overflow bins (-inf, e_0) and [e_50, inf) (so the maximum falls in the top overflow bin).
- Threshold ``e_i`` predicts ``score >= e_i``: TP_i, FP_i = anomalous / normal pixels at or above ``e_i``.
  These counts are read from the sorted class scores by binary search (the same numbers as histogramming).
- pixel AUROC = trapezoid of (FPR_i, TPR_i) over the 51 points only (no (0, 0) point is added);
  pixel AP = trapezoid of (recall_i, precision_i), precision 1 where nothing is predicted positive.
- AU-PRO: the same curve with each defect pixel weighted by float32(1 / area of its 8-connected region) and
  normal pixels by 1; trapezoid over the points with FPR <= 0.3 plus the linearly interpolated stretch to 0.3,
  divided by 0.3.
- pixel F1-max: maps min-max normalised over the class in float32 (``(x - min) / (max - min)``), thresholds
  ``np.arange(0, 1 + 1e-3, 0.05)`` (21 values, compared as float64, ``norm > t``), pixel counts summed over
  the class, ``F1 = 2 I / (pred + label + 1e-8)`` (I = defect pixels predicted), maximum. This reproduces
  the golden numbers exactly; ADer's ``P = I / (pred + eps)``, ``R = I / (label + eps)``,
  ``2 P R / (P + R + eps)`` differs from it by less than 1e-8.

Where adeval itself fails, this module decides (documented, not adeval's behaviour): constant maps (adeval
asserts ``min < max``) -> NaN; a binned PRO curve with no point at FPR <= 0.3 (adeval raises IndexError) is
integrated from (0, 0). Maps are not resized here (ADer resizes maps bilinearly to the mask size first, an
identity when they already match).

adeval's CUDA accumulator (the one ADer instantiates on a GPU) bins with ``torch.histc`` instead, whose float
bin arithmetic can place a value next to an edge in the neighbouring bin, and it counts the maximum twice
(in the last ``histc`` bin and in the overflow bin). Its numbers therefore differ slightly from these
(measured with ``torch.histc`` on CPU in its place): by up to 1e-4 on the golden cases with continuous
scores, by up to 4e-2 on ``tiny_ties`` (8x8 maps with many values tied at the maximum).
"""

from __future__ import annotations

import numpy as np

from fsad.evaluation.image.exact import FPR_LIMIT, area_up_to
from fsad.evaluation.image.ranked import Ranked

N_BINS = 50
F1_THRESHOLDS = np.arange(0.0, 1.0 + 1e-3, 0.05)
F1_EPS = 1e-8


def score_range(ranked: Ranked) -> tuple[float, float]:
    """``(min, max)`` of all pixel scores of the class."""
    lows = [a[0] for a in (ranked.negatives, ranked.positives) if len(a)]
    highs = [a[-1] for a in (ranked.negatives, ranked.positives) if len(a)]
    return float(min(lows)), float(max(highs))


def bin_edges(low: float, high: float, n_bins: int = N_BINS) -> np.ndarray:
    """(n_bins + 1,) float32 thresholds from ``low`` to ``high``, rounded as adeval computes them."""
    unit = np.linspace(0.0, 1.0, num=n_bins + 1, dtype=np.float32)
    return unit * np.float32(high - low) + np.float32(low)


def _binned_counts(ranked: Ranked, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number of anomalous and normal pixels with score < each edge (int64, one per edge)."""
    edges = edges.astype(ranked.negatives.dtype)
    below_pos = np.searchsorted(ranked.positives, edges, side="left").astype(np.int64)
    below_neg = np.searchsorted(ranked.negatives, edges, side="left").astype(np.int64)
    return below_pos, below_neg


def binned_roc_pr_pro(ranked: Ranked) -> tuple[float, float, float]:
    """``(pixel AUROC, pixel AP as trapezoid, AU-PRO)`` of the binned protocol (see the module docstring).

    Requires at least one anomalous and one normal pixel and a non-constant score range (the caller checks).
    """
    low, high = score_range(ranked)
    fn, tn = _binned_counts(ranked, bin_edges(low, high))
    n_pos, n_neg = len(ranked.positives), len(ranked.negatives)
    tp = (n_pos - fn).astype(np.float64)
    fp = (n_neg - tn).astype(np.float64)
    # adeval orders its arrays by increasing threshold; reversed they run by increasing FPR / recall.
    tpr = (tp / n_pos)[::-1]
    fpr = (fp / n_neg)[::-1]
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.ones_like(tp), where=predicted > 0)[::-1]
    pixel_auroc = float(np.trapezoid(tpr, fpr))
    pixel_ap = float(np.trapezoid(precision, tpr))

    region_weight = (1.0 / ranked.areas).astype(np.float32).astype(np.float64)
    below_weight = np.concatenate(([0.0], np.cumsum(region_weight)))
    weighted_fn = below_weight[fn]
    weighted_tp = below_weight[-1] - weighted_fn
    pro = (weighted_tp / (weighted_tp + weighted_fn))[::-1]
    if fpr[0] > FPR_LIMIT:  # no binned point inside the range: start the curve at (0, 0)
        fpr, pro = np.concatenate(([0.0], fpr)), np.concatenate(([0.0], pro))
    if fpr[-1] < 1.0:  # only with scores below the float32 first edge (float64 maps): close the curve at (1, 1)
        fpr, pro = np.append(fpr, 1.0), np.append(pro, 1.0)
    return pixel_auroc, pixel_ap, area_up_to(fpr, pro, FPR_LIMIT) / FPR_LIMIT


def _count_above(normalised: np.ndarray, threshold: float) -> int:
    """Number of entries of the ascending ``normalised`` array that are > ``threshold`` (compared as float64)."""
    if normalised.dtype == np.float32:
        # x32 > t64 exactly when x32 >= the smallest float32 above t64.
        cut = np.float32(threshold)
        if float(cut) <= threshold:
            cut = np.nextafter(cut, np.float32(np.inf))
        return len(normalised) - int(np.searchsorted(normalised, cut, side="left"))
    return len(normalised) - int(np.searchsorted(normalised, threshold, side="right"))


def f1_max_21(ranked: Ranked) -> float:
    """ADer's pixel F1-max over 21 thresholds of class-min-max-normalised maps (see the module docstring).

    Requires a non-constant score range (the caller checks). No defect pixel -> 0.0.
    """
    low, high = score_range(ranked)
    dtype = ranked.negatives.dtype.type
    low_t, span = dtype(low), dtype(dtype(high) - dtype(low))
    # Min-max normalisation is monotone, so the normalised arrays stay sorted.
    norm_pos = (ranked.positives - low_t) / span
    norm_neg = (ranked.negatives - low_t) / span
    n_label = len(ranked.positives)
    best = 0.0
    for threshold in F1_THRESHOLDS:
        hit = _count_above(norm_pos, float(threshold))
        predicted = hit + _count_above(norm_neg, float(threshold))
        best = max(best, 2.0 * hit / (predicted + n_label + F1_EPS))
    return float(best)
