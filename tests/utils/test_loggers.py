"""``log_report`` hands loggers numbers only."""

from __future__ import annotations

from fsad.utils.loggers import log_report


class RecordingLogger:
    """The part of a Lightning logger that ``log_report`` uses."""

    def __init__(self) -> None:
        self.metrics: dict = {}
        self.hyperparams: dict = {}

    def log_hyperparams(self, params: dict) -> None:
        self.hyperparams = params

    def log_metrics(self, metrics: dict) -> None:
        self.metrics = metrics

    def save(self) -> None:
        pass


def test_undefined_metrics_and_reasons_are_not_logged():
    logger = RecordingLogger()
    report = {"test/auc_roc": None, "error/test/auc_roc": "labels contains no anomaly: AUC-ROC is undefined",
              "test/anomaly_ratio": 0.0, "threshold/paper": 0.4}
    log_report([logger], report, {"seed": 0}, figures={})
    assert logger.metrics == {"test/anomaly_ratio": 0.0, "threshold/paper": 0.4}
    assert logger.hyperparams == {"seed": 0}
