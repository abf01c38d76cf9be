"""Acceptance cases IMG-05, 06, 07, 08, 09, 11 and 13 (``../shared/cases/image``), plus a case done by hand.

Each case's inputs are rebuilt here from its description (same seeds), so the tests run without
``../shared``; the key numbers are written into the tests. When ``../shared`` is present the rebuilt inputs are
compared with the stored ``.npy`` files and the values with ``expected/IMG-NN.json`` as well.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from fsad.evaluation.image import (
    UndefinedImageMetricWarning,
    class_metrics,
    image_report,
    image_scores,
)
from fsad.evaluation.image.exact import f1_max_threshold
from fsad.evaluation.image.ranked import rank_scores

CASES = Path(__file__).resolve().parents[3].parent / "shared" / "cases" / "image"


def expected_json(case_id: str) -> dict | None:
    path = CASES / "expected" / f"{case_id}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def stored(*parts: str) -> np.ndarray | None:
    path = CASES.joinpath("data", *parts)
    return np.load(path) if path.is_file() else None


def image_class(labels, scores):
    """Maps and masks whose image scores and labels are the given ones (2x2 maps, one defect pixel)."""
    scores = np.asarray(scores, dtype=np.float64)
    maps = np.repeat(scores[:, None, None], 2, axis=1).repeat(2, axis=2)
    masks = np.zeros(maps.shape, dtype=np.uint8)
    masks[np.asarray(labels) == 1, 0, 0] = 1
    return maps, masks


def quiet_metrics(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedImageMetricWarning)
        return class_metrics(*args, **kwargs)


# ----------------------------------------------------------------------------------------------- by hand

def test_two_images_four_by_four_by_hand():
    """Image A: 2x2 defect scored 0.9/0.8/0.7/0.2, other pixels 0.1; image B normal, 0 except one 0.75.

    Pixels: P = 4 defect, N = 28 normal (one 0.75, twelve 0.1, fifteen 0).
    AUROC: defect pixels beat 28, 28, 27, 27 normals -> 110 / 112 = 55/56.
    AP: recall steps at 0.9 (P 1), 0.8 (1), 0.7 (3/4), 0.2 (4/5) -> (1 + 1 + 3/4 + 4/5) / 4 = 0.8875.
    F1-max: at 0.2, TP 4 FP 1 -> 8/9. AU-PRO: one region; PRO reaches 1 at FPR 1/28 after 1/2 over
    [0, 1/28] -> area 0.3 - 1/56, / 0.3 = 79/84. ADer F1 (21 thresholds of x / 0.9): best at 0.2 -> 8/(9+1e-8).
    """
    a = np.full((4, 4), 0.1)
    a[0, 0], a[0, 1], a[1, 0], a[1, 1] = 0.9, 0.8, 0.7, 0.2
    b = np.zeros((4, 4))
    b[0, 0] = 0.75
    mask = np.zeros((2, 4, 4), dtype=bool)
    mask[0, :2, :2] = True
    maps = np.stack([a, b])
    got = class_metrics(maps, mask, class_name="by_hand")
    expected = {"image_auroc": 1.0, "image_ap": 1.0, "image_f1_max": 1.0, "pixel_auroc": 55 / 56,
                "pixel_ap": 0.8875, "pixel_f1_max": 8 / 9, "au_pro": 79 / 84}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-15), key
    assert got["mad"] == pytest.approx(sum(expected.values()) / 7, abs=1e-15)
    ader = class_metrics(maps.astype(np.float32), mask, protocol="ader", class_name="by_hand")
    assert ader["pixel_f1_max"] == pytest.approx(8 / (9 + 1e-8), abs=1e-15)
    assert ader["image_auroc"] == 1.0


# ------------------------------------------------------------------------------------------------ IMG-05

IMG05 = {
    "only_normal": ([0, 0, 0], [0.2, 0.5, 0.1]),
    "mixed": ([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.7]),
    "only_anomalous": ([1, 1], [0.4, 0.6]),
    "mixed_imperfect": ([0, 0, 1, 1, 1], [0.2, 0.6, 0.5, 0.7, 0.9]),
}


def test_img05_single_label_classes_are_nan_with_a_warning_and_skipped_in_the_mean():
    per_class = {name: image_class(*case) for name, case in IMG05.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = image_report(per_class)
    messages = [str(w.message) for w in caught if issubclass(w.category, UndefinedImageMetricWarning)]
    assert any("'only_normal'" in m and "AUROC" in m for m in messages)
    assert any("'only_anomalous'" in m and "AUROC" in m for m in messages)
    assert math.isnan(report["only_normal/image_auroc"]) and math.isnan(report["only_anomalous/image_auroc"])
    assert math.isnan(report["only_normal/image_ap"])  # scikit-learn would say 0.0
    assert report["only_anomalous/image_ap"] == 1.0
    assert report["only_normal/image_f1_max"] == 0.0
    assert report["only_anomalous/image_f1_max"] == 1.0
    assert report["mixed/image_auroc"] == report["mixed/image_ap"] == report["mixed/image_f1_max"] == 1.0
    assert report["mixed_imperfect/image_auroc"] == pytest.approx(0.833333, abs=1e-6)
    assert report["mixed_imperfect/image_ap"] == pytest.approx(0.916667, abs=1e-6)
    assert report["mixed_imperfect/image_f1_max"] == pytest.approx(0.857143, abs=1e-6)
    assert report["mean/image_auroc"] == pytest.approx(0.916667, abs=1e-6)
    assert report["mean/image_auroc/n_classes"] == 2
    assert report["mean/image_ap/n_classes"] == 3
    assert report["random/mean/image_auroc"] == 0.5
    expected = expected_json("IMG-05")
    if expected is not None:
        assert report["mean/image_auroc"] == pytest.approx(
            expected["expected_mean_image_auroc_over_defined_classes"], abs=1e-12)
        for name, row in expected["classes"].items():
            for ours, theirs in (("image_auroc", "expected_image_auroc"), ("image_ap", "expected_image_ap"),
                                 ("image_f1_max", "expected_image_f1max")):
                want, got = row[theirs], report[f"{name}/{ours}"]
                assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, abs=1e-12)


# ------------------------------------------------------------------------------------------------ IMG-06

IMG06_MAP = np.array([[0.9, 0.8, 0.7, 0.9],
                      [0.6, 0.1, 0.2, 0.8],
                      [0.7, 0.3, 0.05, 0.9],
                      [0.8, 0.9, 0.6, 0.7]])


@pytest.mark.parametrize(("labels", "scores", "auroc"), [
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
    ([0, 0, 1, 1], [0.4, 0.6, 0.5, 0.3], 0.25),
    ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
])
def test_img06_auroc_below_half_is_reported_raw(labels, scores, auroc):
    for protocol in ("exact", "ader"):
        assert quiet_metrics(*image_class(labels, scores), protocol=protocol)["image_auroc"] == auroc


def test_img06_pixel_auroc_is_not_flipped():
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[1:3, 1:3] = 1
    if stored("IMG-06", "amap.npy") is not None:
        np.testing.assert_array_equal(stored("IMG-06", "amap.npy"), IMG06_MAP)
        np.testing.assert_array_equal(stored("IMG-06", "mask.npy"), mask)
    got = quiet_metrics(IMG06_MAP[None], mask[None], class_name="inverted")
    assert got["pixel_auroc"] == 0.0
    expected = expected_json("IMG-06")
    if expected is not None:
        assert got["pixel_auroc"] == expected["pixel_level"]["expected_pixel_auroc"]


# ------------------------------------------------------------------------------------------------ IMG-07

def test_img07_f1_max_without_anomalies_is_zero_with_a_warning_and_a_safe_threshold():
    labels, scores = [0, 0, 0, 0], [1.0, 2.0, 3.0, 4.0]
    with pytest.warns(UndefinedImageMetricWarning, match="'validation'.*F1-max is 0"):
        got = class_metrics(*image_class(labels, scores), class_name="validation")
    assert got["image_f1_max"] == 0.0
    f1, threshold = f1_max_threshold(rank_scores(np.array(scores), np.array(labels) == 1))
    assert (f1, threshold) == (0.0, 4.0)  # the maximum normal score (strict '>'), not the minimum 1.0
    assert not (np.array(scores) > threshold).any()


@pytest.mark.parametrize(("labels", "scores", "f1", "threshold"), [
    ([0, 0, 0, 1, 1], [2.3, 1.6, 2.6, 7.9, 3.3], 1.0, 3.3),
    ([0, 1, 0, 1, 1, 0], [0.3, 0.8, 0.8, 0.9, 0.2, 0.1], 0.75, 0.2),
])
def test_img07_f1_max_and_its_threshold(labels, scores, f1, threshold):
    got = f1_max_threshold(rank_scores(np.array(scores), np.array(labels) == 1))
    assert got == pytest.approx((f1, threshold), abs=1e-12)
    assert class_metrics(*image_class(labels, scores))["image_f1_max"] == pytest.approx(f1, abs=1e-12)
    expected = expected_json("IMG-07")
    if expected is not None:
        row = next(r for r in (expected["docstring_example"], expected["ties"]) if r["scores"] == scores)
        assert got == pytest.approx((row["expected_f1max"], row["expected_threshold (score >= thr)"]), abs=1e-12)


# ------------------------------------------------------------------------------------------------ IMG-08

def _one_pixel_images(labels, scores):
    maps = np.asarray(scores, dtype=np.float64).reshape(-1, 1, 1)
    return maps, np.asarray(labels, dtype=np.uint8).reshape(-1, 1, 1)


def test_img08_ap_is_step_wise_not_trapezoid():
    got = class_metrics(*_one_pixel_images([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]))
    assert got["image_ap"] == got["pixel_ap"] == 1.0  # a trapezoid gives 0.875
    n, n_pos = 2000, 100
    labels = np.zeros(n, dtype=int)
    labels[:n_pos] = 1
    ramp = np.linspace(0, 1e-3, n)
    cases = {
        "constant": (np.full(n, 0.5), 0.05),
        "zeros": (np.zeros(n), 0.05),
        "inverted": (np.where(labels == 1, 0.0, 1.0) + ramp, 0.025677363873384224),
        "perfect": (np.where(labels == 1, 1.0, 0.0) + ramp, 1.0),
    }
    expected = expected_json("IMG-08")
    for name, (scores, ap) in cases.items():
        got = class_metrics(*_one_pixel_images(labels, scores), class_name=name)
        assert got["image_ap"] == pytest.approx(ap, abs=1e-12), name
        assert got["pixel_ap"] == pytest.approx(ap, abs=1e-12), name
        if expected is not None:
            key = {"zeros": "all_zero_scores", "constant": "constant_scores"}.get(name, name)
            assert got["image_ap"] == pytest.approx(
                expected["prevalence_0.05_n2000"][f"expected_ap_{key}"], abs=1e-12)


# ------------------------------------------------------------------------------------------------ IMG-09

def img09_inputs() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Two 16x16 images (a 4x5 defect, a normal one) and five map variants, seeded as the case."""
    size = 16
    defect = np.zeros((size, size), dtype=np.uint8)
    defect[3:7, 4:9] = 1
    normal = np.zeros_like(defect)
    rng = np.random.default_rng(7)
    left_half = np.zeros((size, size))
    left_half[:, :8] = 1.0
    with_defect = left_half.copy()
    with_defect[defect == 1] = 1.0
    random_maps = [rng.random((size, size)), rng.random((size, size))]
    good = rng.random((size, size)) * 0.6
    good[defect == 1] += 0.35
    good_normal = rng.random((size, size)) * 0.6
    variants = {
        "perfect": [defect.astype(float), normal.astype(float)],
        "constant": [np.full((size, size), 0.5)] * 2,
        "binary_half_background": [with_defect, left_half],
        "random": random_maps,
        "good_but_imperfect": [np.round(good, 3), np.round(good_normal, 3)],
    }
    return np.stack([defect, normal]), {k: np.stack(v) for k, v in variants.items()}


