"""``train(cfg)`` and ``evaluate(cfg)``: the only place that wires data, method, trainer and evaluation."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

import fsad
from fsad.evaluation.component import Evaluation, TaskMismatchError
from fsad.utils.allocator import use_allocator
from fsad.utils.callbacks import FitClock, RunProgressBar
from fsad.utils.checkpoints import VerifiedCheckpointIO, load_weights, read_checkpoint
from fsad.utils.config_checks import check_options
from fsad.utils.console import print_config_tree
from fsad.utils.io import atomic_write, write_json
from fsad.utils.loggers import log_report
from fsad.utils.run_config import checkpoint_file, teacher_from_checkpoint
from fsad.utils.runs import (FAST_DEV_RUN, RESUMED_IN, RunStart, config_differences, hold_run, keep_previous_config,
                             log_also_to, plan_start, require_writable, restore_launch_record, run_of_checkpoint)

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured method on the configured data, then score and evaluate it (``train.py``).

    ``ckpt_path`` decides the run folder and the start (:func:`fsad.utils.runs.plan_start`): an unfinished run of
    the same experiment is resumed in its own folder; a finished run's checkpoint starts a new run from its weights
    (``init_from`` in ``config.yaml`` and ``metrics.json``); every check happens before anything is written.
    """
    check_task(cfg)
    check_options(cfg)
    main_process = rank_zero_only.rank == 0
    start = plan_start(cfg, Path(cfg.paths.output_dir), main_process=main_process)
    if start.finished:  # a finished job of a sweep relaunched in its own folder
        restore_launch_record(start.run_dir)
        return json.loads((start.run_dir / "metrics.json").read_text())
    moved = start.run_dir != Path(cfg.paths.output_dir)  # a resumed run continues in its own folder
    if moved and main_process:  # what reads this folder (a sweep summary, report.py) follows it to the run
        write_json(Path(cfg.paths.output_dir) / RESUMED_IN, {"run": str(start.run_dir)})
    with open_dict(cfg):
        cfg.paths.output_dir = str(start.run_dir)
        if start.init_from:
            cfg.init_from = start.init_from
    if start.init_from or start.resume_from:
        teacher_from_checkpoint(cfg)
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
    built = _build(cfg, callbacks)
    trainer = built.trainer
    if start.init_from:
        load_weights(built.model, start.init_from)

    started = time.perf_counter()
    trainer.fit(built.model, datamodule=built.datamodule, ckpt_path=start.resume_from)
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
    return score_and_report(cfg, built, score_ckpt, run_dir, extra)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Re-score a trained checkpoint (``eval.py ckpt_path=...``) and write the same outputs as training into the
    evaluation's own run folder. ``ckpt_path`` may be a run folder (its scored checkpoint is used). A ``model.*``
    key changed on the command line that keeps the weights' shapes (e.g. a scan order, a score form) is scored, with
    a warning and ``eval/model_changed`` in ``metrics.json`` naming each key, trained and now."""
    check_task(cfg)
    check_options(cfg)
    ckpt = checkpoint_file(cfg.ckpt_path)
    read_checkpoint(ckpt)  # a clear error for a missing file or one that is not a checkpoint
    teacher_from_checkpoint(cfg)
    run_dir = Path(cfg.paths.output_dir)
    _prepare(cfg, run_dir)
    log.info("evaluating %s into %s", ckpt, run_dir)
    extra = {}
    trained = run_of_checkpoint(ckpt)
    changed = [d for d in config_differences(cfg, trained) if d.startswith("model.")] if trained else []
    if changed:  # same weight shapes, another network or score: say so in the log and in metrics.json
        log.warning("the model config differs from the one %s was trained with: %s", trained, "; ".join(changed))
        extra["eval/model_changed"] = "; ".join(changed)
    return score_and_report(cfg, _build(cfg, callbacks=[RunProgressBar()]), str(ckpt), run_dir, extra)


def score_and_report(cfg: DictConfig, built: Built, ckpt_path: str | None, run_dir: Path,
                     extra: dict[str, Any]) -> dict[str, Any]:
    """Score the evaluation's splits with ``ckpt_path``'s weights; on rank 0 let the evaluation component build the
    report, its arrays and figures, then write ``metrics.json``, log everything and print the summary."""
    datamodule, model, trainer, evaluation = built.datamodule, built.model, built.trainer, built.evaluation
    datamodule.setup("test")
    loaders = evaluation.scoring_loaders(datamodule)
    model.scoring_splits = list(loaders)
    started = time.perf_counter()
    log.info("scoring %s with %s", ", ".join(loaders), ckpt_path or "the weights in memory")
    trainer.test(model, dataloaders=list(loaders.values()), ckpt_path=ckpt_path, verbose=False)
    score_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return {}
    if trainer.fast_dev_run:  # one batch per split was scored: nothing to evaluate
        log.warning("fast_dev_run: one batch per split was scored; evaluation skipped (no metrics.json, "
                    "scores or figures in %s)", run_dir)
        write_json(run_dir / FAST_DEV_RUN, {"fast_dev_run": True, "evaluated": False})  # a sweep's smoke test passed
        return {}

    started = time.perf_counter()
    outcome = evaluation.report(model, datamodule, loaders, run_dir)
    report = {**outcome.report, **extra}
    report.update({
        "time/score_seconds": score_seconds,
        "time/metrics_seconds": time.perf_counter() - started,
        "seed": float(cfg.seed),
        "ckpt_path": str(ckpt_path or ""),
        "versions/fsad": fsad.__version__,
        "versions/torch": torch.__version__,
        "versions/lightning": L.__version__,
    })
    write_json(run_dir / "metrics.json", report)
    log.info("metrics written to %s", run_dir / "metrics.json")
    log_report(built.loggers, report, OmegaConf.to_container(cfg, resolve=True), outcome.figures)
    evaluation.print_summary(report, run_dir)
    return report


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


class Built(NamedTuple):
    """What one run is made of, instantiated from its config."""

    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    loggers: list
    evaluation: Evaluation


def _build(cfg: DictConfig, callbacks: list) -> Built:
    """Instantiate the configured DataModule, method, evaluation component, loggers and Trainer (with ``callbacks``
    and the evaluation's own)."""
    datamodule: L.LightningDataModule = instantiate(cfg.data, _convert_="all")
    model: L.LightningModule = instantiate(cfg.model, _convert_="all")
    evaluation: Evaluation = instantiate(cfg.evaluation, _convert_="all")
    callbacks = callbacks + evaluation.callbacks(Path(cfg.paths.output_dir))
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=[VerifiedCheckpointIO()])
    return Built(datamodule, model, trainer, loggers, evaluation)


