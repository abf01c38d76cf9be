"""Published image counts per class of MVTec-AD, VisA and MPDD, and the check of a loaded benchmark against them.

Sources: MVTec-AD and MPDD from an ADer-generated ``meta.json`` (totals equal the Wave-MambaAD supplementary:
3,629 training and 1,725 test images for MVTec-AD, 1,346 images for MPDD); VisA from the ``split_csv/1cls.csv``
of amazon-science/spot-diff (8,659 training images, 2,162 test images of which 1,200 anomalous). Each table is
written in the dataset's canonical class order (ADer's ``CLSNAMES``: textures first for MVTec-AD), which is also
the order :func:`fsad.data.images.layouts.find_samples` reports classes in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fsad.data.images.samples import ImageSample

log = logging.getLogger(__name__)

#: class -> (train good, test good, test anomalous)
MVTEC_COUNTS: dict[str, tuple[int, int, int]] = {
    "carpet": (280, 28, 89),
    "grid": (264, 21, 57),
    "leather": (245, 32, 92),
    "tile": (230, 33, 84),
    "wood": (247, 19, 60),
    "bottle": (209, 20, 63),
    "cable": (224, 58, 92),
    "capsule": (219, 23, 109),
    "hazelnut": (391, 40, 70),
    "metal_nut": (220, 22, 93),
    "pill": (267, 26, 141),
    "screw": (320, 41, 119),
    "toothbrush": (60, 12, 30),
    "transistor": (213, 60, 40),
    "zipper": (240, 32, 119),
}

VISA_COUNTS: dict[str, tuple[int, int, int]] = {
    "pcb1": (904, 100, 100),
    "pcb2": (901, 100, 100),
    "pcb3": (905, 101, 100),
    "pcb4": (904, 101, 100),
    "macaroni1": (900, 100, 100),
    "macaroni2": (900, 100, 100),
    "capsules": (542, 60, 100),
    "candle": (900, 100, 100),
    "cashew": (450, 50, 100),
    "chewinggum": (453, 50, 100),
    "fryum": (450, 50, 100),
    "pipe_fryum": (450, 50, 100),
}

MPDD_COUNTS: dict[str, tuple[int, int, int]] = {
    "bracket_black": (289, 32, 47),
    "bracket_brown": (185, 26, 51),
    "bracket_white": (110, 30, 30),
    "connector": (128, 30, 14),
    "metal_plate": (54, 26, 71),
    "tubes": (122, 32, 69),
}

PUBLISHED_COUNTS: dict[str, dict[str, tuple[int, int, int]]] = {
    "mvtec": MVTEC_COUNTS,
    "visa": VISA_COUNTS,
    "mpdd": MPDD_COUNTS,
}

DATASET_TITLES = {"mvtec": "MVTec-AD", "visa": "VisA", "mpdd": "MPDD"}
COUNT_KEYS = ("train_good", "test_good", "test_anomalous")


def canonical_classes(dataset: str) -> tuple[str, ...]:
    """The dataset's classes in its canonical order; ``()`` for datasets without a published table."""
    return tuple(PUBLISHED_COUNTS.get(dataset.lower(), {}))


def count_samples(samples: Iterable[ImageSample]) -> dict[str, dict[str, int]]:
    """``{class: {"train_good", "test_good", "test_anomalous"}}`` in order of first appearance.

    Anomalous training images, if a caller built any, are not counted (the loaders never produce them).
    """
    table: dict[str, dict[str, int]] = {}
    for sample in samples:
        row = table.setdefault(sample.class_name, dict.fromkeys(COUNT_KEYS, 0))
        if sample.split == "train" and sample.label == 0:
            row["train_good"] += 1
        elif sample.split == "test":
            row["test_anomalous" if sample.label else "test_good"] += 1
    return table


def check_counts(dataset: str, samples: Iterable[ImageSample]) -> dict[str, dict]:
    """Compare the images found per class with the published counts of ``dataset``.

    Args:
        dataset: ``mvtec`` | ``visa`` | ``mpdd`` (case-insensitive) are checked; any other name (``synthetic``,
            ``custom``) only gets its counts tabulated.
        samples: train and test samples, as returned by ``find_samples``.

    Returns:
        ``{class: {"train_good": n, "test_good": n, "test_anomalous": n, "published": {same keys} | None,
        "matches_published": bool | None}}`` in order of first appearance, ready for ``metrics.json``
        (``None`` where the dataset has no published row for the class).

    A mismatch is not an error (a user may work on a subset or a corrected copy): it is logged as a warning naming
    the class and both counts.
    """
    key = dataset.lower()
    published = PUBLISHED_COUNTS.get(key, {})
    table: dict[str, dict] = {}
    for class_name, found in count_samples(samples).items():
        row: dict = dict(found)
        reference = published.get(class_name)
        if reference is None:
            row["published"], row["matches_published"] = None, None
        else:
            expected = dict(zip(COUNT_KEYS, reference))
            row["published"] = expected
            row["matches_published"] = expected == found
            if expected != found:
                log.warning(
                    "%s class %r: found %s, the published %s counts are %s (train good / test good / test "
                    "anomalous); a subset or modified copy of the dataset gives results that are not comparable "
                    "with published tables", DATASET_TITLES[key], class_name, _fmt(found), DATASET_TITLES[key],
                    _fmt(expected))
        table[class_name] = row
    return table


def _fmt(row: dict[str, int]) -> str:
    return "/".join(str(row[k]) for k in COUNT_KEYS)
