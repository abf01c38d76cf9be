"""Logger helpers: W&B that works offline, and logging one report and one figure to every logger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger


def wandb_is_logged_in() -> bool:
    """True when an API key is configured (environment variable or ~/.netrc entry); never touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def make_wandb_logger(mode: str = "auto", **kwargs: Any) -> WandbLogger:
    """A :class:`WandbLogger`; ``mode=auto`` is ``online`` when the user is logged in and ``offline`` otherwise
    (offline runs are written under ``save_dir/wandb`` and can be uploaded later with ``wandb sync``)."""
    if mode == "auto":
        mode = "online" if wandb_is_logged_in() else "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(mode=mode, **kwargs)


def log_report(loggers: list[Logger], report: dict[str, float | str | None], config: dict,
               figures: dict[str, Path]) -> None:
    """Send the final metrics, the resolved config and the run's figures (``{name: png path}``, e.g.
    ``{"test/scores": <run>/scores.png}``) to every logger.

    Only the numeric values of ``report`` are logged: undefined metrics (``None``) and strings (``error/...``
    reasons, versions, paths) are left to ``metrics.json``.
    """
    for logger in loggers:
        logger.log_hyperparams(config)
        logger.log_metrics({k: v for k, v in report.items() if isinstance(v, (int, float))})
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
