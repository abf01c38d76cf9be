"""Time-series evaluation (``conf/evaluation/default|paper|prediction.yaml``): per-step scores from the window
scores a method gathered, threshold-free and thresholded metrics, ``scores.npz`` and ``scores.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fsad.data.datamodule import TimeSeriesDataModule
from fsad.data.windows import assemble_scores
from fsad.evaluation.component import Evaluation, Outcome
from fsad.evaluation.period import find_period
from fsad.evaluation.plots import plot_scores
from fsad.evaluation.report import ScoreSet, build_report, score_form_metrics
from fsad.methods.base import AnomalyDetector
from fsad.utils.console import print_summary
from fsad.utils.io import write_npz


class SeriesEvaluation(Evaluation):
    """Scores every split (train, validation, test), reassembles per-step scores and reports them.

    Args:
        strategies: threshold strategies (:data:`fsad.evaluation.thresholds.THRESHOLD_STRATEGIES`).
        anomaly_ratio: percent, for ``paper`` and ``train_percentile``.
        vus_window: VUS buffer width in steps, or ``auto`` (TSB-AD's period estimate of the test series).
        train_score_stride: stride of the scored training windows (None: non-overlapping).
        spot: ``{q, level, stream, init}`` of the SPOT strategy.
        per_entity: also metrics per entity (SMD machine) and their mean.
    """

    task = "time-series"
    datamodule_type = TimeSeriesDataModule
    method_type = AnomalyDetector
    hint = ("Time-series runs use data=<smd|msl|...|synthetic> with a time-series model and evaluation=default|"
            "paper|prediction; image runs use data=<mvtec|visa|mpdd|synthetic_images>, an image model and "
            "evaluation=image (the image experiments, e.g. experiment=rd4ad/synthetic_images, set all three).")

    def __init__(self, strategies: list[str], anomaly_ratio: float, vus_window: int | str = "auto",
                 train_score_stride: int | None = None, spot: dict | None = None, per_entity: bool = False):
        spot = {"q": 1e-3, "level": 0.98, "stream": False, "init": "val", **(spot or {})}
        self.strategies, self.anomaly_ratio = list(strategies), float(anomaly_ratio)
        self.vus_window, self.train_score_stride, self.per_entity = vus_window, train_score_stride, per_entity
        self.spot = spot

    def scoring_loaders(self, datamodule: TimeSeriesDataModule) -> dict[str, Any]:
        return datamodule.scoring_dataloaders(train_stride=self.train_score_stride)

    def report(self, model: AnomalyDetector, datamodule: TimeSeriesDataModule, loaders: dict[str, Any],
               run_dir: Path) -> Outcome:
        windows = check_windows_scored(model, loaders)
        scores = collect_scores(model, datamodule)
        forms = collect_score_forms(model, datamodule)
        arrays = {"train_scores": scores.train, "train_window_scores": scores.train_windows,
                  "test_scores": scores.test, "test_labels": scores.test_labels}
        if scores.val is not None:
            arrays["val_scores"] = scores.val
        for form, per_split in forms.items():
            arrays.update({f"{split}_scores_{form.replace('/', '_')}": values for split, values in per_split.items()})
        write_npz(run_dir / "scores.npz", **arrays)  # first: the scores survive whatever the metrics do
        window, window_rule = vus_window(self.vus_window, datamodule)
        report: dict[str, Any] = build_report(
            scores, strategies=self.strategies, anomaly_ratio=self.anomaly_ratio, vus_window=window,
            spot_q=float(self.spot["q"]), spot_level=float(self.spot["level"]),
            spot_stream=bool(self.spot["stream"]), spot_init=str(self.spot["init"]),
            entities=_test_entities(datamodule) if self.per_entity else None,
        )
        report.update(score_form_metrics(forms, scores.test_labels, window, taken=report))
        report.update({
            "evaluation/vus_window": float(window),
            "evaluation/vus_window_rule": window_rule,
            "data/n_train": float(len(scores.train)),
            "data/n_test": float(len(scores.test)),
            **{f"data/windows_scored/{split}": float(n) for split, n in windows.items()},
        })
        thresholds = {k.split("/", 1)[1]: v for k, v in report.items()
                      if k.startswith("threshold/") and isinstance(v, float) and np.isfinite(v)}
        dataset = Path(datamodule.record.source).name or type(datamodule).__name__
        figure = plot_scores(scores.test, scores.test_labels, thresholds, run_dir / "scores.png",
                             title=f"{type(model).__name__} on {dataset}: test scores")
        return Outcome(report, {"test/scores": figure} if figure is not None else {})

    def print_summary(self, report: dict[str, Any], run_dir: Path) -> None:
        print_summary(report, str(run_dir))


def vus_window(setting: int | str, datamodule: TimeSeriesDataModule) -> tuple[int, str]:
    """The VUS buffer width and how it was chosen: ``auto`` is TSB-AD's period estimate of the test series
    (:func:`fsad.evaluation.period.find_period`, first channel), a number is used as it is."""
    if setting != "auto":
        return int(setting), "fixed (evaluation.vus_window)"
    period = find_period(datamodule.record.test)
    if period.found:
        return period.window, "auto: dominant period of the first test channel (TSB-AD's find_length_rank)"
    return period.window, "auto: no period found in the first test channel, TSB-AD's default 125"


def check_windows_scored(model: AnomalyDetector, loaders: dict[str, Any]) -> dict[str, int]:
    """The number of windows scored per split; RuntimeError when the gathered window starts (from every process,
    de-duplicated) are not exactly the scoring loader's windows, i.e. a window was lost or one never asked for."""
    counts = {}
    for split, loader in loaders.items():
        expected = np.unique(loader.dataset.starts.numpy())
        got = model.scored[split][0]
        if len(got) != len(expected) or not np.array_equal(np.sort(got), expected):
            missing = np.setdiff1d(expected, got)
            raise RuntimeError(f"scoring the {split} split returned {len(got)} windows for {len(expected)} asked; "
                               f"missing starts {missing[:5].tolist()}")
        counts[split] = len(expected)
    return counts


def collect_scores(model: AnomalyDetector, datamodule: TimeSeriesDataModule) -> ScoreSet:
    """Reassemble the window scores gathered by the model into per-step arrays aligned with each split."""
    per_step = {}
    for name, (starts, window_scores) in model.scored.items():
        per_step[name] = assemble_scores(starts, window_scores, datamodule.scored_length(name))
    train_windows = model.scored["train"][1]
    return ScoreSet(
        train=per_step["train"], train_windows=train_windows.reshape(-1), test=per_step["test"],
        test_labels=datamodule.scored_labels().astype(np.int64), val=per_step.get("val"),
    )


def collect_score_forms(model: AnomalyDetector, datamodule: TimeSeriesDataModule) -> dict[str, dict[str, np.ndarray]]:
    """``{form: {split: (T_split,) per-step scores}}`` of the method's score forms, reassembled like the main score
    (same windows; NaN where a covering window's value is not finite)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, per_form in getattr(model, "scored_forms", {}).items():
        starts, length = model.scored[split][0], datamodule.scored_length(split)
        for form, window_scores in per_form.items():
            finite = np.isfinite(window_scores)
            values = assemble_scores(starts, np.where(finite, window_scores, 0.0), length)
            values[assemble_scores(starts, (~finite).astype(np.float64), length) > 0] = np.nan
            out.setdefault(form, {})[split] = values
    return out


def _test_entities(datamodule: TimeSeriesDataModule) -> list[tuple[str, int, int]]:
    """``(name, start, end)`` test ranges of the record's entities (e.g. SMD machines); error when it has none."""
    entities = datamodule.record.meta.get("entities")
    if not entities:
        raise ValueError(f"evaluation.per_entity=true but {datamodule.record.source} has no entities "
                         "(only multi-entity benchmarks such as SMD's raw layout have them)")
    return [(e["name"], *e["test"]) for e in entities]
