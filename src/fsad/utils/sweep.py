"""Multirun support: a failed job is recorded and the sweep goes on; a summary is written at the end."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from fsad.utils.io import write_json
from fsad.utils.loggers import finish_wandb_run
from fsad.utils.runs import RunFolderError

log = logging.getLogger(__name__)


def run_job(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> float | None:
    """Run ``task(cfg)``; return the configured ``optimized_metric`` (for sweepers).

    An exception is logged (its traceback to the run's ``<task_name>.log``) and written to
    ``<run dir>/failed.json`` (error, traceback, overrides), except when the run folder itself was refused
    (:class:`~fsad.utils.runs.RunFolderError`: the folder may hold another run and is left as it is). In a
    multirun the sweep then continues (the summary lists the job and the sweep exits non-zero at the end); in a
    single run the exception propagates (non-zero exit). Either way the job's W&B run is finished (marked failed
    on an exception), so the next job of a sweep never logs into it. An interrupted run (Ctrl-C, SIGTERM from a
    scheduler) is logged with how to resume it and ends the process (a sweep too) with status 130 or 143, never 0.
    """
    try:
        report = task(cfg)
    except (KeyboardInterrupt, SystemExit) as err:
        signal_name = _interruption(err)
        if signal_name is None:  # a deliberate exit with its own status
            raise
        finish_wandb_run(exit_code=1)
        log.error("interrupted by %s: %s keeps its last checkpoint; resume with ckpt_path=last (a sweep: the same "
                  "command with hydra.sweep.dir=<its folder> ckpt_path=last)", signal_name, _run_dir(cfg))
        raise SystemExit(INTERRUPTED_STATUS[signal_name]) from err
    except Exception as err:
        finish_wandb_run(exit_code=1)
        job_dir = _run_dir(cfg)
        log.error("run failed: %s: %s", type(err).__name__, err)
        _traceback_to_log_files()  # the console gets Hydra's own report of the error
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        if isinstance(err, RunFolderError):  # the folder was refused: it may hold another run, leave it as it is
            if not _is_multirun():
                raise
            return None
        try:
            write_json(job_dir / "failed.json", {"error": f"{type(err).__name__}: {err}",
                                                 "traceback": traceback.format_exc(), "overrides": overrides})
        except OSError as write_err:
            log.error("could not write %s: %s", job_dir / "failed.json", write_err)
        if not _is_multirun():
            raise
        log.error("job %s failed: %s: %s (details in %s)", HydraConfig.get().job.num, type(err).__name__, err,
                  job_dir / "failed.json")
        return None
    finish_wandb_run(exit_code=0)
    value = report.get(cfg.get("optimized_metric") or "") if report else None
    return float(value) if isinstance(value, (int, float)) else None


def _traceback_to_log_files() -> None:
    """Write the exception being handled, with its traceback, to the file handlers of the root logger only."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "traceback of the failure", None, sys.exc_info())
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


INTERRUPTED_STATUS = {"SIGINT": 130, "SIGTERM": 143}  # the shells' 128 + signal number


