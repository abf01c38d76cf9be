"""find_samples on files written in each exact layout: pairing by name, class order, every error naming its file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fsad.data.images import ImageDataError, ImageSample, find_samples
from fsad.data.images.counts import MVTEC_COUNTS
from fsad.data.images.layouts import detect_layout, order_classes
from tests.conftest import shared_path
from tests.data.images.helpers import (ader_meta, box_mask, png, rgb, write_meta_json, write_mvtec,
                                       write_visa_mvtec, write_visa_original)


def rel(root: Path, path: Path | None) -> str | None:
    return None if path is None else path.relative_to(root).as_posix()


def table(root: Path, samples: list[ImageSample]) -> list[tuple]:
    return [(s.class_name, s.split, s.defect, s.label, rel(root, s.image), rel(root, s.mask)) for s in samples]


# ----------------------------------------------------------------------------------------------- MVTec / MPDD


def test_mvtec_layout_pairs_by_stem_and_orders_class_split_path(tmp_path):
    root = write_mvtec(tmp_path / "any_name", classes=("bottle",), n_train=2, n_good=1, defects=("crack",), n_bad=2)
    assert detect_layout(root, "mvtec") == "mvtec"
    assert table(root, find_samples(root, "mvtec")) == [
        ("bottle", "train", "good", 0, "bottle/train/good/000.png", None),
        ("bottle", "train", "good", 0, "bottle/train/good/001.png", None),
        ("bottle", "test", "crack", 1, "bottle/test/crack/000.png", "bottle/ground_truth/crack/000_mask.png"),
        ("bottle", "test", "crack", 1, "bottle/test/crack/001.png", "bottle/ground_truth/crack/001_mask.png"),
        ("bottle", "test", "good", 0, "bottle/test/good/000.png", None),
    ]


def test_masks_named_like_their_images_are_accepted_as_anomalib_does(tmp_path):
    root = write_mvtec(tmp_path / "m", defects=("cut",), n_bad=2, mask_suffix="")
    pairs = [(rel(root, s.image), rel(root, s.mask)) for s in find_samples(root, "mpdd") if s.label]
    assert pairs == [("bottle/test/cut/000.png", "bottle/ground_truth/cut/000.png"),
                     ("bottle/test/cut/001.png", "bottle/ground_truth/cut/001.png")]


def test_extensions_are_case_insensitive(tmp_path):
    root = tmp_path / "m"
    png(root / "c" / "train" / "good" / "a.PNG", rgb(1))
    png(root / "c" / "train" / "good" / "b.jpeg", rgb(1), fmt="JPEG")
    png(root / "c" / "train" / "good" / "c.Bmp", rgb(1), fmt="BMP")
    png(root / "c" / "train" / "good" / "d.tif", rgb(1), fmt="TIFF")
    (root / "c" / "train" / "good" / "notes.txt").write_text("x")
    (root / "c" / "train" / "good" / ".hidden.png").write_bytes(b"")
    png(root / "c" / "test" / "dent" / "x.JPG", rgb(2), fmt="JPEG")
    png(root / "c" / "ground_truth" / "dent" / "x_mask.PNG", box_mask())
    samples = find_samples(root, "custom")
    assert [s.image.name for s in samples if s.split == "train"] == ["a.PNG", "b.jpeg", "c.Bmp", "d.tif"]
    assert [(s.image.name, s.mask.name) for s in samples if s.label] == [("x.JPG", "x_mask.PNG")]


def test_class_order_is_ader_for_mvtec_and_sorted_otherwise(tmp_path):
    root = write_mvtec(tmp_path / "m", classes=("zipper", "bottle", "carpet", "wood"), n_train=1, n_good=1,
                       defects=("d",), n_bad=1)
    assert list(dict.fromkeys(s.class_name for s in find_samples(root, "mvtec"))) == [
        "carpet", "wood", "bottle", "zipper"]
    assert order_classes(list(MVTEC_COUNTS)[::-1], "mvtec") == list(MVTEC_COUNTS)
    assert order_classes(["zipper", "bottle", "mine"], "mvtec") == ["bottle", "mine", "zipper"]
    assert order_classes(["pcb2", "candle", "pcb1"], "visa") == ["pcb1", "pcb2", "candle"]
    picked = find_samples(root, "mvtec", classes=["wood", "bottle"])
    assert list(dict.fromkeys(s.class_name for s in picked)) == ["wood", "bottle"]


def test_unknown_and_repeated_classes_are_refused_listing_the_available_ones(tmp_path):
    root = write_mvtec(tmp_path / "m", classes=("bottle", "cable"), n_bad=1)
    with pytest.raises(ImageDataError, match=r"unknown class\(es\) \['screw'\]; available classes: bottle, cable"):
        find_samples(root, "mvtec", classes=["screw"])
    with pytest.raises(ImageDataError, match="more than once"):
        find_samples(root, "mvtec", classes=["bottle", "bottle"])


def test_class_without_train_good_empty_train_and_stray_training_defects(tmp_path):
    root = write_mvtec(tmp_path / "m", n_bad=1)
    shutil.rmtree(root / "bottle" / "train" / "good")
    (root / "bottle" / "train" / "good").mkdir()
    with pytest.raises(ImageDataError, match=r"class 'bottle': no training image in .*bottle/train/good"):
        find_samples(root, "mvtec")
    shutil.rmtree(root / "bottle" / "train" / "good")
    with pytest.raises(ImageDataError, match=r"class folder .*/m/bottle has no train/good folder"):
        find_samples(root, "mvtec")
    png(root / "bottle" / "train" / "good" / "0.png", rgb(1))
    png(root / "bottle" / "train" / "broken" / "1.png", rgb(1))
    with pytest.raises(ImageDataError, match=r"bottle/train/broken: training images outside train/good"):
        find_samples(root, "mvtec")


def test_missing_mask_orphan_mask_and_ambiguous_masks_are_listed_together(tmp_path):
    root = write_mvtec(tmp_path / "m", defects=("crack",), n_bad=3)
    (root / "bottle" / "ground_truth" / "crack" / "001_mask.png").unlink()
    png(root / "bottle" / "ground_truth" / "crack" / "007_mask.png", box_mask())
    png(root / "bottle" / "ground_truth" / "crack" / "002.png", box_mask())
    png(root / "bottle" / "ground_truth" / "stain" / "000_mask.png", box_mask())
    with pytest.raises(ImageDataError) as err:
        find_samples(root, "mvtec")
    text = str(err.value)
    assert "4 problem(s)" in text
    assert "test/crack/001.png: anomalous test image without a mask; expected ground_truth/crack/001_mask.png" in text
    assert "ground_truth/crack/007_mask.png: mask without an image; expected test/crack/007.png" in text
    assert "test/crack/002.png: several masks match (002_mask.png, 002.png" in text
    assert "ground_truth/stain/000_mask.png: mask without an image; expected test/stain/000.png" in text


def test_empty_test_split_and_missing_test_folder_name_the_class(tmp_path):
    root = write_mvtec(tmp_path / "m", classes=("tubes",), n_good=0, defects=())
    (root / "tubes" / "test" / "good").mkdir(parents=True)
    with pytest.raises(ImageDataError, match=r"class 'tubes': no test image in .*tubes/test"):
        find_samples(root, "mpdd")
    shutil.rmtree(root / "tubes" / "test")
    with pytest.raises(ImageDataError, match=r"class 'tubes': no test folder"):
        find_samples(root, "mpdd")
    assert len(find_samples(root, "mpdd", splits=("train",))) == 3


def test_img17_pairing_cases_written_here(tmp_path):
    """IMG-17 (RD4AD sort-and-zip, anomalib #243/#680): 000<->000_mask and 002<->002_mask, 001 has no mask,
    003_mask is an orphan, the good image gets no mask; the same class without the two faults loads."""
    root = tmp_path / "mvtec_like"
    cls = root / "bottle"
    for i in range(2):
        png(cls / "train" / "good" / f"{i:03d}.png", rgb(100 + i))
    png(cls / "test" / "good" / "000.png", rgb(120))
    for i in range(3):
        png(cls / "test" / "broken_large" / f"{i:03d}.png", rgb(150 + i))
    for i in (0, 2, 3):
        png(cls / "ground_truth" / "broken_large" / f"{i:03d}_mask.png", rgb(255)[..., 0], mode="L")
    with pytest.raises(ImageDataError) as err:
        find_samples(root, "mvtec")
    assert "test/broken_large/001.png: anomalous test image without a mask" in str(err.value)
    assert "ground_truth/broken_large/003_mask.png: mask without an image" in str(err.value)
    (cls / "test" / "broken_large" / "001.png").unlink()
    (cls / "ground_truth" / "broken_large" / "003_mask.png").unlink()
    test = [s for s in find_samples(root, "mvtec") if s.split == "test"]
    assert [(rel(cls, s.image), rel(cls, s.mask)) for s in test] == [
        ("test/broken_large/000.png", "ground_truth/broken_large/000_mask.png"),
        ("test/broken_large/002.png", "ground_truth/broken_large/002_mask.png"),
        ("test/good/000.png", None)]


def test_img17_shared_case(tmp_path):
    case = shared_path("cases", "image")
    expected = json.loads((case / "expected" / "IMG-17.json").read_text())
    data = case / "data" / "IMG-17"
    with pytest.raises(ImageDataError) as err:
        find_samples(data / "mvtec_like", "mvtec")
    for path in expected["mvtec_like"]["expected_error_missing_mask_for"]:
        assert f"{path}: anomalous test image without a mask" in str(err.value)
    for path in expected["mvtec_like"]["expected_reported_orphan_masks"]:
        assert f"{path}: mask without an image" in str(err.value)
    # the same class once the faulty pair is removed (../shared is read-only: work on a copy)
    copy = tmp_path / "mvtec_like"
    shutil.copytree(data / "mvtec_like", copy)
    (copy / "bottle" / "test" / "broken_large" / "001.png").unlink()
    (copy / "bottle" / "ground_truth" / "broken_large" / "003_mask.png").unlink()
    test = [s for s in find_samples(copy, "mvtec") if s.split == "test" and s.label]
    pairs = [[s.image.relative_to(copy / "bottle" / "test").as_posix(),
              s.mask.relative_to(copy / "bottle" / "ground_truth").as_posix()] for s in test]
    assert pairs == expected["mvtec_like"]["expected_pairs"]
    good = [s for s in find_samples(copy, "mvtec") if s.split == "test" and not s.label]
    assert [s.image.relative_to(copy / "bottle").as_posix() for s in good] == \
        expected["mvtec_like"]["expected_good_images_with_zero_mask"]
    assert all(s.mask is None for s in good)
    # VisA-like: upper-case .JPG found through the csv
    visa = find_samples(data / "visa_like", "visa", splits=("test",))
    assert len(visa) == expected["visa_like"]["expected_test_images"]
    assert sum(s.label for s in visa) == expected["visa_like"]["expected_anomalous"]
    assert {s.image.suffix for s in visa} == {".JPG"}
    # empty class: tubes has train/good/000.png and no test image
    with pytest.raises(ImageDataError, match="class 'tubes'"):
        find_samples(data / "mpdd_like", "mpdd")


# ------------------------------------------------------------------------------------------------------ VisA


def test_visa_original_release_through_its_csv(tmp_path):
    root = write_visa_original(tmp_path / "VisA", classes=("pcb1", "candle"), n_train=2, n_good=1, n_bad=1)
    assert detect_layout(root, "visa") == "visa"
    assert table(root, find_samples(root, "visa")) == [
        ("pcb1", "train", "good", 0, "pcb1/Data/Images/Normal/0000.JPG", None),
        ("pcb1", "train", "good", 0, "pcb1/Data/Images/Normal/0001.JPG", None),
        ("pcb1", "test", "bad", 1, "pcb1/Data/Images/Anomaly/000.JPG", "pcb1/Data/Masks/Anomaly/000.png"),
        ("pcb1", "test", "good", 0, "pcb1/Data/Images/Normal/0002.JPG", None),
        ("candle", "train", "good", 0, "candle/Data/Images/Normal/0000.JPG", None),
        ("candle", "train", "good", 0, "candle/Data/Images/Normal/0001.JPG", None),
        ("candle", "test", "bad", 1, "candle/Data/Images/Anomaly/000.JPG", "candle/Data/Masks/Anomaly/000.png"),
        ("candle", "test", "good", 0, "candle/Data/Images/Normal/0002.JPG", None),
    ]


def test_visa_csv_errors_name_file_and_line(tmp_path):
    root = write_visa_original(tmp_path / "v", classes=("candle",), n_train=1, n_good=1, n_bad=1)
    csv_path = root / "split_csv" / "1cls.csv"
    lines = csv_path.read_text().splitlines()
    (root / "candle" / "Data" / "Masks" / "Anomaly" / "000.png").unlink()
    with pytest.raises(ImageDataError, match=r"1cls.csv: 1 listed file\(s\) not found:\n  line 2: .*000.png"):
        find_samples(root, "visa")
    csv_path.write_text("\n".join(lines[:1] + [lines[1].rsplit(",", 1)[0] + ","] + lines[2:]) + "\n")
    with pytest.raises(ImageDataError, match=r"1cls.csv, line 2: anomalous image .* has no mask path"):
        find_samples(root, "visa")
    csv_path.write_text("object,split,label,image\ncandle,train,normal,x.JPG\n")
    with pytest.raises(ImageDataError, match=r"lacks column\(s\) \['mask'\]"):
        find_samples(root, "visa")
    csv_path.write_text("\n".join(lines + ["candle,train,anomaly,candle/Data/Images/Anomaly/000.JPG,m.png"]) + "\n")
    with pytest.raises(ImageDataError, match=r"line 5: anomalous training image"):
        find_samples(root, "visa")
    csv_path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the normal test row only
    with pytest.raises(ImageDataError, match=r"class 'candle': no train image listed in .*1cls.csv"):
        find_samples(root, "visa")


@pytest.mark.parametrize("level", ["", "1cls", "visa_pytorch"])
def test_visa_reorganised_with_or_without_a_level(tmp_path, level):
    root = tmp_path / "visa"
    write_visa_mvtec(root / level if level else root, classes=("pcb1", "candle"), n_train=2, n_good=1, n_bad=2)
    assert detect_layout(root, "visa") == "visa_mvtec"
    samples = find_samples(root, "visa")
    assert list(dict.fromkeys(s.class_name for s in samples)) == ["pcb1", "candle"]
    bad = [(s.image.name, s.mask.name, s.defect) for s in samples if s.label and s.class_name == "candle"]
    assert bad == [("000.JPG", "000.png", "bad"), ("001.JPG", "001.png", "bad")]


# ------------------------------------------------------------------------------------------------ ADer meta.json


def test_meta_json_with_double_slashes_pairs_by_listed_path(tmp_path):
    root = tmp_path / "mvtec"
    ader_meta(root, classes=("carpet",), n_train=2, n_good=1, n_bad=3)
    assert detect_layout(root, "mvtec") == "mvtec"  # folders win over the derived index
    samples = find_samples(root, "mvtec", layout="meta_json")
    bad = [(rel(root, s.image), rel(root, s.mask), s.defect) for s in samples if s.label]
    assert bad == [(f"carpet/test/hole/{i:03d}.png", f"carpet/ground_truth/hole/{i:03d}_mask.png", "hole")
                   for i in range(3)]
    assert table(root, samples) == table(root, find_samples(root, "mvtec", layout="mvtec"))


def test_meta_json_alone_is_detected_and_checked(tmp_path):
    files = tmp_path / "files"
    meta = ader_meta(files, classes=("carpet",), n_bad=1)
    root = tmp_path / "index_only"
    root.mkdir()
    for split in meta.values():
        for entries in split.values():
            for e in entries:
                for key in ("img_path", "mask_path"):
                    if e[key]:
                        e[key] = str(files / e[key])  # absolute paths are used as they are
    write_meta_json(root, meta)
    assert detect_layout(root, "mvtec") == "meta_json"
    assert len(find_samples(root, "mvtec")) == 4
    meta["test"]["carpet"][-1]["mask_path"] = ""
    write_meta_json(root, meta)
    with pytest.raises(ImageDataError, match=r"meta.json, test\['carpet'\]\[1\]: anomalous image .* has no mask_path"):
        find_samples(root, "mvtec")
    meta["test"]["carpet"][-1]["mask_path"] = str(files / "nowhere.png")
    write_meta_json(root, meta)
    with pytest.raises(ImageDataError, match=r"1 listed file\(s\) not found:\n  test\['carpet'\]\[1\]: .*nowhere.png"):
        find_samples(root, "mvtec")
    meta["test"]["carpet"][-1]["mask_path"] = "../escape.png"
    write_meta_json(root, meta)
    with pytest.raises(ImageDataError, match=r"leaves the dataset root"):
        find_samples(root, "mvtec")


def test_nothing_found_lists_every_place_looked_at(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageDataError) as err:
        find_samples(tmp_path / "empty", "mvtec")
    for looked in ("split_csv/1cls.csv", "1cls/<class>/", "visa_pytorch/<class>/", "<class>/train/good", "meta.json"):
        assert looked in str(err.value)
    root = write_mvtec(tmp_path / "m")
    with pytest.raises(ImageDataError, match=r"looks like a class folder: pass its parent as the root and "
                                             r"classes=\[bottle\]"):
        find_samples(root / "bottle", "mvtec")
    with pytest.raises(ImageDataError, match="dataset root folder not found"):
        find_samples(tmp_path / "absent", "mvtec")
