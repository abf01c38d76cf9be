"""The LightningDataModule of the image benchmarks (MVTec-AD, VisA, MPDD, the synthetic one, custom folders).

Protocol (ADer, the frameworks MambaAD and Wave-MambaAD were trained in): training on the normal training images
of every class at once (``multi_class=true``, one unified model) or of one class (``multi_class=false``, one model
per class, run as a sweep ``-m data.classes=[bottle],[cable],...``); no validation split; scoring on the test
images in class order, then path order, with masks at ``eval_size``.

Inputs are validated when the data is first set up, before any training step: the layout and every class are
found, every image header is read and every mask decoded (size and values checked, see
:mod:`fsad.data.images.checks`), and the counts per class are compared with the published ones
(:mod:`fsad.data.images.counts`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from fsad.data.images.checks import check_files
from fsad.data.images.counts import canonical_classes, check_counts
from fsad.data.images.datasets import TestImages, TrainImages
from fsad.data.images.layouts import LAYOUTS, available_classes, detect_layout, find_samples
from fsad.data.images.samples import ImageDataError, ImageSample
from fsad.data.images.synthetic import write_synthetic_benchmark
from fsad.data.images.transforms import ImageTransform
from fsad.data.windows import EpochSeededShuffler
from fsad.evaluation.image.report import RESERVED_NAMES

DATASETS = ("mvtec", "visa", "mpdd", "synthetic", "custom")
VISA_LAYOUTS = ("visa", "visa_mvtec")
log = logging.getLogger(__name__)


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"data.{name} must be a positive integer, got {value!r}")
    return value


class ImageDataModule(L.LightningDataModule):
    """Images and masks of an anomaly-detection benchmark.

    Args:
        root: dataset root folder (any name); for ``dataset=synthetic`` the benchmark is written there when absent.
        dataset: ``mvtec`` | ``visa`` | ``mpdd`` | ``synthetic`` | ``custom`` (class order, published counts,
            downloads).
        layout: ``auto`` | ``mvtec`` | ``visa`` | ``visa_mvtec`` | ``meta_json`` (:mod:`fsad.data.images.layouts`).
        classes: class names in the order wanted; ``None`` = every class found (canonical order).
        multi_class: ``True``: one model on all ``classes``; ``False``: one model per class, so ``classes`` must
            name exactly one class.
        image_size, crop_size: resize side then centre-crop side S of the images fed to the model (pixels).
        eval_size: side E of the masks the pixel metrics use (pixels; 256 = ADer / anomalib).
        batch_size: training batch size; ``eval_batch_size``: scoring batch size.
        num_workers: DataLoader worker processes.
        download: fetch ``mvtec`` / ``visa`` into ``root`` when their classes are absent (MPDD: instructions).
        mirror: base URL replacing the public archive URL (``<mirror>/<archive name>``).
        seed: seed of the training shuffle (per epoch, so a resumed run sees the same batches).
        synthetic: keyword arguments of :func:`~fsad.data.images.synthetic.write_synthetic_benchmark` for
            ``dataset=synthetic`` (its own ``seed``, default 0, fixes the pictures independently of ``seed``).
        check_files: read every image header and decode every mask at setup (recommended; a few seconds for VisA).
        drop_last: drop the last incomplete training batch (ADer does; off by default so small sets train on every
            image; ignored when the training set is smaller than one batch).

    Attributes after :meth:`setup`: ``class_names`` (list[str]), ``train_samples`` and ``test_samples``
    (list[ImageSample]; test order = class order, then path), ``counts`` (per class: train/test counts, the
    published ones, mask statistics; JSON-ready), ``layout_used``.
    """

    def __init__(
        self,
        root: str,
        dataset: str,
        layout: str = "auto",
        classes: Sequence[str] | str | None = None,
        multi_class: bool = True,
        image_size: int = 256,
        crop_size: int = 256,
        eval_size: int = 256,
        batch_size: int = 16,
        eval_batch_size: int = 16,
        num_workers: int = 0,
        download: bool = False,
        mirror: str | None = None,
        seed: int = 0,
        synthetic: dict | None = None,
        check_files: bool = True,
        drop_last: bool = False,
    ):
        super().__init__()
        dataset = str(dataset).lower()
        if dataset not in DATASETS:
            raise ValueError(f"data.dataset must be one of {DATASETS}, got {dataset!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"data.layout must be one of {LAYOUTS}, got {layout!r}")
        if classes is not None:
            classes = [classes] if isinstance(classes, str) else [str(c) for c in classes]
        if not multi_class and (classes is None or len(classes) != 1):
            raise ValueError(
                f"data.multi_class=false trains one model per class, so data.classes must name exactly one class "
                f"(got {classes}); sweep the classes with -m, e.g. `-m data.classes=[bottle],[cable]`, or set "
                f"data.multi_class=true for one model on all of them")
        if synthetic is not None and dataset != "synthetic":
            raise ValueError(f"data.synthetic is only used with data.dataset=synthetic, not {dataset!r}")
        if download and dataset == "custom":
            raise ValueError("data.download=true: a custom dataset has no public archive; put its files in data.root")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        if not isinstance(root, (str, Path)) or not str(root):
            raise ValueError(f"data.root must be a folder path, got {root!r}")
        if Path(root).exists() and not Path(root).is_dir():
            raise ValueError(f"data.root={root} is a file, not a folder")
        self.root, self.dataset, self.layout = Path(root), dataset, layout
        self.classes, self.multi_class = classes, bool(multi_class)
        self.transform = ImageTransform(image_size=image_size, crop_size=crop_size, eval_size=eval_size)
        self.batch_size = _positive("batch_size", batch_size)
        self.eval_batch_size = _positive("eval_batch_size", eval_batch_size)
        self.num_workers, self.seed, self.drop_last = num_workers, seed, drop_last
        self.download, self.mirror, self.check_files = download, mirror, check_files
        self.synthetic = dict(synthetic or {})
        self.class_names: list[str] = []
        self.train_samples: list[ImageSample] = []
        self.test_samples: list[ImageSample] = []
        self.counts: dict[str, dict] = {}
        self.layout_used: str | None = None

    # --------------------------------------------------------------------------------------------- data on disk
    def _write_synthetic(self) -> None:
        try:
            write_synthetic_benchmark(self.root, **self.synthetic)
        except OSError as err:
            raise ImageDataError(f"data.root={self.root}: the synthetic benchmark cannot be written there ({err})") \
                from err
        except (TypeError, ValueError) as err:
            raise ImageDataError(f"data.synthetic {self.synthetic}: {err}") from err

    def _present(self) -> bool:
        try:
            found = available_classes(self.root, self.dataset, self.layout)
        except ImageDataError:
            return False
        return self.classes is None or all(name in found for name in self.classes)

    def prepare_data(self) -> None:
        """Write the synthetic benchmark, or download ``mvtec`` / ``visa`` when ``download`` is set and absent."""
        if self.dataset == "synthetic":
            self._write_synthetic()
        elif self.download and not self._present():
            from fsad.data.images.download import fetch_image_benchmark

            fetch_image_benchmark(self.dataset, self.root, mirror=self.mirror)

    def setup(self, stage: str | None = None) -> None:
        """Find, check and count the samples (once; later calls do nothing)."""
        if self.class_names:
            return
        if self.dataset == "synthetic":
            self._write_synthetic()  # reused as is when already written with the same parameters
        layout = detect_layout(self.root, self.dataset) if self.layout == "auto" else self.layout
        samples = find_samples(self.root, self.dataset, layout=layout, classes=self.classes)
        names = list(dict.fromkeys(s.class_name for s in samples))
        self._check_class_names(names)
        counts = check_counts(self.dataset, samples)
        if self.check_files:
            visa = self.dataset == "visa" or layout in VISA_LAYOUTS
            for name, row in check_files(samples, class_ids_expected=visa).items():
                counts[name].update(row)
        for name, row in counts.items():
            if not row.get("test_good") or not row.get("test_anomalous"):
                log.warning("class %s has %d normal and %d anomalous test images: its image AUROC is undefined (null, "
                            "left out of the mean)", name, row.get("test_good", 0), row.get("test_anomalous", 0))
        self.train_samples = [s for s in samples if s.split == "train"]
        self.test_samples = [s for s in samples if s.split == "test"]
        self.class_names, self.counts, self.layout_used = names, counts, layout
        n_bad = sum(s.label for s in self.test_samples)
        log.info("%s (%s layout) at %s: %d class(es), %d training images, %d test images (%d anomalous)",
                 self.dataset, layout, self.root, len(names), len(self.train_samples), len(self.test_samples), n_bad)

    def _check_class_names(self, names: list[str]) -> None:
        """Reserved names are an error; against a known benchmark's class list, absent classes (when all were asked
        for) and foreign ones are warnings: the mean over classes is then not the benchmark's."""
        reserved = [n for n in names if n in RESERVED_NAMES or "/" in n]
        if reserved:
            raise ImageDataError(f"{self.root}: class names {reserved} cannot be used: 'mean' and 'random' name rows "
                                 "of the reports and '/' separates report keys; rename those class folders")
        known = canonical_classes(self.dataset)
        if not known:
            return
        foreign = [n for n in names if n not in known]
        if foreign:
            log.warning("%s: classes %s are not %s classes (%s); is data.dataset right?", self.root, foreign,
                        self.dataset, ", ".join(known))
        missing = [n for n in known if n not in names]
        if missing and self.classes is None:
            log.warning("%s: %d of the %d %s classes are absent (%s): the mean over classes is not the benchmark's",
                        self.root, len(missing), len(known), self.dataset, ", ".join(missing))

    # ------------------------------------------------------------------------------------------------- loaders
    @property
    def class_ids(self) -> dict[str, int]:
        """Class name -> index in :attr:`class_names`."""
        return {name: i for i, name in enumerate(self.class_names)}

    def _require_setup(self) -> None:
        if not self.class_names:
            raise RuntimeError("ImageDataModule: call setup() before asking for data loaders")

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches ``{"image": float32 (B, 3, S, S), "class_id": int64 (B,)}``."""
        self._require_setup()
        dataset = TrainImages(self.train_samples, self.class_ids, self.transform)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=EpochSeededShuffler(len(dataset), self.seed),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          drop_last=self.drop_last and len(dataset) >= self.batch_size)

    def scoring_dataloaders(self) -> dict[str, DataLoader]:
        """``{"test": loader}`` in :attr:`test_samples` order, batches ``{"image": float32 (B, 3, S, S),
        "mask": bool (B, E, E), "label": int64 (B,), "index": int64 (B,) (position in test_samples),
        "class_id": int64 (B,)}``."""
        self._require_setup()
        dataset = TestImages(self.test_samples, self.class_ids, self.transform)
        return {"test": DataLoader(dataset, batch_size=self.eval_batch_size, shuffle=False,
                                   num_workers=self.num_workers, persistent_workers=self.num_workers > 0)}

    def test_dataloader(self) -> DataLoader:
        """The test loader of :meth:`scoring_dataloaders` (for ``Trainer.test``)."""
        return self.scoring_dataloaders()["test"]
