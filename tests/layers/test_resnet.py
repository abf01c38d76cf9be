"""ResNet-34 features (torchvision names, shapes, init) and the frozen teacher (eval mode, no grads, weight record)."""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

from fsad.layers.resnet import ResNet34Features, TeacherEncoder
from tests.layers.test_encoder_weights import TEACHER_KEYS, TORCHVISION


@pytest.fixture(scope="module")
def trained_like() -> ResNet34Features:
    """A ResNet34Features with non-trivial BatchNorm statistics, as an ImageNet file would have."""
    torch.manual_seed(0)
    net = ResNet34Features()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.num_batches_tracked.fill_(1000)
    return net.eval()


def test_state_dict_is_torchvision_up_to_layer3() -> None:
    net = ResNet34Features()
    state = net.state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == [(k, TORCHVISION[k]) for k in TEACHER_KEYS]
    assert len(state) == 174 and sum(p.numel() for p in net.parameters()) == 8_170_304
    assert not hasattr(net, "layer4") and not hasattr(net, "fc")
    assert state["bn1.num_batches_tracked"].dtype == torch.long


def test_random_init_is_torchvision_like() -> None:
    torch.manual_seed(1)
    net = ResNet34Features()
    conv = net.layer3[1].conv1.weight  # fan_out = 256 * 3 * 3
    assert abs(conv.std().item() / math.sqrt(2 / (256 * 9)) - 1) < 0.02
    assert abs(net.conv1.weight.std().item() / math.sqrt(2 / (64 * 49)) - 1) < 0.05
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
            assert torch.all(module.running_mean == 0) and torch.all(module.running_var == 1)


def test_feature_shapes(single_thread) -> None:
    net = ResNet34Features().eval()
    with torch.no_grad():
        f1, f2, f3 = net(torch.randn(1, 3, 256, 256))
        assert (f1.shape, f2.shape, f3.shape) == ((1, 64, 64, 64), (1, 128, 32, 32), (1, 256, 16, 16))
        odd = net(torch.randn(2, 3, 65, 40))  # sizes round up: 65 -> 17, 9, 5; 40 -> 10, 5, 3
    assert [tuple(f.shape) for f in odd] == [(2, 64, 17, 10), (2, 128, 9, 5), (2, 256, 5, 3)]
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.randn(1, 1, 64, 64))


def test_teacher_is_frozen_and_stays_in_eval_mode(single_thread, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="fsad.layers.resnet")
    teacher = TeacherEncoder()
    assert "randomly initialised" in caplog.text and "meaningless for benchmarks" in caplog.text
    assert teacher.describe() == {"encoder/pretrained": False, "encoder/weights": "", "encoder/sha256": ""}
    parent = nn.ModuleDict({"teacher": teacher, "student": nn.Conv2d(64, 64, 1)})
    parent.train()
    assert parent.training and parent["student"].training
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items() if isinstance(v, torch.Tensor)}
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    features = teacher(x)
    assert [tuple(f.shape) for f in features] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert not any(f.requires_grad for f in features)
    after = teacher.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # BatchNorm statistics untouched
    parent["student"](features[0]).sum().backward()  # the student trains on the teacher's features
    assert all(p.grad is None for p in teacher.parameters()) and x.grad is None


def test_weight_file_round_trip(tmp_path, trained_like, single_thread) -> None:
    state = trained_like.state_dict()
    full = OrderedDict(state)
    full["fc.weight"], full["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    forms = {
        "plain.pth": state,
        "module.pt": OrderedDict((f"module.{k}", v) for k, v in full.items()),
        "wrapped_state_dict.bin": {"state_dict": full},
        "wrapped_model.pth": {"model": state, "args": {"lr": 0.1}},
    }
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = trained_like(x)
    for name, obj in forms.items():
        path = tmp_path / name
        torch.save(obj, path)
        teacher = TeacherEncoder(weights=str(path))
        loaded = teacher.backbone.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items()), name
        for a, b in zip(teacher(x), reference):  # channels-last convolutions: equal to float rounding
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()), msg=name)
        assert teacher.describe() == {"encoder/pretrained": True, "encoder/weights": str(path.resolve()),
                                      "encoder/sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        assert (teacher.pretrained, teacher.weights_file, teacher.weights_sha256) == tuple(teacher.describe().values())


def test_checkpoint_rescores_without_the_weight_file(tmp_path, trained_like, single_thread) -> None:
    weights = tmp_path / "resnet34.pth"
    torch.save(trained_like.state_dict(), weights)
    teacher = TeacherEncoder(weights=weights)
    record = teacher.describe()
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": nn.ModuleDict({"encoder": teacher}).state_dict()}, checkpoint)
    weights.unlink()
    restored_parent = nn.ModuleDict({"encoder": TeacherEncoder(weights=None)})
    restored_parent.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    restored = restored_parent["encoder"]
    assert restored.describe() == record and record["encoder/pretrained"] is True
    x = torch.randn(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(restored(x), teacher(x)))


def test_bad_weight_file_fails_at_construction(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        TeacherEncoder(weights=str(tmp_path / "nowhere.pth"))
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="required key"):
        TeacherEncoder(weights=str(tmp_path / "partial.pth"))
