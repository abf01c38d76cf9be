"""Golden cases of ``../shared/golden/image_metrics``: both protocols reproduce every key to 1e-6.

``exact`` holds the exact-curve definitions, ``ader`` what adeval 1.1.0 (50 bins) and ADer's 21-threshold
pixel F1 report, ``official_mvtec_au_pro`` MVTec's own threshold rule. The tests skip when the folder is
absent (a user's clone). Observed agreement: ~1e-15 for every key.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from fsad.evaluation.image import class_metrics, official_mvtec_au_pro

GOLDEN = Path(__file__).resolve().parents[3].parent / "shared" / "golden" / "image_metrics"
CASES = sorted(json.loads((GOLDEN / "expected.json").read_text())) if (GOLDEN / "expected.json").is_file() else [
    "golden-data-absent"]
TOL = 1e-6
ADER_KEYS = {"pixel_auroc": "pixel_auroc", "pixel_aupr_trapezoid": "pixel_ap", "au_pro": "au_pro",
             "pixel_f1_max_21_thresholds": "pixel_f1_max"}


@pytest.fixture(scope="module")
def golden():
    if not (GOLDEN / "expected.json").is_file():
        pytest.skip(f"{GOLDEN} not present")
    expected = json.loads((GOLDEN / "expected.json").read_text())
    with np.load(GOLDEN / "cases.npz") as data:
        arrays = {key: data[key] for key in data.files}
    return expected, arrays


def _inputs(golden, case):
    expected, arrays = golden
    maps, masks = arrays[f"{case}__maps"], arrays[f"{case}__masks"]
    assert list(maps.shape) == expected[case]["shape"]
    return expected[case], maps, masks


def _metrics(maps, masks, protocol, case):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every golden case is fully defined
        return class_metrics(maps, masks, protocol=protocol, class_name=case)


@pytest.mark.parametrize("case", CASES)
def test_exact_protocol(golden, case):
    expected, maps, masks = _inputs(golden, case)
    got = _metrics(maps, masks, "exact", case)
    assert set(expected["exact"]) <= set(got)
    for key, value in expected["exact"].items():
        assert got[key] == pytest.approx(value, abs=TOL), key


@pytest.mark.parametrize("case", CASES)
def test_ader_protocol(golden, case):
    expected, maps, masks = _inputs(golden, case)
    got = _metrics(maps, masks, "ader", case)
    assert set(expected["ader"]) == set(ADER_KEYS)
    for key, value in expected["ader"].items():
        assert got[ADER_KEYS[key]] == pytest.approx(value, abs=TOL), key
    # Image metrics are scikit-learn-exact in both protocols.
    for key in ("image_auroc", "image_ap", "image_f1_max"):
        assert got[key] == pytest.approx(expected["exact"][key], abs=TOL), key


@pytest.mark.parametrize("case", CASES)
def test_official_mvtec_au_pro(golden, case):
    expected, maps, masks = _inputs(golden, case)
    assert official_mvtec_au_pro(maps, masks) == pytest.approx(expected["official_mvtec_au_pro"], abs=TOL)


@pytest.mark.parametrize("case", CASES)
def test_image_scores_and_labels_of_the_case(golden, case):
    _, arrays = golden
    from fsad.evaluation.image import image_scores

    np.testing.assert_array_equal(image_scores(arrays[f"{case}__maps"]), arrays[f"{case}__image_scores"])
    labels = arrays[f"{case}__masks"].reshape(len(arrays[f"{case}__masks"]), -1).any(axis=1)
    np.testing.assert_array_equal(labels, arrays[f"{case}__image_labels"] == 1)
