"""Run folders: every run writes into a new folder of its own; only an unfinished run of the same experiment is
ever resumed in place; a finished run is never written into again.

A *run folder* holds ``config.yaml`` (the resolved config), ``checkpoints/`` and, once finished, ``metrics.json``.
The ``ckpt_path`` option decides how a training run starts (:func:`plan_start`):

| ``ckpt_path`` | the run ... |
|---|---|
| ``null`` | starts from scratch in its own new folder |
| ``last`` | resumes the newest unfinished run beside its folder whose experiment matches (data, model, task) |
| ``last`` in a sweep job | as above among the task's sweep jobs with the same overrides (grid point); a finished own folder is not trained again; nothing to resume: starts (again) in its folder |
| ``<run>/checkpoints/x.ckpt`` of an unfinished run | resumes that run in its folder (experiment must match) |
| ``<run>/checkpoints/x.ckpt`` or ``<run>`` of a finished run | starts in its own new folder from those *weights* (epoch 0, new optimiser); ``init_from`` records the file |
| any other checkpoint file | resumes the file's training state (epoch, optimiser) in its own new folder |
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# The keys that define an experiment: a run is resumed only when these agree with the composed config.
EXPERIMENT_KEYS = ("task_name", "data", "model")
# Keys under EXPERIMENT_KEYS that change how a run executes, not what it computes.
OPERATIONAL_KEYS = frozenset({"data.num_workers", "data.download", "data.mirror", "model.scan_backend"})
LOCK_NAME = ".lock"  # held (flock) by the process that trains the run
RESUMED_IN = "resumed_in.json"  # in a folder whose run continued in another one: {"run": "<that folder>"}
FAST_DEV_RUN = "fast_dev_run.json"  # in a folder of a finished fast_dev_run (one batch per split, no evaluation)
LAUNCH_BACKUP = ".hydra.before-relaunch"  # a sweep job's .hydra/ as its first launch wrote it


class RunFolderError(RuntimeError):
    """A run folder cannot be used: not writable, of another experiment, or no run to resume."""


@dataclass(frozen=True)
class RunStart:
    """How a training run starts.

    Attributes:
        run_dir: the folder every output of this run goes to.
        resume_from: checkpoint whose full training state (weights, optimiser, epoch) is restored, or None.
        init_from: checkpoint whose weights initialise a new run (epoch 0, fresh optimiser), or None.
        finished: the run in ``run_dir`` is already finished and is not trained again (a sweep job resumed in its
            own sweep folder, see :func:`plan_start`).
    """

    run_dir: Path
    resume_from: str | None = None
    init_from: str | None = None
    finished: bool = False


def is_finished(run_dir: Path) -> bool:
    """A run is finished once its ``metrics.json`` exists."""
    return (run_dir / "metrics.json").is_file()


def run_of_checkpoint(ckpt: Path) -> Path | None:
    """``<run>`` for ``<run>/checkpoints/<file>.ckpt`` when ``<run>/config.yaml`` exists, else None."""
    run = ckpt.resolve().parent.parent
    return run if ckpt.resolve().parent.name == "checkpoints" and (run / "config.yaml").is_file() else None


def scored_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a run folder stands for: the one its ``metrics.json`` scored, else its single best
    checkpoint, else ``checkpoints/last.ckpt``. Raises FileNotFoundError naming the folder when it has none."""
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        scored = json.loads(metrics.read_text()).get("ckpt_path")
        if scored and Path(scored).is_file():
            return Path(scored)
    best = sorted((run_dir / "checkpoints").glob("best*.ckpt"))
    if len(best) == 1:
        return best[0]
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        return last
    raise FileNotFoundError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'} "
                            "(expected best-epoch*.ckpt or last.ckpt); pass a checkpoint file as ckpt_path=...")


def config_differences(cfg: DictConfig, run_dir: Path) -> list[str]:
    """The experiment keys (``EXPERIMENT_KEYS``, minus ``OPERATIONAL_KEYS``) on which ``cfg`` differs from the
    run's ``config.yaml``, as ``"key: run <a>, now <b>"`` lines (empty when they agree). A key the run's config
    does not have at all was added to the platform after the run was made and is not compared."""
    stored_path = run_dir / "config.yaml"
    if not stored_path.is_file():
        return [f"{stored_path}: missing, so the run's experiment cannot be checked"]
    stored = OmegaConf.to_container(OmegaConf.load(stored_path), resolve=False)
    now = OmegaConf.to_container(cfg, resolve=True)
    old_flat, new_flat = {}, {}
    for key in EXPERIMENT_KEYS:
        flatten_keys(stored.get(key), key, old_flat)
        flatten_keys(now.get(key), key, new_flat)
    return [f"{key}: run {old_flat[key]!r}, now {new_flat.get(key, '<absent>')!r}"
            for key in sorted(old_flat) if key not in OPERATIONAL_KEYS and old_flat[key] != new_flat.get(key)]


