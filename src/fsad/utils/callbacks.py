"""Callbacks the pipeline adds to every trainer: the epoch clock and the run-aware progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar


class FitClock(Callback):
    """Counts the epochs a ``fit`` call really trained and how long they took, from the trainer itself (a
    resumed run starts at the restored epoch; the checkpoint file may be rewritten while fitting).

    Attributes:
        first_epoch: the trainer's epoch when training started (after a checkpoint was restored).
        epochs: epochs trained by this call (0 when the restored run had already reached ``max_epochs``).
        seconds: wall seconds from the start of the first trained epoch to the end of training.
    """

    def __init__(self) -> None:
        self.first_epoch, self.epochs, self.seconds = 0, 0, 0.0
        self._started: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_epoch, self._started = trainer.current_epoch, time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs = trainer.current_epoch - self.first_epoch
        self.seconds = time.perf_counter() - self._started if self._started is not None else 0.0

    @property
    def seconds_per_epoch(self) -> float:
        """``seconds / epochs`` (NaN when no epoch was trained)."""
        return self.seconds / self.epochs if self.epochs else float("nan")


class RunProgressBar(RichProgressBar):
    """Rich progress bar that names the run folder (instead of the logger's ``v_num``) and the split being scored
    (``Scoring train``, ``Scoring val``, ``Scoring test``) instead of one ``Testing`` bar per data loader."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._split = ""

    @property
    def test_description(self) -> str:
        return f"Scoring {self._split}".strip() if self._split else "Scoring"

    def on_test_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int,
                            dataloader_idx: int = 0) -> None:
        splits = getattr(pl_module, "scoring_splits", [])
        self._split = splits[dataloader_idx] if dataloader_idx < len(splits) else f"loader {dataloader_idx}"
        super().on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return {"run": run_name(trainer.default_root_dir), **items}


def run_name(run_dir: str | Path) -> str:
    """The run folder's name, with its sweep folder for a sweep job (``<sweep>/<job number>``)."""
    path = Path(run_dir)
    return f"{path.parent.name}/{path.name}" if path.name.isdigit() else path.name
