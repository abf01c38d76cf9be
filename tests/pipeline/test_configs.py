"""Every config composes; every experiment file instantiates and runs one fast_dev_run step."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from fsad.pipeline import train
from tests.conftest import PROJECT_ROOT
from tests.pipeline.helpers import compose_cfg, image_tiny

IMAGE_DATA = "fsad.data.images.ImageDataModule"

EXPERIMENTS = sorted(str(p.relative_to(PROJECT_ROOT / "conf" / "experiment").with_suffix(""))
                     for p in (PROJECT_ROOT / "conf" / "experiment").rglob("*.yaml"))
GROUP_OPTIONS = {
    group: sorted(p.stem for p in (PROJECT_ROOT / "conf" / group).glob("*.yaml"))
    for group in ("data", "model", "trainer", "logger", "callbacks", "evaluation")
}


def test_default_config_is_frect_on_synthetic(tmp_path: Path):
    cfg = compose_cfg("train", [], tmp_path)
    assert cfg.data._target_.endswith("SyntheticDataModule")
    assert cfg.model._target_.endswith("frect.module.FreCT")
    assert cfg.model.n_channels == cfg.data.n_channels and cfg.model.window == cfg.data.window


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUP_OPTIONS.items() for o in opts])
def test_every_group_option_composes(tmp_path: Path, group: str, option: str):
    cfg = compose_cfg("train", [f"{group}={option}"], tmp_path)
    assert group in cfg


def test_unknown_config_key_is_rejected(tmp_path: Path):
    with pytest.raises(ConfigCompositionException, match="model.not_a_key"):
        compose_cfg("train", ["model.not_a_key=3"], tmp_path)


def test_unknown_constructor_argument_names_the_key(tmp_path: Path):
    cfg = compose_cfg("train", ["+model.not_a_key=3"], tmp_path)
    with pytest.raises(Exception, match="not_a_key"):
        instantiate(cfg.model)


# The default suite runs one training step of each method's first file (every file composes above); the step of
# every other experiment file, the Mamba decoders' 256 x 256 ones included, is in `make test-full`.
FIRST_OF_EACH_METHOD = {"baselines/gecco", "fkm_ad/msl", "frect/msl", "frect/code/msl", "mambaad/synthetic_images",
                        "rd4ad/synthetic_images", "red_f/msl", "red_f/rem_msl", "transmamba/msl",
                        "wave_mambaad/synthetic_images"}
FAST_DEV_RUNS = [e if e in FIRST_OF_EACH_METHOD else pytest.param(e, marks=pytest.mark.slow) for e in EXPERIMENTS]


@pytest.mark.parametrize("experiment", FAST_DEV_RUNS)
def test_experiment_fast_dev_run(tmp_path: Path, experiment: str):
    """Each experiment composes and instantiates; its model runs one training step on data of its shape
    (its own benchmark when present under ``data.root``, else synthetic data with the same channels and window)."""
    cfg = compose_cfg("train", [f"experiment={experiment}", "trainer.fast_dev_run=true", "print_config=false",
                                "callbacks.rich_progress_bar=null", "logger=csv"], tmp_path / "run")
    if "rem" in cfg.model:  # RED-F: CATCH's residual heads (208 M parameters at L = 192) are unit-tested on their own
        cfg.model.rem.head = "linear"
    instantiate(cfg.model)
    if cfg.data._target_ == IMAGE_DATA:  # a small synthetic benchmark in the same layout, at the same sizes
        tiny = compose_cfg("train", image_tiny(tmp_path / "images"), tmp_path / "run").data
        with open_dict(cfg):
            cfg.data = OmegaConf.merge(tiny, {"image_size": cfg.data.image_size, "crop_size": cfg.data.crop_size,
                                              "eval_size": cfg.data.eval_size, "batch_size": 2})
    elif not Path(cfg.data.get("root", "")).is_dir():
        synthetic = compose_cfg("train", [], tmp_path / "run").data
        with open_dict(cfg):
            n, w, b = cfg.data.n_channels, cfg.data.window, cfg.data.batch_size
            horizon, blocks = cfg.data.horizon, cfg.data.horizon_blocks
            cfg.data = synthetic
            cfg.data.n_channels, cfg.data.window, cfg.data.batch_size = n, w, min(b, 4)
            cfg.data.horizon, cfg.data.horizon_blocks = horizon, blocks
            cfg.data.generator.length = cfg.data.generator.train_length = max(20 * w, 1000)
    report = train(cfg)
    assert report == {}  # fast_dev_run: nothing is scored or written
