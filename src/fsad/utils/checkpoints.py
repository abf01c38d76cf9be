"""Checkpoints: read safely, explain a mismatch by the config keys that differ, and never lose one silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fsad.utils.io import atomic_write
from fsad.utils.runs import flatten_keys


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the configured model (another method, or other hyperparameters)."""


class CheckpointReadError(ValueError):
    """A file given as a checkpoint is not one (random bytes, another format, truncated)."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint on the CPU with ``weights_only=True`` (no arbitrary code runs).

    Returns the checkpoint dict (``state_dict``, ``hyper_parameters``, ``epoch``, ...). Raises
    FileNotFoundError when ``path`` is absent and :class:`CheckpointReadError` naming the file when it cannot be
    read or holds no ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler fed arbitrary bytes fails in any way (IndexError on b"e", ...)
        raise CheckpointReadError(f"{path}: not a checkpoint ({_reason(err)}); expected a file written by fsad's "
                                  "training, e.g. <run>/checkpoints/last.ckpt") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointReadError(f"{path}: a PyTorch file but not a Lightning checkpoint (no 'state_dict'); "
                                  "expected a file written by fsad's training, e.g. <run>/checkpoints/last.ckpt")
    return checkpoint


def check_compatible(model: torch.nn.Module, checkpoint: dict[str, Any], where: str = "checkpoint") -> None:
    """Raise :class:`CheckpointMismatchError` when ``checkpoint['state_dict']`` does not fit ``model``: names the
    method that wrote it, or the ``model.*`` hyperparameters that differ and the first tensor whose shape does."""
    expected = f"{type(model).__module__}.{type(model).__qualname__}"
    found = checkpoint.get("fsad_method")
    if found is not None and found != expected:
        raise CheckpointMismatchError(f"{where} was written by method '{found}' but the config's model is "
                                      f"'{expected}'; pick the matching model config (e.g. model=...) or another "
                                      "checkpoint")
    own = model.state_dict()
    saved = checkpoint.get("state_dict", {})
    problems = [f"{name}: checkpoint {tuple(saved[name].shape)}, model {tuple(tensor.shape)}"
                for name, tensor in own.items() if name in saved and isinstance(tensor, torch.Tensor)
                and getattr(saved[name], "shape", None) != tensor.shape]
    problems += [f"{name}: missing from the checkpoint" for name in own if name not in saved]
    problems += [f"{name}: not in the model" for name in saved if name not in own]
    if not problems:
        return
    hparams = dict(getattr(model, "hparams", {}) or {})
    stored = checkpoint.get("hyper_parameters") or {}
    old, new = {}, {}
    flatten_keys(stored, "model", old)
    flatten_keys(hparams, "model", new)  # nested options by their own key (model.decoder.depths)
    differing = [f"{key}: checkpoint {old.get(key)!r}, config {new.get(key)!r}"
                 for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    reason = ("; ".join(differing) if differing else "no hyperparameter differs (the architecture code changed?)")
    raise CheckpointMismatchError(f"{where} does not fit the configured model: {reason}. First of "
                                  f"{len(problems)} tensor differences: {problems[0]}. Use the training run's "
                                  "config (eval.py reads it from the run folder) or set those keys to the "
                                  "checkpoint's values")


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Initialise ``model`` with the weights of the checkpoint at ``path`` (after :func:`check_compatible`)."""
    checkpoint = read_checkpoint(path)
    check_compatible(model, checkpoint, where=str(path))
    model.load_state_dict(checkpoint["state_dict"])


class VerifiedCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer with errors that surface: the file is written atomically by
    :func:`fsad.utils.io.atomic_write` (an unwritable folder raises instead of being logged and ignored) and
    must exist afterwards."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if "://" in str(path):  # remote file systems: Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
        if not Path(path).is_file():
            raise OSError(f"{path}: checkpoint was not written; check that the folder is writable")


def _reason(err: BaseException) -> str:
    """A short cause without torch's advice to disable ``weights_only`` (never safe for a file of unknown origin)."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        return text.split(marker, 1)[1].strip().splitlines()[0]
    first = text.strip().splitlines()[0] if text.strip() else ""
    if "weights_only" in first or not first:
        return f"{type(err).__name__}: unreadable content"
    return f"{type(err).__name__}: {first}"
