"""Re-score a trained checkpoint: ``python eval.py ckpt_path=<run>/checkpoints/last.ckpt``."""

import hydra
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator="pyproject.toml", pythonpath=True)

from fsad.pipeline import evaluate  # noqa: E402
from fsad.utils.run_config import with_run_config  # noqa: E402
from fsad.utils.sweep import run_job  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="eval.yaml")
def main(cfg: DictConfig) -> float | None:
    return run_job(evaluate, with_run_config(cfg))


if __name__ == "__main__":
    main()
