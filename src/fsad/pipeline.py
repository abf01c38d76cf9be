"""``train(cfg)`` and ``evaluate(cfg)``: the only place that wires data, method, trainer and evaluation."""

from __future__ import annotations

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
from fsad.evaluation.plots import plot_scores
from fsad.evaluation.report import ScoreSet, build_report
from fsad.methods.base import AnomalyDetector
from fsad.utils.console import print_config_tree
from fsad.utils.io import write_json, write_npz
from fsad.utils.loggers import log_report


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured method on the configured data, then score and evaluate it (``train.py``).

    When resuming from ``<run>/checkpoints/*.ckpt`` the outputs go to that ``<run>`` folder, so checkpoints
    (best and last), logs and results of the interrupted run are continued in one place.
    """
    run_dir = Path(cfg.paths.output_dir)
    resume_from = resolve_ckpt_path(cfg.get("ckpt_path"), run_dir)
    if resume_from and Path(resume_from).parent.name == "checkpoints":
        run_dir = Path(resume_from).parent.parent  # continue the interrupted run in its own folder
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
    _prepare(cfg, run_dir)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    datamodule, model, trainer, loggers = _build(cfg, callbacks)

    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    fit_seconds = time.perf_counter() - started

    score_ckpt = _scoring_checkpoint(trainer, cfg.get("score_ckpt", "best"))
    extra = {
        "time/fit_seconds": fit_seconds,
        "time/epochs": float(trainer.current_epoch),
        "time/seconds_per_epoch": fit_seconds / max(trainer.current_epoch - _start_epoch(resume_from), 1),
        "resumed_from": str(resume_from) if resume_from else "",
    }
    return score_and_report(cfg, trainer, model, datamodule, score_ckpt, run_dir, loggers, extra)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Re-score a trained checkpoint (``eval.py ckpt_path=...``) and write the same outputs as training."""
    ckpt = Path(str(cfg.ckpt_path))
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt}: no such checkpoint file")
    run_dir = Path(cfg.paths.output_dir)
    _prepare(cfg, run_dir)
    datamodule, model, trainer, loggers = _build(cfg, callbacks=[])
    return score_and_report(cfg, trainer, model, datamodule, str(ckpt), run_dir, loggers, {})


def score_and_report(cfg: DictConfig, trainer: L.Trainer, model: AnomalyDetector, datamodule: TimeSeriesDataModule,
                     ckpt_path: str | None, run_dir: Path, loggers: list, extra: dict[str, Any]) -> dict[str, Any]:
    """Score every split with ``ckpt_path``'s weights, evaluate, and (on rank 0) write and log the outputs."""
    ev = cfg.evaluation
    datamodule.setup("test")
    loaders = datamodule.scoring_dataloaders(train_stride=ev.get("train_score_stride"))
    model.scoring_splits = list(loaders)
    started = time.perf_counter()
    trainer.test(model, dataloaders=list(loaders.values()), ckpt_path=ckpt_path, verbose=False)
    score_seconds = time.perf_counter() - started
    if not trainer.is_global_zero or trainer.fast_dev_run:
        return {}  # fast_dev_run scores one batch per split only: nothing to evaluate

    scores = collect_scores(model, datamodule)
    started = time.perf_counter()
    report: dict[str, Any] = build_report(
        scores, strategies=list(ev.strategies), anomaly_ratio=float(ev.anomaly_ratio), vus_window=int(ev.vus_window),
        spot_q=float(ev.spot.q), spot_level=float(ev.spot.level), spot_stream=bool(ev.spot.stream),
        entities=_test_entities(datamodule) if ev.get("per_entity") else None,
    )
    report.update(extra)
    report.update({
        "time/score_seconds": score_seconds,
        "time/metrics_seconds": time.perf_counter() - started,
        "seed": float(cfg.seed),
        "ckpt_path": str(ckpt_path or ""),
        "versions/fsad": fsad.__version__,
        "versions/torch": torch.__version__,
        "versions/lightning": L.__version__,
        "data/n_train": float(len(scores.train)),
        "data/n_test": float(len(scores.test)),
    })
    write_json(run_dir / "metrics.json", report)
    arrays = {"train_scores": scores.train, "train_window_scores": scores.train_windows,
              "test_scores": scores.test, "test_labels": scores.test_labels}
    if scores.val is not None:
        arrays["val_scores"] = scores.val
    write_npz(run_dir / "scores.npz", **arrays)
    thresholds = {k.split("/", 1)[1]: v for k, v in report.items() if k.startswith("threshold/")}
    figure = plot_scores(scores.test, scores.test_labels, thresholds, run_dir / "scores.png",
                         title=f"{cfg.get('task_name', 'run')}: test scores")
    log_report(loggers, report, OmegaConf.to_container(cfg, resolve=True), figure)
    _print_summary(report)
    return report


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


def _scoring_checkpoint(trainer: L.Trainer, which: str) -> str | None:
    """The best checkpoint by the monitored metric (``which="best"``, if any), else ``checkpoints/last.ckpt``."""
    checkpoints = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]
    best = next((c.best_model_path for c in checkpoints if c.monitor and c.best_model_path), "")
    if which == "best" and best:
        return best
    last = next((Path(c.dirpath) / "last.ckpt" for c in checkpoints if c.dirpath), None)
    return str(last) if last is not None and last.is_file() else None


def _test_entities(datamodule: TimeSeriesDataModule) -> list[tuple[str, int, int]]:
    """``(name, start, end)`` test ranges of the record's entities (e.g. SMD machines); error when it has none."""
    entities = datamodule.record.meta.get("entities")
    if not entities:
        raise ValueError(f"evaluation.per_entity=true but {datamodule.record.source} has no entities "
                         "(only multi-entity benchmarks such as SMD's raw layout have them)")
    return [(e["name"], *e["test"]) for e in entities]


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    """Turn the ``ckpt_path`` option into a file to resume from.

    ``null`` starts fresh; a path must exist; ``last`` takes ``<run_dir>/checkpoints/last.ckpt`` if present, else
    the newest ``checkpoints/last.ckpt`` of an unfinished run (no ``metrics.json``) beside this run's folder.
    """
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path != "last":
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
        return str(ckpt_path)
    own = run_dir / "checkpoints" / "last.ckpt"
    if own.is_file():
        return str(own)
    candidates = [p for p in run_dir.parent.glob("*/checkpoints/last.ckpt")
                  if p.parent.parent != run_dir and not (p.parent.parent / "metrics.json").exists()]
    if not candidates:
        raise FileNotFoundError(f"ckpt_path=last: no unfinished run with checkpoints/last.ckpt under {run_dir.parent}")
    return str(max(candidates, key=lambda p: p.stat().st_mtime))


def _build(cfg: DictConfig, callbacks: list) -> tuple[TimeSeriesDataModule, AnomalyDetector, L.Trainer, list]:
    """Instantiate the configured DataModule, method, loggers and Trainer (with ``callbacks``)."""
    datamodule: TimeSeriesDataModule = instantiate(cfg.data, _convert_="all")
    model: AnomalyDetector = instantiate(cfg.model, _convert_="all")
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer, loggers


def _start_epoch(ckpt_path: str | None) -> int:
    if not ckpt_path:
        return 0
    return int(torch.load(ckpt_path, map_location="cpu", weights_only=False).get("epoch", -1)) + 1


def _prepare(cfg: DictConfig, run_dir: Path) -> None:
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        if cfg.get("print_config", True):
            print_config_tree(cfg)


def _print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="test metrics", show_lines=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(k for k in report if k.startswith("test/")):
        table.add_row(key, f"{report[key]:.4f}")
    Console().print(table)