def _interruption(err: BaseException) -> str | None:
    """The signal behind an exception that ends a run early: Ctrl-C (a KeyboardInterrupt, or the ``sys.exit(1)``
    Lightning raises while handling one) or SIGTERM (Lightning's ``SIGTERMException``, a SystemExit with no status,
    which would otherwise end the process with status 0); None for any other exit."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(err, SIGTERMException):
        return "SIGTERM"
    if isinstance(err, KeyboardInterrupt) or isinstance(err.__context__, KeyboardInterrupt):
        return "SIGINT"
    return None


def _run_dir(cfg: DictConfig) -> Path:
    """The folder the run writes into (a resumed run's own folder), else Hydra's output folder."""
    try:
        return Path(str(cfg.paths.output_dir))
    except Exception:  # the config itself may be what failed to resolve
        return Path(HydraConfig.get().runtime.output_dir)


def _is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class SweepSummary(Callback):
    """At the end of a multirun, write ``<sweep dir>/sweep_summary.json``: each job's overrides, status and
    metrics (or error), and the mean of every metric over the finished jobs (e.g. one job per SMD machine gives the
    OmniAnomaly per-machine average); print one line per job. Exits with status 1 when any job did not finish (a
    ``debug=fdr`` job that ran its batch finishes with status ``fast_dev_run`` and no metrics)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before any job: a study sweep's ``study:`` and ``paper:`` blocks must be well formed and every paper cell
        must select a point of the file's own grid (:class:`~fsad.studies.spec.StudyError` names the file, the field
        and what was expected), so a mistake is not found after hours of training."""
        from fsad.studies.spec import StudyError, load_study, sweep_file

        try:
            study = load_study(config)
            if study is not None:
                load_study(config, [str(o) for o in config.hydra.overrides.task])
                outside = study.unmatched_cells()
                if outside:
                    raise StudyError(f"{sweep_file(config, study.name)}: paper: the cells "
                                     + "; ".join(" ".join(f"{k}={v}" for k, v in c.where.items()) for c in outside)
                                     + " select no point of the file's grid (hydra.sweeper.params)")
        except StudyError as err:  # Hydra turns a callback's exception into a warning: stop the sweep here
            print(f"error: {err}; no job was started", file=sys.stderr)
            raise SystemExit(2) from err

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        from fsad.studies.folders import read_job
        from fsad.utils.runs import job_folders

        jobs = []
        for job in (read_job(job_dir, int(job_dir.name)) for job_dir in job_folders(sweep_dir)):
            entry: dict[str, Any] = {"job": job.number, "dir": str(job.folder), "overrides": job.overrides,
                                     "status": job.status}
            if job.status == "ok":
                entry["metrics"] = job.metrics
            elif job.status == "failed":
                entry["error"] = job.error
            jobs.append(entry)
        finished = sum(job["status"] == "ok" for job in jobs)
        write_json(sweep_dir / "sweep_summary.json", {"jobs": jobs, "mean": mean_metrics(jobs),
                                                      "mean_over_jobs": finished, "jobs_total": len(jobs)})
        write_sweep_report(sweep_dir, config)
        failed = [j for j in jobs if j["status"] not in ("ok", "fast_dev_run")]
        metric = config.get("optimized_metric") or "test/auc_pr"
        for job in jobs:
            value = job.get("metrics", {}).get(metric)
            detail = job.get("error") or (f"{metric}={value:.4f}" if isinstance(value, float) else f"{metric}={value}")
            if job["status"] == "fast_dev_run":
                detail = "one batch per split ran, no evaluation"
            log.info("job %d [%s] %s: %s", job["job"], job["status"], " ".join(job["overrides"]), detail)
        if failed:
            log.warning("%d of %d jobs did not finish; see %s", len(failed), len(jobs), sweep_dir / "sweep_summary.json")
            raise SystemExit(1)  # after every job ran and the summary is written: schedulers see the failure


def write_sweep_report(sweep_dir: Path, config: DictConfig) -> None:
    """For a sweep made from a ``conf/sweep/<method>/<study>`` file: write its report into the sweep folder
    (:func:`fsad.studies.report.write_study_report`) and, when the W&B logger is configured, log the report's
    table and figure to one summary run (``job_type=report``) in the sweep's W&B group. A failure here is logged
    and never fails the finished sweep."""
    from fsad.studies.folders import read_folder
    from fsad.studies.report import write_study_report
    from fsad.studies.tables import job_table
    from fsad.utils.loggers import log_sweep_report, sweep_group

    try:
        sweep = read_folder(sweep_dir)
        if sweep.study is None:
            return
        paths = write_study_report(sweep)
        log.info("study report: %s (python report.py %s)", paths["md"], sweep_dir)
        wandb_cfg = (config.get("logger") or {}).get("wandb")
        if wandb_cfg is None or not str(wandb_cfg.get("_target_", "")).endswith("make_wandb_logger"):
            return
        table = job_table(sweep)
        rows = [[None if isinstance(v, float) and v != v else v for v in row] for row in table.values.tolist()]
        settings = {key: wandb_cfg.get(key) for key in ("mode", "project", "entity", "tags")}
        group = sweep_group(config.hydra.runtime.choices.get("sweep"), sweep_dir)
        log_sweep_report(settings, group, sweep_dir, [str(c) for c in table.columns], rows,
                         {"study/figure": paths["png"]} if "png" in paths else {})
    except Exception as err:  # noqa: BLE001 - the jobs' results are already written; report the problem only
        log.error("could not write the study report of %s: %s: %s", sweep_dir, type(err).__name__, err)


def mean_metrics(jobs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each numeric metric over the jobs with status ``ok`` that report it (NaN values ignored)."""
    values: dict[str, list[float]] = {}
    for job in jobs:
        for key, value in job.get("metrics", {}).items() if job["status"] == "ok" else ():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                values.setdefault(key, []).append(float(value))
    return {key: sum(v) / len(v) for key, v in sorted(values.items())}


def parallel_jobs(threads: Any = None) -> int:
    """``${fsad.parallel_jobs:${threads}}``, the job count of ``hydra/launcher=local_parallel``: how many jobs of
    ``threads`` torch threads each fit the usable cores at once (joblib's count, which honours the CPU affinity and
    a cgroup quota, e.g. a SLURM or container allocation); at least 1, and 1 for ``threads`` null (torch's
    default: every core)."""
    from joblib import cpu_count  # installed with the joblib launcher plugin

    return max(1, cpu_count() // int(threads)) if threads else 1


def slurm_gpus(accelerator: Any, devices: Any) -> int | None:
    """``${fsad.slurm_gpus:${trainer.accelerator},${trainer.devices}}``, the GPUs per node of
    ``hydra/launcher=slurm``: the trainer's device count for a GPU trainer, none (null) for any other."""
    if str(accelerator) not in ("gpu", "cuda"):
        return None
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        return devices
    raise ValueError(f"trainer.devices={devices}: a SLURM job requests a number of GPUs; set trainer.devices=<n> "
                     "(or hydra.launcher.gpus_per_node and hydra.launcher.tasks_per_node)")


def register_launcher_resolvers() -> None:
    """The resolvers of the launcher configs (``conf/hydra/launcher/``). The launchers hand every registered
    resolver to their job processes (Hydra's singleton state)."""
    OmegaConf.register_new_resolver("fsad.parallel_jobs", parallel_jobs, replace=True)
    OmegaConf.register_new_resolver("fsad.slurm_gpus", slurm_gpus, replace=True)


register_launcher_resolvers()  # the entry points import this module before Hydra composes their config
