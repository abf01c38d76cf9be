"""Checkpoints: read safely, mismatches explained by the config keys that differ, writes that cannot vanish."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from fsad.utils.checkpoints import (CheckpointMismatchError, CheckpointReadError, VerifiedCheckpointIO,
                                    check_compatible, read_checkpoint)


class Tiny(nn.Module):
    """A stand-in method whose layer sizes follow its hyperparameters, as the real ones do."""

    def __init__(self, n_channels: int, d_model: int = 4, lr: float = 1e-3):
        super().__init__()
        self.hparams = {"n_channels": n_channels, "d_model": d_model, "lr": lr}
        self.embed = nn.Linear(n_channels, d_model)


def checkpoint_of(model: Tiny) -> dict:
    return {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
            "fsad_method": f"{Tiny.__module__}.{Tiny.__qualname__}"}


def test_a_nested_hyperparameter_is_named_by_its_own_key():
    """The image methods keep their decoder's options in one mapping: the message names the leaf that differs
    (it used to print both whole mappings)."""
    from omegaconf import OmegaConf

    trained, configured = Tiny(3), Tiny(5)
    trained.hparams["decoder"] = {"depths": [1, 2, 2, 2], "d_state": 16}
    configured.hparams["decoder"] = OmegaConf.create({"depths": [1, 1, 1, 1], "d_state": 16})
    with pytest.raises(CheckpointMismatchError) as err:
        check_compatible(configured, checkpoint_of(trained))
    assert "model.decoder.depths: checkpoint [1, 2, 2, 2], config [1, 1, 1, 1]" in str(err.value)
    assert "d_state" not in str(err.value)


def test_a_fitting_checkpoint_passes_even_with_other_training_options():
    check_compatible(Tiny(3, lr=1.0), checkpoint_of(Tiny(3, lr=1e-3)))


def test_a_channel_mismatch_names_the_key_and_the_tensor():
    with pytest.raises(CheckpointMismatchError) as info:
        check_compatible(Tiny(5), checkpoint_of(Tiny(3)))
    message = str(info.value)
    assert "model.n_channels: checkpoint 3, config 5" in message
    assert "embed.weight: checkpoint (4, 3), model (4, 5)" in message
    assert "model.lr" not in message  # only keys that differ are listed


def test_another_method_is_named():
    checkpoint = checkpoint_of(Tiny(3)) | {"fsad_method": "fsad.methods.other.Other"}
    with pytest.raises(CheckpointMismatchError, match="written by method 'fsad.methods.other.Other'"):
        check_compatible(Tiny(3), checkpoint)


def test_read_checkpoint_round_trip_and_rejections(tmp_path: Path):
    good = tmp_path / "good.ckpt"
    torch.save(checkpoint_of(Tiny(3)), good)
    assert read_checkpoint(good)["hyper_parameters"]["n_channels"] == 3
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointReadError, match="plain.pt: a PyTorch file but not a Lightning checkpoint"):
        read_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError, match="absent.ckpt"):
        read_checkpoint(tmp_path / "absent.ckpt")


def test_verified_writer_replaces_files_atomically_and_raises_when_it_cannot_write(tmp_path: Path):
    writer = VerifiedCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    writer.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    writer.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.zeros(2))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with pytest.raises(OSError):
        writer.save_checkpoint({"state_dict": {}}, blocked / "last.ckpt")
