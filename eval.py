"""Re-score a trained checkpoint: ``python eval.py ckpt_path=<run folder or <run>/checkpoints/last.ckpt>``."""

import sys

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator="pyproject.toml", pythonpath=True)

from fsad.pipeline import evaluate  # noqa: E402
from fsad.utils.resolvers import register_resolvers  # noqa: E402
from fsad.utils.run_config import prepare_eval_argv, with_run_config  # noqa: E402
from fsad.utils.sweep import run_job  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval.yaml")
def main(cfg: DictConfig) -> float | None:
    return run_job(lambda c: evaluate(with_run_config(c)), cfg)


if __name__ == "__main__":
    sys.argv[1:] = prepare_eval_argv(sys.argv[1:])
    main()
