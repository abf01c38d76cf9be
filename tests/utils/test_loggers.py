"""``log_report`` hands loggers numbers only."""

from __future__ import annotations

import numpy as np

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


def test_figures_reach_tensorboard_under_their_names(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    figure = tmp_path / "overview.png"
    Image.fromarray(np.full((6, 10, 3), 200, np.uint8)).save(figure)
    logger = TensorBoardLogger(save_dir=tmp_path, name="tb", version=0)
    log_report([logger], {"test/exact/mean/mad": 0.5}, {"seed": 0},
               figures={"test/heatmaps": figure, "test/missing": tmp_path / "absent.png"})
    logger.experiment.flush()
    events = EventAccumulator(str(tmp_path / "tb" / "version_0")).Reload()
    assert events.Tags()["images"] == ["test/heatmaps"]
    image = events.Images("test/heatmaps")[0]
    assert (image.width, image.height) == (10, 6)
    assert events.Scalars("test/exact/mean/mad")[0].value == 0.5
