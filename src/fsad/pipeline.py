"""``train(cfg)`` and ``evaluate(cfg)``: the only place that wires data, method, trainer and evaluation."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

import fsad
from fsad.data.datamodule import TimeSeriesDataModule
from fsad.data.windows import assemble_scores
from fsad.evaluation.period import find_period
from fsad.evaluation.plots import plot_scores
from fsad.evaluation.report import ScoreSet, build_report, score_form_metrics
from fsad.methods.base import AnomalyDetector
from fsad.utils.callbacks import FitClock, RunProgressBar
from fsad.utils.checkpoints import VerifiedCheckpointIO, load_weights, read_checkpoint
from fsad.utils.config_checks import check_options
from fsad.utils.console import print_config_tree, print_summary
from fsad.utils.io import atomic_write, write_json, write_npz
from fsad.utils.loggers import log_report
from fsad.utils.run_config import checkpoint_file
from fsad.utils.runs import RunStart, hold_run, keep_previous_config, log_also_to, plan_start, require_writable

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured method on the configured data, then score and evaluate it (``train.py``).

    ``ckpt_path`` decides the run folder and the start (:func:`fsad.utils.runs.plan_start`): an unfinished run of
    the same experiment is resumed in its own folder; a finished run's checkpoint starts a new run from its weights
    (``init_from`` in ``config.yaml`` and ``metrics.json``); every check happens before anything is written.
    """
    check_options(cfg)
    main_process = rank_zero_only.rank == 0
    start = plan_start(cfg, Path(cfg.paths.output_dir), main_process=main_process)
    moved = start.run_dir != Path(cfg.paths.output_dir)  # a resumed run continues in its own folder
    with open_dict(cfg):
        cfg.paths.output_dir = str(start.run_dir)
        if start.init_from:
            cfg.init_from = start.init_from
    own_log = start.run_dir / f"{cfg.get('task_name', 'train')}.log"
    with hold_run(start.run_dir if main_process else None), \
            log_also_to(own_log if moved and main_process else None):
        return _fit_and_report(cfg, start)


def _fit_and_report(cfg: DictConfig, start: RunStart) -> dict[str, Any]:
    run_dir = start.run_dir
    if start.resume_from and (run_dir / "config.yaml").is_file() and rank_zero_only.rank == 0:
        keep_previous_config(run_dir)  # config.yaml then describes the settings that produce metrics.json
    _prepare(cfg, run_dir)
    log.info("run folder %s: %s", run_dir, f"resuming {start.resume_from}" if start.resume_from else
             f"new run from the weights of {start.init_from}" if start.init_from else "new run")
    clock = FitClock()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None] + [clock]
    datamodule, model, trainer, loggers = _build(cfg, callbacks)
    if start.init_from:
        load_weights(model, start.init_from)

    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=start.resume_from)
    fit_seconds = time.perf_counter() - started
    log.info("fit: %d epochs (epochs %d to %d, counted from 0) in %.1f s", clock.epochs, clock.first_epoch,
             trainer.current_epoch - 1, fit_seconds)

    score_ckpt = _scoring_checkpoint(trainer, cfg.get("score_ckpt", "best"))
    extra = {
        "time/fit_seconds": fit_seconds,
        "time/epochs": float(trainer.current_epoch),
        "time/epochs_this_fit": float(clock.epochs),
        "time/seconds_per_epoch": clock.seconds_per_epoch,
        "resumed_from": start.resume_from or "",
        "init_from": start.init_from or "",
    }
    return score_and_report(cfg, trainer, model, datamodule, score_ckpt, run_dir, loggers, extra)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Re-score a trained checkpoint (``eval.py ckpt_path=...``) and write the same outputs as training into the
    evaluation's own run folder. ``ckpt_path`` may be a run folder (its scored checkpoint is used)."""
    check_options(cfg)
    ckpt = checkpoint_file(cfg.ckpt_path)
    read_checkpoint(ckpt)  # a clear error for a missing file or one that is not a checkpoint
    run_dir = Path(cfg.paths.output_dir)
    _prepare(cfg, run_dir)
    log.info("evaluating %s into %s", ckpt, run_dir)
    datamodule, model, trainer, loggers = _build(cfg, callbacks=[RunProgressBar()])
    return score_and_report(cfg, trainer, model, datamodule, str(ckpt), run_dir, loggers, {})


