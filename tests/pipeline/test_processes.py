"""The entry points as a user runs them: DDP on two CPU processes, and multiruns with a failing job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT
from tests.pipeline.helpers import TINY


def run(script: str, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PROJECT_ROOT=str(PROJECT_ROOT), WANDB_MODE="offline", HYDRA_FULL_ERROR="1")
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_ddp_cpu_trains_scores_every_window_once_in_one_folder(tmp_path: Path):
    train_dir = tmp_path / "train"
    run("train.py", TINY + ["trainer=ddp_cpu", f"hydra.run.dir={train_dir}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # both ranks share one run folder
    assert (train_dir / "metrics.json").is_file()
    ckpt = train_dir / "checkpoints" / "last.ckpt"

    run("eval.py", [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'single'}", "print_config=false"])
    run("eval.py", [f"ckpt_path={ckpt}", "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}", "print_config=false"])
    single, ddp = np.load(tmp_path / "single" / "scores.npz"), np.load(tmp_path / "ddp" / "scores.npz")
    assert set(single.files) == set(ddp.files)
    for name in single.files:
        np.testing.assert_allclose(ddp[name], single[name], rtol=1e-6, atol=1e-9, err_msg=name)
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["data/n_test"] == 1200


def test_multirun_runs_every_job_and_survives_a_failing_one(tmp_path: Path):
    # patch size 7 does not divide the window of 30: that job fails, the others must still run
    args = [a for a in TINY if not a.startswith("model.patch_sizes")] + [
        "model.patch_sizes=[3,5],[7],[1,3,5]", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}"]
    proc = run("train.py", ["-m", *args])
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    status = {job["job"]: job["status"] for job in summary["jobs"]}
    assert status == {0: "ok", 1: "failed", 2: "ok"}
    assert "patch size 7" in summary["jobs"][1]["error"] or "7" in summary["jobs"][1]["error"]
    for job in (0, 2):
        assert (tmp_path / str(job) / "metrics.json").is_file()
    assert (tmp_path / "1" / "failed.json").is_file()
    ok = [json.loads((tmp_path / str(job) / "metrics.json").read_text()) for job in (0, 2)]
    assert summary["mean"]["test/vus_pr"] == pytest.approx((ok[0]["test/vus_pr"] + ok[1]["test/vus_pr"]) / 2)
    assert "1 of 3 jobs did not finish" in proc.stdout + proc.stderr
