"""A W&B sweep file from a ``conf/sweep`` study, for users who run W&B's agent instead of Hydra's multirun.

``python -m fsad.studies.wandb_sweep frect/window > frect_window.yaml``, then ``wandb sweep frect_window.yaml``
and ``wandb agent <id>``. Each agent run is one ``train.py`` job: the study file is selected (its fixed settings
apply), ``hydra.mode=RUN`` turns its multirun off, and the agent passes one grid point as ``key=value``
arguments. Method ``grid`` over the same values as ``hydra.sweeper.params``; the metric is ``optimized_metric``.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from fsad.studies.grid import swept_values
from fsad.studies.spec import load_study


def wandb_sweep_config(cfg: DictConfig, name: str, project: str = "fsad") -> dict[str, Any]:
    """The W&B sweep configuration of the composed study config ``cfg`` (``sweep=<name>``).

    Returns:
        ``{"program", "name", "project", "method": "grid", "metric", "parameters", "command"}`` as W&B's sweep
        YAML expects; list values (e.g. patch sizes) stay lists, which the agent writes as ``key=[3, 5]``.

    Raises:
        fsad.studies.grid.GridError: the grid holds an interval (a search, not a grid).
    """
    grid = swept_values(dict(cfg.hydra.sweeper.params or {}))
    study = load_study(cfg)
    return {
        "program": "train.py",
        "name": study.title if study else name,
        "project": project,
        "method": "grid",
        "metric": {"name": str(cfg.get("optimized_metric") or "test/auc_pr"), "goal": "maximize"},
        "parameters": {key: {"values": values} for key, values in grid.items()},
        "command": ["${env}", "${interpreter}", "${program}", f"sweep={name}", "hydra.mode=RUN",
                    "logger=wandb", "${args_no_hyphens}"],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m fsad.studies.wandb_sweep <method>/<study>  (a file of conf/sweep/)", file=sys.stderr)
        return 2
    from pathlib import Path

    from fsad.utils.resolvers import register_resolvers

    register_resolvers()
    conf = Path(__file__).resolve().parents[3] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"sweep={argv[0]}"], return_hydra_config=True)
    yaml.safe_dump(wandb_sweep_config(cfg, argv[0]), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
