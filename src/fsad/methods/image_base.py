"""The LightningModule contract shared by every image method.

A method implements ``training_loss(images) -> dict`` (key ``loss`` plus anything to log) and
``anomaly_maps(images) -> Tensor[B, H, W]`` (higher = more anomalous, at the input resolution). Everything else
lives here: the optimiser and its step schedule, and the scoring loop: each map is smoothed with a Gaussian
(``gaussian_sigma`` pixels, as ADer's evaluator; 0 = none), resized to the evaluation size of the batch's masks
(bilinear), and kept with its image's index, mask, label and class. At the end of scoring the parts of every
process are gathered and de-duplicated by image index (distributed samplers pad with repeated images), so one and
several processes give the same arrays: :attr:`ImageAnomalyDetector.scored` ``[split]`` holds ``index (N,)``,
``maps (N, E, E) float32``, ``masks (N, E, E) bool``, ``labels (N,)``, ``class_ids (N,)`` sorted by index.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import Tensor

from fsad.utils.checkpoints import check_compatible

__all__ = ["ImageAnomalyDetector", "by_image_index", "smooth_maps"]

_KEYS = ("index", "maps", "masks", "labels", "class_ids")


def smooth_maps(maps: Tensor, sigma: float) -> Tensor:
    """Gaussian smoothing of each (H, W) map of ``maps`` (B, H, W) with ``sigma`` pixels (scipy's
    ``gaussian_filter``, reflect borders, truncated at 4 sigma; what ADer's evaluator applies per image, here one
    call for the batch with no smoothing across the image axis). Returns
    float32 maps (float64 when computed so, ``trainer.precision=64-true``) on the input's device; ``sigma <= 0``
    returns them unsmoothed."""
    maps = maps.detach().to(torch.promote_types(maps.dtype, torch.float32))
    if sigma <= 0:
        return maps
    values = maps.cpu().numpy()
    return torch.from_numpy(gaussian_filter(values, sigma=(0, sigma, sigma))).to(maps.device)  # no mixing of images


def by_image_index(arrays: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Scored arrays (one row per scored image, an image possibly twice) -> numpy arrays with one row per image
    index, sorted by it (the first occurrence kept: repeats are the same image); masks as bool."""
    unique, first = np.unique(arrays["index"].cpu().numpy(), return_index=True)
    out = {key: value.cpu().numpy()[first] for key, value in arrays.items()}
    out["index"], out["masks"] = unique, out["masks"].astype(bool)
    return out


