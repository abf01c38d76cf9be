"""The flat report: global metrics, and per-entity metrics at the global thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.evaluation import metrics as M
from fsad.evaluation.report import ScoreSet, build_report


def make_scores() -> ScoreSet:
    # entity a = steps 0..9 (anomaly at 2-3, scored high), entity b = 10..19 (anomaly at 15, missed),
    # entity c = 20..24 (no anomaly)
    labels = np.zeros(25, dtype=np.int64)
    labels[[2, 3, 15]] = 1
    test = np.full(25, 0.1)
    test[[2, 3]] = 0.9
    test[12] = 0.8
    return ScoreSet(train=np.linspace(0, 0.5, 50), train_windows=np.linspace(0, 0.5, 50), test=test,
                    test_labels=labels)


def test_entity_metrics_use_the_global_threshold_and_average_entities_with_anomalies():
    scores = make_scores()
    report = build_report(scores, strategies=["train_percentile"], anomaly_ratio=10.0, vus_window=2,
                          entities=[("a", 0, 10), ("b", 10, 20), ("c", 20, 25)])
    threshold = report["threshold/train_percentile"]
    assert threshold == pytest.approx(np.percentile(scores.train, 90))
    assert report["entity/a/train_percentile/f1"] == pytest.approx(1.0)  # predicts 2, 3 exactly
    assert report["entity/b/train_percentile/f1"] == pytest.approx(0.0)  # predicts 12, truth 15
    assert report["entity/b/train_percentile/precision"] == pytest.approx(0.0)
    assert report["entity_mean/train_percentile/f1"] == pytest.approx(0.5)
    assert report["entity/a/auc_roc"] == pytest.approx(M.auc_roc(scores.test_labels[:10], scores.test[:10]))
    assert report["entity_mean/auc_roc"] == pytest.approx(
        (M.auc_roc(scores.test_labels[:10], scores.test[:10]) + M.auc_roc(scores.test_labels[10:20],
                                                                          scores.test[10:20])) / 2)
    assert report["entity/count"] == 2.0 and report["entity/skipped"] == "c"
    assert not any(k.startswith("entity/c/") for k in report)
    # the global metrics are unchanged by asking for entities
    plain = build_report(scores, strategies=["train_percentile"], anomaly_ratio=10.0, vus_window=2)
    assert {k: v for k, v in report.items() if not k.startswith("entity")} == plain


def test_prediction_protocol_spot_on_validation_never_sees_test():
    """``evaluation=prediction``: SPOT (q 1e-2, level 0.98) fitted on the validation scores only; its threshold
    does not move when the test scores change, and the affiliation scores are those of ``score > threshold``."""
    rng = np.random.default_rng(0)
    val = rng.exponential(1.0, 5000)
    labels = np.zeros(2000, dtype=np.int64)
    labels[1000:1050] = 1
    reports = []
    for shift in (0.0, 5.0):
        test = rng.exponential(1.0, 2000) + shift * labels
        scores = ScoreSet(train=val, train_windows=val, test=test, test_labels=labels, val=val)
        report = build_report(scores, strategies=["spot", "oracle"], anomaly_ratio=1.0, spot_q=1e-2,
                              spot_level=0.98)
        pred = (test > report["threshold/spot"]).astype(np.int64)
        assert report["test/spot/aff_f1"] == pytest.approx(M.affiliation(labels, pred)["f1"])
        reports.append(report)
    assert reports[0]["threshold/spot"] == reports[1]["threshold/spot"]
    assert not any(key.startswith("test/paper/") for key in reports[0])
    assert reports[1]["test/spot/aff_f1"] > reports[0]["test/spot/aff_f1"]


def test_all_positive_reference_needs_no_scores():
    """``test/all_positive/*`` is the score of predicting every step anomalous: recall 1, point precision = the
    anomaly ratio, and the same for any model's scores."""
    scores = make_scores()
    report = build_report(scores, strategies=[], anomaly_ratio=10.0, vus_window=2)
    assert report["test/all_positive/recall"] == 1.0 and report["test/all_positive/aff_recall"] == 1.0
    assert report["test/all_positive/precision"] == pytest.approx(3 / 25)
    ones = np.ones(25, dtype=np.int64)
    assert report["test/all_positive/aff_f1"] == pytest.approx(M.affiliation(scores.test_labels, ones)["f1"])
    flipped = ScoreSet(train=scores.train, train_windows=scores.train_windows, test=-scores.test,
                       test_labels=scores.test_labels)
    other = build_report(flipped, strategies=[], anomaly_ratio=10.0, vus_window=2)
    assert {k: v for k, v in other.items() if "all_positive" in k} == \
        {k: v for k, v in report.items() if "all_positive" in k}
