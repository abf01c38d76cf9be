"""Multirun support: a failed job is recorded and the sweep goes on; a summary is written at the end."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from fsad.utils.io import write_json

log = logging.getLogger(__name__)


def run_job(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> float | None:
    """Run ``task(cfg)``; return the configured ``optimized_metric`` (for sweepers).

    In a multirun, an exception is written to ``<job dir>/failed.json`` and logged, and the sweep continues;
    in a single run it propagates (non-zero exit).
    """
    try:
        report = task(cfg)
    except Exception as err:
        if not _is_multirun():
            raise
        job_dir = Path(HydraConfig.get().runtime.output_dir)
        write_json(job_dir / "failed.json", {"error": f"{type(err).__name__}: {err}",
                                             "traceback": traceback.format_exc(),
                                             "overrides": list(HydraConfig.get().overrides.task)})
        log.error("job %s failed: %s: %s (details in %s)", HydraConfig.get().job.num, type(err).__name__, err,
                  job_dir / "failed.json")
        return None
    value = report.get(cfg.get("optimized_metric") or "") if report else None
    return float(value) if isinstance(value, (int, float)) else None


def _is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class SweepSummary(Callback):
    """At the end of a multirun, write ``<sweep dir>/sweep_summary.json``: each job's overrides, status and
    metrics (or error), and the mean of every metric over the finished jobs (e.g. one job per SMD machine gives the
    OmniAnomaly per-machine average); print one line per job."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = []
        for job_dir in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
            overrides_file = job_dir / ".hydra" / "overrides.yaml"
            overrides = overrides_file.read_text().strip().splitlines() if overrides_file.is_file() else []
            entry: dict[str, Any] = {"job": int(job_dir.name), "dir": str(job_dir),
                                     "overrides": [o.lstrip("- ").strip() for o in overrides]}
            if (job_dir / "failed.json").is_file():
                entry.update(status="failed", error=json.loads((job_dir / "failed.json").read_text())["error"])
            elif (job_dir / "metrics.json").is_file():
                entry.update(status="ok", metrics=json.loads((job_dir / "metrics.json").read_text()))
            else:
                entry.update(status="incomplete")
            jobs.append(entry)
        write_json(sweep_dir / "sweep_summary.json", {"jobs": jobs, "mean": mean_metrics(jobs)})
        failed = [j for j in jobs if j["status"] != "ok"]
        for job in jobs:
            detail = job.get("error") or f"test/vus_pr={job.get('metrics', {}).get('test/vus_pr', float('nan')):.4f}"
            log.info("job %d [%s] %s: %s", job["job"], job["status"], " ".join(job["overrides"]), detail)
        if failed:
            log.warning("%d of %d jobs did not finish; see %s", len(failed), len(jobs), sweep_dir / "sweep_summary.json")


def mean_metrics(jobs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each numeric metric over the jobs with status ``ok`` that report it (NaN values ignored)."""
    values: dict[str, list[float]] = {}
    for job in jobs:
        for key, value in job.get("metrics", {}).items() if job["status"] == "ok" else ():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                values.setdefault(key, []).append(float(value))
    return {key: sum(v) / len(v) for key, v in sorted(values.items())}
