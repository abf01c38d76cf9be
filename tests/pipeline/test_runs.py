"""Run folders: unique names, resuming only the same unfinished experiment, finished runs left untouched,
unwritable folders caught before training, and every entry point's checks."""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import sys
import random
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from fsad.pipeline import evaluate, train
from fsad.utils.checkpoints import CheckpointReadError
from fsad.utils.config_checks import ConfigValueError
from fsad.utils.run_config import EvalConfigError, prepare_eval_argv, with_run_config
from fsad.utils.runs import RunFolderError
from fsad.studies.folders import read_job
from fsad.utils.sweep import run_job
from tests.pipeline.helpers import CONF, TINY, compose_cfg

ONE_EPOCH = TINY + ["trainer.max_epochs=1", "logger=csv"]


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def unfinished_run(folder: Path, overrides: list[str]) -> Path:
    """A run killed after its first epoch: checkpoints and config.yaml, no metrics.json."""
    train(compose_cfg("train", ONE_EPOCH + overrides, folder))
    (folder / "metrics.json").unlink()
    return folder


# --- 1. every run gets its own folder ---------------------------------------------------------------------------

def test_runs_started_in_the_same_second_get_different_folders():
    """The folder name is the time plus a random suffix, so two runs (or sweeps) started in the same second differ."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    suffixes = []
    for _ in range(2):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="train", return_hydra_config=True)
        run_dir = cfg.hydra.run.dir
        assert cfg.hydra.run.dir == run_dir  # one name per composed config
        for name in (Path(run_dir).name, Path(cfg.hydra.sweep.dir).name):
            assert len(name) == len("2026-01-01_00-00-00_abcdef")
        suffixes.append(Path(run_dir).name[len("2026-01-01_00-00-00"):])
    assert len(set(suffixes)) == 2


# --- 2. ckpt_path=last resumes only the same experiment ---------------------------------------------------------

def test_last_never_touches_an_unfinished_run_of_another_experiment(tmp_path):
    other = unfinished_run(tmp_path / "runs" / "other", ["model.d_model=8"])
    before = digest(other)
    with pytest.raises(RunFolderError, match=r"(?s)other: .*model\.d_model: run 8, now 16"):
        train(compose_cfg("train", ONE_EPOCH + ["ckpt_path=last"], tmp_path / "runs" / "new"))
    assert digest(other) == before


def test_last_skips_newer_runs_of_other_experiments(tmp_path):
    mine = unfinished_run(tmp_path / "runs" / "mine", [])
    unfinished_run(tmp_path / "runs" / "newer_other", ["model.d_model=8"])
    report = train(compose_cfg("train", ONE_EPOCH + ["ckpt_path=last", "trainer.max_epochs=2"],
                               tmp_path / "runs" / "new"))
    assert report["resumed_from"] == str(mine / "checkpoints" / "last.ckpt")
    assert (mine / "metrics.json").is_file()


def test_resuming_keeps_every_config_the_run_ran_with(tmp_path):
    run = unfinished_run(tmp_path / "runs" / "a", [])
    config = (run / "config.yaml").read_bytes()
    train(compose_cfg("train", ONE_EPOCH + [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                                            "trainer.max_epochs=2", "evaluation.spot.q=0.01"], tmp_path / "runs" / "b"))
    assert (run / "config.before-resume-1.yaml").read_bytes() == config
    now = OmegaConf.load(run / "config.yaml")  # describes what produced metrics.json
    assert now.trainer.max_epochs == 2 and now.evaluation.spot.q == 0.01


def test_a_new_run_never_writes_into_a_folder_that_holds_a_run(tmp_path):
    finished = tmp_path / "finished"
    train(compose_cfg("train", ONE_EPOCH, finished))
    before = digest(finished)
    with pytest.raises(RunFolderError, match="already holds a run"):
        run_job(train, compose_cfg("train", ONE_EPOCH, finished))
    assert digest(finished) == before  # no failed.json either


def test_a_run_being_trained_is_never_resumed_by_another_process(tmp_path):
    from fsad.utils.runs import hold_run, in_use

    run = unfinished_run(tmp_path / "runs" / "a", [])
    assert not in_use(run)  # the training process ended: its lock went with it
    with hold_run(run):  # as a live training process holds it
        assert in_use(run)
        with pytest.raises(RunFolderError, match="being trained by another process"):
            train(compose_cfg("train", ONE_EPOCH + ["ckpt_path=last"], tmp_path / "runs" / "b"))
    assert not (run / "metrics.json").exists()


def test_a_truncated_checkpoint_is_named_before_resuming(tmp_path):
    run = unfinished_run(tmp_path / "runs" / "a", [])
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    with pytest.raises(CheckpointReadError, match="last.ckpt: not a checkpoint"):
        train(compose_cfg("train", ONE_EPOCH + ["ckpt_path=last"], tmp_path / "runs" / "b"))
    assert not (run / "failed.json").exists() and not (run / "config.before-resume-1.yaml").exists()


def test_a_copied_checkpoint_never_scores_another_runs_files(tmp_path):
    origin = tmp_path / "runs" / "origin"
    train(compose_cfg("train", ONE_EPOCH, origin))
    loose = tmp_path / "loose.ckpt"
    loose.write_bytes((origin / "checkpoints" / "last.ckpt").read_bytes())
    report = train(compose_cfg("train", ONE_EPOCH + [f"ckpt_path={loose}", "trainer.max_epochs=2"],
                               tmp_path / "runs" / "new"))
    assert Path(report["ckpt_path"]).parent == tmp_path / "runs" / "new" / "checkpoints"


def test_last_in_a_sweep_job_finds_the_same_job_of_an_interrupted_sweep(tmp_path):
    old_job = unfinished_run(tmp_path / "multiruns" / "old_sweep" / "0", [])
    unfinished_run(tmp_path / "multiruns" / "old_sweep" / "1", ["model.d_model=8"])
    report = train(compose_cfg("train", ONE_EPOCH + ["ckpt_path=last", "trainer.max_epochs=2"],
                               tmp_path / "multiruns" / "new_sweep" / "0"))
    assert report["resumed_from"] == str(old_job / "checkpoints" / "last.ckpt")
    job = read_job(tmp_path / "multiruns" / "new_sweep" / "0", 0)  # the new sweep's job follows it to its results
    assert job.status == "ok" and job.folder == old_job and job.metrics == report


# --- 3. a finished run is never written into ---------------------------------------------------------------------

@pytest.mark.parametrize("form", ["checkpoint", pytest.param("folder", marks=pytest.mark.slow)])
def test_a_finished_runs_weights_start_a_new_run(tmp_path, form):
    finished = tmp_path / "runs" / "finished"
    train(compose_cfg("train", ONE_EPOCH, finished))
    before = digest(finished)
    ckpt = finished / "checkpoints" / "last.ckpt"
    new = tmp_path / "runs" / "new"
    report = train(compose_cfg("train", ONE_EPOCH + [f"ckpt_path={ckpt if form == 'checkpoint' else finished}",
                                                     "seed=7"], new))
    assert digest(finished) == before
    assert (new / "metrics.json").is_file() and (new / "checkpoints" / "last.ckpt").is_file()
    started = report["init_from"]
    assert Path(started).parent == finished / "checkpoints"
    assert OmegaConf.load(new / "config.yaml").init_from == started
    assert report["resumed_from"] == "" and report["time/epochs_this_fit"] == 1.0  # trained from epoch 0


# --- 4. unwritable folders are found before training; a lost checkpoint is an error ------------------------------

class ReadOnly:
    """Make writes under ``folder`` fail with PermissionError (as a read-only mount would, even for root)."""

    def __init__(self, monkeypatch, folder: Path):
        self.folder = str(folder)
        real_open, real_os_open = builtins.open, os.open

        def guarded_open(file, mode="r", *args, **kwargs):
            if any(m in mode for m in "wax+") and str(file).startswith(self.folder):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, mode, *args, **kwargs)

        def guarded_os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(path).startswith(self.folder):
                raise PermissionError(13, "Permission denied", str(path))
            return real_os_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)


def test_unwritable_checkpoint_folder_stops_the_run_before_training(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ReadOnly(monkeypatch, run / "checkpoints")
    with pytest.raises(RunFolderError, match="checkpoints: not writable"):
        train(compose_cfg("train", ONE_EPOCH, run))
    assert not (run / "csv").exists()  # nothing was trained


def test_a_checkpoint_that_cannot_be_written_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr("fsad.pipeline.require_writable", lambda *folders: None)  # turns read-only after the check
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ReadOnly(monkeypatch, run / "checkpoints")
    with pytest.raises(PermissionError, match="checkpoints"):
        train(compose_cfg("train", ONE_EPOCH, run))
    assert not (run / "metrics.json").exists()


# --- 5. a test split without anomalies still writes scores and metrics -------------------------------------------

def write_numpy_layout(folder: Path, labels: np.ndarray, channels: int = 3, seed: int = 0) -> Path:
    """``MSL_train.npy``, ``MSL_test.npy``, ``MSL_test_label.npy`` (the Anomaly-Transformer layout)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "MSL_train.npy", rng.normal(size=(600, channels)).astype(np.float32))
    np.save(folder / "MSL_test.npy", rng.normal(size=(len(labels), channels)).astype(np.float32))
    np.save(folder / "MSL_test_label.npy", labels.astype(np.float32))
    return folder


