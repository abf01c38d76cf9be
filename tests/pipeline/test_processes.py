"""The entry points as a user runs them: DDP on two CPU processes, and multiruns with a failing job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fsad.utils.runs import _sweep_relaunch_problem
from tests.conftest import PROJECT_ROOT, shared_path
from tests.pipeline.helpers import TINY, image_tiny


def run(script: str, args: list[str], timeout: int = 900, returncode: int = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PROJECT_ROOT=str(PROJECT_ROOT), WANDB_MODE="offline", HYDRA_FULL_ERROR="1")
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == returncode, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow  # two processes, about 35 s
def test_ddp_cpu_trains_scores_every_window_once_in_one_folder(tmp_path: Path):
    train_dir = tmp_path / "train"
    run("train.py", TINY + ["trainer=ddp_cpu", f"hydra.run.dir={train_dir}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # both ranks share one run folder
    assert (train_dir / "metrics.json").is_file()
    ckpt = train_dir / "checkpoints" / "last.ckpt"

    # float64 scoring: two processes see other batch compositions, whose float32 sums differ in the last bits and
    # the window softmax (temperature 50) magnifies that to ~1e-5; in float64 the same effect stays below 1e-12
    float64 = ["trainer.precision=64-true", "print_config=false"]
    run("eval.py", [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'single'}", *float64])
    run("eval.py", [f"ckpt_path={ckpt}", "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}", *float64])
    single, ddp = np.load(tmp_path / "single" / "scores.npz"), np.load(tmp_path / "ddp" / "scores.npz")
    assert set(single.files) == set(ddp.files)
    for name in single.files:
        np.testing.assert_allclose(ddp[name], single[name], rtol=1e-9, atol=1e-12, err_msg=name)
    # no window lost or counted twice: every split's window starts are exactly the loader's (checked when
    # scoring), so both runs report the same counts, and 1,200 test steps in windows of 30 are 40 windows
    metrics = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("single", "ddp")}
    windows = {k: v for k, v in metrics["single"].items() if k.startswith("data/windows_scored/")}
    assert windows["data/windows_scored/test"] == 40
    assert {k: metrics["ddp"][k] for k in windows} == windows
    assert metrics["ddp"]["data/n_test"] == 1200


@pytest.mark.slow  # two processes, about 30 s
def test_ddp_cpu_scores_every_image_once_as_one_process_does(tmp_path: Path):
    """Two scoring processes (the sampler pads 15 test images to 16, one image twice) give the maps, table and
    metrics of one process: no image lost, none counted twice (DDP training itself is covered above)."""
    run("train.py", image_tiny(tmp_path / "synthetic") + [f"hydra.run.dir={tmp_path / 'train'}"])
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    # float64 scoring: the two processes batch the images differently, and float32 convolutions of other batch
    # shapes differ in the last bits (enough to move a float16 map value to its neighbour); float64 keeps them equal
    float64 = ["trainer.precision=64-true", "print_config=false"]
    run("eval.py", [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'single'}", *float64])
    run("eval.py", [f"ckpt_path={ckpt}", "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}", *float64])
    single, ddp = np.load(tmp_path / "single" / "anomaly_maps.npz"), np.load(tmp_path / "ddp" / "anomaly_maps.npz")
    assert single["maps"].shape == (15, 64, 64)
    for name in single.files:
        np.testing.assert_array_equal(ddp[name], single[name], err_msg=name)
    metrics = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("single", "ddp")}
    for key, value in metrics["single"].items():
        if key.startswith("test/"):
            assert metrics["ddp"][key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key
    assert (tmp_path / "ddp" / "per_class.csv").read_text() == (tmp_path / "single" / "per_class.csv").read_text()


def test_multirun_runs_every_job_and_survives_a_failing_one(tmp_path: Path):
    # patch size 7 does not divide the window of 30: that job fails, the others must still run
    args = [a for a in TINY if not a.startswith("model.patch_sizes")] + [
        "model.patch_sizes=[3,5],[7],[1,3,5]", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}"]
    proc = run("train.py", ["-m", *args], returncode=1)  # every job ran, then the failure is the exit status
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
    assert "metrics written to" in (tmp_path / "0" / "train.log").read_text()
    assert "run failed" in (tmp_path / "1" / "train.log").read_text()


def test_a_failed_single_run_leaves_its_log_and_failed_json(tmp_path: Path):
    args = [a for a in TINY if not a.startswith("model.patch_sizes")] + ["model.patch_sizes=[7]",
                                                                        f"hydra.run.dir={tmp_path}"]
    run("train.py", args, returncode=1)
    log = (tmp_path / "train.log").read_text()
    assert "run failed" in log and "Traceback" in log
    failed = json.loads((tmp_path / "failed.json").read_text())
    assert "7" in failed["error"] and "model.patch_sizes=[7]" in failed["overrides"]


def test_help_lists_the_commands_and_the_groups_a_user_chooses_from():
    text = run("train.py", ["--help"]).stdout
    for expected in ("python eval.py ckpt_path=", "ckpt_path=last", "experiment: ", "fkm_ad/msl", "frect/code/msl",
                     "frect/window", "seeds", "python report.py", "evaluation: default, image, paper, prediction", "rd4ad/synthetic_images",
                     "data: cicids2017, gecco, genesis, mpdd, msl", "--multirun"):
        assert expected in text, expected
    assert "paper_preset" not in text and "rem_network" not in text


def test_eval_without_a_checkpoint_prints_usage():
    proc = run("eval.py", [], returncode=2)
    assert proc.stderr.startswith("usage: python eval.py ckpt_path=") and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_sweep_over_nab_series_without_anomalies_finishes(tmp_path: Path):
    """NAB has six series without any labelled anomaly: their jobs finish with null AUC-ROC and every score."""
    root = shared_path("data", "NAB")
    series = "artificialNoAnomaly/art_flatline.csv,realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv," \
             "realKnownCause/nyc_taxi.csv"
    args = [a for a in TINY if not a.startswith(("data.generator", "data.window"))] + [
        "experiment=frect/nab", f"data.root={root}", f"data.series={series}", "data.window=30",
        "trainer.max_epochs=1", "callbacks.rich_progress_bar=null", f"hydra.sweep.dir={tmp_path}"]
    run("train.py", ["-m", *args])
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert [job["status"] for job in summary["jobs"]] == ["ok", "ok", "ok"]
    aucs = [job["metrics"]["test/auc_roc"] for job in summary["jobs"]]
    assert aucs[0] is None and aucs[1] is None and isinstance(aucs[2], float)
    assert all((tmp_path / str(job) / "scores.npz").is_file() for job in range(3))


def test_hydra_run_dir_onto_a_finished_run_is_refused_before_hydra_writes(tmp_path: Path):
    run("train.py", TINY + ["trainer.max_epochs=1", f"hydra.run.dir={tmp_path}"])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    proc = run("train.py", TINY + ["trainer.max_epochs=1", f"hydra.run.dir={tmp_path}"], returncode=2)
    assert "already holds a run" in proc.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before



def test_a_sweep_keeps_its_jobs_in_one_folder_and_is_finished_only_by_its_own_relaunch(tmp_path: Path):
    """Jobs that set another task_name (as experiments do) stay in the sweep's folder; a new sweep never writes into
    it; the same sweep relaunched there with ckpt_path=last leaves its finished jobs as they are and reruns the
    job that never finished."""
    args = TINY + ["trainer.max_epochs=1", f"paths.log_dir={tmp_path}", "print_config=false"]
    run("train.py", ["-m", "task_name=task_a,task_b", *args])
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "ok"), (1, "ok")]
    (sweep / "1" / "metrics.json").unlink()  # as if job 1 had been stopped before its first checkpoint
    for ckpt in (sweep / "1" / "checkpoints").glob("*.ckpt"):
        ckpt.unlink()
    before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    proc = run("train.py", ["-m", "task_name=task_a,task_b", *args, f"hydra.sweep.dir={sweep}"], returncode=2)
    assert f"{sweep} already holds a sweep" in proc.stderr
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before
    other = _sweep_relaunch_problem(sweep, ["-m", "task_name=task_a,task_c", *args, f"hydra.sweep.dir={sweep}",
                                            "ckpt_path=last"])
    assert "it ran " in other and "now " in other and "task_name=task_a,task_c" in other
    assert _sweep_relaunch_problem(sweep, ["-m", "task_name=task_a,task_b", *args, "ckpt_path=last"]) is None
    job0 = (sweep / "0" / "metrics.json").read_bytes()
    run("train.py", ["-m", "task_name=task_a,task_b", *args, f"hydra.sweep.dir={sweep}", "ckpt_path=last"])
    assert (sweep / "0" / "metrics.json").read_bytes() == job0 and (sweep / "1" / "metrics.json").is_file()
    assert {p: before[p] for p in before if "/0/.hydra/" in str(p)} == \
        {p: p.read_bytes() for p in (sweep / "0" / ".hydra").iterdir()}  # the finished job's record, as launched
    assert "ckpt_path=last" in (sweep / "1" / ".hydra" / "overrides.yaml").read_text()
    assert (sweep / "1" / ".hydra.before-relaunch" / "overrides.yaml").read_bytes() == \
        before[sweep / "1" / ".hydra" / "overrides.yaml"]
    assert (sweep / "multirun.before-relaunch-1.yaml").read_bytes() == before[sweep / "multirun.yaml"]
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "ok"), (1, "ok")]