def plan_start(cfg: DictConfig, run_dir: Path, main_process: bool = True) -> RunStart:
    """Decide where a training run writes and what it starts from (see the module docstring).

    Every check happens here, before anything is written: a missing or unreadable checkpoint, a run of another
    experiment, a run that another process is training (:func:`in_use`), and a fresh start into a folder that
    already holds a run (e.g. ``hydra.run.dir`` pointed at an old run). ``main_process=False`` (DDP ranks > 0,
    which start after rank 0 has claimed the folder) skips the checks that rank 0 made.

    Raises FileNotFoundError (missing checkpoint, no unfinished run), :class:`RunFolderError` (another
    experiment, a run in use, an occupied folder) and CheckpointReadError (not a checkpoint).
    """
    from fsad.utils.checkpoints import read_checkpoint

    option = cfg.get("ckpt_path")
    if option == "last":
        start = _resume_last(cfg, run_dir, main_process)
    elif option in (None, "", "null"):
        start = RunStart(run_dir)
    else:
        start = _start_from_file(cfg, run_dir, Path(str(option)))
    if not main_process or start.finished:
        return start
    if start.resume_from:
        read_checkpoint(start.resume_from)  # a clear error for a truncated or foreign file, before anything runs
    rerun = option == "last" and run_dir.name.isdigit() and not any((run_dir / "checkpoints").glob("*.ckpt"))
    if start.run_dir == run_dir and not start.resume_from and _holds_a_run(run_dir) and not rerun:
        raise RunFolderError(f"{run_dir} already holds a run (config.yaml, metrics.json or checkpoints); a new run "
                             "never writes into another one. Choose another hydra.run.dir, or resume it with "
                             "ckpt_path=last")
    if start.run_dir != run_dir and in_use(start.run_dir):
        raise RunFolderError(f"{start.run_dir} is being trained by another process right now; wait for it or stop "
                             "it before resuming")
    return start


def _start_from_file(cfg: DictConfig, run_dir: Path, path: Path) -> RunStart:
    from fsad.utils.checkpoints import read_checkpoint

    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise FileNotFoundError(f"ckpt_path={path}: a folder without config.yaml is not a run folder")
        path = scored_checkpoint(path) if is_finished(path) else path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    read_checkpoint(path)  # a clear error for a file that is not a checkpoint, before anything is written
    run = run_of_checkpoint(path)
    if run is None:
        return RunStart(run_dir, resume_from=str(path))
    if is_finished(run):
        log.info("%s is finished: a new run starts from the weights of %s", run, path)
        return RunStart(run_dir, init_from=str(path))
    differences = config_differences(cfg, run)
    if differences:
        raise RunFolderError(f"ckpt_path={path}: the unfinished run {run} is another experiment; it differs on "
                             + "; ".join(differences[:8]) + ". Compose the same experiment to resume it, "
                             "or start a new run from its weights once it is finished")
    return RunStart(run, resume_from=str(path))


def _resume_last(cfg: DictConfig, run_dir: Path, main_process: bool) -> RunStart:
    sweep_job = run_dir.name.isdigit()
    if sweep_job and is_finished(run_dir):  # a sweep relaunched into its own folder: this grid point is done
        log.info("%s is finished: not trained again", run_dir)
        return RunStart(run_dir, finished=True)
    if (run_dir / "checkpoints" / "last.ckpt").is_file() and not is_finished(run_dir):
        candidates = [run_dir]
    else:
        candidates = sorted((run for run in _neighbours(run_dir) if not is_finished(run)),
                            key=lambda p: (p / "checkpoints" / "last.ckpt").stat().st_mtime, reverse=True)
    if not candidates and sweep_job:  # this grid point never started: it starts now
        log.info("ckpt_path=last: no unfinished run of this job's overrides; %s starts a new run", run_dir)
        return RunStart(run_dir)
    if not candidates:
        raise FileNotFoundError(f"ckpt_path=last: no unfinished run with checkpoints/last.ckpt under {run_dir.parent}"
                                "; pass ckpt_path=<run>/checkpoints/last.ckpt to name one")
    rejected = []
    for run in candidates:
        differences = config_differences(cfg, run) + (_override_differences(run) if sweep_job else [])
        if differences:
            rejected.append(f"  {run}: {'; '.join(differences[:3])}" + (" ..." if len(differences) > 3 else ""))
        elif main_process and run != run_dir and in_use(run):
            rejected.append(f"  {run}: being trained by another process right now")
        else:
            return RunStart(run, resume_from=str(run / "checkpoints" / "last.ckpt"))
    if sweep_job:
        log.info("ckpt_path=last: no unfinished run of this job's overrides is free; %s starts a new run", run_dir)
        return RunStart(run_dir)
    raise RunFolderError("ckpt_path=last: no unfinished run of this experiment (task, data, model) that is free "
                         f"under {run_dir.parent}; the unfinished runs there:\n" + "\n".join(rejected)
                         + "\nCompose the same experiment, or pass ckpt_path=<run>/checkpoints/last.ckpt")


