"""Invariants of the image metrics: agreement with scikit-learn and brute force, ranges, order and batch
independence, the report's keys and chance references, and input validation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from fsad.evaluation.image import (
    MAD,
    METRICS,
    PROTOCOLS,
    UndefinedImageMetricWarning,
    class_metrics,
    image_report,
    image_scores,
    official_mvtec_au_pro,
)


def random_class(seed: int, n: int = 12, size: int = 20, decimals: int | None = None, signal: float = 0.5):
    """Maps with blob defects on about 2/3 of the images; rounding the maps creates ties."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n // 3, n):
        for _ in range(int(rng.integers(1, 3))):
            r, c = rng.integers(0, size, 2)
            h, w = rng.integers(1, 6, 2)
            masks[i, r:r + h, c:c + w] = True
    maps = rng.random((n, size, size)) + signal * masks
    if decimals is not None:
        maps = np.round(maps, decimals)
    order = rng.permutation(n)
    return maps[order], masks[order]


def brute_force_au_pro(maps, masks, limit=0.3):
    """PRO curve evaluated threshold by threshold (every distinct score, ``>=``), then the trapezoid."""
    labels = [ndimage.label(m, structure=np.ones((3, 3)))[0] for m in masks]
    regions = [(i, lab == k) for i, lab in enumerate(labels) for k in range(1, lab.max() + 1)]
    normal = ~masks
    xs, ys = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        xs.append((pred & normal).sum() / normal.sum())
        ys.append(np.mean([pred[i][region].mean() for i, region in regions]))
    xs, ys = np.array(xs + [1.0]), np.array(ys + [1.0])
    keep = xs <= limit
    area = np.trapezoid(ys[keep], xs[keep])
    i = int(np.argmax(xs > limit))
    if xs[i - 1] < limit:
        y_at = ys[i - 1] + (ys[i] - ys[i - 1]) * (limit - xs[i - 1]) / (xs[i] - xs[i - 1])
        area += (limit - xs[i - 1]) * (ys[i - 1] + y_at) / 2
    return area / limit


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("decimals", [None, 2])
def test_exact_matches_sklearn(seed, decimals):
    maps, masks = random_class(seed, decimals=decimals)
    got = class_metrics(maps, masks)
    labels = masks.reshape(len(masks), -1).any(axis=1)
    scores = maps.reshape(len(maps), -1).max(axis=1)
    assert got["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert got["image_ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert got["pixel_auroc"] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    assert got["pixel_ap"] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()), abs=1e-12)
    precision, recall, _ = precision_recall_curve(masks.ravel(), maps.ravel())
    with np.errstate(invalid="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    assert got["pixel_f1_max"] == pytest.approx(np.nanmax(f1), abs=1e-12)
    assert got[MAD] == pytest.approx(np.mean([got[m] for m in METRICS]), abs=1e-15)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("decimals", [None, 1])
def test_exact_au_pro_matches_brute_force_and_stays_in_range(seed, decimals):
    maps, masks = random_class(seed, n=6, size=12, decimals=decimals)
    got = class_metrics(maps, masks)["au_pro"]
    assert got == pytest.approx(brute_force_au_pro(maps, masks), abs=1e-12)
    assert 0.0 <= got <= 1.0
    for scores in (masks.astype(float), 1.0 - masks, np.zeros(maps.shape)):  # perfect, inverted, constant
        value = class_metrics(scores, masks)["au_pro"]
        assert -1e-12 <= value <= 1.0 + 1e-12
    assert class_metrics(1.0 - masks, masks)["au_pro"] == 0.0


def test_official_mvtec_au_pro_is_within_its_straight_segments_of_exact_without_ties():
    maps, masks = random_class(5)
    official, exact = official_mvtec_au_pro(maps, masks), class_metrics(maps, masks)["au_pro"]
    n_normal = int((~masks).sum())
    # Joining the points at normal-pixel thresholds by straight lines adds at most half a 1/N step per rise.
    assert exact - 1e-12 <= official <= exact + 1 / (2 * 0.3 * n_normal)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_order_of_images_and_dtype_do_not_matter(protocol):
    maps, masks = random_class(1, decimals=3)
    maps = maps.astype(np.float16).astype(np.float32)  # values every dtype holds exactly
    reference = class_metrics(maps, masks, protocol=protocol)
    order = np.random.default_rng(0).permutation(len(maps))
    for variant in (class_metrics(maps[order], masks[order], protocol=protocol),
                    class_metrics(maps.astype(np.float16), masks.astype(np.uint8), protocol=protocol)):
        for key, value in reference.items():
            assert variant[key] == pytest.approx(value, abs=1e-12), key


def test_pooled_image_scores_match_torch_avg_pool_and_batching():
    maps = np.random.default_rng(2).random((5, 17, 13)).astype(np.float32)
    for k in (1, 2, 4, 13):
        pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(maps[:, None].astype(np.float64)), k, stride=1)
        np.testing.assert_allclose(image_scores(maps, k), pooled.amax(dim=(1, 2, 3)).numpy(), rtol=1e-12)
        np.testing.assert_array_equal(np.concatenate([image_scores(maps[i:i + 1], k) for i in range(5)]),
                                      image_scores(maps, k))
    assert image_scores(maps).dtype == np.float64
    np.testing.assert_array_equal(image_scores(maps), maps.reshape(5, -1).max(axis=1))


