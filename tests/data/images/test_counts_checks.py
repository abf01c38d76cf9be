"""Published counts and their check; the file checks at setup (mask values per class, sizes, unreadable files)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from fsad.data.images import ImageDataError, find_samples
from fsad.data.images.checks import check_files, mask_value_kind
from fsad.data.images.counts import MPDD_COUNTS, MVTEC_COUNTS, VISA_COUNTS, check_counts
from tests.conftest import shared_path
from tests.data.images.helpers import box_mask, png, write_mvtec, write_visa_original


def totals(table):
    return tuple(sum(row[i] for row in table.values()) for i in range(3))


def test_published_totals():
    assert totals(MVTEC_COUNTS) == (3629, 467, 1258) and sum(totals(MVTEC_COUNTS)[1:]) == 1725
    assert totals(VISA_COUNTS) == (8659, 962, 1200) and sum(totals(VISA_COUNTS)[1:]) == 2162
    assert totals(MPDD_COUNTS) == (888, 176, 282) and sum(totals(MPDD_COUNTS)) == 1346
    assert list(MVTEC_COUNTS)[:6] == ["carpet", "grid", "leather", "tile", "wood", "bottle"]


def test_visa_counts_equal_the_public_split_csv_tally():
    expected = json.loads(shared_path("cases", "image", "expected", "IMG-17.json").read_text())
    tally = expected["visa_1cls_split_counts_from_public_csv"]
    assert {k: (v["train_normal"], v["test_normal"], v["test_anomaly"]) for k, v in tally.items()} == VISA_COUNTS
    assert expected["visa_1cls_totals"] == {"test_images": 2162, "test_anomalous": 1200, "train_images": 8659}


def test_check_counts_warns_per_class_with_both_counts(tmp_path, caplog):
    root = write_mvtec(tmp_path / "m", classes=("bottle", "mine"), n_train=3, n_good=2, defects=("x",), n_bad=1)
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.counts"):
        table = check_counts("MVTec", find_samples(root, "mvtec"))
    assert table["bottle"] == {"train_good": 3, "test_good": 2, "test_anomalous": 1,
                               "published": {"train_good": 209, "test_good": 20, "test_anomalous": 63},
                               "matches_published": False}
    assert table["mine"]["published"] is None and table["mine"]["matches_published"] is None
    assert "MVTec-AD class 'bottle': found 3/2/1, the published MVTec-AD counts are 209/20/63" in caplog.text
    assert "'mine'" not in caplog.text
    json.dumps(table)  # ready for metrics.json
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert check_counts("synthetic", find_samples(root, "mvtec"))["bottle"]["published"] is None
    assert caplog.text == ""


def test_mask_value_kinds():
    assert mask_value_kind(np.array([0, 255], np.uint8)) == "binary"
    assert mask_value_kind(np.array([0, 65535], np.uint16)) == "binary"
    assert mask_value_kind(np.array([False, True])) == "binary"
    assert mask_value_kind(np.zeros(3, np.uint8)) == "binary"
    assert mask_value_kind(np.array([0, 2, 9], np.uint8)) == "class_ids"
    assert mask_value_kind(np.array([0, 1], np.uint8)) == "binary"  # a 0/1 mask is a binary mask
    assert mask_value_kind(np.array([0, 236, 255], np.uint8)) == "levels"
    assert mask_value_kind(np.array([0, 1], np.uint16)) == "binary"
    assert mask_value_kind(np.array([0, 1, 3], np.uint8)) == "class_ids"


def test_grey_level_masks_warn_once_per_class_naming_files(tmp_path, caplog):
    root = write_mvtec(tmp_path / "m", classes=("bottle", "cable"), defects=("x",), n_bad=3)
    for i in range(3):
        png(root / "bottle" / "ground_truth" / "x" / f"{i:03d}_mask.png", box_mask(value=236 + i), mode="L")
    png(root / "cable" / "ground_truth" / "x" / "000_mask.png", np.zeros((8, 8), np.uint8), mode="L")
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.checks"):
        report = check_files(find_samples(root, "mvtec"))
    assert report["bottle"] == {"masks": 3, "masks_binary": 0, "masks_class_ids": 0, "masks_levels": 3,
                                "masks_empty": 0}
    assert report["cable"]["masks_binary"] == 3 and report["cable"]["masks_empty"] == 1
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "class 'bottle': 3 of 3 masks hold values other than 0 and the full value" in warnings[0]
    assert "bottle/ground_truth/x/000_mask.png (values [0, 236])" in warnings[0]
    assert "class 'cable': 1 anomalous image(s) have an all-zero mask" in warnings[1]


def test_visa_class_ids_are_counted_without_warning(tmp_path, caplog):
    root = write_visa_original(tmp_path / "v", classes=("candle",), n_bad=3, class_id=4)
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.checks"):
        report = check_files(find_samples(root, "visa"), class_ids_expected=True)
    assert report["candle"]["masks_class_ids"] == 3 and caplog.text == ""
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.checks"):
        check_files(find_samples(root, "visa"), class_ids_expected=False)
    assert "class 'candle': 3 of 3 masks hold values other than 0" in caplog.text


def test_size_mismatch_and_unreadable_image_are_errors_naming_files(tmp_path):
    root = write_mvtec(tmp_path / "m", defects=("x",), n_bad=1)
    png(root / "bottle" / "ground_truth" / "x" / "000_mask.png", np.zeros((4, 8), np.uint8), mode="L")
    with pytest.raises(ImageDataError, match=r"000_mask.png: mask is 8x4 .* its image .*x/000.png is 8x8"):
        check_files(find_samples(root, "mvtec"))
    png(root / "bottle" / "ground_truth" / "x" / "000_mask.png", box_mask(), mode="L")
    (root / "bottle" / "train" / "good" / "001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageDataError, match=r"train/good/001.png: not a readable image file"):
        check_files(find_samples(root, "mvtec"))


def test_header_check_honours_exif_of_png_images(tmp_path):
    from PIL import Image

    from fsad.data.images.samples import ImageSample

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(tmp_path / "i.png", exif=exif.tobytes())
    for name, shape in (("raw.png", (2, 4)), ("upright.png", (4, 2))):
        png(tmp_path / name, np.full(shape, 255, np.uint8), mode="L")
        check_files([ImageSample(tmp_path / "i.png", tmp_path / name, "c", "d", 1, "test")])
    png(tmp_path / "odd.png", np.full((3, 3), 255, np.uint8), mode="L")
    with pytest.raises(ImageDataError, match=r"odd.png: mask is 3x3 \(WxH, upright\) but its image .*i.png is 2x4"):
        check_files([ImageSample(tmp_path / "i.png", tmp_path / "odd.png", "c", "d", 1, "test")])
