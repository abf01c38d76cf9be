"""The image task through the same entry points as time series: train, outputs, re-scoring, history, mismatches."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.evaluation.component import TaskMismatchError
from fsad.pipeline import evaluate, train
from fsad.utils.run_config import with_run_config
from tests.pipeline.helpers import compose_cfg, image_tiny

METRICS = ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap", "pixel_f1_max", "au_pro", "mad")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("images")
    run_dir = base / "runs" / "train"
    train(compose_cfg("train", image_tiny(base / "synthetic"), run_dir))
    return base, run_dir


def test_a_run_writes_metrics_maps_table_and_overlays(trained):
    base, run_dir = trained
    report = json.loads((run_dir / "metrics.json").read_text())
    classes = report["data/classes"].split(",")
    assert len(classes) == 3 and report["data/n_test"] == 15 and report["data/n_train"] == 12
    for protocol in ("exact", "ader"):
        for metric in METRICS:
            for name in (*classes, "mean", "random/mean"):
                assert f"test/{protocol}/{name}/{metric}" in report, (protocol, name, metric)
    assert report["test/exact/random/mean/image_auroc"] == 0.5
    assert report["encoder/pretrained"] is False and report["encoder/sha256"] == ""
    assert report["evaluation/protocols"] == "exact,ader"

    maps = np.load(run_dir / "anomaly_maps.npz")
    assert maps["maps"].shape == (15, 64, 64) and maps["maps"].dtype == np.float16
    assert len(set(maps["paths"].tolist())) == 15 and list(dict.fromkeys(maps["classes"].tolist())) == classes
    assert maps["labels"].sum() == 9

    rows = list(csv.DictReader((run_dir / "per_class.csv").open()))
    assert [(r["protocol"], r["class"]) for r in rows] == [(p, c) for p in ("exact", "ader")
                                                           for c in (*classes, "mean", "random")]
    mean = next(r for r in rows if r["protocol"] == "exact" and r["class"] == "mean")
    assert float(mean["mad"]) == pytest.approx(report["test/exact/mean/mad"], abs=1e-6)

    panels = sorted(p.relative_to(run_dir / "heatmaps").as_posix() for p in (run_dir / "heatmaps").rglob("*.png"))
    assert "overview.png" in panels and len(panels) == 1 + 3 * 2
    assert all(p.split("/")[0] in classes for p in panels if p != "overview.png")


def test_eval_rescores_an_image_run_to_identical_numbers(trained, tmp_path: Path):
    base, run_dir = trained
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    cfg = compose_cfg("eval", [f"ckpt_path={ckpt}", "print_config=false"], tmp_path)
    report = evaluate(with_run_config(cfg))
    trained_report = json.loads((run_dir / "metrics.json").read_text())
    for key, value in trained_report.items():
        if key.startswith("test/"):
            assert report[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
    np.testing.assert_array_equal(np.load(tmp_path / "anomaly_maps.npz")["maps"],
                                  np.load(run_dir / "anomaly_maps.npz")["maps"])


@pytest.mark.parametrize("experiment", ["rd4ad/synthetic_images", "wave_mambaad/mvtec", "red_f/msl"])
def test_eval_composes_with_an_experiment_choice(tmp_path: Path, experiment: str):
    """``eval.py ckpt_path=... experiment=...`` composes (experiment files override the callbacks group, which
    eval.yaml used not to have: Hydra stopped with "Could not override 'callbacks'"); whether the choice
    contradicts the run is then checked against the run's own choices."""
    cfg = compose_cfg("eval", ["ckpt_path=x", f"experiment={experiment}"], tmp_path)
    assert cfg.model._target_


