"""The W&B sweep file generated from a study file: its content, and one agent command run as a single job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from fsad.studies.wandb_sweep import wandb_sweep_config
from fsad.utils.resolvers import register_resolvers
from tests.conftest import PROJECT_ROOT

register_resolvers()


def _compose(name: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=[f"sweep={name}"], return_hydra_config=True)


def test_generated_file_has_the_study_grid_and_a_single_run_command():
    config = wandb_sweep_config(_compose("frect/window"), "frect/window")
    assert config["method"] == "grid" and config["program"] == "train.py"
    assert config["parameters"] == {"experiment": {"values": ["frect/msl", "frect/smap", "frect/psm", "frect/swat"]},
                                    "data.window": {"values": [30, 60, 90, 105, 120, 150]}}
    assert config["metric"] == {"name": "test/auc_pr", "goal": "maximize"}
    assert config["command"][3:6] == ["sweep=frect/window", "hydra.mode=RUN", "logger=wandb"]
    assert config["command"][-1] == "${args_no_hyphens}"
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_list_values_stay_lists_as_the_agent_writes_them():
    config = wandb_sweep_config(_compose("frect/patch_sizes"), "frect/patch_sizes")
    values = config["parameters"]["model.patch_sizes"]["values"]
    assert all(isinstance(v, list) for v in values)


@pytest.mark.slow
def test_an_agent_command_runs_one_job_of_the_study(tmp_path: Path):
    """What ``wandb agent`` runs for one grid point (W&B writes lists as ``[3, 5]``): a single run, not a sweep."""
    cmd = [sys.executable, "train.py", "sweep=frect/window", "hydra.mode=RUN", "experiment=frect/msl",
           "data=synthetic", "data.window=30", "model.patch_sizes=[3, 5]", "debug=limit",
           "data.generator.length=1200", "data.generator.train_length=1200", "model.d_model=16", "model.e_layers=1",
           "print_config=false", f"hydra.run.dir={tmp_path / 'run'}"]
    run = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file() and not (tmp_path / "run" / "0").exists()
