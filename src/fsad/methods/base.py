"""The LightningModule contract shared by every time-series method.

A method implements ``training_loss(x) -> dict`` (key ``loss`` plus anything to log) and
``score(x) -> Tensor[B, W]`` (higher = more anomalous, one score per window position). Everything else lives
here: the optimiser and the papers' per-epoch halving schedule, validation logging, and scoring loops that gather
window scores from every process (duplicates from distributed padding are removed by window start).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from fsad.utils.checkpoints import CheckpointMismatchError, check_compatible

__all__ = ["AnomalyDetector", "CheckpointMismatchError"]


class AnomalyDetector(L.LightningModule):
    """Base class: Adam with ``lr * 0.5 ** max(epoch - 1, 0)`` (epochs 0 and 1 at the base rate, then halving
    after every epoch, as the Anomaly-Transformer lineage does), ``lr_halving=False`` keeps it constant.
    """

    def __init__(self, lr: float = 1e-4, lr_halving: bool = True, weight_decay: float = 0.0):
        super().__init__()
        self.lr, self.lr_halving, self.weight_decay = lr, lr_halving, weight_decay
        self.scoring_splits: list[str] = []
        self._window_scores: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # --- to implement per method ----------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, W, C) -> dict with ``loss`` (scalar) and optional extra scalars to log."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, W, C) -> (B, W) anomaly score per window position."""
        raise NotImplementedError

    # --- training -------------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.training_loss(batch["x"])
        self.log_dict({f"train/{k}": v.detach() for k, v in out.items()}, prog_bar=False, on_step=False,
                      on_epoch=True, batch_size=len(batch["x"]))
        self.log("train/step_loss", out["loss"].detach(), on_step=True, on_epoch=False, prog_bar=True)
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self.training_loss(batch["x"])
        self.log_dict({f"val/{k}": v for k, v in out.items()}, prog_bar=True, on_epoch=True,
                      batch_size=len(batch["x"]), sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if not self.lr_halving:
            return {"optimizer": opt}
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** max(epoch - 1, 0))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # --- scoring (run through trainer.test with one loader per split) ---------------------------------------
    def on_test_epoch_start(self) -> None:
        self._window_scores = {}

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        scores = self.score(batch["x"])
        self._window_scores.setdefault(dataloader_idx, []).append((batch["start"], scores.detach().float()))

    def on_test_epoch_end(self) -> None:
        self.scored = {}
        for idx, name in enumerate(self.scoring_splits):
            parts = self._window_scores.get(idx, [])
            starts = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, dtype=torch.int64)
            scores = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, 1)
            starts, scores = self.all_gather(starts), self.all_gather(scores)
            if self.trainer.world_size > 1:
                starts, scores = starts.reshape(-1), scores.reshape(-1, scores.shape[-1])
            starts_np, scores_np = starts.cpu().numpy(), scores.cpu().numpy().astype(np.float64)
            unique, first = np.unique(starts_np, return_index=True)
            self.scored[name] = (unique, scores_np[first])
        self._window_scores = {}

    # --- checkpoints know which method wrote them ----------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["fsad_method"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Before Lightning loads the weights: an error naming the differing method or hyperparameters."""
        check_compatible(self, checkpoint)
