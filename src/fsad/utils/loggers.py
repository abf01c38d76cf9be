"""Logger helpers: W&B that works offline and names its runs, and logging one report to every logger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

# Overrides that say where a run reads or writes, not what it runs: left out of W&B names and tags.
_PLUMBING = ("hydra.", "paths.", "logger", "print_config", "data.root", "data.download", "data.mirror", "sweep=",
             "ckpt_path", "callbacks", "threads", "experiment=")
IMAGE_METRICS = ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap", "pixel_f1_max", "au_pro",
                 "mad")


def wandb_is_logged_in() -> bool:
    """True when an API key is configured (environment variable or ~/.netrc entry); never touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def run_identity() -> dict[str, Any]:
    """What a W&B run is called, from the Hydra job being run (empty outside Hydra).

    - ``name``: ``<model>/<data>`` (the config choices) and the run's own overrides, e.g.
      ``frect/msl data.window=60`` (overrides of paths, loggers and other plumbing left out; at most 128 chars);
    - ``group``: in a sweep ``<sweep file or "multirun">/<sweep folder name>`` (every job of one sweep, and the
      sweep's summary run, in one group); in a single run the experiment (``frect/msl``) or ``<model>/<data>``;
    - ``job_type``: the entry point, ``train`` or ``eval``;
    - ``tags``: ``sweep:<name>`` in a sweep, and each kept override (at most 64 chars each, W&B's limit).
    """
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    what = f"{choices.get('model')}/{choices.get('data')}"
    overrides = [o for o in hydra_cfg.overrides.task if not o.lstrip("+~").startswith(_PLUMBING)]
    tags = [o[:64] for o in overrides]
    if hydra_cfg.mode == RunMode.MULTIRUN:
        group = sweep_group(choices.get("sweep"), Path(str(hydra_cfg.sweep.dir)))
        tags.insert(0, f"sweep:{choices.get('sweep') or 'multirun'}"[:64])
    else:
        group = choices.get("experiment") or what
    return {"name": " ".join([what, *overrides])[:128], "group": group[:128], "job_type": hydra_cfg.job.name,
            "tags": tags}


def sweep_group(sweep_file: str | None, sweep_dir: Path) -> str:
    """The W&B group of every job of a sweep and of its summary run: ``<sweep file or "multirun">/<folder name>``."""
    return f"{sweep_file or 'multirun'}/{sweep_dir.name}"[:128]


def wandb_mode(mode: str) -> str:
    """``auto`` -> ``online`` when logged in, else ``offline``; other modes as given."""
    return ("online" if wandb_is_logged_in() else "offline") if mode == "auto" else mode


def log_sweep_report(wandb_cfg: dict[str, Any], group: str, sweep_dir: Path, columns: list[str],
                     rows: list[list[Any]], figures: dict[str, Path]) -> Path | None:
    """One W&B run of ``job_type=report`` in the sweep's group holding the study's table (``study/jobs``) and its
    figures; written under ``<sweep_dir>/wandb``. Returns the run's folder (None when W&B is disabled).

    Args:
        wandb_cfg: the ``logger.wandb`` node of the sweep's config (mode, project, entity, tags are used).
    """
    import wandb

    mode = wandb_mode(str(wandb_cfg.get("mode", "auto")))
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(mode=mode, project=wandb_cfg.get("project"), entity=wandb_cfg.get("entity"), group=group,
                     job_type="report", name=f"{group} report", dir=str(sweep_dir), reinit="create_new",
                     tags=[str(t)[:64] for t in wandb_cfg.get("tags") or []] or None)
    try:
        run.log({"study/jobs": wandb.Table(columns=columns, data=rows),
                 **{name: wandb.Image(str(path)) for name, path in figures.items() if path.is_file()}})
        folder = Path(run.dir).parent
    finally:
        run.finish()
    return folder


def finish_wandb_run(exit_code: int = 0) -> None:
    """Finish the process's open W&B run, if any (a job's run ends with the job: otherwise the next job of a sweep
    in the same process would log into it)."""
    import sys

    wandb = sys.modules.get("wandb")  # never import W&B just to find that no run was started
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=exit_code)


