"""Image anomaly-detection data: benchmark layouts on disk, reading, transforms, a synthetic benchmark, and the
DataModule (:class:`ImageDataModule`, imported on first use: it pulls in Lightning)."""

from fsad.data.images.layouts import find_samples
from fsad.data.images.reading import read_mask, read_rgb
from fsad.data.images.samples import ImageDataError, ImageSample
from fsad.data.images.synthetic import write_synthetic_benchmark

__all__ = ["ImageDataError", "ImageDataModule", "ImageSample", "find_samples", "read_mask", "read_rgb",
           "write_synthetic_benchmark"]


def __getattr__(name: str):
    if name == "ImageDataModule":
        from fsad.data.images.datamodule import ImageDataModule

        return ImageDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
