"""Compose configs like the entry points do, with small settings that keep tests fast."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fsad.utils.resolvers import register_resolvers
from tests.conftest import PROJECT_ROOT

register_resolvers()
CONF = str(PROJECT_ROOT / "conf")

TINY = [
    "data.generator.length=1200",
    "data.generator.train_length=1200",
    "data.window=30",
    "data.train_stride=10",
    "data.batch_size=16",
    "model.d_model=16",
    "model.patch_sizes=[3,5]",
    "model.e_layers=1",
    "trainer.max_epochs=2",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_model_summary=false",
    "print_config=false",
]


def compose_cfg(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` and pin ``paths.output_dir`` to ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir.parent)
        del cfg.hydra
    return cfg


def image_tiny(root: Path) -> list[str]:
    """Overrides for a fast RD4AD run on a small synthetic image benchmark written into ``root`` (3 classes of
    4 training and 5 test images, 64 x 64)."""
    return [
        "experiment=rd4ad/synthetic_images",
        f"data.root={root}",
        "data.synthetic.n_train=4",
        "data.synthetic.n_test_good=2",
        "data.synthetic.n_test_bad=3",
        "data.synthetic.size=64",
        "data.image_size=64",
        "data.crop_size=64",
        "data.eval_size=64",
        "data.batch_size=4",
        "data.eval_batch_size=4",
        "trainer.max_epochs=1",
        "evaluation.heatmaps.per_class=2",
        "callbacks.rich_progress_bar=null",
        "trainer.enable_model_summary=false",
        "print_config=false",
    ]