IMG09_AU_PRO = {"perfect": 1.0, "constant": 0.15, "binary_half_background": 0.3075, "random": 0.20379403794037942,
                "good_but_imperfect": 0.7028116531165312}


@pytest.mark.parametrize("variant", sorted(IMG09_AU_PRO))
def test_img09_au_pro_is_cut_at_0_3_and_stays_in_0_1(variant):
    masks, variants = img09_inputs()
    maps = variants[variant]
    if stored("IMG-09", "masks.npy") is not None:
        np.testing.assert_array_equal(stored("IMG-09", "masks.npy"), masks)
        np.testing.assert_array_equal(stored("IMG-09", f"amap_{variant}.npy"), maps)
    got = quiet_metrics(maps, masks, class_name=variant)
    assert got["au_pro"] == pytest.approx(IMG09_AU_PRO[variant], abs=1e-12)
    assert 0.0 <= got["au_pro"] <= 1.0
    ader = quiet_metrics(maps.astype(np.float32), masks, protocol="ader", class_name=variant)
    if variant == "constant":  # adeval cannot bin a constant range
        assert math.isnan(ader["au_pro"])
    else:
        assert 0.0 <= ader["au_pro"] <= 1.0 + 1e-12
    expected = expected_json("IMG-09")
    if expected is not None:
        assert got["au_pro"] == pytest.approx(expected["maps"][variant]["expected_au_pro_0.3"], abs=1e-12)
        assert got["pixel_auroc"] == pytest.approx(expected["maps"][variant]["pixel_auroc"], abs=1e-12)