class ImageAnomalyDetector(L.LightningModule):
    """Base class of image methods: AdamW/Adam on the trainable parameters (no weight decay on those marked
    ``_no_weight_decay``, the state-space ``A_log`` and ``D``, as ADer's setting), the learning rate multiplied by
    ``lr_gamma`` once ``lr_drop_at`` of the training steps are done (ADer: 0.1 at 80 %; None: constant).

    Args:
        lr: learning rate. betas, weight_decay: of the optimiser. optimizer: ``adamw`` or ``adam``.
        lr_drop_at: fraction of the training steps after which the rate drops, or None.
        lr_gamma: the drop factor.
        gaussian_sigma: smoothing of the anomaly maps in pixels (0: none).
    """

    def __init__(self, lr: float = 5e-3, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 1e-4,
                 optimizer: str = "adamw", lr_drop_at: float | None = 0.8, lr_gamma: float = 0.1,
                 gaussian_sigma: float = 4.0):
        super().__init__()
        if optimizer not in ("adam", "adamw"):
            raise ValueError(f"model.optimizer={optimizer!r}: expected adam or adamw")
        if gaussian_sigma < 0:
            raise ValueError(f"model.gaussian_sigma={gaussian_sigma!r}: expected >= 0 (pixels; 0 = no smoothing)")
        if lr_drop_at is not None and not 0 < lr_drop_at <= 1:
            raise ValueError(f"model.lr_drop_at={lr_drop_at!r}: expected a fraction of the training in (0, 1] or null")
        self.lr, self.betas, self.weight_decay, self.optimizer_name = lr, tuple(betas), weight_decay, optimizer
        self.lr_drop_at, self.lr_gamma, self.gaussian_sigma = lr_drop_at, lr_gamma, gaussian_sigma
        self.scoring_splits: list[str] = []
        self._parts: dict[int, list[dict[str, Tensor]]] = {}
        #: split -> {index, maps, masks, labels, class_ids} numpy arrays of every scored image, sorted by index
        self.scored: dict[str, dict[str, np.ndarray]] = {}

    # --- to implement per method ----------------------------------------------------------------------------
    def training_loss(self, images: Tensor) -> dict[str, Tensor]:
        """images (B, 3, H, W) normalised -> dict with ``loss`` (scalar) and optional extra scalars to log."""
        raise NotImplementedError

    def anomaly_maps(self, images: Tensor) -> Tensor:
        """images (B, 3, H, W) -> (B, H, W) anomaly maps before smoothing."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Facts about the method recorded in ``metrics.json`` (e.g. the teacher's weight file)."""
        return {}

    # --- training -------------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        out = self.training_loss(batch["image"])
        size = len(batch["image"])
        self.log_dict({f"train/{k}": v.detach() for k, v in out.items()}, on_step=False, on_epoch=True,
                      batch_size=size)
        self.log("train/step_loss", out["loss"].detach(), on_step=True, on_epoch=False, prog_bar=True)
        return out["loss"]

    def configure_optimizers(self) -> dict[str, Any]:
        trained = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in trained if not getattr(p, "_no_weight_decay", False)]},
                  {"params": [p for p in trained if getattr(p, "_no_weight_decay", False)], "weight_decay": 0.0}]
        optimiser = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.optimizer_name]
        opt = optimiser([g for g in groups if g["params"]], lr=self.lr, betas=self.betas,
                        weight_decay=self.weight_decay)
        if self.lr_drop_at is None:
            return {"optimizer": opt}
        drop = max(int(self.lr_drop_at * self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[drop], gamma=self.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # --- scoring (run through trainer.test with one loader per split) ---------------------------------------
    @torch.no_grad()
    def maps_at(self, images: Tensor, size: tuple[int, int]) -> Tensor:
        """(B, 3, H, W) -> (B, *size) float32 maps: :meth:`anomaly_maps`, smoothed, resized bilinearly."""
        maps = smooth_maps(self.anomaly_maps(images), self.gaussian_sigma)
        if tuple(maps.shape[-2:]) != tuple(size):
            maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
        return maps

    def on_test_epoch_start(self) -> None:
        self._parts = {}

    @torch.no_grad()
    def score_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One test batch -> ``{index, maps (B, E, E), masks uint8, labels, class_ids}`` with E the masks' size."""
        masks = batch["mask"]
        return {"index": batch["index"], "maps": self.maps_at(batch["image"], masks.shape[-2:]),
                "masks": masks.to(torch.uint8), "labels": batch["label"], "class_ids": batch["class_id"]}

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._parts.setdefault(dataloader_idx, []).append(self.score_batch(batch))

    def on_test_epoch_end(self) -> None:
        self.scored = {name: self._gather(self._parts.get(idx, [])) for idx, name in enumerate(self.scoring_splits)}
        self._parts = {}

    def _gather(self, parts: list[dict[str, Tensor]]) -> dict[str, np.ndarray]:
        """One split's parts from every process, de-duplicated by image index and sorted by it."""
        if not parts:
            raise RuntimeError(f"{type(self).__name__}: no image was scored in a split (empty loader?)")
        local = {key: torch.cat([p[key] for p in parts]) for key in _KEYS}
        if self.trainer.world_size > 1:
            local = {key: self.all_gather(v).reshape(-1, *v.shape[1:]) for key, v in local.items()}
        return by_image_index(local)

    # --- checkpoints know which method wrote them ----------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["fsad_method"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Before Lightning loads the weights: an error naming the differing method or hyperparameters."""
        check_compatible(self, checkpoint)
