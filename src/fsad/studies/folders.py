"""Read a sweep folder (``multirun.yaml`` + one folder per job) or a single run folder into jobs.

Every job of the grid appears: ``ok`` (``metrics.json``), ``failed`` (``failed.json``), ``incomplete`` (a folder
without either: interrupted or still running) or ``missing`` (a grid point with no folder at all, e.g. a sweep
stopped before launching it). Nothing is dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fsad.studies.grid import job_values, matches
from fsad.studies.spec import Study, load_study
from fsad.utils.runs import FAST_DEV_RUN, RESUMED_IN, job_folders

STATUSES = ("ok", "fast_dev_run", "failed", "incomplete", "unreadable", "missing")


class FolderError(ValueError):
    """A folder that is neither a sweep folder nor a run folder (message: the folder and what it lacks)."""


@dataclass
class Job:
    """One job of a sweep (or a single run).

    Attributes:
        number: Hydra's job number (the folder name), None for a missing grid point or a single run.
        values: the job's overrides as ``{key: value}`` (for a missing job: its grid point).
        choices: the config groups the job composed (``model``, ``data``, ``experiment``, ...).
        overrides: the job's command-line overrides as Hydra wrote them (``["data.window=60", ...]``).
    """

    number: int | None
    folder: Path | None
    status: str
    values: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    overrides: list[str] = field(default_factory=list)


@dataclass
class Sweep:
    """A sweep (or run) folder read back: its study (None without a ``study:`` block) and every job."""

    folder: Path
    study: Study | None
    jobs: list[Job]
    name: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FolderError(f"{path}: not readable as JSON ({err})") from err
    if not isinstance(data, dict):
        raise FolderError(f"{path}: expected a JSON object ({{\"key\": value, ...}}), got {type(data).__name__}")
    return data


def _read_yaml(path: Path) -> Any:
    try:
        return OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - YAML, OmegaConf and OS errors all mean "cannot read this file"
        raise FolderError(f"{path}: not readable as YAML ({type(err).__name__}: {err})") from err


def read_job(folder: Path, number: int | None = None) -> Job:
    """A job folder: its overrides (``.hydra/overrides.yaml``), status, metrics or error, and config choices. A job
    whose files cannot be read is a job with status ``unreadable``, the reason (naming the file) as its error and
    what could be read before it (never dropped)."""
    hydra_dir = folder / ".hydra"
    overrides_file = hydra_dir / "overrides.yaml"
    job = Job(number=number, folder=folder, status="incomplete")
    try:
        overrides = [str(o) for o in _read_yaml(overrides_file)] if overrides_file.is_file() else []
        try:
            job.values, job.overrides = job_values(overrides), overrides
        except Exception as err:  # noqa: BLE001 - Hydra's override parser raises its own error types
            raise FolderError(f"{overrides_file}: an override is not Hydra's key=value ({err})") from err
        hydra_cfg = _read_yaml(hydra_dir / "hydra.yaml") if (hydra_dir / "hydra.yaml").is_file() else None
        choices = OmegaConf.select(hydra_cfg, "hydra.runtime.choices") if hydra_cfg is not None else None
        job.choices = OmegaConf.to_container(choices) if choices is not None else {}
        stored = OmegaConf.select(hydra_cfg, "hydra.overrides.task") if hydra_cfg is not None else None
        if stored is not None and [str(o) for o in stored] != overrides:
            raise FolderError(f"{overrides_file}: disagrees with hydra.overrides.task in {hydra_dir / 'hydra.yaml'} "
                              f"({[str(o) for o in stored]}); one of them is damaged")
        results = folder
        if (folder / RESUMED_IN).is_file():  # the job resumed an unfinished run in another folder
            results = Path(str(_read_json(folder / RESUMED_IN).get("run")))
            job.folder = results
        if (results / "metrics.json").is_file():  # before failed.json: a failed job may have been resumed
            job.metrics, job.status = _read_json(results / "metrics.json"), "ok"
        elif (results / "failed.json").is_file():
            job.error, job.status = str(_read_json(results / "failed.json").get("error")), "failed"
        elif (results / FAST_DEV_RUN).is_file():  # a smoke test that passed: no metrics by design
            job.status = "fast_dev_run"
    except FolderError as err:
        job.status, job.error = "unreadable", str(err)
    return job


def _job_config(folder: Path) -> DictConfig | None:
    """The composed config of a run folder with its ``hydra`` node (what the study block is read from)."""
    config, hydra_file = folder / ".hydra" / "config.yaml", folder / ".hydra" / "hydra.yaml"
    if not config.is_file():
        return None
    cfg = _read_yaml(config)
    if hydra_file.is_file():
        cfg = OmegaConf.merge(cfg, _read_yaml(hydra_file))
    return cfg


def read_folder(folder: str | Path) -> Sweep:
    """Read a sweep folder (holding ``multirun.yaml`` or numbered job folders) or one run folder.

    Raises:
        FolderError: the folder does not exist, or holds neither a sweep nor a run.
        fsad.studies.spec.StudyError: the sweep's ``study:`` / ``paper:`` block is malformed.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{folder}: a file, not a folder (give the sweep or run folder)")
    if not folder.is_dir():
        raise FolderError(f"{folder}: no such folder")
    job_dirs = job_folders(folder)
    if (folder / "multirun.yaml").is_file() or job_dirs:
        return _read_sweep(folder, job_dirs)
    if (folder / ".hydra").is_dir() or (folder / "metrics.json").is_file():
        cfg = _job_config(folder)
        study = load_study(cfg) if cfg is not None else None
        name = study.name if study else folder.name
        return Sweep(folder=folder, study=study, jobs=[read_job(folder)], name=name)
    raise FolderError(f"{folder}: neither a sweep folder (multirun.yaml, numbered job folders) nor a run folder "
                      "(.hydra/, metrics.json)")


def _read_sweep(folder: Path, job_dirs: list[Path]) -> Sweep:
    study = None
    if (folder / "multirun.yaml").is_file():
        cfg = _read_yaml(folder / "multirun.yaml")
        if not isinstance(cfg, DictConfig):
            raise FolderError(f"{folder / 'multirun.yaml'}: expected Hydra's multirun config (a mapping)")
        task = OmegaConf.select(cfg, "hydra.overrides.task")
        if task is None:
            raise FolderError(f"{folder / 'multirun.yaml'}: no hydra.overrides.task (Hydra writes it into every "
                              "sweep's multirun.yaml): the file is damaged")
        study = load_study(cfg, [str(o) for o in task])
        try:
            first = _job_config(job_dirs[0]) if job_dirs else None
        except FolderError:  # the job's own damage is its row's error
            first = None
        if study is None and first is not None and first.get("study") is not None:
            raise FolderError(f"{folder / 'multirun.yaml'}: no study block, but its jobs ran one "
                              f"({job_dirs[0] / '.hydra' / 'config.yaml'}): the file is damaged")
    jobs = [read_job(d, int(d.name)) for d in job_dirs]
    if study is not None:
        for point in study.jobs():
            if not any(matches(point, job.values) for job in jobs):
                jobs.append(Job(number=None, folder=None, status="missing", values=point))
    name = study.name if study else folder.name
    return Sweep(folder=folder, study=study, jobs=jobs, name=name)
