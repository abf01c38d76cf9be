"""Reverse distillation: shapes, the frozen teacher, the loss and map definitions, a replaceable decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import nn

from fsad.layers.half_fpn import HalfFPNBottleneck
from fsad.methods.image_base import smooth_maps
from fsad.methods.reverse_distillation import ConvStudentDecoder, ReverseDistillation

CONV = {"_target_": "fsad.methods.reverse_distillation.ConvStudentDecoder", "depths": [1, 1, 1]}


class TeacherCopy(nn.Module):
    """A decoder that returns fixed features: used to put known student features into the method."""

    def __init__(self) -> None:
        super().__init__()
        self.features: list[torch.Tensor] = []
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        return [f + 0 * self.weight for f in self.features]


@pytest.fixture
def model(single_thread) -> ReverseDistillation:
    torch.manual_seed(0)
    return ReverseDistillation(decoder=CONV, lr_drop_at=None)


def test_bottleneck_and_decoder_shapes_mirror_the_teacher(model: ReverseDistillation):
    images = torch.randn(2, 3, 64, 64)
    teacher, student = model.features(images)
    assert [tuple(t.shape) for t in teacher] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert [s.shape for s in student] == [t.shape for t in teacher]
    assert HalfFPNBottleneck()(teacher).shape == (2, 512, 2, 2)
    assert model.anomaly_maps(images).shape == (2, 64, 64)


def test_bottleneck_parameters_match_the_published_count():
    """ADer's MambaAD logs count the MFF_OCE bottleneck at 1.458 M parameters (BatchNorm); instance norms without
    affine parameters have 7,680 fewer."""
    count = {norm: sum(p.numel() for p in HalfFPNBottleneck(norm=norm).parameters()) for norm in ("batch", "instance")}
    assert count == {"batch": 1_458_304, "instance": 1_450_624}
    with pytest.raises(ValueError, match="group"):
        HalfFPNBottleneck(norm="group")


def test_rd4ad_decoder_has_the_de_resnet34_depths():
    decoder = ConvStudentDecoder()
    assert [len(stage) for stage in decoder.stages] == [3, 4, 6]
    with pytest.raises(ValueError, match="depth >= 1"):
        ConvStudentDecoder(depths=(0, 1, 1))


@pytest.mark.parametrize("size", [72, 0, 100])
def test_an_image_size_the_frame_cannot_invert_is_named_before_training(size: int):
    """72 used to pass and fail inside the first training step (student 24 x 24 against the teacher's 18 x 18)."""
    with pytest.raises(ValueError, match=rf"model.decoder.image_size={size} \(data.crop_size\): expected a positive "
                                         "multiple of 32"):
        ConvStudentDecoder(image_size=size)
    assert len(ConvStudentDecoder(image_size=96).stages) == 3


def test_a_training_step_changes_the_student_and_never_the_teacher(model: ReverseDistillation):
    teacher_before = {k: v.clone() for k, v in model.encoder.state_dict().items() if isinstance(v, torch.Tensor)}
    student_before = [p.detach().clone() for p in model.decoder.parameters()]
    model.train()
    assert not model.encoder.training  # frozen, eval mode, even under the parent's train()
    optimiser = model.configure_optimizers()["optimizer"]
    assert all(p.requires_grad for group in optimiser.param_groups for p in group["params"])
    assert sum(p.numel() for g in optimiser.param_groups for p in g["params"]) == \
        sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.encoder.parameters())
    loss = model.training_loss(torch.randn(2, 3, 64, 64))["loss"]
    loss.backward()
    optimiser.step()
    for key, value in model.encoder.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, teacher_before[key]), key
    assert any(not torch.equal(p, q) for p, q in zip(model.decoder.parameters(), student_before))


def test_loss_and_map_follow_their_definitions(single_thread):
    torch.manual_seed(1)
    model = ReverseDistillation(decoder={"_target_": f"{__name__}.TeacherCopy"}, lr_drop_at=None)
    images = torch.randn(2, 3, 64, 64)
    teacher = model.encoder(images)
    # student = teacher: cosine loss 0, maps 0
    model.decoder.features = [t.clone() for t in teacher]
    assert model.training_loss(images)["loss"].item() == pytest.approx(0, abs=1e-6)
    assert model.anomaly_maps(images).abs().max().item() == pytest.approx(0, abs=1e-6)
    # student = -teacher: 1 - cos = 2 everywhere; per scale and image, so the loss is 3 x 2 and the map 3 x 2
    model.decoder.features = [-t for t in teacher]
    assert model.training_loss(images)["loss"].item() == pytest.approx(6.0, abs=1e-5)
    np.testing.assert_allclose(model.anomaly_maps(images).detach().numpy(), 6.0, atol=1e-5)
    # the cosine loss compares each image's flattened maps (RD4AD Eq. 2), the map the channels per pixel (Eq. 3)
    student = [t + torch.randn_like(t) for t in teacher]
    model.decoder.features = student
    expected = sum((1 - F.cosine_similarity(t.flatten(1), s.flatten(1))).mean() for t, s in zip(teacher, student))
    assert model.training_loss(images)["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    expected_map = sum(F.interpolate((1 - F.cosine_similarity(t, s, dim=1))[:, None], size=(64, 64),
                                     mode="bilinear", align_corners=True)[:, 0] for t, s in zip(teacher, student))
    torch.testing.assert_close(model.anomaly_maps(images), expected_map)
    model.loss_name = "mse"
    expected = sum(5.0 * ((t - s) ** 2).mean() for t, s in zip(teacher, student))
    assert model.training_loss(images)["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"decoder": None}, "model.decoder"),
    ({"decoder": {"depths": [1, 1, 1]}}, "_target_"),
    ({"decoder": CONV, "loss": "l1"}, "model.loss"),
    ({"decoder": CONV, "optimizer": "sgd"}, "model.optimizer"),
])
def test_bad_settings_name_the_key(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        ReverseDistillation(**kwargs)


def test_smoothing_is_scipys_gaussian_filter_per_image():
    maps = torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(0))
    smoothed = smooth_maps(maps, 4.0)
    for m, s in zip(maps.numpy(), smoothed.numpy()):
        np.testing.assert_array_equal(s, gaussian_filter(m, sigma=4.0))
    assert torch.equal(smooth_maps(maps, 0), maps)
    assert smooth_maps(maps.double(), 4.0).dtype == torch.float64
