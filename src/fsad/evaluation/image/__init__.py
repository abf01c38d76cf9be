"""Image anomaly-detection metrics: per class, then the mean over classes.

Metrics (``METRICS``): image AUROC, image AP, image F1-max (image score = max of each map, or max after a k x k
average pool), pixel AUROC, pixel AP, pixel F1-max (all pixels of the class pooled), AU-PRO (FPR limit 0.3,
8-connected regions per image), and ``mad``, the mean of the seven (the mAD of MambaAD / Wave-MambaAD).

Two protocols (``PROTOCOLS``), each reproducing ``../shared/golden/image_metrics`` to 1e-6:

- ``exact`` (default): every distinct score is a threshold; AP step-wise as scikit-learn; AU-PRO on the exact
  curve from (0, 0), trapezoid to 0.3 with the 0.3 point interpolated, divided by 0.3
  (:mod:`~fsad.evaluation.image.exact`).
- ``ader``: what the ADer benchmark reports (adeval 1.1.0, 50 bins per class; pixel AP as a trapezoid; pixel
  F1-max over 21 thresholds) (:mod:`~fsad.evaluation.image.ader`). Its numbers are comparable with the
  published tables, not with ``exact``.

:func:`official_mvtec_au_pro` gives MVTec's own threshold rule (close to ``exact``; apart by O(1/N), more with ties).
Undefined metrics are NaN with an :class:`UndefinedImageMetricWarning` naming the class; means skip them and
report how many classes entered (``mean/<metric>/n_classes``).
"""

from fsad.evaluation.image.inputs import PROTOCOLS, image_scores
from fsad.evaluation.image.mvtec import official_mvtec_au_pro
from fsad.evaluation.image.report import (
    MAD,
    METRICS,
    UndefinedImageMetricWarning,
    class_metrics,
    image_report,
)

__all__ = [
    "MAD",
    "METRICS",
    "PROTOCOLS",
    "UndefinedImageMetricWarning",
    "class_metrics",
    "image_report",
    "image_scores",
    "official_mvtec_au_pro",
]