def check_task(cfg: DictConfig) -> None:
    """:class:`~fsad.evaluation.component.TaskMismatchError` when the configured data, model and evaluation belong
    to different tasks (e.g. a time-series model on an image benchmark), from their ``_target_`` classes."""
    evaluation: type[Evaluation] = get_class(cfg.evaluation._target_)
    evaluation.check(get_class(cfg.data._target_), get_class(cfg.model._target_))
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    ablation, model = choices.get("ablation"), choices.get("model")
    method = ablation.split("/")[0] if ablation else None
    if method and model and not model.startswith(method):
        raise TaskMismatchError(f"ablation={ablation} is a row of {method}'s study, but this run's model is {model}: "
                                f"use model={method} (or its experiment= files)")


def _prepare(cfg: DictConfig, run_dir: Path) -> None:
    """Threads, the C allocator (:func:`~fsad.utils.allocator.use_allocator`), seed; on rank 0: check that the run
    folder and the checkpoint folders are writable (before any training), write ``config.yaml`` and print the
    config."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    use_allocator(str(cfg.get("allocator", "system")))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if rank_zero_only.rank == 0:
        folders = [Path(str(c.dirpath)) for c in (cfg.get("callbacks") or {}).values()
                   if c is not None and c.get("dirpath")]
        require_writable(run_dir, *folders)
        atomic_write(run_dir / "config.yaml", lambda p: OmegaConf.save(cfg, p, resolve=True))
        if cfg.get("print_config", True):
            print_config_tree(cfg)
