"""eval.py's configuration: the training run's keys, its data links, and keys added to the platform since."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from fsad.utils.config_checks import ConfigValueError, check_options
from fsad.utils.run_config import prepare_eval_argv, with_run_config
from tests.pipeline.helpers import TINY, compose_cfg


def fake_run(folder: Path, drop_spot_init: bool = False) -> Path:
    """A run folder as training leaves it: resolved config.yaml, Hydra's unresolved .hydra/config.yaml, a
    checkpoint file (not read here)."""
    cfg = compose_cfg("train", TINY, folder)
    (folder / ".hydra").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml", resolve=False)
    if drop_spot_init:  # a run made before evaluation.spot.init existed
        with open_dict(cfg):
            del cfg.evaluation.spot["init"]
    OmegaConf.save(cfg, folder / "config.yaml", resolve=True)
    return folder


def eval_cfg(args: list[str], output: Path):
    return with_run_config(compose_cfg("eval", prepare_eval_argv(args + ["print_config=false"]), output))


def test_a_data_override_reaches_the_model_keys_linked_to_it(tmp_path):
    run = fake_run(tmp_path / "run")
    assert OmegaConf.load(run / "config.yaml").model.n_channels == 5  # stored resolved
    cfg = eval_cfg([f"ckpt_path={run}", "data.n_channels=7", "data.window=40"], tmp_path / "eval")
    assert (cfg.model.n_channels, cfg.model.window) == (7, 40)
    cfg = eval_cfg([f"ckpt_path={run}", "data.n_channels=7", "model.n_channels=3"], tmp_path / "eval2")
    assert cfg.model.n_channels == 3  # an explicit model key wins


def test_evaluation_keys_added_after_the_run_keep_their_defaults(tmp_path):
    run = fake_run(tmp_path / "run", drop_spot_init=True)
    cfg = eval_cfg([f"ckpt_path={run}"], tmp_path / "eval")
    assert cfg.evaluation.spot.init == "val" and cfg.evaluation.spot.q == 1e-3


@pytest.mark.parametrize("override, message", [
    ("score_ckpt=bset", "score_ckpt='bset': expected best, last"),
    ("evaluation.strategies=[paper,sopt]", "expected each of paper, train_percentile, spot, oracle"),
    ("data.val_fraction=1.0", r"data.val_fraction=1.0: expected a number in \(0, 1\)"),
])
def test_word_options_and_open_ranges_are_checked(tmp_path, override, message):
    with pytest.raises(ConfigValueError, match=message):
        check_options(compose_cfg("train", TINY + [override], tmp_path / "run"))


def test_nested_model_keys_that_followed_a_data_key_follow_it_again(tmp_path):
    """Wave-MambaAD's ``model.decoder.image_size: ${data.crop_size}``: re-scored at another crop size, the decoder
    is built for it (it used to keep the trained size and fail inside the LFSS with a shape error)."""
    from omegaconf import OmegaConf

    from fsad.utils.run_config import _link_model_to_data

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "model:\n  decoder:\n    image_size: ${data.crop_size}\n    depths: [1, 2]\n  lr: 0.1\n")
    cfg = OmegaConf.create({"data": {"crop_size": 128}, "model": {"decoder": {"image_size": 64, "depths": [1, 2]},
                                                                 "lr": 0.1}})
    _link_model_to_data(cfg, tmp_path / "config.yaml", [])
    assert cfg.model.decoder.image_size == 128 and list(cfg.model.decoder.depths) == [1, 2]
