"""Classical baselines as LightningModules: one training epoch collects the training series, the detector is
fitted on it when the epoch's data is complete, and ``score`` rates each step of a window.

They run through the same ``train.py`` / ``eval.py`` pipeline as the deep methods: ``trainer.fit`` collects and
fits (no parameter, no gradient), ``trainer.test`` scores through ``score(x) -> Tensor[B, W]``.

Training protocol:

- ``training_step`` writes each training window into a per-step array (:class:`StepCollector`), so overlapping
  windows count each step once. Nothing is optimised: manual optimisation with an optimiser over no parameters,
  stepped once per batch only so that the Trainer counts the batches as steps (``global_step``), which its
  checkpoint callbacks require before they write a file.
- The detector is fitted when validation starts (validation runs before the epoch-end hooks) and again at the end
  of the epoch if more windows arrived since; then training stops (one epoch is all a baseline needs, whatever
  ``trainer.max_epochs`` says).
- Validation logs ``val/loss``: the mean score of the validation windows (held-out normal data; lower is a
  tighter fit). It exists so that the checkpoint and early-stopping callbacks have their monitored key; with one
  epoch it selects nothing.
- Fitting needs the whole training split in one process: under DDP, fitting stops with an error (scoring a
  trained baseline under DDP works: every process restores the same fitted state from the checkpoint).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from fsad.methods.base import AnomalyDetector
from fsad.methods.baselines.features import StepCollector

log = logging.getLogger(__name__)


class ClassicalBaseline(AnomalyDetector):
    """Collect-then-fit base of the baselines. Subclasses implement :meth:`fit_series`, :meth:`score_steps` and
    :attr:`is_fitted`; they may refit lazily in :meth:`ensure_fitted` (e.g. from training data restored from a
    checkpoint).

    Args:
        n_channels: C of the data.
        window: W of the data's windows (bounds ``window_size`` of the windowed PyOD input).
    """

    def __init__(self, n_channels: int, window: int):
        super().__init__(lr=0.0, lr_halving=False)
        if n_channels < 1 or window < 1:
            raise ValueError(f"n_channels and window must be >= 1, got {n_channels} and {window}")
        self.n_channels, self.window = n_channels, window
        self.automatic_optimization = False
        self._collector: StepCollector | None = None
        self._fitted_on_steps = -1  # collector.steps_added at the last fit

    # --- to implement ---------------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        raise NotImplementedError

    def fit_series(self, values: np.ndarray, seen: np.ndarray) -> None:
        """Fit on the training series: values (T, C) float32 (scaled as the DataModule scales), seen (T,) bool."""
        raise NotImplementedError

    def score_steps(self, x: np.ndarray) -> np.ndarray:
        """x: (B, W, C) float64 -> (B, W) float64 score per step (higher = more anomalous)."""
        raise NotImplementedError

    def ensure_fitted(self) -> None:
        """Called before scoring; raise RuntimeError when the model cannot score."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: train it first (python train.py model=...), "
                               "or score a checkpoint written after its training epoch")

    # --- the score contract ---------------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, W, C) -> (B, W) anomaly score per step, in ``x``'s dtype and device.

        Raises:
            ValueError: x is not (B, W, n_channels), or the detector returned NaN or infinite scores.
            RuntimeError: the model was never fitted.
        """
        if x.ndim != 3 or x.shape[-1] != self.n_channels:
            raise ValueError(f"{type(self).__name__} expects windows (B, W, {self.n_channels}), got "
                             f"{tuple(x.shape)}")
        self.ensure_fitted()
        scores = self.score_steps(x.detach().to("cpu", torch.float64).numpy())
        if not np.isfinite(scores).all():
            raise ValueError(f"{type(self).__name__} returned {int((~np.isfinite(scores)).sum())} non-finite "
                             "scores; see the model's docstring for settings that avoid them")
        return torch.as_tensor(scores, dtype=x.dtype, device=x.device)

    def training_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The mean score of the windows x (B, W, C): what validation logs as ``val/loss``."""
        return {"loss": self.score(x).mean()}

    # --- collect, fit -----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """An optimiser without parameters (its steps change nothing; see the module docstring)."""
        return torch.optim.SGD([{"params": []}], lr=0.0)

    def on_fit_start(self) -> None:
        if self.trainer.world_size > 1:
            raise RuntimeError(f"{type(self).__name__} is fitted on the whole training split in one process; "
                               "train it without DDP (trainer=default), then score it with any trainer")

    def on_train_epoch_start(self) -> None:
        self._collector, self._fitted_on_steps = StepCollector(self.n_channels), -1

    def training_step(self, batch: dict, batch_idx: int) -> None:
        self._collector.add(batch["start"].cpu().numpy(), batch["x"].detach().to("cpu", torch.float32).numpy())
        self.optimizers().step()  # counts the batch as a step; there is nothing to update

    def on_validation_epoch_start(self) -> None:
        self._fit_collected()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if not self.is_fitted:  # a sanity check before any training data: nothing to validate
            return
        super().validation_step(batch, batch_idx)

    def on_train_epoch_end(self) -> None:
        self._fit_collected()
        self._collector = None
        self.trainer.should_stop = True  # one epoch collects everything; the Trainer honours min_epochs

    def _fit_collected(self) -> None:
        """Fit on what the current epoch collected, unless nothing was added since the last fit."""
        collector = self._collector
        if collector is None or collector.steps_added in (0, self._fitted_on_steps):
            return
        values, seen = collector.series()
        started = time.perf_counter()
        self.fit_series(values, seen)
        self._fitted_on_steps = collector.steps_added
        log.info("%s fitted on %d training steps in %.2f s", type(self).__name__, int(seen.sum()),
                 time.perf_counter() - started)


class ZScore(ClassicalBaseline):
    """No-learning reference: the largest per-channel |z-score| of each step,
    ``score[t] = max_c |x[t, c] - mean_c| / std_c``, with ``mean_c`` and ``std_c`` (population) over every
    collected training step.

    A channel whose training std is below ``min_std`` is divided by 1 instead (as sklearn's StandardScaler does
    with a zero scale), so a channel that was constant in training scores its absolute change, not infinity.
    The statistics are buffers (``state_dict``): checkpoints hold everything ``eval.py`` needs.

    Args:
        n_channels, window: C and W of the data.
        min_std: standard deviations below this count as zero.
    """

    def __init__(self, n_channels: int, window: int, min_std: float = 1e-8):
        super().__init__(n_channels=n_channels, window=window)
        self.save_hyperparameters()
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}")
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(n_channels, dtype=torch.float64))
        self.register_buffer("std", torch.ones(n_channels, dtype=torch.float64))
        self.register_buffer("n_fit_steps", torch.zeros((), dtype=torch.int64))

    @property
    def is_fitted(self) -> bool:
        return int(self.n_fit_steps) > 0

    def fit_series(self, values: np.ndarray, seen: np.ndarray) -> None:
        steps = values[seen].astype(np.float64)
        std = steps.std(axis=0)
        std = np.where(std < self.min_std, 1.0, std)
        self.mean.copy_(torch.from_numpy(steps.mean(axis=0)))
        self.std.copy_(torch.from_numpy(std))
        self.n_fit_steps.fill_(len(steps))

    def score_steps(self, x: np.ndarray) -> np.ndarray:
        mean, std = self.mean.cpu().double().numpy(), self.std.cpu().double().numpy()
        return (np.abs(x - mean) / std).max(axis=-1)