# ------------------------------------------------------------------------------------------------ IMG-11

def img11_inputs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The eight sub-cases of IMG-11 (12x12 images), drawn in the case's order from one seeded generator."""
    rng = np.random.default_rng(3)
    size = 12
    out = {}

    def zeros():
        return np.zeros((size, size), np.uint8)

    m = zeros()
    m[1:4, 1:4] = 1
    m[4, 4] = 1  # touches the block only at a corner
    a = np.round(rng.uniform(0.2, 0.8, (size, size)), 4)
    a[1:4, 1:4], a[4, 4] = 0.95, 0.05
    out["diagonal_contact"] = ([m], [a])

    m = zeros()
    m[5:8, 0:2] = 1
    m[5:8, size - 2:] = 1
    a = np.round(rng.uniform(0.0, 0.7, (size, size)), 4)
    a[5:8, 0:2], a[5:8, size - 2:] = 0.9, 0.3
    out["border_left_right"] = ([m], [a])

    m = zeros()
    m[2:8, 2:8] = 1
    m[10, 10] = 1
    a = np.round(rng.uniform(0.0, 0.6, (size, size)), 4)
    a[2:8, 2:8], a[10, 10] = 0.9, 0.1
    out["one_pixel_defect_missed"] = ([m], [a])
    found = a.copy()
    found[10, 10] = 0.95
    out["one_pixel_defect_found"] = ([m], [found])

    m = zeros()
    m[3:6, 3:7] = 1
    a = np.round(rng.uniform(0.0, 0.6, (size, size)), 4)
    a[3:6, 3:7] = np.round(rng.uniform(0.4, 0.9, (3, 4)), 4)
    calm = np.round(rng.uniform(0.0, 0.3, (size, size)), 4)
    hot = np.round(rng.uniform(0.5, 0.95, (size, size)), 4)
    out["anomalous_only"] = ([m], [a])
    out["plus_calm_normal_image"] = ([m, zeros()], [a, calm])
    out["plus_hot_normal_image"] = ([m, zeros()], [a, hot])

    m = zeros()
    m[4:8, 4:8] = 1
    a = np.round(rng.uniform(0, 1, (size, size)) * 4) / 4
    a[4:8, 4:8] = np.maximum(a[4:8, 4:8], 0.75)
    out["quantised_ties"] = ([m], [a])

    out["no_defect_in_class"] = ([zeros(), zeros()],
                                 [np.round(rng.uniform(0, 1, (size, size)), 4) for _ in range(2)])
    return {name: (np.stack(maps), np.stack(masks)) for name, (masks, maps) in out.items()}


