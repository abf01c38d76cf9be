"""Chance references beside every metric, and a default sweep objective that ranks a constant score at chance."""

from __future__ import annotations

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from fsad.data.synthetic import make_synthetic
from fsad.evaluation.references import random_prediction, random_reference, random_scores
from fsad.evaluation.report import ScoreSet, build_report, ranking_metrics, thresholded_metrics
from tests.conftest import PROJECT_ROOT


def test_random_prediction_flags_exactly_the_ratio_and_is_seeded():
    pred = random_prediction(1000, 0.0374, seed=3)
    assert pred.sum() == 37 and set(np.unique(pred)) == {0, 1}
    np.testing.assert_array_equal(pred, random_prediction(1000, 0.0374, seed=3))
    assert random_prediction(10, 1.0, seed=0).sum() == 10 and random_prediction(10, 0.0, seed=0).sum() == 0
    np.testing.assert_array_equal(random_scores(5, 1), np.random.default_rng(1).random(5))


def test_reference_at_ratio_one_is_predicting_everything_and_seeds_are_recorded():
    labels = np.zeros(400, dtype=np.int64)
    labels[100:110] = labels[300:330] = 1
    ref = random_reference(labels, {"s": 1.0, "none": 0.0}, lambda y, s: ranking_metrics(y, s, 20),
                           thresholded_metrics, seeds=(0, 5))
    everything = thresholded_metrics(labels, np.ones_like(labels))
    for key in ("f1", "aff_f1", "f1_pa", "range_f1"):
        assert ref[f"test/random/s/{key}"] == everything[key]
    assert ref["test/random/none/recall"] == 0.0
    mean_auc = np.mean([ranking_metrics(labels, random_scores(400, seed), 20)["auc_roc"] for seed in (0, 5)])
    assert ref["test/random/auc_roc"] == mean_auc and ref["reference/random_seeds"] == "0,5"


def test_one_class_labels_have_no_threshold_free_reference():
    ref = random_reference(np.zeros(50, dtype=np.int64), {}, lambda y, s: ranking_metrics(y, s, 5),
                           thresholded_metrics)
    assert "test/random/auc_roc" not in ref and "test/random/auc_pr" not in ref


def test_default_optimized_metric_ranks_constant_then_random_then_informative():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        metric = compose(config_name="train").optimized_metric
    record = make_synthetic(length=6000, train_length=6000, n_channels=5, anomaly_ratio=0.05, seed=2024)
    labels = record.test_labels.astype(np.int64)
    zscore = np.abs((record.test - record.train.mean(0)) / record.train.std(0)).max(1)  # an informative score
    scores = {"constant": np.zeros(len(labels)), "random": np.random.default_rng(0).random(len(labels)),
              "informative": zscore}
    values = {name: build_report(ScoreSet(np.zeros(4), np.zeros(4), s, labels), [], 5.0, vus_window=100)[metric]
              for name, s in scores.items()}
    if metric == "test/auc_pr":
        assert values["constant"] == labels.mean()  # chance exactly
    assert values["constant"] < values["random"] < values["informative"]
    assert values["informative"] > 2 * values["random"]