class RunConfigWandbLogger(WandbLogger):
    """A :class:`WandbLogger` whose W&B config is the run's resolved config only (logged by :func:`log_report`).

    Lightning also logs the method's constructor arguments at the start of fitting; they are the config's
    ``model`` node already, so they are not logged a second time under top-level keys.
    """

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, dict) and "task_name" in params:  # the run config (see log_report)
            super().log_hyperparams(params, *args, **kwargs)


def make_wandb_logger(mode: str = "auto", name: str | None = None, group: str | None = None,
                      job_type: str | None = None, tags: list[str] | None = None, **kwargs: Any) -> WandbLogger:
    """A W&B logger; ``mode=auto`` is ``online`` when the user is logged in and ``offline`` otherwise (offline runs
    are written under ``save_dir/wandb`` and can be uploaded later with ``wandb sync``). ``name``, ``group`` and
    ``job_type`` left None come from :func:`run_identity`; its tags are added to ``tags`` (the experiment's)."""
    mode = wandb_mode(mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    identity = run_identity()
    all_tags = list(dict.fromkeys([*(tags or []), *identity.get("tags", [])]))
    return RunConfigWandbLogger(mode=mode, name=name or identity.get("name"), group=group or identity.get("group"),
                                job_type=job_type or identity.get("job_type"), tags=all_tags or None, **kwargs)


def per_group_table(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """The per-class (image) or per-entity (time series) metrics of a report as table columns and rows, or None.

    Image reports: a row per protocol and class (``test/<protocol>/<class>/<metric>``), then ``mean`` and
    ``random`` (the chance reference). Time-series reports with entities (e.g. SMD's machines): a row per
    ``entity/<name>/<metric>`` entity, then ``mean`` (``entity_mean/...``).
    """
    rows: list[list[Any]] = []
    protocols = sorted({k.split("/")[1] for k in report if k.startswith("test/") and k.endswith("/mean/mad")})
    if protocols:
        for protocol in protocols:
            prefix = f"test/{protocol}/"
            classes = sorted({k[len(prefix):].split("/")[0] for k in report if k.startswith(prefix)
                              and k.count("/") == 3 and k.rsplit("/", 1)[1] in IMAGE_METRICS}
                             - {"mean", "random"})
            for name, key in [(c, f"{prefix}{c}") for c in classes] + [("mean", f"{prefix}mean"),
                                                                        ("random", f"{prefix}random/mean")]:
                rows.append([protocol, name, *(report.get(f"{key}/{m}") for m in IMAGE_METRICS)])
        return ["protocol", "class", *IMAGE_METRICS], rows
    entities = sorted({k.split("/")[1] for k in report if k.startswith("entity/") and k.count("/") >= 2})
    if not entities:
        return None
    metrics = sorted({k.split("/", 2)[2] for k in report if k.startswith(f"entity/{entities[0]}/")})
    for name, prefix in [(e, f"entity/{e}/") for e in entities] + [("mean", "entity_mean/")]:
        rows.append([name, *(report.get(prefix + m) for m in metrics)])
    return ["entity", *metrics], rows


def log_report(loggers: list[Logger], report: dict[str, float | str | None], config: dict,
               figures: dict[str, Path]) -> None:
    """Send the final metrics, the resolved config and the run's figures (``{name: png path}``, e.g.
    ``{"test/scores": <run>/scores.png}``) to every logger; W&B also gets the per-class / per-entity metrics as a
    table (:func:`per_group_table`: ``test/per_class`` or ``test/per_entity``).

    Only the numeric values of ``report`` are logged: undefined metrics (``None``) and strings (``error/...``
    reasons, versions, paths) are left to ``metrics.json``.
    """
    table = per_group_table(report)
    for logger in loggers:
        logger.log_hyperparams(config)
        logger.log_metrics({k: v for k, v in report.items() if isinstance(v, (int, float))})
        if table is not None and isinstance(logger, WandbLogger):
            columns, rows = table
            logger.log_table(key="test/per_class" if columns[0] == "protocol" else "test/per_entity",
                             columns=columns, data=rows)
        for name, path in figures.items():
            if not path.is_file():
                continue
            if isinstance(logger, WandbLogger):
                logger.log_image(key=name, images=[str(path)])
            elif isinstance(logger, TensorBoardLogger):
                import matplotlib.image as mpimg

                image = mpimg.imread(path)[..., :3]
                logger.experiment.add_image(name, image, dataformats="HWC")
        logger.save()