def numpy_layout_overrides(root: Path, channels: int = 3) -> list[str]:
    return [o for o in ONE_EPOCH if not o.startswith("data.generator")] + [
        "data=msl", f"data.root={root}", f"data.n_channels={channels}", "data.window=30", "data.batch_size=16"]


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_test_labels_give_scores_and_metrics(tmp_path, label):
    root = write_numpy_layout(tmp_path / "MSL", np.full(300, label))
    report = train(compose_cfg("train", numpy_layout_overrides(root), tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test/auc_roc"] is None and "error/test/auc_roc" in saved
    assert isinstance(saved["threshold/train_percentile"], float)
    assert np.load(tmp_path / "run" / "scores.npz")["test_scores"].shape == (300,)
    assert report["data/n_test"] == 300.0


# --- 8. seconds per epoch after a resume -------------------------------------------------------------------------

def test_seconds_per_epoch_counts_only_the_epochs_this_fit_trained(tmp_path, caplog):
    run = unfinished_run(tmp_path / "runs" / "a", [])
    caplog.set_level(logging.INFO)
    report = train(compose_cfg("train", ONE_EPOCH + ["ckpt_path=last", "trainer.max_epochs=3"],
                               tmp_path / "runs" / "b"))
    assert report["time/epochs"] == 3.0 and report["time/epochs_this_fit"] == 2.0
    assert 0 < report["time/seconds_per_epoch"] <= report["time/fit_seconds"] / 2
    assert report["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
    assert "resuming" in (run / "train.log").read_text()  # the run's own log covers the resumed part


# --- 9. eval.py: any key of the run can change, contradicting groups cannot ---------------------------------------

@pytest.fixture(scope="module")
def numpy_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("numpy_run")
    labels = np.zeros(300)
    labels[100:120] = 1
    root = write_numpy_layout(base / "MSL", labels)
    run = base / "run"
    train(compose_cfg("train", numpy_layout_overrides(root), run))
    return run


def eval_cfg(args: list[str], output: Path):
    return with_run_config(compose_cfg("eval", prepare_eval_argv(args + ["print_config=false"]), output))


def test_eval_reads_moved_data_and_changed_evaluation_keys(numpy_run, tmp_path):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for path in (numpy_run.parent / "MSL").iterdir():
        (moved / path.name).write_bytes(path.read_bytes())
    cfg = eval_cfg([f"ckpt_path={numpy_run / 'checkpoints' / 'last.ckpt'}", f"data.root={moved}",
                    "evaluation.spot.q=0.01"], tmp_path / "eval")
    assert cfg.data.root == str(moved) and cfg.evaluation.spot.q == 0.01 and cfg.data.n_channels == 3
    report = evaluate(cfg)
    assert report["data/n_test"] == 300.0 and "eval/model_changed" not in report


def test_eval_with_another_model_setting_says_so_in_its_metrics(numpy_run, tmp_path):
    report = evaluate(eval_cfg([f"ckpt_path={numpy_run}", "model.temperature=10", "data.num_workers=0"],
                               tmp_path / "eval"))
    assert report["eval/model_changed"] == "model.temperature: run 50.0, now 10"


def test_eval_of_a_run_folder_scores_the_checkpoint_its_training_scored(numpy_run, tmp_path):
    cfg = eval_cfg([f"ckpt_path={numpy_run}"], tmp_path / "eval")
    assert cfg.ckpt_path == json.loads((numpy_run / "metrics.json").read_text())["ckpt_path"]


@pytest.mark.parametrize("args, message", [
    (["model=transmamba"], "model=transmamba: the checkpoint was trained with"),
    (["data=smd"], "data=smd: the checkpoint was trained with"),
    (["data.rooot=/x"], "'data.rooot' is not a key of the training run's config"),
])
def test_eval_rejects_what_contradicts_the_run(numpy_run, tmp_path, args, message):
    with pytest.raises(EvalConfigError, match=message):
        eval_cfg([f"ckpt_path={numpy_run}", *args], tmp_path / "eval")


def test_eval_accepts_the_runs_own_group_and_another_evaluation_preset(numpy_run, tmp_path):
    cfg = eval_cfg([f"ckpt_path={numpy_run}", "data=msl", "evaluation=paper"], tmp_path / "eval")
    assert cfg.data.n_channels == 3 and cfg.evaluation.train_score_stride == 1  # the paper preset's train energy


# --- 13 and 15. checkpoints that do not fit, or are not checkpoints ----------------------------------------------

def test_checkpoint_of_other_channels_names_the_differing_key(numpy_run, tmp_path):
    root = write_numpy_layout(tmp_path / "MSL5", np.r_[np.zeros(150), np.ones(150)], channels=5)
    cfg = compose_cfg("eval", [f"ckpt_path={numpy_run / 'checkpoints' / 'last.ckpt'}", "print_config=false",
                               "from_run=false", "data=msl", f"data.root={root}", "data.n_channels=5",
                               "data.window=30", "model.d_model=16", "model.patch_sizes=[3,5]", "model.e_layers=1"],
                      tmp_path / "eval")
    from fsad.utils.checkpoints import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError, match=r"model\.n_channels: checkpoint 3, config 5"):
        evaluate(cfg)


@pytest.mark.parametrize("content", [random.Random(0).randbytes(2048), b"", b"not a checkpoint\n", b"e"])  # b"e": IndexError
def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path, content):
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(content)
    cfg = compose_cfg("eval", [f"ckpt_path={bad}", "print_config=false"], tmp_path / "eval")
    with pytest.raises(CheckpointReadError, match="model.ckpt: not a checkpoint") as info:
        evaluate(cfg)
    assert "weights_only" not in str(info.value)
    with pytest.raises(CheckpointReadError, match="not a checkpoint"):
        train(compose_cfg("train", ONE_EPOCH + [f"ckpt_path={bad}"], tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# --- 18. wrong option types stop at once ----------------------------------------------------------------------------

@pytest.mark.parametrize("override, key", [("trainer.max_epochs=abc", "trainer.max_epochs='abc'"),
                                           ("data.window=0", "data.window=0"),
                                           ("model.lr=fast", "model.lr='fast'")])
def test_wrong_types_of_main_options_are_named(tmp_path, override, key):
    with pytest.raises(ConfigValueError, match=key.replace(".", r"\.")):
        train(compose_cfg("train", ONE_EPOCH + [override], tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# --- 21. debug=fdr says that evaluation was skipped ---------------------------------------------------------------

def test_fast_dev_run_says_evaluation_was_skipped(tmp_path, caplog):
    report = train(compose_cfg("train", ONE_EPOCH + ["debug=fdr"], tmp_path / "run"))
    assert report == {}
    assert "evaluation skipped" in caplog.text


# --- 11. the sweep group exists ---------------------------------------------------------------------------------

def test_sweep_group_composes_a_multirun():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["sweep=seeds"], return_hydra_config=True)
        assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
        assert cfg.hydra.sweeper.params.seed == "2024,2025,2026"
        with pytest.raises(MissingConfigException, match="seeds"):
            compose(config_name="train", overrides=["sweep=not_a_study"])


def test_a_fast_dev_run_job_is_a_finished_smoke_test_not_an_incomplete_run(tmp_path):
    """``python train.py -m <overrides> debug=fdr`` is the README's check of every job of a sweep: a job that ran its
    batch is marked ``fast_dev_run`` (it used to read as ``incomplete``, so the multirun exited 1)."""
    run_dir = tmp_path / "multiruns" / "sweep" / "0"
    train(compose_cfg("train", ONE_EPOCH + ["debug=fdr"], run_dir))
    assert json.loads((run_dir / "fast_dev_run.json").read_text()) == {"fast_dev_run": True, "evaluated": False}
    assert read_job(run_dir, 0).status == "fast_dev_run"


@pytest.mark.parametrize(("signal_name", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_an_interrupted_run_exits_non_zero_and_says_how_to_resume(tmp_path, caplog, signal_name, status):
    """Lightning ends a fit stopped by SIGTERM with a SystemExit of no status (the process exited 0, as if the run
    had finished) and one stopped by Ctrl-C with sys.exit(1) while handling the KeyboardInterrupt."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    def stopped(cfg):
        if signal_name == "SIGTERM":
            raise SIGTERMException
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(1)

    with pytest.raises(SystemExit) as stop:
        run_job(stopped, compose_cfg("train", ONE_EPOCH, tmp_path / "run"))
    assert stop.value.code == status
    assert f"interrupted by {signal_name}" in caplog.text and "ckpt_path=last" in caplog.text


def test_a_deliberate_exit_keeps_its_status(tmp_path):
    def exits(cfg):
        sys.exit(2)

    with pytest.raises(SystemExit) as stop:
        run_job(exits, compose_cfg("train", ONE_EPOCH, tmp_path / "run"))
    assert stop.value.code == 2
