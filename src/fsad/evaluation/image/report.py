"""Per-class image anomaly-detection metrics, their means over classes, and the chance references."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from fsad.evaluation.image import ader, exact
from fsad.evaluation.image.inputs import check_class, check_protocol, pooled_max
from fsad.evaluation.image.ranked import Ranked, rank_pixels, rank_scores

METRICS = ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap", "pixel_f1_max", "au_pro")
MAD = "mad"
RESERVED_NAMES = ("mean", "random")


class UndefinedImageMetricWarning(UserWarning):
    """A class's test data leave a metric undefined (NaN) or trivially 0; the message names the class."""


def _counts(labels: np.ndarray, pixels: Ranked) -> dict[str, int]:
    return {
        "images": len(labels),
        "anomalous_images": int(np.count_nonzero(labels)),
        "defect_pixels": len(pixels.positives),
        "normal_pixels": len(pixels.negatives),
        "regions": pixels.n_regions,
    }


def _image_part(images: Ranked, counts: dict[str, int], issues: list[str]) -> dict[str, float]:
    n, n_pos = counts["images"], counts["anomalous_images"]
    if n_pos == 0:
        issues += [f"image AUROC and AP undefined (all {n} test image(s) normal)",
                   "image F1-max is 0 (no anomalous test image)"]
    elif n_pos == n:
        issues.append(f"image AUROC undefined (all {n} test image(s) anomalous)")
    values = exact.all_metrics(images)
    return {"image_auroc": values["auroc"], "image_ap": values["ap"], "image_f1_max": values["f1_max"]}


def _pixel_issues(counts: dict[str, int], issues: list[str]) -> None:
    if counts["defect_pixels"] == 0:
        issues += ["pixel AUROC, pixel AP and AU-PRO undefined (no defect pixel)",
                   "pixel F1-max is 0 (no defect pixel)"]
    elif counts["normal_pixels"] == 0:
        issues.append("pixel AUROC and AU-PRO undefined (no normal pixel)")


def _exact_pixel_part(pixels: Ranked) -> dict[str, float]:
    values = exact.all_metrics(pixels)
    return {"pixel_auroc": values["auroc"], "pixel_ap": values["ap"], "pixel_f1_max": values["f1_max"],
            "au_pro": values.get("au_pro", float("nan"))}


def _ader_pixel_part(pixels: Ranked, counts: dict[str, int], issues: list[str]) -> dict[str, float]:
    nan = float("nan")
    low, high = ader.score_range(pixels)
    if low == high:
        issues.append(f"ader pixel metrics undefined (every map value is {low}: adeval cannot bin a constant "
                      "range)")
        return {"pixel_auroc": nan, "pixel_ap": nan, "pixel_f1_max": nan, "au_pro": nan}
    out = {"pixel_f1_max": ader.f1_max_21(pixels)}
    if counts["defect_pixels"] == 0:
        out.update(pixel_auroc=nan, pixel_ap=nan, au_pro=nan)
    elif counts["normal_pixels"] == 0:
        out.update(pixel_auroc=nan, pixel_ap=1.0, au_pro=nan)
    else:
        out["pixel_auroc"], out["pixel_ap"], out["au_pro"] = ader.binned_roc_pr_pro(pixels)
    return out