def job_overrides(overrides: list[str]) -> list[str]:
    """A job's own settings among its command-line overrides: without ``ckpt_path`` and Hydra's keys, sorted (what
    identifies a grid point of a sweep)."""
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(("ckpt_path=", "hydra.", "hydra/")))


def _override_differences(run: Path) -> list[str]:
    """How this sweep job's overrides differ from those of the job in ``run`` (``.hydra/overrides.yaml``; nothing
    to compare for a run without it or outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    stored_file = run / ".hydra" / "overrides.yaml"
    if not HydraConfig.initialized() or not stored_file.is_file():  # a run not started from the command line
        return []
    stored = job_overrides([str(o) for o in OmegaConf.load(stored_file)])
    now = job_overrides(list(HydraConfig.get().overrides.task))
    return [] if stored == now else [f"overrides: run {' '.join(stored)}, now {' '.join(now)}"]


def _neighbours(run_dir: Path) -> list[Path]:
    """Runs with ``checkpoints/last.ckpt`` beside ``run_dir``; for a sweep job (``<sweep>/<number>``) the jobs of
    every sweep of the same task, so an interrupted sweep resumes job by job."""
    if run_dir.name.isdigit():
        found = run_dir.parent.parent.glob("*/*/checkpoints/last.ckpt")
    else:
        found = run_dir.parent.glob("*/checkpoints/last.ckpt")
    return [p.parent.parent for p in found if p.parent.parent != run_dir]


def refuse_occupied_run_dir(argv: list[str]) -> None:
    """Before Hydra starts (it writes ``.hydra/`` and the log file into its run folder at once, and a sweep's
    ``multirun.yaml`` and each job's ``.hydra/``): exit with status 2 and a message when ``hydra.run.dir=<folder>``
    names a folder that already holds a run and no ``ckpt_path`` asks to resume it, or when
    ``hydra.sweep.dir=<folder>`` names a folder that already holds a sweep, unless ``ckpt_path=last`` relaunches
    that same sweep (the same overrides as its ``multirun.yaml``) to finish it. :func:`plan_start` makes the same
    check for everything Hydra has not already touched."""
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # a DDP process of a run that rank 0 has already claimed
        return
    run_folder = next((a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")), None)
    sweep_folder = next((a.split("=", 1)[1] for a in argv if a.startswith("hydra.sweep.dir=")), None)
    message = None
    if run_folder is not None and not any(a.startswith("ckpt_path=") for a in argv) and \
            _holds_a_run(Path(run_folder)):
        message = (f"{run_folder} already holds a run (config.yaml, metrics.json or checkpoints); a new run never "
                   "writes into another one. Choose another hydra.run.dir, or resume it with ckpt_path=last")
    if sweep_folder is not None and _holds_a_sweep(Path(sweep_folder)):  # -m, or a sweep file's hydra.mode
        message = _sweep_relaunch_problem(Path(sweep_folder), argv)
        if message is None:
            keep_launch_records(Path(sweep_folder))
    if message:
        print(message, file=sys.stderr)
        raise SystemExit(2)


def keep_launch_records(sweep: Path) -> None:
    """Before a sweep is relaunched into its folder (Hydra then rewrites ``multirun.yaml`` and each job's
    ``.hydra/`` with ``ckpt_path=last`` added): copy each job's ``.hydra/`` to ``.hydra.before-relaunch/`` (first
    launch of an unfinished job; the finishing launch of a finished one) so a finished job gets its record back
    (:func:`restore_launch_record`), and keep the sweep's
    ``multirun.yaml`` as ``multirun.before-relaunch-<k>.yaml``."""
    import shutil

    k = 1
    while (sweep / f"multirun.before-relaunch-{k}.yaml").exists():
        k += 1
    if (sweep / "multirun.yaml").is_file():
        shutil.copy2(sweep / "multirun.yaml", sweep / f"multirun.before-relaunch-{k}.yaml")
    for job in job_folders(sweep):
        if not (job / ".hydra").is_dir():
            continue
        if is_finished(job):  # the record of the launch that finished it
            shutil.rmtree(job / LAUNCH_BACKUP, ignore_errors=True)
        if not (job / LAUNCH_BACKUP).exists():
            shutil.copytree(job / ".hydra", job / LAUNCH_BACKUP)


def restore_launch_record(run_dir: Path) -> None:
    """A finished sweep job of a relaunched sweep: its ``.hydra/`` back as the launch that produced its results
    wrote it (:func:`keep_launch_records`)."""
    import shutil

    backup = run_dir / LAUNCH_BACKUP
    if backup.is_dir():
        shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
        backup.rename(run_dir / ".hydra")


def job_folders(folder: Path) -> list[Path]:
    """The job folders of a sweep folder (its numbered subfolders), in job order."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _holds_a_sweep(folder: Path) -> bool:
    return folder.is_dir() and ((folder / "multirun.yaml").exists() or (folder / "sweep_summary.json").exists()
                                or bool(job_folders(folder)))


