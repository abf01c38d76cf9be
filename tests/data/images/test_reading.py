"""read_rgb / read_mask / read_pair: every Pillow mode, EXIF orientation, the IMG-02 and IMG-14 cases, real photos."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image, ImageOps

from fsad.data.images import ImageDataError, read_mask, read_rgb
from fsad.data.images.reading import apply_orientation, read_pair
from tests.conftest import shared_path
from tests.data.images.helpers import png

GREY = np.array([[0, 64], [128, 255]], np.uint8)


# --------------------------------------------------------------------------------------------- IMG-14: modes


def write_modes(folder):
    """The IMG-14 inputs (2x2 each), rebuilt here with the same values."""
    png(folder / "grey_L.png", GREY, mode="L")
    png(folder / "grey_alpha_LA.png", np.dstack([GREY, [[255, 0], [128, 255]]]).astype(np.uint8), mode="LA")
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, GREY, 10, [[0, 255], [7, 255]]
    png(folder / "rgba.png", rgba, mode="RGBA")
    pal = Image.new("P", (2, 2))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    pal.putdata([0, 1, 2, 3])
    pal.save(folder / "palette_P.png")
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1").save(folder / "bilevel_1.png")
    Image.fromarray(np.array([[0, 257], [32896, 65535]], np.uint16)).save(folder / "grey16.png")
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=100)


EXPECTED_RGB = {
    "grey_L.png": np.dstack([GREY] * 3),
    "grey_alpha_LA.png": np.dstack([GREY] * 3),
    "rgba.png": np.dstack([np.full((2, 2), 200), GREY, np.full((2, 2), 10)]),
    "palette_P.png": np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [0, 0, 255]]]),
    "bilevel_1.png": np.dstack([np.array([[0, 255], [255, 0]])] * 3),
    "grey16.png": np.dstack([np.array([[0, 1], [128, 255]])] * 3),  # round(v / 257), not Pillow's clipping
    "cmyk.jpg": np.full((2, 2, 3), (255, 0, 0)),
}


def test_every_mode_reads_as_uint8_rgb(tmp_path):
    write_modes(tmp_path)
    for name, expected in EXPECTED_RGB.items():
        out = read_rgb(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (2, 2, 3), name
        np.testing.assert_array_equal(out, expected.astype(np.uint8), err_msg=name)


def test_img14_shared_files_match_the_expected_values():
    case = shared_path("cases", "image")
    expected = json.loads((case / "expected" / "IMG-14.json").read_text())["files"]
    for name, row in expected.items():
        if "*" in name or "exif" in name:
            continue
        want = row.get("expected_rgb", row.get("expected_rgb (proposed rescale round(v/257))"))
        out = read_rgb(case / "data" / "IMG-14" / name)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, np.array(want, np.uint8), err_msg=name)


def test_sixteen_bit_is_rescaled_and_wide_or_float_images_are_refused(tmp_path):
    values = np.array([[0, 128, 129, 385], [32767, 32896, 65534, 65535]], np.uint16)
    png(tmp_path / "g16.png", values)
    np.testing.assert_array_equal(read_rgb(tmp_path / "g16.png")[..., 1],
                                  np.round(values / 257.0).astype(np.uint8))
    Image.fromarray(np.array([[0, 70000]], np.int32), mode="I").save(tmp_path / "wide.tif")
    with pytest.raises(ImageDataError, match=r"wide.tif: 32-bit integer image with values in \[0, 70000\]"):
        read_rgb(tmp_path / "wide.tif")
    Image.fromarray(np.zeros((2, 2), np.float32), mode="F").save(tmp_path / "float.tif")
    with pytest.raises(ImageDataError, match=r"float.tif: floating-point image"):
        read_rgb(tmp_path / "float.tif")


def test_missing_corrupt_and_truncated_files_are_named(tmp_path):
    with pytest.raises(ImageDataError, match=r"absent.png: image file not found"):
        read_rgb(tmp_path / "absent.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageDataError, match=r"text.png: not a readable image file"):
        read_rgb(tmp_path / "text.png")
    png(tmp_path / "full.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDataError, match=r"cut.png: not a readable image file"):
        read_rgb(tmp_path / "cut.png")
    with pytest.raises(ImageDataError, match=r"cut.png: not a readable image file"):
        read_mask(tmp_path / "cut.png")


# ------------------------------------------------------------------------------------------- EXIF orientation


def test_orientation_mapping_equals_exif_transpose_for_all_eight_tags(tmp_path):
    raw = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    for tag in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = tag
        path = tmp_path / f"o{tag}.png"
        Image.fromarray(raw).save(path, exif=exif.tobytes())
        with Image.open(path) as image:
            reference = np.asarray(ImageOps.exif_transpose(image))
            mine = np.asarray(apply_orientation(image, tag))
        np.testing.assert_array_equal(mine, reference, err_msg=f"orientation {tag}")
        np.testing.assert_array_equal(read_rgb(path), reference, err_msg=f"orientation {tag}")


def test_img14_exif_image_and_its_untagged_mask_stay_aligned(tmp_path):
    img = np.zeros((2, 4, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(img).save(tmp_path / "e.jpg", exif=exif.tobytes(), quality=100, subsampling=0)
    mask = np.zeros((2, 4), np.uint8)
    mask[0, 0:2] = 255
    png(tmp_path / "e_mask.png", mask, mode="L")
    image, aligned = read_pair(tmp_path / "e.jpg", tmp_path / "e_mask.png")
    assert image.shape == (4, 2, 3) and aligned.shape == (4, 2)  # upright: the tag says rotate 90 degrees
    red = (image[..., 0] > 128) & (image[..., 1] < 100)
    assert aligned[np.unravel_index(np.argmax(red), red.shape)]  # the red scene pixel is under the mask
    np.testing.assert_array_equal(aligned, np.rot90(mask != 0, k=-1))
    # a mask already saved upright (4x2) is not turned a second time
    png(tmp_path / "upright_mask.png", np.rot90(mask, k=-1), mode="L")
    np.testing.assert_array_equal(read_pair(tmp_path / "e.jpg", tmp_path / "upright_mask.png")[1], aligned)
    # a mask of another size is an error naming both files
    png(tmp_path / "small_mask.png", np.zeros((3, 3), np.uint8), mode="L")
    with pytest.raises(ImageDataError, match=r"small_mask.png: mask is 3x3 .* its image .*e.jpg is 2x4"):
        read_pair(tmp_path / "e.jpg", tmp_path / "small_mask.png")


def test_img14_shared_exif_pair():
    data = shared_path("cases", "image", "data", "IMG-14")
    image, mask = read_pair(data / "exif_orient6.jpg", data / "exif_orient6_mask.png")
    assert image.shape[:2] == mask.shape == (4, 2)
    assert mask.sum() == 2 and mask[0:2, 1].all()


# ------------------------------------------------------------------------------------------------ IMG-02: masks


def test_img02_masks_keep_every_non_zero_pixel(tmp_path):
    loco = np.zeros((8, 8), np.uint8)
    loco[1, 1:4], loco[2, 1:4], loco[3, 1:4], loco[5:7, 5:7] = 236, 250, 254, 255
    png(tmp_path / "loco_like_L.png", loco, mode="L")
    red = np.zeros((8, 8, 3), np.uint8)
    red[2:5, 2:5] = (255, 0, 0)
    png(tmp_path / "red_rgb.png", red, mode="RGB")
    m16 = np.zeros((8, 8), np.uint16)
    m16[0:2, 0:3] = 65535
    png(tmp_path / "mask16.png", m16)
    ones = np.zeros((8, 8), np.uint16)
    ones[4:6, 4:8] = 1
    png(tmp_path / "mask16_ones.png", ones)
    counts = {"loco_like_L.png": 13, "red_rgb.png": 9, "mask16.png": 6, "mask16_ones.png": 8}
    for name, n in counts.items():
        mask = read_mask(tmp_path / name)
        assert mask.dtype == bool and mask.shape == (8, 8)
        assert int(mask.sum()) == n, name


def test_img02_shared_masks():
    case = shared_path("cases", "image")
    expected = json.loads((case / "expected" / "IMG-02.json").read_text())["files"]
    for name, row in expected.items():
        assert int(read_mask(case / "data" / "IMG-02" / name).sum()) == row["expected_num_anomalous"], name


def test_mask_modes_palette_alpha_bilevel_and_refused_colour_spaces(tmp_path):
    pal = Image.new("P", (3, 1))
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * (256 * 3 - 6))  # index 0 drawn white: indices count
    pal.putdata([0, 1, 2])
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), [[False, True, True]])
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[..., 3] = 255  # opaque black background: alpha is not a mask channel
    rgba[0, 1, 1] = 9
    png(tmp_path / "a.png", rgba, mode="RGBA")
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png"), [[False, True]])
    Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1").save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png"), [[False, True]])
    Image.new("CMYK", (2, 2)).save(tmp_path / "c.jpg")
    with pytest.raises(ImageDataError, match=r"c.jpg: mask stored in Pillow mode 'CMYK'"):
        read_mask(tmp_path / "c.jpg")


def test_visa_class_id_masks_are_binarised_at_non_zero(tmp_path):
    ids = np.zeros((8, 8), np.uint8)
    ids[2:4, 3:6] = 2
    ids[6, 6] = 9
    png(tmp_path / "000.png", ids, mode="L")
    assert int(read_mask(tmp_path / "000.png").sum()) == 7


# ------------------------------------------------------------------------------------------ real photos (CC-BY)


def test_hazelnut_toy_photos_and_their_jpeg_derived_masks(caplog):
    from fsad.data.images.checks import check_files
    from fsad.data.images.samples import ImageSample

    folder = shared_path("data", "IMAGES_hazelnut_toy")
    for name in ("good", "colour", "crack"):
        image = read_rgb(folder / f"{name}.png")
        assert image.shape == (512, 512, 3) and image.dtype == np.uint8 and image.std() > 10
    # the masks were JPEG files: grey levels 1..7 and 247..254 around the defects; every non-zero pixel counts
    expected = {"colour": (5029, 3728), "crack": (44002, 42634)}
    for name, (nonzero, bright) in expected.items():
        raw = np.asarray(Image.open(folder / f"{name}_mask.png"))
        mask = read_mask(folder / f"{name}_mask.png")
        assert mask.shape == (512, 512) and int(mask.sum()) == nonzero and int((raw >= 128).sum()) == bright
        image, paired = read_pair(folder / f"{name}.png", folder / f"{name}_mask.png")
        np.testing.assert_array_equal(paired, mask)
    samples = [ImageSample(folder / f"{n}.png", folder / f"{n}_mask.png", "hazelnut", n, 1, "test")
               for n in ("colour", "crack")]
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.checks"):
        report = check_files(samples)
    assert report["hazelnut"]["masks_levels"] == 2
    assert "class 'hazelnut': 2 of 2 masks hold values other than 0 and the full value" in caplog.text
    assert "colour_mask.png (values [0, 1, 2" in caplog.text
