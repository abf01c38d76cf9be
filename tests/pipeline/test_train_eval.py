"""End to end on tiny synthetic data: outputs, re-scoring, resume, loggers, bad checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.methods.base import CheckpointMismatchError
from fsad.evaluation.report import score_form_metrics
from fsad.pipeline import evaluate, train
from fsad.utils.run_config import with_run_config
from tests.pipeline.helpers import TINY, compose_cfg


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    cfg = compose_cfg("train", TINY + ["logger=many"], run_dir)
    return run_dir, train(cfg)


def test_run_folder_has_every_output(trained_run):
    run_dir, report = trained_run
    for name in ("metrics.json", "scores.npz", "scores.png", "config.yaml", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "checkpoints").glob("best-epoch*.ckpt"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/auc_roc", "test/auc_pr", "test/vus_pr", "test/vus_roc", "test/paper/f1", "test/paper/f1_pa",
                "test/paper/aff_f1", "test/spot/f1", "test/train_percentile/recall_pa", "test/oracle/f1",
                "threshold/paper", "threshold/spot", "time/fit_seconds", "seed", "versions/torch"):
        assert key in metrics, key
    assert metrics["test/oracle/f1"] >= metrics["test/paper/f1"]  # the oracle is an upper bound
    scores = np.load(run_dir / "scores.npz")
    assert scores["test_scores"].shape == scores["test_labels"].shape == (1200,)
    assert scores["train_scores"].shape == (960,)  # 80 % of 1200: the validation tail is held out
    assert scores["val_scores"].shape == (240,)


def test_reports_carry_every_score_form_beside_the_main_score(trained_run):
    """FreCT's default main score is the code's softmax; the raw logit, its two terms and the paper's form are
    reported beside it, and the main test score is the softmax of the raw one over each scored window."""
    run_dir, report = trained_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for form in ("raw", "raw/kl", "raw/fft", "paper_score"):
        for metric in ("auc_roc", "auc_pr", "vus_roc", "vus_pr"):
            assert isinstance(metrics[f"test/{form}/{metric}"], float), (form, metric)
    assert "test/code/auc_roc" not in metrics  # the main score is the code form
    scores = np.load(run_dir / "scores.npz")
    for name in ("raw", "raw_kl", "raw_fft", "paper_score"):
        assert scores[f"test_scores_{name}"].shape == (1200,) and scores[f"train_scores_{name}"].shape == (960,)
    raw = scores["test_scores_raw"].reshape(40, 30)  # 40 non-overlapping test windows of 30 steps
    softmax = np.exp(raw - raw.max(axis=1, keepdims=True))
    np.testing.assert_allclose(scores["test_scores"], (softmax / softmax.sum(axis=1, keepdims=True)).reshape(-1),
                               rtol=1e-4, atol=1e-7)


def test_score_form_metrics_of_one_class_labels_and_bad_scores():
    forms = {"raw": {"test": np.linspace(0.0, 1.0, 20)}, "bad": {"test": np.r_[np.nan, np.ones(19)]}}
    out = score_form_metrics(forms, np.zeros(20, dtype=np.int64), vus_window=4, taken={})
    for form in ("raw", "bad"):
        for metric in ("auc_roc", "auc_pr", "vus_roc", "vus_pr"):
            assert out[f"test/{form}/{metric}"] is None and isinstance(out[f"error/test/{form}/{metric}"], str)
    assert "NaN" in out["error/test/bad/auc_roc"]
    labels = (np.arange(20) >= 15).astype(np.int64)
    out = score_form_metrics({"raw": {"test": np.arange(20.0)}}, labels, vus_window=4, taken={})
    assert out["test/raw/auc_roc"] == pytest.approx(1.0) and not any(k.startswith("error/") for k in out)
    with pytest.raises(ValueError, match="overwrite"):
        score_form_metrics({"raw": {"test": np.arange(20.0)}}, labels, 4, taken={"test/raw/auc_roc": 0.5})


def test_loggers_really_write(trained_run):
    run_dir, _ = trained_run
    csv_text = next((run_dir / "csv").glob("*/metrics.csv")).read_text()
    assert "train/loss" in csv_text and "test/vus_pr" in csv_text
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline and list(offline[0].glob("*.wandb"))


def test_eval_rescoring_gives_identical_metrics(trained_run, tmp_path):
    run_dir, report = trained_run
    cfg = compose_cfg("eval", [f"ckpt_path={report['ckpt_path']}", "print_config=false"], tmp_path / "eval")
    again = evaluate(with_run_config(cfg))
    for key, value in report.items():
        if key.startswith(("test/", "threshold/")):
            assert again[key] == value, key


def test_eval_rejects_checkpoint_of_another_model(trained_run, tmp_path):
    run_dir, _ = trained_run
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt["fsad_method"] = "fsad.methods.other.Other"
    torch.save(ckpt, tmp_path / "other.ckpt")
    cfg = compose_cfg("eval", [f"ckpt_path={tmp_path / 'other.ckpt'}", "print_config=false"] + TINY[:7],
                      tmp_path / "eval")
    with pytest.raises(CheckpointMismatchError, match="fsad.methods.other.Other"):
        evaluate(cfg)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    cfg = compose_cfg("eval", [f"ckpt_path={tmp_path / 'nope.ckpt'}", "print_config=false"], tmp_path / "eval")
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        evaluate(cfg)


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    """Interrupt after epoch 1 of 3 (the run stops with last.ckpt written), resume with ckpt_path=last."""
    base = TINY + ["trainer.max_epochs=3"]
    full = train(compose_cfg("train", base, tmp_path / "runs" / "full"))
    interrupted_dir = tmp_path / "runs2" / "interrupted"
    train(compose_cfg("train", base + ["trainer.max_epochs=1"], interrupted_dir))
    (interrupted_dir / "metrics.json").unlink()  # as if it had been killed before finishing
    resumed = train(compose_cfg("train", base + ["ckpt_path=last"], tmp_path / "runs2" / "resumed"))
    assert resumed["resumed_from"] == str(interrupted_dir / "checkpoints" / "last.ckpt")
    assert (interrupted_dir / "metrics.json").is_file()  # the interrupted run's folder is completed
    assert not (tmp_path / "runs2" / "resumed" / "metrics.json").exists()
    assert Path(resumed["ckpt_path"]).name == Path(full["ckpt_path"]).name  # the same best epoch is scored
    for key, value in full.items():
        if key.startswith(("test/", "threshold/")):
            assert resumed[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.slow
def test_last_checkpoint_follows_every_epoch_not_only_new_best_ones(tmp_path):
    """With ``mode=max`` the validation loss (which falls) never beats epoch 0, yet last.ckpt must be epoch 2."""
    report = train(compose_cfg("train", TINY + ["trainer.max_epochs=3", "callbacks.model_checkpoint.mode=max",
                                                "callbacks.early_stopping=null"], tmp_path / "run"))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert Path(report["ckpt_path"]).name == "best-epoch000.ckpt"
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 2
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]


def test_unfinished_run_is_required_for_last(tmp_path):
    with pytest.raises(FileNotFoundError, match="no unfinished run"):
        train(compose_cfg("train", TINY + ["ckpt_path=last"], tmp_path / "runs" / "a"))


def test_smd_machines_get_their_own_metrics(tmp_path):
    """Two machines in the raw OmniAnomaly layout, trained concatenated, evaluated per machine."""
    from tests.data.test_smd import write_machine

    rng = np.random.default_rng(0)
    folder = tmp_path / "SMD" / "ServerMachineDataset"
    for name in ("machine-1-1", "machine-1-2"):
        labels = np.zeros(300, dtype=int)
        labels[150:160] = 1
        test = rng.normal(size=(300, 38))
        test[150:160] += 5.0
        write_machine(folder, name, rng.normal(size=(400, 38)), test, labels)
    overrides = [o for o in TINY if not o.startswith("data.generator")] + [
        "data=smd", f"data.root={tmp_path / 'SMD'}", "data.window=30", "data.batch_size=16", "trainer.max_epochs=1",
        "evaluation.per_entity=true", "evaluation.strategies=[train_percentile,oracle]", "logger=csv"]
    cfg = compose_cfg("train", overrides, tmp_path / "run")
    report = train(cfg)
    assert report["data/n_test"] == 600 and report["entity/count"] == 2.0
    for machine in ("machine-1-1", "machine-1-2"):
        assert report[f"entity/{machine}/anomaly_ratio"] == pytest.approx(10 / 300)
    assert report["entity_mean/oracle/f1"] == pytest.approx(
        (report["entity/machine-1-1/oracle/f1"] + report["entity/machine-1-2/oracle/f1"]) / 2)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["entity/machine-1-2/auc_roc"] == pytest.approx(report["entity/machine-1-2/auc_roc"])
