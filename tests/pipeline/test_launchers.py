"""Sweeps beyond the basic launcher: parallel local jobs (joblib), submitit (run locally here; the SLURM job script
rendered without a cluster) and Optuna's search. Every job still writes into its own folder of the sweep, a failed
job is recorded and the others go on, and sweep_summary.json is written at the end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import submitit
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import DictConfig

from fsad.utils.sweep import parallel_jobs, slurm_gpus
from tests.conftest import PROJECT_ROOT
from tests.pipeline.helpers import CONF, TINY

# one job that trains (patch sizes 3 and 5) and one that fails at once (7 does not divide the window of 30)
TWO_JOBS = [a for a in TINY if not a.startswith("model.patch_sizes")] + [
    "model.patch_sizes=[3,5],[7]", "trainer.max_epochs=1", "threads=1"]
# keys of metrics.json that differ between two runs of the same job: where it ran and how long it took
RUN_SPECIFIC = ("ckpt_path", "time/")


def start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PROJECT_ROOT=str(PROJECT_ROOT), WANDB_MODE="offline", HYDRA_FULL_ERROR="1")
    return subprocess.Popen([sys.executable, str(PROJECT_ROOT / "train.py"), *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, returncode: int, timeout: int = 600) -> str:
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == returncode, output[-6000:]
    return output


def summary_of(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep_summary.json").read_text())


def check_two_jobs(sweep_dir: Path) -> dict:
    """The sweep of TWO_JOBS: job 0 finished, job 1 failed with its reason, each in its own folder."""
    summary = summary_of(sweep_dir)
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "ok"), (1, "failed")]
    assert "patch size 7" in summary["jobs"][1]["error"]
    assert (sweep_dir / "0" / "metrics.json").is_file() and (sweep_dir / "0" / "scores.npz").is_file()
    assert (sweep_dir / "1" / "failed.json").is_file() and not (sweep_dir / "1" / "metrics.json").exists()
    assert "metrics written to" in (sweep_dir / "0" / "train.log").read_text()
    assert "run failed" in (sweep_dir / "1" / "train.log").read_text()
    return summary


def compose_train(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


# --- hydra/launcher=local_parallel (joblib, loky worker processes) -------------------------------------------


def test_local_parallel_runs_as_many_jobs_as_fit_the_cores(monkeypatch: pytest.MonkeyPatch):
    import joblib

    cores = joblib.cpu_count()
    for threads in (1, 2, 3, cores, 2 * cores):
        n_jobs = compose_train(["hydra/launcher=local_parallel", f"threads={threads}"]).hydra.launcher.n_jobs
        assert n_jobs == max(1, cores // threads)
        assert n_jobs == 1 or n_jobs * threads <= cores
    assert compose_train(["hydra/launcher=local_parallel", "threads=null"]).hydra.launcher.n_jobs == 1
    monkeypatch.setattr(joblib, "cpu_count", lambda: 16)  # a larger machine
    assert [parallel_jobs(t) for t in (1, 2, 3, 4, 16, 32)] == [16, 8, 5, 4, 1, 1]
    # hydra.launcher.n_jobs=<n> fixes the count instead; the rest is the joblib plugin's config
    cfg = compose_train(["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=3"])
    assert cfg.hydra.launcher.n_jobs == 3
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def test_local_parallel_sweep_runs_jobs_in_worker_processes_each_in_its_own_folder(tmp_path: Path):
    """Two jobs on loky workers (Lightning trains inside one, the other fails): the summary is written by the
    parent at the end, and the sweep exits 1 after both ran."""
    proc = start(["-m", "hydra/launcher=local_parallel", *TWO_JOBS, f"hydra.sweep.dir={tmp_path}"])
    output = finish(proc, returncode=1)
    assert f"Joblib.Parallel(n_jobs={parallel_jobs(1)},backend=loky" in output
    assert "1 of 2 jobs did not finish" in output
    check_two_jobs(tmp_path)
    for job in (0, 1):  # the job number and id as joblib's launcher sets them, the job's own threads
        hydra_cfg = yaml.safe_load((tmp_path / str(job) / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra_cfg["job"]["num"] == job and hydra_cfg["job"]["id"] == f"train_{job}"
        assert yaml.safe_load((tmp_path / str(job) / ".hydra" / "config.yaml").read_text())["threads"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "multirun.yaml", "sweep_summary.json"]


# --- hydra/launcher=submitit_local (here) and slurm (our config of submitit_slurm) ----------------------------


@pytest.mark.slow
def test_submitit_local_sweep_writes_the_summary_of_the_basic_launcher(tmp_path: Path):
    """The same two jobs with the basic launcher and with submitit (each job its own process): the same jobs,
    overrides, statuses and errors, and the same metrics; the seed is set per job (seed_everything), training runs
    on one thread in both, so every metric is equal except where the run lies and how long it took."""
    basic, local = tmp_path / "basic", tmp_path / "submitit"
    procs = [start(["-m", *TWO_JOBS, f"hydra.sweep.dir={basic}"]),
             start(["-m", "hydra/launcher=submitit_local", *TWO_JOBS, f"hydra.sweep.dir={local}"])]
    for proc in procs:
        finish(proc, returncode=1)
    expected, got = check_two_jobs(basic), check_two_jobs(local)
    assert [(j["overrides"], j["status"], j.get("error")) for j in got["jobs"]] == \
        [(j["overrides"], j["status"], j.get("error")) for j in expected["jobs"]]
    metrics, expected_metrics = got["jobs"][0]["metrics"], expected["jobs"][0]["metrics"]
    assert metrics.keys() == expected_metrics.keys()
    compared = [k for k in metrics if not k.startswith(RUN_SPECIFIC)]
    assert len(compared) > 100 and "test/auc_pr" in compared and "test/vus_pr" in compared
    for key in compared:
        assert metrics[key] == expected_metrics[key] or _both_nan(metrics[key], expected_metrics[key]), key
    assert {k: v for k, v in got["mean"].items() if not k.startswith("time/")} == \
        {k: v for k, v in expected["mean"].items() if not k.startswith("time/")}
    # submitit's own files (pickled job, stdout/stderr, result) in a subfolder of the sweep, one per job
    logs = [p for p in (local / ".submitit").glob("*/*_log.out")]
    assert len(logs) == 2
    assert {p.name for p in local.iterdir()} >= {"0", "1", ".submitit", "sweep_summary.json"}


def _both_nan(a: object, b: object) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def _sbatch_script(overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The job script hydra/launcher=slurm would submit for ``overrides``: the plugin's own launch, stopped where
    submitit hands the jobs to sbatch (a fake ``srun`` on PATH passes submitit's check for a cluster)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    cfg = compose_train(["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides])
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)

    class Submitted(Exception):
        pass

    def submit(executor: submitit.AutoExecutor, *args: object) -> None:
        raise Submitted(executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "0"))

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", submit)
    with pytest.raises(Submitted) as submitted:
        launcher.launch([["seed=1"], ["seed=2"]], initial_job_idx=0)
    return str(submitted.value)


def test_slurm_requests_follow_the_trainer_and_the_users_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = _sbatch_script(["trainer=ddp", "threads=4", "hydra.launcher.partition=gpu", "hydra.launcher.mem_gb=64",
                             "hydra.launcher.timeout_min=600", "hydra.launcher.account=lab"], tmp_path, monkeypatch)
    for line in ("--gpus-per-node=2", "--ntasks-per-node=2", "--nodes=1", "--cpus-per-task=4", "--mem=64GB",
                 "--time=600", "--partition=gpu", "--account=lab",
                 f"--output={tmp_path / 'sweep' / '.submitit'}/"):
        assert f"#SBATCH {line}" in script, line
    assert "srun --unbuffered" in script  # one process per task: Lightning's SLURM environment, no spawning

    cpu = _sbatch_script(["+trainer.num_nodes=2"], tmp_path, monkeypatch)  # the default trainer: one CPU process
    assert "--gpus-per-node" not in cpu and "--partition" not in cpu
    for line in ("--ntasks-per-node=1", "--nodes=2", "--cpus-per-task=2", "--time=240"):
        assert f"#SBATCH {line}" in cpu, line
    assert slurm_gpus("gpu", 1) == 1 and slurm_gpus("cpu", 2) is None
    with pytest.raises(ValueError, match="a number of GPUs"):
        slurm_gpus("gpu", "auto")


# --- hydra/sweeper=optuna (conf/sweep/optuna_frect.yaml) ------------------------------------------------------


def test_optuna_frect_composes_a_seeded_in_memory_search():
    sweeper = compose_train(["sweep=optuna_frect"]).hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.storage is None and sweeper.sampler.seed is not None
    assert set(sweeper.params) == {"model.lr", "model.d_model"}


@pytest.mark.slow
def test_optuna_search_writes_its_best_trial_and_one_folder_per_trial(tmp_path: Path):
    space = ["model.d_model=choice(8,16)"]  # the file's search over the learning rate, a tiny model size
    args = [a for a in TINY if not a.startswith("model.d_model")] + space + [
        "sweep=optuna_frect", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1", "threads=1",
        f"hydra.sweep.dir={tmp_path}"]
    finish(start(args), returncode=0)
    summary = summary_of(tmp_path)
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "ok"), (1, "ok")]
    values = {}
    for job in summary["jobs"]:
        params = dict(o.split("=", 1) for o in job["overrides"] if o.startswith(("model.lr=", "model.d_model=")))
        assert 1e-5 <= float(params["model.lr"]) <= 1e-3 and params["model.d_model"] in ("8", "16")
        assert json.loads((tmp_path / str(job["job"]) / "metrics.json").read_text()) == job["metrics"]
        values[(float(params["model.lr"]), int(params["model.d_model"]))] = job["metrics"]["test/auc_pr"]

    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert result["name"] == "optuna"
    best = (result["best_params"]["model.lr"], result["best_params"]["model.d_model"])
    assert result["best_value"] == max(values.values()) == values[best]

    # the sampler's seed fixes the trials: the same study asked again proposes the same two points
    config_space = yaml.safe_load((PROJECT_ROOT / "conf/sweep/optuna_frect.yaml").read_text())["hydra"]["sweeper"]
    distributions, _ = create_params_from_overrides([f"{k}={v}" for k, v in config_space["params"].items()] + space)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=config_space["sampler"]["seed"], n_startup_trials=config_space["sampler"]["n_startup_trials"]))
    proposed = []
    for _ in range(2):
        trial = study.ask()
        proposed.append(tuple(trial._suggest(name, dist) for name, dist in distributions.items()))
        study.tell(trial, 0.0)
    assert sorted(proposed) == sorted(values)
