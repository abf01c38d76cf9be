"""W&B as users watch it: runs named after what ran, grouped by sweep, one summary run per study sweep, the
per-class / per-entity table; checked by reading the offline run files back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fsad.utils.loggers import per_group_table
from tests.conftest import PROJECT_ROOT
from tests.wandb_records import summary


def _offline_run(folder: Path) -> dict:
    files = list(folder.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, f"{folder}: {files}"
    return summary(files[0])


def test_image_report_becomes_a_row_per_protocol_and_class_then_mean_and_random():
    report = {}
    for protocol in ("exact", "ader"):
        for name, value in (("bottle", 0.9), ("cable", 0.7), ("mean", 0.8), ("random/mean", 0.5)):
            for metric in ("image_auroc", "mad"):
                report[f"test/{protocol}/{name}/{metric}"] = value
        report[f"test/{protocol}/mean/n_classes"] = 2
    columns, rows = per_group_table(report)
    assert columns[:3] == ["protocol", "class", "image_auroc"] and columns[-1] == "mad"
    assert [r[:2] for r in rows] == [["ader", "bottle"], ["ader", "cable"], ["ader", "mean"], ["ader", "random"],
                                     ["exact", "bottle"], ["exact", "cable"], ["exact", "mean"], ["exact", "random"]]
    assert rows[1][2] == 0.7 and rows[3][-1] == 0.5 and rows[0][3] is None  # image_ap absent: None


def test_entity_report_becomes_a_row_per_entity_then_the_mean():
    report = {"entity/m-1/auc_pr": 0.2, "entity/m-1/paper/f1_pa": 0.5, "entity/m-2/auc_pr": 0.4,
              "entity/m-2/paper/f1_pa": 0.7, "entity_mean/auc_pr": 0.3, "entity_mean/paper/f1_pa": 0.6,
              "entity/count": 2.0, "test/auc_pr": 0.25}
    columns, rows = per_group_table(report)
    assert columns == ["entity", "auc_pr", "paper/f1_pa"]
    assert rows == [["m-1", 0.2, 0.5], ["m-2", 0.4, 0.7], ["mean", 0.3, 0.6]]
    assert per_group_table({"test/auc_pr": 0.1}) is None


def test_a_study_sweep_names_groups_and_summarises_its_runs_in_wandb(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "sweep=frect/window", "experiment=frect/msl", "data=synthetic",
           "data.window=30,60", "debug=limit", "data.generator.length=1200", "data.generator.train_length=1200",
           "model.d_model=16", "model.e_layers=1", "print_config=false", "logger=wandb",
           f"hydra.sweep.dir={sweep_dir}"]
    env = {**__import__("os").environ, "WANDB_MODE": "offline", "WANDB_API_KEY": ""}
    run = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    group = f"frect/window/{sweep_dir.name}"
    for job, window in ((0, 30), (1, 60)):
        wb = _offline_run(sweep_dir / str(job))
        assert wb["name"].startswith(f"frect/synthetic data.window={window} data=synthetic debug=limit ")
        assert len(wb["name"]) <= 128 and "hydra.sweep.dir" not in wb["name"]
        assert wb["group"] == group and wb["job_type"] == "train"
        assert "sweep:frect/window" in wb["tags"] and f"data.window={window}" in wb["tags"]
        assert "frect" in wb["tags"]  # the experiment's own tags
        config = wb["config"]
        assert config["model"]["d_model"] == 16 and config["data"]["window"] == window
        assert "d_model" not in config and "patch_sizes" not in config  # the method's arguments not logged twice
        history = wb["history"]
        assert any("train/loss" in row for row in history)
        assert any(row.get("test/auc_pr") is not None for row in history)
        assert any("test/scores/_type" in row or "test/scores" in str(row) for row in history)
    report_runs = list(sweep_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(report_runs) == 1
    wb = summary(report_runs[0])
    assert wb["group"] == group and wb["job_type"] == "report"
    table = next(row for row in wb["history"] if "study/jobs/_type" in row)
    assert table["study/jobs/nrows"] == 2
    assert any("study/figure/_type" in row for row in wb["history"])