def score_and_report(cfg: DictConfig, trainer: L.Trainer, model: AnomalyDetector, datamodule: TimeSeriesDataModule,
                     ckpt_path: str | None, run_dir: Path, loggers: list, extra: dict[str, Any]) -> dict[str, Any]:
    """Score every split with ``ckpt_path``'s weights, evaluate, and (on rank 0) write and log the outputs."""
    ev = cfg.evaluation
    datamodule.setup("test")
    loaders = datamodule.scoring_dataloaders(train_stride=ev.get("train_score_stride"))
    model.scoring_splits = list(loaders)
    started = time.perf_counter()
    log.info("scoring %s with %s", ", ".join(loaders), ckpt_path or "the weights in memory")
    trainer.test(model, dataloaders=list(loaders.values()), ckpt_path=ckpt_path, verbose=False)
    score_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return {}
    if trainer.fast_dev_run:  # one batch per split was scored: nothing to evaluate
        log.warning("fast_dev_run: one batch per split was scored; evaluation skipped (no metrics.json, "
                    "scores.npz or scores.png in %s)", run_dir)
        return {}

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
    started = time.perf_counter()
    window, window_rule = vus_window(ev.get("vus_window", "auto"), datamodule)
    report: dict[str, Any] = build_report(
        scores, strategies=list(ev.strategies), anomaly_ratio=float(ev.anomaly_ratio), vus_window=window,
        spot_q=float(ev.spot.q), spot_level=float(ev.spot.level), spot_stream=bool(ev.spot.stream),
        spot_init=str(ev.spot.init),
        entities=_test_entities(datamodule) if ev.get("per_entity") else None,
    )
    report.update(score_form_metrics(forms, scores.test_labels, window, taken=report))
    report.update(extra)
    report.update({
        "evaluation/vus_window": float(window),
        "evaluation/vus_window_rule": window_rule,
        "time/score_seconds": score_seconds,
        "time/metrics_seconds": time.perf_counter() - started,
        "seed": float(cfg.seed),
        "ckpt_path": str(ckpt_path or ""),
        "versions/fsad": fsad.__version__,
        "versions/torch": torch.__version__,
        "versions/lightning": L.__version__,
        "data/n_train": float(len(scores.train)),
        "data/n_test": float(len(scores.test)),
        **{f"data/windows_scored/{split}": float(n) for split, n in windows.items()},
    })
    write_json(run_dir / "metrics.json", report)
    log.info("metrics written to %s", run_dir / "metrics.json")
    thresholds = {k.split("/", 1)[1]: v for k, v in report.items()
                  if k.startswith("threshold/") and isinstance(v, float) and np.isfinite(v)}
    dataset = Path(datamodule.record.source).name or type(datamodule).__name__
    figure = plot_scores(scores.test, scores.test_labels, thresholds, run_dir / "scores.png",
                         title=f"{type(model).__name__} on {dataset}: test scores")
    log_report(loggers, report, OmegaConf.to_container(cfg, resolve=True), figure)
    print_summary(report, str(run_dir))
    return report


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


def _scoring_checkpoint(trainer: L.Trainer, which: str) -> str | None:
    """This run's best checkpoint by the monitored metric (``which="best"``, if any), else its
    ``checkpoints/last.ckpt``, else None (the weights in memory). Only files in this run's checkpoint folder count:
    a checkpoint restored from elsewhere carries the other run's best path."""
    checkpoints = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
    best = next((c.best_model_path for c in checkpoints if c.monitor and c.best_model_path
                 and Path(c.best_model_path).parent == Path(c.dirpath) and Path(c.best_model_path).is_file()), "")
    if which == "best" and best:
        return best
    last = next((Path(c.dirpath) / "last.ckpt" for c in checkpoints), None)
    return str(last) if last is not None and last.is_file() else None


def _test_entities(datamodule: TimeSeriesDataModule) -> list[tuple[str, int, int]]:
    """``(name, start, end)`` test ranges of the record's entities (e.g. SMD machines); error when it has none."""
    entities = datamodule.record.meta.get("entities")
    if not entities:
        raise ValueError(f"evaluation.per_entity=true but {datamodule.record.source} has no entities "
                         "(only multi-entity benchmarks such as SMD's raw layout have them)")
    return [(e["name"], *e["test"]) for e in entities]


def _build(cfg: DictConfig, callbacks: list) -> tuple[TimeSeriesDataModule, AnomalyDetector, L.Trainer, list]:
    """Instantiate the configured DataModule, method, loggers and Trainer (with ``callbacks``)."""
    datamodule: TimeSeriesDataModule = instantiate(cfg.data, _convert_="all")
    model: AnomalyDetector = instantiate(cfg.model, _convert_="all")
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=[VerifiedCheckpointIO()])
    return datamodule, model, trainer, loggers


def _prepare(cfg: DictConfig, run_dir: Path) -> None:
    """Threads, seed; on rank 0: check that the run folder and the checkpoint folders are writable (before any
    training), write ``config.yaml`` and print the config."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if rank_zero_only.rank == 0:
        folders = [Path(str(c.dirpath)) for c in (cfg.get("callbacks") or {}).values()
                   if c is not None and c.get("dirpath")]
        require_writable(run_dir, *folders)
        atomic_write(run_dir / "config.yaml", lambda p: OmegaConf.save(cfg, p, resolve=True))
        if cfg.get("print_config", True):
            print_config_tree(cfg)
