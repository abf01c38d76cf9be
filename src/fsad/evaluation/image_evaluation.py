"""Image evaluation (``conf/evaluation/image.yaml``): per-class and mean image/pixel metrics of the anomaly maps a
method gathered, in each protocol, beside the chance references; ``anomaly_maps.npz``, ``per_class.csv``, heatmap
overlays under ``heatmaps/``; every ``every_n_epochs`` epochs the same metrics into ``metrics_history.json``."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from fsad.data.images import ImageDataModule
from fsad.evaluation.component import Evaluation, Outcome
from fsad.evaluation.heatmaps import NORMALISATIONS, choose, montage, panel, save_png
from fsad.evaluation.image import METRICS, PROTOCOLS, image_report, image_scores
from fsad.methods.image_base import ImageAnomalyDetector, by_image_index
from fsad.utils.io import atomic_write, write_json, write_npz

log = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
HEADLINE = (*METRICS, "mad")


def _check_int(key: str, value: Any, low: int) -> None:
    """ValueError naming ``key`` unless ``value`` is an int >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{key}={value!r}: expected an integer >= {low}")


class ImageEvaluation(Evaluation):
    """Scores the test images and reports, per protocol, ``test/<protocol>/<class>/<metric>``,
    ``test/<protocol>/mean/<metric>`` and the chance references ``test/<protocol>/random/...``
    (:func:`fsad.evaluation.image.image_report`).

    Args:
        protocols: any of ``exact`` (exact curves, the definitions of the golden README) and ``ader`` (the binned
            protocol of the ADer benchmark that the papers' numbers come from).
        image_score_pool: image score = max of the map (None) or max of its ``k x k`` average pooling (k at most
            the evaluation size).
        every_n_epochs: also evaluate the weights in memory every k epochs during training (0: only at the end);
            the history goes to ``metrics_history.json``, never into the reported result (the last epoch's).
        heatmaps: ``per_class`` panels per class (0: none), ``normalise`` per ``image`` or ``class``, ``alpha``.
        save_maps: write ``anomaly_maps.npz`` (float16 maps at the evaluation size).
    """

    task = "image"
    datamodule_type = ImageDataModule
    method_type = ImageAnomalyDetector
    hint = ("Image runs use data=<mvtec|visa|mpdd|synthetic_images>, an image model (model=rd4ad) and "
            "evaluation=image; the image experiments (experiment=rd4ad/synthetic_images, rd4ad/mvtec, ...) set all "
            "three. Time-series runs use evaluation=default|paper|prediction.")

    def __init__(self, protocols: list[str] = ("exact", "ader"), image_score_pool: int | None = None,
                 every_n_epochs: int = 0, heatmaps: dict | None = None, save_maps: bool = True):
        protocols = list(protocols)
        if not protocols or any(p not in PROTOCOLS for p in protocols) or len(set(protocols)) < len(protocols):
            raise ValueError(f"evaluation.protocols={protocols}: expected a non-empty list of distinct names from "
                             f"{', '.join(PROTOCOLS)}")
        heatmaps = {"per_class": 4, "normalise": "image", "alpha": 0.5, **(heatmaps or {})}
        if heatmaps["normalise"] not in NORMALISATIONS:
            raise ValueError(f"evaluation.heatmaps.normalise={heatmaps['normalise']!r}: expected one of "
                             f"{', '.join(NORMALISATIONS)}")
        _check_int("evaluation.heatmaps.per_class", heatmaps["per_class"], 0)
        alpha = heatmaps["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"evaluation.heatmaps.alpha={alpha!r}: expected a number in [0, 1]")
        _check_int("evaluation.every_n_epochs", every_n_epochs, 0)
        if image_score_pool is not None:
            _check_int("evaluation.image_score_pool", image_score_pool, 1)
        self.protocols, self.image_score_pool = list(protocols), image_score_pool
        self.every_n_epochs, self.heatmaps, self.save_maps = int(every_n_epochs), heatmaps, save_maps

    def scoring_loaders(self, datamodule: ImageDataModule) -> dict[str, Any]:
        return {"test": datamodule.scoring_dataloaders()["test"]}

    def callbacks(self, run_dir: Path) -> list[Callback]:
        return [PeriodicImageEvaluation(self, run_dir)] if self.every_n_epochs else []

    # --- the report --------------------------------------------------------------------------------------------
    def metrics(self, scored: dict[str, np.ndarray], class_names: list[str]) -> dict[str, Any]:
        """Metrics of every protocol from the scored arrays (:attr:`ImageAnomalyDetector.scored` ``["test"]``)."""
        per_class = {}
        for k, name in enumerate(class_names):
            rows = scored["class_ids"] == k
            per_class[name] = (scored["maps"][rows], scored["masks"][rows], scored["labels"][rows])
        report: dict[str, Any] = {}
        for protocol in self.protocols:
            started = time.perf_counter()
            values = image_report(per_class, protocol=protocol, image_score_pool=self.image_score_pool)
            report.update({f"test/{protocol}/{key}": value for key, value in values.items()})
            report[f"time/metrics_seconds/{protocol}"] = time.perf_counter() - started
        return report

    def report(self, model: ImageAnomalyDetector, datamodule: ImageDataModule, loaders: dict[str, Any],
               run_dir: Path) -> Outcome:
        scored = model.scored["test"]
        samples = datamodule.test_samples
        check_images_scored(scored, len(samples))
        names = list(datamodule.class_names)
        scores = image_scores(scored["maps"], pool=self.image_score_pool)
        if self.save_maps:  # first: the maps survive whatever the metrics do
            write_npz(run_dir / "anomaly_maps.npz", maps=scored["maps"].astype(np.float16),
                      paths=np.array([str(s.image) for s in samples]), classes=np.array([s.class_name for s in samples]),
                      labels=scored["labels"].astype(np.int64), image_scores=scores)
        empty = int(((scored["labels"] == 1) & ~scored["masks"].any(axis=(1, 2))).sum())
        if empty:
            log.warning("%d anomalous test images (in a defect folder) have no anomalous pixel at the evaluation size "
                        "%s (an empty mask, or a defect smaller than a pixel after resizing): they count as anomalous "
                        "for the image metrics and add no defect pixel", empty, scored["masks"].shape[1:])
        report = self.metrics(scored, names)
        report.update({
            "evaluation/protocols": ",".join(self.protocols),
            "evaluation/image_score_pool": self.image_score_pool,
            "evaluation/size": float(scored["maps"].shape[-1]),
            "data/classes": ",".join(names),
            "data/n_train": float(len(datamodule.train_samples)),
            "data/n_test": float(len(samples)),
            "data/anomalous_without_pixels": float(empty),
            **{f"data/counts/{name}/{key}": value for name, row in datamodule.counts.items()
               for key, value in row.items() if isinstance(value, (int, float, bool))},
            **model.describe(),
        })
        write_per_class_csv(report, names, self.protocols, run_dir / "per_class.csv")
        figures = {}
        if int(self.heatmaps["per_class"]) > 0:
            figures["test/heatmaps"] = self.write_heatmaps(scored, loaders["test"].dataset, names, samples,
                                                           run_dir / "heatmaps")
        return Outcome(report, figures)

    def write_heatmaps(self, scored: dict[str, np.ndarray], dataset: Any, names: list[str], samples: list,
                       folder: Path) -> Path:
        """``heatmaps/<class>/<defect>_<name>.png`` panels for ``per_class`` images per class; returns the montage of
        every class's first panel (``heatmaps/overview.png``, logged to the loggers)."""
        first = []
        for k, name in enumerate(names):
            rows = np.flatnonzero(scored["class_ids"] == k)
            if not len(rows):
                continue
            maps = scored["maps"][rows]
            class_low, class_high = float(maps.min()), float(maps.max())
            kinds = [samples[int(scored["index"][i])].defect for i in rows]
            for pos in choose(kinds, int(self.heatmaps["per_class"])):
                i = rows[pos]
                amap = scored["maps"][i]
                low, high = ((float(amap.min()), float(amap.max())) if self.heatmaps["normalise"] == "image"
                             else (class_low, class_high))
                image = display_image(dataset[int(scored["index"][i])]["image"], amap.shape)
                tile = panel(image, amap, scored["masks"][i], low, high, float(self.heatmaps["alpha"]))
                sample = samples[int(scored["index"][i])]
                save_png(tile, folder / name / f"{sample.defect}_{Path(sample.image).stem}.png")
                if len(first) == k:
                    first.append(tile)
        return save_png(montage(first, width=2), folder / "overview.png")

    def print_summary(self, report: dict[str, Any], run_dir: Path) -> None:
        print_image_summary(report, self.protocols, run_dir)


def check_images_scored(scored: dict[str, np.ndarray], n_images: int) -> None:
    """RuntimeError unless the gathered image indices are exactly ``0 .. n_images - 1`` (none lost, none twice)."""
    index = scored["index"]
    if len(index) != n_images or not np.array_equal(index, np.arange(n_images)):
        missing = np.setdiff1d(np.arange(n_images), index)
        raise RuntimeError(f"scoring returned {len(index)} images for {n_images} test images; missing indices "
                           f"{missing[:5].tolist()}")


def display_image(image: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """The normalised (3, H, W) model input back to uint8 (size[0], size[1], 3) for display (bilinear resize)."""
    if tuple(image.shape[-2:]) != tuple(size):
        image = torch.nn.functional.interpolate(image[None].float(), size=tuple(size), mode="bilinear",
                                                align_corners=False)[0]
    rgb = image.permute(1, 2, 0).cpu().numpy() * IMAGENET_STD + IMAGENET_MEAN
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def per_class_rows(report: dict[str, Any], names: list[str], protocol: str) -> list[tuple[str, list[Any]]]:
    """``(row name, values of HEADLINE)`` for every class, the mean and the random reference of one protocol."""
    key = f"test/{protocol}"
    rows = [(name, [report.get(f"{key}/{name}/{m}") for m in HEADLINE]) for name in names]
    rows.append(("mean", [report.get(f"{key}/mean/{m}") for m in HEADLINE]))
    rows.append(("random", [report.get(f"{key}/random/mean/{m}") for m in HEADLINE]))
    return rows


def write_per_class_csv(report: dict[str, Any], names: list[str], protocols: list[str], path: Path) -> Path:
    """``per_class.csv``: one row per protocol and class (then ``mean`` and ``random``), one column per metric."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["protocol", "class", *HEADLINE])
    for protocol in protocols:
        for name, values in per_class_rows(report, names, protocol):
            writer.writerow([protocol, name, *["" if v is None or v != v else f"{v:.6f}" for v in values]])
    return atomic_write(path, lambda p: p.write_text(buffer.getvalue()))


def print_image_summary(report: dict[str, Any], protocols: list[str], run_dir: Path) -> None:
    """One table per protocol: a row per class, the mean and the random reference, a column per metric."""
    from rich.console import Console
    from rich.table import Table

    names = [n for n in str(report.get("data/classes", "")).split(",") if n]
    console = Console()
    for protocol in protocols:
        table = Table(title=f"test metrics, {protocol} protocol (random: scores that carry no information)")
        table.add_column("class", no_wrap=True)
        for metric in HEADLINE:
            table.add_column(metric.replace("_", " "), justify="right")
        for name, values in per_class_rows(report, names, protocol):
            cells = ["n/a" if v is None or v != v else f"{100 * v:.1f}" for v in values]
            table.add_row(name, *cells, style="bold" if name == "mean" else "dim" if name == "random" else None)
        console.print(table)
    encoder = "pretrained " + str(report.get("encoder/weights")) if report.get("encoder/pretrained") else \
        "RANDOM (no weights: the numbers say nothing about the benchmark)"
    scored = report.get("ckpt_path") or "the weights in memory"
    console.print(f"values in %. run folder: {run_dir}\nscored checkpoint: {scored}\nteacher: {encoder}\n"
                  f"all metrics: {run_dir}/metrics.json, per class: {run_dir}/per_class.csv, "
                  f"overlays: {run_dir}/heatmaps/")


class PeriodicImageEvaluation(Callback):
    """Every ``every_n_epochs`` epochs and after the last: score the test images with the weights in memory on the
    main process and append the metrics to ``<run>/metrics_history.json`` (a list of ``{"epoch": e, <metric>:
    value}``) and to the loggers under ``history/...``. The run's result is the scoring of ``last.ckpt`` after
    training (the same weights as the history's last entry), never the best entry of the history."""

    def __init__(self, evaluation: ImageEvaluation, run_dir: Path):
        self.evaluation, self.history_path = evaluation, Path(run_dir) / "metrics_history.json"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: ImageAnomalyDetector) -> None:
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if (epoch % self.evaluation.every_n_epochs and not last) or trainer.sanity_checking:
            return
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        datamodule: ImageDataModule = trainer.datamodule
        datamodule.setup("test")
        scored = score_images(pl_module, datamodule.scoring_dataloaders()["test"])
        metrics = self.evaluation.metrics(scored, list(datamodule.class_names))
        means = {k: v for k, v in metrics.items() if "/mean/" in k and "/random/" not in k and "n_classes" not in k}
        history = json.loads(self.history_path.read_text()) if self.history_path.is_file() else []
        history = [h for h in history if h.get("epoch") != epoch] + [{"epoch": epoch, **metrics}]
        write_json(self.history_path, history)
        for logger in trainer.loggers:
            logger.log_metrics({f"history/{k[len('test/'):]}": v for k, v in means.items()
                                if isinstance(v, float)}, step=trainer.global_step)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4f}" for k, v in means.items()
                                                  if k.endswith(("image_auroc", "pixel_auroc", "mad"))))


@torch.no_grad()
def score_images(model: ImageAnomalyDetector, loader: Any) -> dict[str, np.ndarray]:
    """Score every batch of ``loader`` in this process (no Trainer): the arrays of
    :attr:`ImageAnomalyDetector.scored` for one split."""
    was_training = model.training
    model.eval()
    parts = [model.score_batch({key: value.to(model.device) for key, value in batch.items()}) for batch in loader]
    model.train(was_training)
    return by_image_index({key: torch.cat([p[key] for p in parts]) for key in parts[0]})
