"""The synthetic benchmark: MVTec layout, seeded, exact masks, tiny and border defects, atomic reuse/replace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fsad.data.images import ImageDataError, find_samples, read_mask, read_rgb, write_synthetic_benchmark
from fsad.data.images.synthetic import clean_picture

SMALL = dict(classes=("stripes", "checker", "disc", "plate"), n_train=3, n_test_good=2, n_test_bad=6, size=48)


def files(root: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(root).as_posix(): np.asarray(Image.open(p)) for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_synthetic_benchmark(tmp_path_factory.mktemp("syn") / "bench", **SMALL, seed=3)


def test_layout_counts_and_record(bench):
    samples = find_samples(bench, "synthetic")
    assert list(dict.fromkeys(s.class_name for s in samples)) == ["checker", "disc", "plate", "stripes"]
    for name in SMALL["classes"]:
        mine = [s for s in samples if s.class_name == name]
        assert sum(s.split == "train" for s in mine) == 3
        assert sum(s.split == "test" and s.label == 0 for s in mine) == 2
        assert sorted(s.defect for s in mine if s.label) == ["colour", "hole", "scratch", "scratch", "stain", "stain"]
    info = json.loads((bench / "synthetic.json").read_text())
    assert info["params"]["seed"] == 3 and info["params"]["size"] == 48
    assert info["classes"]["disc"]["kind"] == "object" and info["classes"]["stripes"]["kind"] == "texture"


def test_masks_are_exact_non_empty_binary_and_include_tiny_and_border_defects(bench):
    for sample in find_samples(bench, "synthetic", splits=("test",)):
        image = read_rgb(sample.image)
        assert image.shape == (48, 48, 3)
        if not sample.label:
            assert sample.mask is None
            continue
        raw = np.asarray(Image.open(sample.mask))
        assert set(np.unique(raw)) <= {0, 255}
        mask = read_mask(sample.mask)
        assert mask.any(), sample.image
    for name in SMALL["classes"]:
        masks = [read_mask(bench / name / "ground_truth" / d / f"{i:03d}_mask.png")
                 for d in ("scratch", "stain") for i in range(2)]
        first, second = masks[0], masks[2]  # anomalous images 0 (scratch 000) and 1 (stain 000)
        assert 1 <= first.sum() <= 16, name
        assert first.sum() >= 1 and (second[0].any() or second[-1].any() or second[:, 0].any()
                                     or second[:, -1].any()), name


def test_mask_is_exactly_the_changed_pixels(bench):
    """The mask is 255 exactly where the saved anomalous image differs from the clean picture it was drawn on."""
    for name in SMALL["classes"]:
        for index, (defect, stem) in enumerate([("scratch", "000"), ("stain", "000"), ("hole", "000"),
                                                ("colour", "000"), ("scratch", "001"), ("stain", "001")]):
            clean = clean_picture(name, 3, "test_bad", index, 48)
            defective = read_rgb(bench / name / "test" / defect / f"{stem}.png")
            mask = read_mask(bench / name / "ground_truth" / defect / f"{stem}_mask.png")
            np.testing.assert_array_equal(mask, (defective != clean).any(axis=2), err_msg=f"{name} {defect}")
        np.testing.assert_array_equal(read_rgb(bench / name / "test" / "good" / "001.png"),
                                      clean_picture(name, 3, "test_good", 1, 48))


def test_deterministic_by_seed_and_independent_of_counts(tmp_path, bench):
    again = write_synthetic_benchmark(tmp_path / "again", **SMALL, seed=3)
    first, second = files(bench), files(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    other = files(write_synthetic_benchmark(tmp_path / "other", **SMALL, seed=4))
    assert not np.array_equal(first["disc/train/good/000.png"], other["disc/train/good/000.png"])
    more = files(write_synthetic_benchmark(tmp_path / "more", **{**SMALL, "n_train": 5}, seed=3))
    assert np.array_equal(first["disc/test/good/001.png"], more["disc/test/good/001.png"])


def test_reuse_replace_refuse_and_no_leftovers(tmp_path):
    root = tmp_path / "b"
    params = dict(classes=("grain",), n_train=1, n_test_good=1, n_test_bad=2, size=32)
    write_synthetic_benchmark(root, **params)
    stamp = (root / "synthetic.json").stat().st_mtime_ns
    write_synthetic_benchmark(root, **params)  # same parameters: reused, nothing rewritten
    assert (root / "synthetic.json").stat().st_mtime_ns == stamp
    write_synthetic_benchmark(root, **{**params, "n_train": 2})  # other parameters: replaced
    assert len(list((root / "grain" / "train" / "good").iterdir())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging or old folders left
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ImageDataError, match=r"foreign: folder exists and holds other files"):
        write_synthetic_benchmark(foreign, **params)
    (tmp_path / "empty").mkdir()
    write_synthetic_benchmark(tmp_path / "empty", **params)
    assert (tmp_path / "empty" / "synthetic.json").is_file()


def test_invalid_parameters():
    with pytest.raises(ValueError, match="synthetic classes must be distinct names from"):
        write_synthetic_benchmark("/nonexistent/x", classes=("zebra",))
    with pytest.raises(ValueError, match="synthetic defects"):
        write_synthetic_benchmark("/nonexistent/x", defects=("dent",))
    with pytest.raises(ValueError, match="size must be >= 32"):
        write_synthetic_benchmark("/nonexistent/x", size=8)
