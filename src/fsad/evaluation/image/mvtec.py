"""AU-PRO as the public MVTec evaluation scripts compute it (thresholds at normal-pixel scores, ``score > t``)."""

from __future__ import annotations

import numpy as np

from fsad.evaluation.image.exact import FPR_LIMIT, area_up_to
from fsad.evaluation.image.inputs import check_class
from fsad.evaluation.image.ranked import rank_pixels


def official_mvtec_au_pro(maps: np.ndarray, masks: np.ndarray, limit: float = FPR_LIMIT) -> float:
    """AU-PRO with the threshold rule of MVTec's ``compute_pro`` run with one threshold per normal pixel.

    Definition: sort the N normal-pixel scores ascending, n_1 <= ... <= n_N. Threshold j is t_j = n_j with
    FPR_j = 1 - j / N (its position, not a count of scores above it) and PRO_j = mean over the 8-connected
    regions of the fraction of the region with score > t_j. The curve (FPR_j, PRO_j), j = N..1, then (1, 1),
    is integrated with the trapezoid rule up to ``limit`` (interpolated) and divided by ``limit``.

    Close to :func:`fsad.evaluation.image.exact.au_pro` but not equal: between two normal-pixel thresholds the
    exact curve climbs in a step (defect pixels first, then the next normal pixel) where this one draws a
    straight segment, which adds up to 1 / (2 N limit) without ties (5e-6 on the golden ``random`` case). With
    tied scores the gap grows (the position-based FPR spreads a tie over several points and ``>`` leaves tied
    defect pixels out: 0.4858 vs 0.4951 on ``tiny_ties``). Kept to compare with numbers produced by MVTec's
    scripts (e.g. the MVTec 3D-AD ``au_pro.py``).

    Args:
        maps: (N, H, W) anomaly maps; masks: (N, H, W) bool/int (nonzero = defect).

    Returns NaN when there is no defect region or no normal pixel.
    """
    arr, gt = check_class(maps, masks)
    ranked = rank_pixels(arr, gt)
    n_neg = len(ranked.negatives)
    if ranked.n_regions == 0 or n_neg == 0:
        return float("nan")
    # Only the thresholds with FPR <= limit and the first one above it enter the area.
    first = max(0, int(np.floor((1.0 - limit) * n_neg)) - 2)
    position = np.arange(first, n_neg)
    fpr = 1.0 - (position + 1) / n_neg
    weight = 1.0 / ranked.areas
    suffix = np.append(np.cumsum(weight[::-1])[::-1], 0.0)
    above = np.searchsorted(ranked.positives, ranked.negatives[first:], side="right")
    pro = suffix[above] / ranked.n_regions
    x = np.append(fpr[::-1], 1.0)
    y = np.minimum(np.append(pro[::-1], 1.0), 1.0)
    return area_up_to(x, y, limit) / limit