IMG11_AU_PRO = {"diagonal_contact": 0.9, "border_left_right": 0.5, "one_pixel_defect_missed": 0.5,
                "one_pixel_defect_found": 1.0, "anomalous_only": 0.7643097643097643,
                "plus_calm_normal_image": 0.8872785829307567, "plus_hot_normal_image": 0.13788244766505633,
                "quantised_ties": 0.17954049059139784}


@pytest.mark.parametrize("sub", sorted(IMG11_AU_PRO))
def test_img11_au_pro_region_edge_cases(sub):
    maps, masks = img11_inputs()[sub]
    if stored("IMG-11", sub, "amaps.npy") is not None:
        np.testing.assert_array_equal(stored("IMG-11", sub, "amaps.npy"), maps)
        np.testing.assert_array_equal(stored("IMG-11", sub, "masks.npy"), masks)
    got = quiet_metrics(maps, masks, class_name=sub)
    assert got["au_pro"] == pytest.approx(IMG11_AU_PRO[sub], abs=1e-9)
    expected = expected_json("IMG-11")
    if expected is not None:
        row = expected["subcases"][sub]
        assert got["au_pro"] == pytest.approx(row["expected_au_pro_0.3"], abs=1e-9)
        assert got["pixel_auroc"] == pytest.approx(row["expected_pixel_auroc"], abs=1e-9)