def test_history_every_k_epochs_ends_with_the_reported_last_epoch(trained, tmp_path: Path):
    base, _ = trained
    cfg = compose_cfg("train", image_tiny(base / "synthetic") + ["trainer.max_epochs=2", "evaluation.every_n_epochs=1",
                                                                 "evaluation.protocols=[exact]",
                                                                 "evaluation.heatmaps.per_class=0"], tmp_path)
    report = train(cfg)
    history = json.loads((tmp_path / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert "test/ader/mean/mad" not in report and report["time/epochs"] == 2.0
    # the result is the last epoch's weights scored from last.ckpt: the history's last entry, not its best
    for key, value in history[-1].items():
        if key.startswith("test/"):
            assert report[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key


@pytest.mark.parametrize("overrides", [
    ["data=synthetic_images", "model=frect", "evaluation=image"],
    ["data=synthetic", "model=rd4ad", "evaluation=image"],
    ["data=synthetic_images", "model=rd4ad", "evaluation=default"],
], ids=["ts-model-on-images", "images-model-on-series", "series-evaluation-on-images"])
def test_data_model_and_evaluation_of_different_tasks_stop_before_training(tmp_path: Path, overrides: list[str]):
    cfg = compose_cfg("train", overrides + ["print_config=false", f"data.root={tmp_path / 'synthetic'}"]
                      if "data=synthetic_images" in overrides else overrides + ["print_config=false"], tmp_path / "run")
    with pytest.raises(TaskMismatchError, match="evaluation=image"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_a_resumed_image_run_ends_like_an_uninterrupted_one(trained, tmp_path: Path):
    """Two epochs in one go, and one epoch interrupted then resumed with ckpt_path=last, give the same maps."""
    base, _ = trained
    overrides = image_tiny(base / "synthetic") + ["trainer.max_epochs=2", "evaluation.heatmaps.per_class=0",
                                                  "evaluation.protocols=[exact]"]
    full = train(compose_cfg("train", overrides, tmp_path / "runs" / "full"))
    interrupted = tmp_path / "runs2" / "interrupted"
    train(compose_cfg("train", overrides + ["trainer.max_epochs=1"], interrupted))
    (interrupted / "metrics.json").unlink()  # as if it had been killed before scoring
    resumed = train(compose_cfg("train", overrides + ["ckpt_path=last"], tmp_path / "runs2" / "resumed"))
    assert resumed["resumed_from"] == str(interrupted / "checkpoints" / "last.ckpt")
    assert resumed["time/epochs"] == full["time/epochs"] == 2.0
    for key, value in full.items():
        if key.startswith("test/"):
            assert resumed[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key
    np.testing.assert_array_equal(np.load(interrupted / "anomaly_maps.npz")["maps"],
                                  np.load(tmp_path / "runs" / "full" / "anomaly_maps.npz")["maps"])


def test_rescoring_takes_the_teacher_from_the_checkpoint_not_the_weight_file(trained, tmp_path: Path):
    """The weight file named at training time may be gone when a run is re-scored: the checkpoint has the weights
    and their record (file, SHA-256)."""
    from fsad.layers.resnet import ResNet34Features

    base, _ = trained
    weights = tmp_path / "resnet34.pth"
    torch.manual_seed(3)
    torch.save(ResNet34Features().state_dict(), weights)
    run_dir = tmp_path / "run"
    report = train(compose_cfg("train", image_tiny(base / "synthetic") + [f"model.encoder.weights={weights}",
                                                                          "evaluation.heatmaps.per_class=0"], run_dir))
    assert report["encoder/pretrained"] is True and report["encoder/weights"] == str(weights)
    weights.unlink()
    cfg = compose_cfg("eval", [f"ckpt_path={run_dir}", "print_config=false"], tmp_path / "eval")
    again = evaluate(with_run_config(cfg))
    assert again["encoder/sha256"] == report["encoder/sha256"] and again["encoder/pretrained"] is True
    for key, value in report.items():
        if key.startswith("test/"):
            assert again[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key


@pytest.mark.parametrize("override, match", [
    ("evaluation.image_score_pool=0", "evaluation.image_score_pool"),
    ("evaluation.heatmaps.per_class=abc", "evaluation.heatmaps.per_class"),
    ("evaluation.heatmaps.alpha=7", "evaluation.heatmaps.alpha"),
    ("evaluation.protocols=[exact,exact]", "evaluation.protocols"),
    ("model.gaussian_sigma=-1", "model.gaussian_sigma"),
])
def test_bad_image_options_stop_before_training(trained, tmp_path: Path, override: str, match: str):
    base, _ = trained
    with pytest.raises(Exception, match=match):
        train(compose_cfg("train", image_tiny(base / "synthetic") + [override], tmp_path / "run"))
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.json"))


def test_an_anomalous_image_with_an_empty_mask_stays_anomalous(tmp_path: Path):
    """The image label is the folder's: an image of a defect folder whose mask is empty at the evaluation size still
    counts as anomalous for the image metrics (and adds no defect pixel)."""
    from fsad.evaluation.image_evaluation import ImageEvaluation

    maps = np.zeros((4, 8, 8), np.float32)
    maps[[1, 3]] += 1.0  # the two anomalous images score higher
    masks = np.zeros((4, 8, 8), bool)
    masks[1, 2:4, 2:4] = True  # image 3's mask is empty
    scored = {"maps": maps, "masks": masks, "labels": np.array([0, 1, 0, 1]), "class_ids": np.zeros(4, np.int64),
              "index": np.arange(4)}
    report = ImageEvaluation(protocols=["exact"]).metrics(scored, ["a"])
    assert report["test/exact/a/image_auroc"] == 1.0 and report["test/exact/a/image_ap"] == 1.0
    assert report["test/exact/random/a/image_ap"] == 0.5


TABLE3_ROWS = ["full", "wm_to_hss", "no_hfss", "no_lfss", "dse_to_mlp", "hfss_horizontal", "hfss_vertical",
               "hfss_no_diagonal", "lfss_spatial"]


@pytest.mark.slow
@pytest.mark.parametrize("run", [f"wave_mambaad/synthetic_images ablation=wave_mambaad/{row}" for row in TABLE3_ROWS]
                         + ["mambaad/synthetic_images"])
def test_every_ablation_row_and_mambaad_train_and_score(trained, tmp_path: Path, run: str):
    """Each Table 3 row and MambaAD through the whole pipeline: one epoch on the tiny benchmark, both protocols."""
    base, _ = trained
    experiment, *ablation = run.split()
    overrides = [f"experiment={experiment}", *ablation, *image_tiny(base / "synthetic")[1:],
                 "evaluation.heatmaps.per_class=0",
                 f"model.decoder.depths={[2] * 4 if experiment.startswith('mambaad') else [1] * 4}"]
    report = train(compose_cfg("train", overrides, tmp_path / "run"))
    assert np.isfinite(report["test/exact/mean/mad"]) and np.isfinite(report["test/ader/mean/pixel_auroc"])
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("experiment", ["mambaad/synthetic_images", "rd4ad/synthetic_images"])
def test_an_ablation_row_of_another_method_is_named_before_anything_is_built(tmp_path: Path, experiment: str):
    overrides = [f"experiment={experiment}", "ablation=wave_mambaad/no_lfss", *image_tiny(tmp_path / "synthetic")[1:]]
    with pytest.raises(TaskMismatchError, match="ablation=wave_mambaad/no_lfss is a row of wave_mambaad's study"):
        train(compose_cfg("train", overrides, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
