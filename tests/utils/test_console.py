"""The console summary: headline metrics beside their random reference."""

from __future__ import annotations

from fsad.utils.console import headline_rows


def test_summary_headline_rows_pair_each_metric_with_its_random_reference():
    report = {"test/vus_pr": 0.3, "test/random/vus_pr": 0.2, "test/auc_roc": None, "test/random/auc_roc": 0.5,
              "test/spot/aff_f1": 0.7, "test/random/spot/aff_f1": 0.66, "test/spot/f1": 0.1,
              "test/paper/f1_pa": 0.9, "test/random/paper/f1_pa": 0.8, "test/oracle/f1": 0.5}
    assert headline_rows(report) == [("VUS-PR", 0.3, 0.2), ("AUC-ROC", None, 0.5), ("spot: affiliation F1", 0.7, 0.66),
                                     ("spot: point-wise F1", 0.1, None), ("paper protocol: PA-F1", 0.9, 0.8)]
