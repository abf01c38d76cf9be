"""Train a method and evaluate it: ``python train.py [experiment=frect/msl] [key=value ...]`` (``-m`` for sweeps)."""

import sys

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator="pyproject.toml", pythonpath=True)

from fsad.pipeline import train  # noqa: E402
from fsad.utils.resolvers import register_resolvers  # noqa: E402
from fsad.utils.runs import refuse_occupied_run_dir  # noqa: E402
from fsad.utils.sweep import run_job  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    return run_job(train, cfg)


if __name__ == "__main__":
    refuse_occupied_run_dir(sys.argv[1:])
    main()