def _evaluate(maps: np.ndarray, masks: np.ndarray, protocol: str, image_score_pool: int | None,
              class_name: str, labels: np.ndarray | None = None) -> tuple[dict[str, float], dict[str, int]]:
    check_protocol(protocol)
    arr, gt = check_class(maps, masks, class_name)
    if labels is None:
        labels = gt.reshape(len(gt), -1).any(axis=1)
    else:
        labels = np.asarray(labels)
        if labels.shape != (len(gt),):
            raise ValueError(f"class {class_name!r}: image labels of shape {labels.shape}, expected ({len(gt)},)")
        labels = labels.astype(bool)
    images = rank_scores(pooled_max(arr, image_score_pool), labels)
    pixels = rank_pixels(arr, gt)
    counts = _counts(labels, pixels)
    issues: list[str] = []
    values = _image_part(images, counts, issues)
    _pixel_issues(counts, issues)
    if protocol == "exact":
        values.update(_exact_pixel_part(pixels))
    else:
        values.update(_ader_pixel_part(pixels, counts, issues))
    values = {name: values[name] for name in METRICS}
    values[MAD] = float(np.mean([values[name] for name in METRICS]))
    if math.isnan(values[MAD]):
        issues.append("mAD undefined (a metric is NaN)")
    if issues:
        label = repr(class_name) if class_name else "(unnamed)"
        warnings.warn(f"class {label}: " + "; ".join(issues), UndefinedImageMetricWarning, stacklevel=3)
    return values, counts


def class_metrics(maps: np.ndarray, masks: np.ndarray, protocol: str = "exact",
                  image_score_pool: int | None = None, class_name: str = "",
                  labels: np.ndarray | None = None) -> dict[str, float]:
    """The seven image anomaly-detection metrics of one class and their mean (mAD).

    Image labels are ``labels`` (N,) when given (the dataset's: an image of a defect folder is anomalous even
    when its mask is empty at the evaluation size), else ``mask.any()`` per image (ADer's rule); image scores are :func:`~fsad.evaluation.image.image_scores`
    (max of each map, or max of its ``image_score_pool`` x ``image_score_pool`` moving average).

    Protocols (``protocol``):
      - ``"exact"``: image and pixel AUROC (:func:`exact.auroc`), AP (:func:`exact.average_precision`,
        step-wise, as scikit-learn), F1-max (:func:`exact.f1_max`) over every distinct score, AU-PRO
        (:func:`exact.au_pro`: 8-connected regions, ``score >= t``, FPR limit 0.3, divided by 0.3).
      - ``"ader"``: the ADer benchmark's numbers (:mod:`~fsad.evaluation.image.ader`): image metrics as in
        ``exact`` (ADer uses scikit-learn there); pixel AUROC, pixel AP (trapezoid of the binned PR curve) and
        AU-PRO from adeval's 50-bin accumulator; pixel F1-max over 21 thresholds of class-normalised maps.

    Args:
        maps: (N, H, W) anomaly maps, float16/32/64, higher = more anomalous; every value finite.
        masks: (N, H, W) bool or integer ground truth (nonzero = defect pixel).
        protocol: one of ``PROTOCOLS``.
        image_score_pool: None or the pooling window side in pixels.
        class_name: named in warnings and errors.
        labels: (N,) image labels (nonzero = anomalous), or None to derive them from the masks.

    Returns:
        ``{metric: value}`` for every name of ``METRICS`` plus ``"mad"`` (mean of the seven, the mAD of the
        MambaAD / Wave-MambaAD tables on a 0-1 scale), Python floats in [0, 1] or NaN.

    Edge cases (one :class:`UndefinedImageMetricWarning` per class names the class and lists them): all test
    images normal -> image AUROC and AP NaN, image F1-max 0; all anomalous -> image AUROC NaN, AP 1.0,
    F1-max 1.0; no defect pixel -> pixel AUROC, pixel AP, AU-PRO NaN and pixel F1-max 0; no normal pixel ->
    pixel AUROC and AU-PRO NaN; ``ader`` with constant maps -> its four pixel metrics NaN; mAD is NaN when any
    metric is. AUROC below 0.5 is reported as is. No substitute value is ever used.

    Raises:
        ValueError: unknown protocol (lists the valid ones), maps/masks shapes differ (names both),
            non-finite map values (names the class and their count), invalid pool.
    """
    return _evaluate(maps, masks, protocol, image_score_pool, class_name, labels)[0]


