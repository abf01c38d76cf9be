"""Setup checks: reserved class names, absent or foreign benchmark classes, truncated files, one-kind test sets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fsad.data.images import ImageDataError, ImageDataModule
from tests.data.images.helpers import write_mvtec


@pytest.mark.parametrize("name", ["mean", "random"])
def test_a_class_named_like_a_report_row_is_refused_at_setup(tmp_path: Path, name: str):
    write_mvtec(tmp_path, classes=(name,))
    with pytest.raises(ImageDataError, match=f"\\['{name}'\\]"):
        ImageDataModule(root=str(tmp_path), dataset="custom").setup()


def test_absent_and_foreign_classes_of_a_known_benchmark_are_named(tmp_path: Path, caplog):
    write_mvtec(tmp_path, classes=("bottle", "pcb1"))
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.datamodule"):
        ImageDataModule(root=str(tmp_path), dataset="mvtec").setup()
    text = caplog.text
    assert "['pcb1'] are not mvtec classes" in text
    assert "14 of the 15 mvtec classes are absent" in text and "carpet" in text


def test_a_chosen_subset_is_not_reported_as_absent_classes(tmp_path: Path, caplog):
    write_mvtec(tmp_path, classes=("bottle",))
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.datamodule"):
        ImageDataModule(root=str(tmp_path), dataset="mvtec", classes=["bottle"]).setup()
    assert "absent" not in caplog.text


def test_a_truncated_image_is_found_at_setup_not_after_training(tmp_path: Path):
    write_mvtec(tmp_path, classes=("bottle",))
    image = next((tmp_path / "bottle" / "test" / "good").glob("*.png"))
    image.write_bytes(image.read_bytes()[:-20])  # the end of the file (IEND) is lost
    with pytest.raises(ImageDataError, match=str(image)):
        ImageDataModule(root=str(tmp_path), dataset="custom").setup()


def test_a_class_without_anomalous_test_images_is_named_at_setup(tmp_path: Path, caplog):
    write_mvtec(tmp_path, classes=("bottle",), defects=())
    with caplog.at_level(logging.WARNING, logger="fsad.data.images.datamodule"):
        ImageDataModule(root=str(tmp_path), dataset="custom").setup()
    assert "class bottle has 2 normal and 0 anomalous test images" in caplog.text