def test_img11_regions_are_eight_connected_and_do_not_wrap():
    from fsad.evaluation.image.ranked import region_areas

    inputs = img11_inputs()
    areas, n = region_areas(inputs["diagonal_contact"][1] != 0)
    assert n == 1 and set(areas) == {10}
    areas, n = region_areas(inputs["border_left_right"][1] != 0)
    assert n == 2 and set(areas) == {6}


def test_img11_class_without_defect_gives_nan_and_a_warning():
    maps, masks = img11_inputs()["no_defect_in_class"]
    for protocol in ("exact", "ader"):
        with pytest.warns(UndefinedImageMetricWarning, match="'no_defect_in_class'.*AU-PRO undefined"):
            got = class_metrics(maps, masks, protocol=protocol, class_name="no_defect_in_class")
        assert math.isnan(got["au_pro"]) and math.isnan(got["pixel_auroc"]) and math.isnan(got["mad"])
        assert got["pixel_f1_max"] == 0.0


# ------------------------------------------------------------------------------------------------ IMG-13

IMG13_SCORES = np.array([0.21, 0.35, 0.30, 0.62, 0.28, 0.55, 0.90, 0.40])
IMG13_LABELS = np.array([0, 0, 0, 1, 0, 1, 1, 0])


def img13_maps() -> tuple[np.ndarray, np.ndarray]:
    """Smooth 8x8 maps whose maximum is the raw score of the image; a 2x2 defect on the anomalous ones."""
    rng = np.random.default_rng(13)
    shape = rng.uniform(0.2, 0.9, (8, 8, 8))
    shape[:, 3, 3] = 1.0
    maps = shape * IMG13_SCORES[:, None, None]
    masks = np.zeros(maps.shape, dtype=bool)
    masks[IMG13_LABELS == 1, 3:5, 3:5] = True
    return maps, masks


@pytest.mark.parametrize("pool", [None, 3])
def test_img13_scores_do_not_depend_on_batch_size_or_order(pool):
    maps, masks = img13_maps()
    whole = image_scores(maps, pool)
    if pool is None:
        np.testing.assert_array_equal(whole, IMG13_SCORES)
    for batch in (1, 2, 3, 8):
        for order in (np.arange(8), np.array([6, 2, 7, 0, 5, 3, 1, 4])):
            scores = np.empty(8)
            for start in range(0, 8, batch):
                idx = order[start:start + batch]
                scores[idx] = image_scores(maps[idx], pool)
            np.testing.assert_array_equal(scores, whole)
            got = class_metrics(maps[order], masks[order], image_score_pool=pool)
            assert got["image_auroc"] == 1.0 and got["image_ap"] == 1.0
    expected = expected_json("IMG-13")
    if expected is not None:
        assert expected["expected_image_auroc_any_batch_size"] == 1.0
        assert expected["expected_image_ap_any_batch_size"] == 1.0