def _chance(counts: dict[str, int], values: dict[str, float]) -> dict[str, float]:
    """Expected metric values for scores that carry no information, NaN where the metric itself is NaN."""
    p_img = counts["anomalous_images"] / counts["images"]
    n_pixels = counts["defect_pixels"] + counts["normal_pixels"]
    p_pix = counts["defect_pixels"] / n_pixels
    chance = {
        "image_auroc": 0.5,
        "image_ap": p_img,
        "image_f1_max": 2.0 * p_img / (1.0 + p_img),
        "pixel_auroc": 0.5,
        "pixel_ap": p_pix,
        "pixel_f1_max": 2.0 * p_pix / (1.0 + p_pix),
        "au_pro": exact.FPR_LIMIT / 2.0,
    }
    chance = {name: (float("nan") if math.isnan(values[name]) else value) for name, value in chance.items()}
    chance[MAD] = float(np.mean([chance[name] for name in METRICS]))
    return chance


def _mean(values: list[float]) -> tuple[float, int]:
    defined = [v for v in values if not math.isnan(v)]
    return (float(np.mean(defined)) if defined else float("nan")), len(defined)


def image_report(per_class: Mapping[str, tuple[np.ndarray, ...]], protocol: str = "exact",
                 image_score_pool: int | None = None) -> dict[str, float]:
    """Metrics of every class, their means over classes, and the chance references.

    Args:
        per_class: ``{class name: (maps (N, H, W), masks (N, H, W))}`` or ``(maps, masks, labels (N,))`` (see
            :func:`class_metrics`), one entry per class, evaluated one at a time (each class's pixels are copied and sorted once; nothing is pooled across classes).
        protocol, image_score_pool: as in :func:`class_metrics`.

    Returns (flat ``{key: value}``; ``<metric>`` is each name of ``METRICS`` and ``mad``):
        ``<class>/<metric>``: :func:`class_metrics` of the class.
        ``mean/<metric>``: mean over the classes where the metric is defined (NaN excluded; NaN if none) and
        ``mean/<metric>/n_classes``: how many classes entered it (int). ``mean/mad`` is the mean of the
        classes' mAD, so with every class defined it equals the mean of the seven ``mean/<metric>`` (the
        papers' mAD of the average row).
        ``random/<class>/<metric>`` and ``random/mean/<metric>`` (mean over the same classes as
        ``mean/<metric>``): the value expected from scores that carry no information, NaN where the metric is
        NaN: AUROC 0.5; AP the prevalence (share of anomalous images, resp. defect pixels); F1-max
        ``2p / (1 + p)`` with p that prevalence, the F1 of predicting everything anomalous (a floor: the
        maximum over thresholds of random scores is slightly higher on small sets); AU-PRO 0.15 (PRO equals
        FPR in expectation, area 0.3^2 / 2 divided by 0.3); mad the mean of these seven. For ``ader`` they are
        the same values (the binned curves of such scores follow the same diagonal up to binning).

    Raises ``ValueError`` for an empty mapping, a class name that is empty, contains ``/`` or is ``mean`` /
    ``random``, and everything :func:`class_metrics` raises.
    """
    check_protocol(protocol)
    if not per_class:
        raise ValueError("per_class is empty: no class to evaluate")
    for name in per_class:
        if not isinstance(name, str) or not name or "/" in name or name in RESERVED_NAMES:
            raise ValueError(f"invalid class name {name!r}: a non-empty string without '/', not one of "
                             f"{RESERVED_NAMES}")
    names = (*METRICS, MAD)
    report: dict[str, float] = {}
    chance: dict[str, dict[str, float]] = {}
    for class_name, arrays in per_class.items():
        values, counts = _evaluate(*arrays[:2], protocol, image_score_pool, class_name, *arrays[2:3])
        report.update({f"{class_name}/{name}": values[name] for name in names})
        chance[class_name] = _chance(counts, values)
    for name in names:
        report[f"mean/{name}"], report[f"mean/{name}/n_classes"] = _mean(
            [report[f"{c}/{name}"] for c in per_class])
    for class_name, values in chance.items():
        report.update({f"random/{class_name}/{name}": values[name] for name in names})
    for name in names:
        report[f"random/mean/{name}"] = _mean([chance[c][name] for c in per_class])[0]
    return report
