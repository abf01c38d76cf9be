"""The LightningModule contract shared by every time-series method.

A method implements ``training_loss(x) -> dict`` (key ``loss`` plus anything to log) and
``score(x) -> Tensor[B, W]`` (higher = more anomalous, one score per window position). Everything else lives
here: the optimiser and the papers' per-epoch halving schedule, validation logging, and scoring loops that gather
window scores from every process (duplicates from distributed padding are removed by window start).

Optional parts of the contract:

* ``score_forms(x) -> dict[str, Tensor[B, W]]``: other per-step quantities of the same windows (e.g. FreCT's
  pre-softmax logit ``"raw"`` and its terms ``"raw/kl"``, ``"raw/fft"``). They are gathered beside the main score,
  with the same window starts and the same de-duplication, into :attr:`AnomalyDetector.scored_forms`; the pipeline
  reports each like the main score (``test/<form>/auc_roc``, ...). A method that gets its main score and its forms
  from one forward pass overrides ``score_with_forms(x)`` instead of computing the network twice.
* Per-step terms standardised with statistics of *training* windows (FKM-AD's LEH terms, TransMamba's raw
  discrepancy and reconstruction error): the method calls :meth:`AnomalyDetector.register_term_statistics` in
  ``__init__`` and implements ``score_terms(x) -> Tensor[B, K, W]`` (the raw terms) and
  ``scores_from_terms(terms) -> (score, forms)``. ``test_step`` then stores the raw terms; ``on_test_epoch_end``
  fits mean and std of every term over the windows of the split named ``train`` (gathered from every process and
  de-duplicated by start, so one and several processes give the same statistics), keeps them in buffers that
  travel with the checkpoint, and turns the stored terms of every split into scores and forms with them.
  Validation and test windows never enter the statistics; without a ``train`` split the stored statistics are
  used (or :meth:`AnomalyDetector.fit_term_statistics` fits them from any loader of training windows).

Why a post-processing step and not statistics computed at the end of ``fit``: the pipeline scores the *best*
checkpoint, written during ``fit``; statistics of the last epoch's weights would describe other weights, and
fitting them at every checkpoint save would cost a pass over the training set per save. The pipeline scores
train, (val,) test in one ``trainer.test`` call, so the statistics belong to the scored weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from fsad.utils.checkpoints import CheckpointMismatchError, check_compatible

__all__ = ["AnomalyDetector", "CheckpointMismatchError", "MAIN_SCORE", "NotFittedError", "TermMoments"]

#: key of the main score among a batch's stored outputs (a score form may not use it)
MAIN_SCORE = "score"
_TERMS = "terms"  # key of the raw terms stored by test_step until the statistics are fitted


def _at_least_float32(values: Tensor) -> Tensor:
    """Scores kept in float32, or float64 when the method computed them so (``trainer.precision=64-true``)."""
    return values.to(torch.promote_types(values.dtype, torch.float32))


class NotFittedError(RuntimeError):
    """Statistics of training windows were needed before they were estimated."""


class TermMoments:
    """Running count / sum / sum of squares (float64) of K per-step terms, per term.

    ``update(terms)`` takes (B, K, L) (every window position counts once); ``mean`` and ``std`` (population
    standard deviation, floored at ``min_std``) are (K,) float64 tensors in the units of the terms.
    """

    def __init__(self, n_terms: int = 3, min_std: float = 1e-6):
        self.count = torch.zeros((), dtype=torch.float64)
        self.total = torch.zeros(n_terms, dtype=torch.float64)
        self.total_sq = torch.zeros(n_terms, dtype=torch.float64)
        self.min_std = min_std

    def update(self, terms: Tensor) -> None:
        values = terms.detach().to(torch.float64).transpose(0, 1).reshape(terms.shape[1], -1).cpu()
        self.count += values.shape[1]
        self.total += values.sum(dim=1)
        self.total_sq += values.pow(2).sum(dim=1)

    def as_tensor(self) -> Tensor:
        """(1 + 2 * n_terms,) ``[count, sums, sums of squares]`` (for summing over processes)."""
        return torch.cat([self.count.view(1), self.total, self.total_sq])

    @classmethod
    def from_tensor(cls, packed: Tensor, min_std: float = 1e-6) -> TermMoments:
        n_terms = (packed.numel() - 1) // 2
        moments = cls(n_terms, min_std)
        packed = packed.to(torch.float64).cpu()
        moments.count, moments.total, moments.total_sq = packed[0], packed[1:1 + n_terms], packed[1 + n_terms:]
        return moments

    @property
    def mean(self) -> Tensor:
        if self.count <= 0:
            raise ValueError("no values were accumulated")
        return self.total / self.count

    @property
    def std(self) -> Tensor:
        var = (self.total_sq / self.count - self.mean.pow(2)).clamp_min(0.0)
        return var.sqrt().clamp_min(self.min_std)


class AnomalyDetector(L.LightningModule):
    """Base class: Adam with ``lr * 0.5 ** max(epoch - 1, 0)`` (epochs 0 and 1 at the base rate, then halving
    after every epoch, as the Anomaly-Transformer lineage does), ``lr_halving=False`` keeps it constant.
    """

    def __init__(self, lr: float = 1e-4, lr_halving: bool = True, weight_decay: float = 0.0):
        super().__init__()
        self.lr, self.lr_halving, self.weight_decay = lr, lr_halving, weight_decay
        self.scoring_splits: list[str] = []
        # per loader: (window starts (B,), {MAIN_SCORE or form or _TERMS: (B, W) or (B, K, W)}) of every batch
        self._window_scores: dict[int, list[tuple[Tensor, dict[str, Tensor]]]] = {}
        #: split -> (sorted unique window starts (n,), main scores (n, W) float64)
        self.scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: split -> form -> (n, W) float64 scores of the same windows, in the order of ``scored[split][0]``
        self.scored_forms: dict[str, dict[str, np.ndarray]] = {}
        self.term_names: tuple[str, ...] = ()
        self._term_prefix = ""

    # --- to implement per method ----------------------------------------------------------------------------
    def training_loss(self, x: Tensor) -> dict[str, Tensor]:
        """x: (B, W, C) -> dict with ``loss`` (scalar) and optional extra scalars to log."""
        raise NotImplementedError

    def score(self, x: Tensor) -> Tensor:
        """x: (B, W, C) -> (B, W) anomaly score per window position."""
        raise NotImplementedError

    def score_forms(self, x: Tensor) -> dict[str, Tensor]:
        """x: (B, W, C) -> ``{form: (B, W)}``, per-step quantities reported beside the main score (none here).

        Form names are lower-case words joined by ``/`` (``raw``, ``raw/kl``); ``score`` is reserved.
        """
        return {}

    def score_with_forms(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """x: (B, W, C) -> (main score (B, W), forms ``{name: (B, W)}``); override to share one forward pass."""
        return self.score(x), self.score_forms(x)

    def score_terms(self, x: Tensor) -> Tensor:
        """x: (B, W, C) -> (B, K, W) raw per-step terms, for methods with :meth:`register_term_statistics`."""
        raise NotImplementedError

    def scores_from_terms(self, terms: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(B, K, W) raw terms -> (main score (B, W), forms ``{name: (B, W)}``), with the fitted statistics."""
        raise NotImplementedError

    # --- statistics of training windows ---------------------------------------------------------------------
    def register_term_statistics(self, names: Sequence[str], prefix: str) -> None:
        """Buffers ``<prefix>_mean``, ``<prefix>_std`` (K,) float64 and ``<prefix>_fitted`` (bool) for the K terms
        ``names`` of :meth:`score_terms`; they are saved in checkpoints."""
        self.term_names, self._term_prefix = tuple(names), prefix
        self.register_buffer(f"{prefix}_mean", torch.zeros(len(names), dtype=torch.float64))
        self.register_buffer(f"{prefix}_std", torch.ones(len(names), dtype=torch.float64))
        self.register_buffer(f"{prefix}_fitted", torch.zeros((), dtype=torch.bool))

    @property
    def uses_term_statistics(self) -> bool:
        """Whether ``test_step`` stores raw terms (standardised at the end of the epoch) instead of scores."""
        return bool(self.term_names)

    @property
    def term_statistics_fitted(self) -> bool:
        return bool(self.term_names) and bool(getattr(self, f"{self._term_prefix}_fitted"))

    def term_statistics(self) -> tuple[Tensor, Tensor]:
        """(mean (K,), std (K,)) of the terms over training windows; :class:`NotFittedError` before fitting."""
        if not self.term_statistics_fitted:
            raise NotFittedError(f"{type(self).__name__}: the statistics of training windows ({self._term_prefix}: "
                                 f"{', '.join(self.term_names)}) are not fitted: score through the pipeline (its "
                                 "train split fits them) or call fit_term_statistics(train_loader) first")
        return getattr(self, f"{self._term_prefix}_mean"), getattr(self, f"{self._term_prefix}_std")

    def standardise_terms(self, terms: Tensor) -> Tensor:
        """``(T_k - μ_k) / σ_k`` with the training statistics: (B, K, W) -> (B, K, W), in ``terms``' dtype."""
        mean, std = self.term_statistics()
        shape = (1, -1, 1)
        return (terms - mean.to(terms).view(shape)) / std.to(terms).view(shape)

    def set_term_statistics(self, moments: TermMoments) -> None:
        """Store mean and std of training-window terms in the buffers (``<prefix>_fitted`` = 1)."""
        mean, std = (getattr(self, f"{self._term_prefix}_{k}") for k in ("mean", "std"))
        mean.copy_(moments.mean.to(mean))
        std.copy_(moments.std.to(std))
        getattr(self, f"{self._term_prefix}_fitted").fill_(True)

    @torch.no_grad()
    def fit_term_statistics(self, loader: Iterable) -> TermMoments:
        """Estimate the statistics from an iterable of training batches (dicts with ``x``, or (B, W, C) tensors)."""
        was_training = self.training
        self.eval()
        moments = TermMoments(len(self.term_names))
        for batch in loader:
            x = batch["x"] if isinstance(batch, dict) else batch
            moments.update(self.score_terms(x.to(self.device)))
        self.set_term_statistics(moments)
        self.train(was_training)
        return moments

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

    @torch.no_grad()
    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        x = batch["x"]
        if self.uses_term_statistics:
            outputs = {_TERMS: self.score_terms(x)}
        else:
            score, forms = self.score_with_forms(x)
            if MAIN_SCORE in forms:
                raise ValueError(f"{type(self).__name__}.score_forms may not use the reserved name {MAIN_SCORE!r}")
            outputs = {MAIN_SCORE: score, **forms}
        outputs = {key: _at_least_float32(value.detach()) for key, value in outputs.items()}
        self._window_scores.setdefault(dataloader_idx, []).append((batch["start"], outputs))

    def on_test_epoch_end(self) -> None:
        if self.uses_term_statistics:
            self._fit_term_statistics_on_train_split()
            for idx, parts in self._window_scores.items():
                self._window_scores[idx] = [(starts, self._outputs_from_terms(out[_TERMS])) for starts, out in parts]
        self.scored, self.scored_forms = {}, {}
        for idx, name in enumerate(self.scoring_splits):
            unique, arrays = self._gather_split(self._window_scores.get(idx, []), default_key=MAIN_SCORE)
            self.scored[name] = (unique, arrays.pop(MAIN_SCORE))
            self.scored_forms[name] = arrays
        self._window_scores = {}

    def _gather_split(self, parts: list[tuple[Tensor, dict[str, Tensor]]],
                      default_key: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One split's stored outputs from every process, de-duplicated by window start.

        Returns the sorted unique starts (n,) and, per output key, its float64 values (n, ...) of those windows
        (the first occurrence of a start; duplicates from distributed padding are the same window).
        """
        starts = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, dtype=torch.int64)
        keys = list(parts[0][1]) if parts else [default_key]
        values = {key: torch.cat([p[1][key] for p in parts]) if parts else torch.zeros(0, 1) for key in keys}
        starts, values = self.all_gather(starts), {key: self.all_gather(v) for key, v in values.items()}
        if self.trainer.world_size > 1:
            starts = starts.reshape(-1)
            values = {key: v.reshape(-1, *v.shape[2:]) for key, v in values.items()}
        unique, first = np.unique(starts.cpu().numpy(), return_index=True)
        return unique, {key: v.cpu().numpy().astype(np.float64)[first] for key, v in values.items()}

    def _fit_term_statistics_on_train_split(self) -> None:
        """Statistics of the stored terms of the ``train`` split's unique windows (all processes), if scored."""
        if "train" not in self.scoring_splits:
            return
        parts = self._window_scores.get(self.scoring_splits.index("train"), [])
        _, arrays = self._gather_split(parts, default_key=_TERMS)
        terms = arrays[_TERMS]
        if terms.ndim == 3 and len(terms):
            moments = TermMoments(len(self.term_names))
            moments.update(torch.from_numpy(terms))
            self.set_term_statistics(moments)

    def _outputs_from_terms(self, terms: Tensor) -> dict[str, Tensor]:
        score, forms = self.scores_from_terms(terms)
        if MAIN_SCORE in forms:
            raise ValueError(f"{type(self).__name__}.scores_from_terms may not name a form {MAIN_SCORE!r}")
        return {MAIN_SCORE: _at_least_float32(score), **{key: _at_least_float32(v) for key, v in forms.items()}}

    # --- checkpoints know which method wrote them ----------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["fsad_method"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Before Lightning loads the weights: an error naming the differing method or hyperparameters.

        A checkpoint written before the method kept training statistics gets unfitted ones (the scoring of a
        ``train`` split fits them again)."""
        if self.term_names:
            state = checkpoint.get("state_dict", {})
            for suffix in ("mean", "std", "fitted"):
                name = f"{self._term_prefix}_{suffix}"
                if state and name not in state:
                    state[name] = getattr(self, name).detach().clone().cpu()
        check_compatible(self, checkpoint)
