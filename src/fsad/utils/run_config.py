"""Evaluation reuses the training run's configuration, so a checkpoint is scored exactly as it was trained."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

FROM_RUN = ("data", "model", "evaluation", "seed")


def run_config_path(ckpt_path: str | Path) -> Path:
    """``<run>/checkpoints/x.ckpt`` -> ``<run>/config.yaml``."""
    return Path(ckpt_path).resolve().parent.parent / "config.yaml"


def with_run_config(cfg: DictConfig) -> DictConfig:
    """Replace ``data``, ``model``, ``evaluation`` and ``seed`` by the training run's values, then re-apply the
    command-line overrides that touch them (e.g. ``data.root=...``). No-op with ``from_run=false`` or when the
    checkpoint has no run config beside it."""
    path = run_config_path(cfg.ckpt_path)
    if not cfg.get("from_run", True) or not path.is_file():
        return cfg
    run = OmegaConf.load(path)
    with open_dict(cfg):
        for key in FROM_RUN:
            if key in run:
                cfg[key] = run[key]
        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        for override in OverridesParser.create().parse_overrides(list(overrides)):
            key = override.key_or_group
            if key.split(".")[0] in FROM_RUN and "." in key or key == "seed":
                OmegaConf.update(cfg, key, override.value(), force_add=True)
    return cfg
