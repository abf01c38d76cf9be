"""Test labels with one class only: the report is complete, undefined metrics are None beside ``error/<key>``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fsad.evaluation.report import ScoreSet, build_report
from fsad.utils.io import write_json

TEST = np.array([0.1, 0.2, 0.9, 0.3, 0.1, 0.2])
TRAIN = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])  # 80th percentile 0.4: predicts step 2 only


def report_for(labels: np.ndarray, entities=None) -> dict:
    scores = ScoreSet(train=TRAIN, train_windows=TRAIN, test=TEST, test_labels=labels)
    return build_report(scores, strategies=["train_percentile", "oracle"], anomaly_ratio=20.0, vus_window=2,
                        entities=entities)


def assert_null_convention(report: dict) -> None:
    """Every None has its reason, every reason its None, and everything else is a finite number or a reason."""
    for key, value in report.items():
        if key.startswith("error/"):
            assert report[key.removeprefix("error/")] is None, key
            assert isinstance(value, str) and value, key
        elif value is None:
            assert f"error/{key}" in report, key
        elif key not in ("entity/skipped", "reference/random_seeds"):  # the two documented strings
            assert isinstance(value, float) and math.isfinite(value), key


def test_all_normal_test_labels_give_a_complete_report():
    report = report_for(np.zeros(6, dtype=np.int64))
    assert_null_convention(report)
    for metric in ("auc_roc", "auc_pr", "vus_roc", "vus_pr"):
        assert report[f"test/{metric}"] is None
        assert "no anomaly" in report[f"error/test/{metric}"]
    assert report["test/anomaly_ratio"] == 0.0
    assert report["threshold/train_percentile"] == pytest.approx(0.4)
    assert report["test/train_percentile/predicted_ratio"] == pytest.approx(1 / 6)
    for prefix in ("test/train_percentile/", "test/all_positive/"):
        for metric in ("precision", "recall", "f1", "precision_pa", "recall_pa", "f1_pa"):
            assert report[prefix + metric] == 0.0  # 0/0 is 0 for the point-wise scores: defined
        for metric in ("aff_precision", "aff_recall", "aff_f1", "range_f1", "event_f1"):
            assert report[prefix + metric] is None
            assert "no anomaly" in report[f"error/{prefix}{metric}"]
    # the oracle needs an anomaly to pick a threshold: it fails alone, as any failing strategy
    assert report["threshold/oracle"] is None and "no anomaly" in report["error/threshold/oracle"]
    assert not any(key.startswith("test/oracle/") for key in report)


def test_all_anomalous_test_labels_give_a_complete_report():
    report = report_for(np.ones(6, dtype=np.int64))
    assert_null_convention(report)
    for metric in ("auc_roc", "vus_roc"):
        assert report[f"test/{metric}"] is None
        assert "no normal point" in report[f"error/test/{metric}"]
    assert report["test/auc_pr"] == 1.0 and report["test/vus_pr"] == 1.0
    assert report["test/anomaly_ratio"] == 1.0
    expected = {"predicted_ratio": 1 / 6, "precision": 1.0, "recall": 1 / 6, "f1": 2 / 7, "f1_pa": 1.0,
                "aff_precision": 1.0, "aff_recall": 35 / 48, "aff_f1": 70 / 83, "range_f1": 0.5, "event_f1": 1.0}
    for metric, value in expected.items():
        assert report[f"test/train_percentile/{metric}"] == pytest.approx(value, abs=1e-12), metric
    assert report["threshold/oracle"] == pytest.approx(0.1)  # just below the lowest score: predicts everything
    assert report["test/oracle/f1"] == 1.0
    assert sum(key.startswith("error/") for key in report) == 2


def test_an_all_anomalous_entity_leaves_only_its_roc_metrics_and_their_means_undefined():
    labels = np.array([1, 1, 1, 1, 0, 0])
    report = report_for(labels, entities=[("a", 0, 3), ("b", 3, 6)])
    assert_null_convention(report)
    assert report["entity/a/auc_roc"] is None and "no normal point" in report["error/entity/a/auc_roc"]
    assert report["entity/b/auc_roc"] == 1.0  # 0.3 (anomaly) above 0.1 and 0.2
    assert report["entity_mean/auc_roc"] is None
    assert report["error/entity_mean/auc_roc"].startswith("undefined on entity a: labels contains no normal point")
    assert report["entity/a/auc_pr"] == 1.0 and report["entity/b/auc_pr"] == 1.0
    assert report["entity_mean/auc_pr"] == 1.0
    assert report["entity/count"] == 2.0


def test_malformed_labels_still_raise():
    with pytest.raises(ValueError, match="only 0 and 1"):
        report_for(np.array([0, 2, 0, 0, 1, 0]))


def test_one_class_report_is_written_as_standard_json(tmp_path):
    report = report_for(np.zeros(6, dtype=np.int64))
    write_json(tmp_path / "metrics.json", report)

    def reject(constant: str) -> float:
        raise AssertionError(f"non-standard JSON constant {constant}")

    assert json.loads((tmp_path / "metrics.json").read_text(), parse_constant=reject) == report