def test_report_keys_means_and_chance_references():
    per_class = {"a": random_class(0), "b": random_class(1), "c": random_class(2, signal=2.0)}
    report = image_report(per_class)
    names = (*METRICS, MAD)
    for metric in names:
        values = [report[f"{c}/{metric}"] for c in per_class]
        assert report[f"mean/{metric}"] == pytest.approx(np.mean(values), abs=1e-15)
        assert report[f"mean/{metric}/n_classes"] == 3
        assert f"random/mean/{metric}" in report
        for c in per_class:
            assert f"random/{c}/{metric}" in report
    assert report["mean/mad"] == pytest.approx(np.mean([report[f"mean/{m}"] for m in METRICS]), abs=1e-12)
    maps, masks = per_class["a"]
    p_img = masks.reshape(len(masks), -1).any(axis=1).mean()
    p_pix = masks.mean()
    chance = {"image_auroc": 0.5, "image_ap": p_img, "image_f1_max": 2 * p_img / (1 + p_img), "pixel_auroc": 0.5,
              "pixel_ap": p_pix, "pixel_f1_max": 2 * p_pix / (1 + p_pix), "au_pro": 0.15}
    for metric, value in chance.items():
        assert report[f"random/a/{metric}"] == pytest.approx(value, abs=1e-15)
    assert report["random/a/mad"] == pytest.approx(np.mean(list(chance.values())), abs=1e-15)
    assert report["c/pixel_auroc"] > report["random/c/pixel_auroc"]


def test_report_skips_undefined_classes_in_means_and_references():
    maps, masks = random_class(0)
    normal = ~masks.reshape(len(masks), -1).any(axis=1)
    with pytest.warns(UndefinedImageMetricWarning, match="'good_only'"):
        report = image_report({"mixed": (maps, masks), "good_only": (maps[normal], masks[normal])},
                              protocol="ader")
    assert math.isnan(report["good_only/image_auroc"]) and math.isnan(report["random/good_only/image_auroc"])
    assert report["mean/image_auroc"] == report["mixed/image_auroc"]
    assert report["mean/image_auroc/n_classes"] == 1
    assert report["mean/image_f1_max/n_classes"] == 2  # F1-max is 0, not undefined, without anomalies
    assert report["mean/mad/n_classes"] == 1
    assert report["random/mean/image_auroc"] == 0.5


def test_ader_constant_maps_are_undefined_not_crashing():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 1:3, 1:3] = True
    with pytest.warns(UndefinedImageMetricWarning, match="'flat'.*constant"):
        got = class_metrics(np.ones((2, 4, 4)), masks, protocol="ader", class_name="flat")
    assert all(math.isnan(got[m]) for m in ("pixel_auroc", "pixel_ap", "pixel_f1_max", "au_pro"))
    exact = class_metrics(np.ones((2, 4, 4)), masks, class_name="flat")
    assert exact["pixel_auroc"] == 0.5 and exact["au_pro"] == pytest.approx(0.15, abs=1e-15)


def test_fully_defined_class_emits_no_warning():
    maps, masks = random_class(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for protocol in PROTOCOLS:
            class_metrics(maps, masks, protocol=protocol, class_name="fine")


def test_invalid_inputs_raise_clear_errors():
    maps, masks = random_class(0, n=3, size=6)
    with pytest.raises(ValueError, match=r"\(3, 6, 6\).*\(3, 6, 5\)"):
        class_metrics(maps, masks[:, :, :5], class_name="x")
    bad = maps.copy()
    bad[0, 0, :2] = np.nan
    bad[1, 1, 1] = np.inf
    with pytest.raises(ValueError, match="class 'screw'.*3 non-finite"):
        class_metrics(bad, masks, class_name="screw")
    with pytest.raises(ValueError, match="exact, ader"):
        class_metrics(maps, masks, protocol="adeval")
    with pytest.raises(ValueError, match="exact, ader"):
        image_report({"a": (maps, masks)}, protocol="binned")
    with pytest.raises(ValueError, match="image_score_pool"):
        class_metrics(maps, masks, image_score_pool=7)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        image_scores(maps[0])
    for name in ("mean", "random", "a/b", ""):
        with pytest.raises(ValueError, match="invalid class name"):
            image_report({name: (maps, masks)})
    with pytest.raises(ValueError, match="empty"):
        image_report({})