def _sweep_relaunch_problem(folder: Path, argv: list[str]) -> str | None:
    """None when ``argv`` relaunches the sweep in ``folder`` (``ckpt_path=last`` and its overrides), else why not."""
    refused = (f"{folder} already holds a sweep; a new sweep never writes into another one (Hydra would rewrite each "
               "job's .hydra/ files). Choose another hydra.sweep.dir, or finish that sweep with the same overrides "
               "plus ckpt_path=last")
    if "ckpt_path=last" not in argv:
        return refused
    stored_file = folder / "multirun.yaml"
    try:
        stored = job_overrides([str(o) for o in OmegaConf.load(stored_file).hydra.overrides.task])
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same answer
        return f"{refused}. Its {stored_file} cannot be read ({type(err).__name__}: {err})"
    now = job_overrides([a for a in argv if a not in ("-m", "--multirun")])
    if stored != now:
        return (f"{refused}. The overrides differ from those in {stored_file}: it ran {' '.join(stored)}; "
                f"now {' '.join(now)}")
    return None


def _holds_a_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("config.yaml", "metrics.json")) or \
        any((folder / "checkpoints").glob("*.ckpt"))


def in_use(run_dir: Path) -> bool:
    """True when another process holds the run's lock (:func:`hold_run`), i.e. is training it now. The lock is
    the kernel's (``flock``): a process that was killed no longer holds it."""
    lock = run_dir / LOCK_NAME
    if not lock.is_file():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextmanager
def hold_run(run_dir: Path | None) -> Iterator[None]:
    """Hold the run's lock while the block trains and scores it (nothing when ``run_dir`` is None);
    RunFolderError when another process holds it."""
    if run_dir is None:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(f"{run_dir} is being trained by another process right now") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def keep_previous_config(run_dir: Path) -> Path:
    """Before a resumed run writes its config: rename ``config.yaml`` to ``config.before-resume-<k>.yaml`` (k = 1,
    2, ...), so the run keeps every configuration it ran with and ``config.yaml`` always describes its results."""
    k = 1
    while (run_dir / f"config.before-resume-{k}.yaml").exists():
        k += 1
    return (run_dir / "config.yaml").rename(run_dir / f"config.before-resume-{k}.yaml")


def require_writable(*folders: Path) -> None:
    """Create each folder and write (then remove) a probe file in it; RunFolderError naming the folder if that
    fails, so a run never trains for hours and then loses its checkpoints."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as err:
            raise RunFolderError(f"{folder}: not writable ({err.strerror or err}); checkpoints and results could "
                                 "not be saved. Fix its permissions or choose another paths.log_dir / "
                                 "hydra.run.dir") from err


@contextmanager
def log_also_to(path: Path | None) -> Iterator[None]:
    """While the block runs, also append the log records to ``path`` (a resumed run's own log file, so its log
    covers every part of the run); nothing when ``path`` is None."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def unique_suffix() -> str:
    """Six random hex digits: with the time, they make every run folder name unique (``fsad.unique``)."""
    return os.urandom(3).hex()


def flatten_keys(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Put every non-mapping value of a nested mapping (dicts, DictConfigs) into ``out`` under its dotted key
    (``prefix.decoder.image_size``); a value that is not a mapping goes in under ``prefix`` itself."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            flatten_keys(item, f"{prefix}.{key}", out)
    else:
        out[prefix] = value
