"""ResNet-34 weight files (case IMG-15): containers, prefixes, leftovers, wrong files, sha256, pinned downloads."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import urllib.error
import urllib.request
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from fsad.data.download import DownloadError, RemoteFile
from fsad.layers import encoder_weights
from fsad.layers.encoder_weights import (
    RESNET34_FILES,
    TEACHER_LAYOUT,
    basic_resnet_layout,
    default_cache_dir,
    download_resnet34,
    load_resnet34_state,
    resolve_weights,
)
from fsad.layers.resnet import ResNet34Features, TeacherEncoder
from tests.conftest import shared_path

# torchvision's resnet34, written out: every convolution as (name, out channels, in channels, kernel), in
# state-dict order. Each is followed by its BatchNorm (conv1 -> bn1, conv2 -> bn2, downsample.0 -> downsample.1)
# with weight, bias, running_mean, running_var (C,) and num_batches_tracked (); the head fc comes last.
TORCHVISION_CONVS: list[tuple[str, int, int, int]] = [
    ("conv1", 64, 3, 7),
    ("layer1.0.conv1", 64, 64, 3), ("layer1.0.conv2", 64, 64, 3),
    ("layer1.1.conv1", 64, 64, 3), ("layer1.1.conv2", 64, 64, 3),
    ("layer1.2.conv1", 64, 64, 3), ("layer1.2.conv2", 64, 64, 3),
    ("layer2.0.conv1", 128, 64, 3), ("layer2.0.conv2", 128, 128, 3), ("layer2.0.downsample.0", 128, 64, 1),
    ("layer2.1.conv1", 128, 128, 3), ("layer2.1.conv2", 128, 128, 3),
    ("layer2.2.conv1", 128, 128, 3), ("layer2.2.conv2", 128, 128, 3),
    ("layer2.3.conv1", 128, 128, 3), ("layer2.3.conv2", 128, 128, 3),
    ("layer3.0.conv1", 256, 128, 3), ("layer3.0.conv2", 256, 256, 3), ("layer3.0.downsample.0", 256, 128, 1),
    ("layer3.1.conv1", 256, 256, 3), ("layer3.1.conv2", 256, 256, 3),
    ("layer3.2.conv1", 256, 256, 3), ("layer3.2.conv2", 256, 256, 3),
    ("layer3.3.conv1", 256, 256, 3), ("layer3.3.conv2", 256, 256, 3),
    ("layer3.4.conv1", 256, 256, 3), ("layer3.4.conv2", 256, 256, 3),
    ("layer3.5.conv1", 256, 256, 3), ("layer3.5.conv2", 256, 256, 3),
    ("layer4.0.conv1", 512, 256, 3), ("layer4.0.conv2", 512, 512, 3), ("layer4.0.downsample.0", 512, 256, 1),
    ("layer4.1.conv1", 512, 512, 3), ("layer4.1.conv2", 512, 512, 3),
    ("layer4.2.conv1", 512, 512, 3), ("layer4.2.conv2", 512, 512, 3),
]
BN_OF_CONV = {"conv1": "bn1", "conv2": "bn2", "0": "1"}
FC = {"fc.weight": (1000, 512), "fc.bias": (1000,)}


def torchvision_resnet34_layout() -> dict[str, tuple[int, ...]]:
    """The 218 entries of torchvision's resnet34 state dict with their shapes."""
    layout: dict[str, tuple[int, ...]] = {}
    for name, out_ch, in_ch, kernel in TORCHVISION_CONVS:
        layout[f"{name}.weight"] = (out_ch, in_ch, kernel, kernel)
        head, _, last = name.rpartition(".")
        bn = f"{head}.{BN_OF_CONV[last]}" if head else BN_OF_CONV[last]
        for stat in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{bn}.{stat}"] = (out_ch,)
        layout[f"{bn}.num_batches_tracked"] = ()
    return {**layout, **FC}


TORCHVISION = torchvision_resnet34_layout()
TEACHER_KEYS = [k for k in TORCHVISION if not k.startswith(("layer4.", "fc."))]


def constant(shape: tuple[int, ...], value: float) -> torch.Tensor:
    """A tensor of ``shape`` holding one stored value (stride 0): real shapes, tiny files."""
    if not shape:
        return torch.tensor(int(value), dtype=torch.long)
    return torch.tensor(float(value)).expand(shape)


def full_state(teacher: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """A torchvision-shaped resnet34 state dict: the teacher's tensors up to layer3, zeros for layer4 and fc."""
    return OrderedDict((k, teacher[k] if k in teacher else constant(shape, 0)) for k, shape in TORCHVISION.items())


@pytest.fixture(scope="module")
def teacher_state() -> dict[str, torch.Tensor]:
    """The 174 teacher entries, entry ``i`` filled with the value ``i + 1``, so that any mix-up shows."""
    return OrderedDict((k, constant(TORCHVISION[k], i + 1)) for i, k in enumerate(TEACHER_KEYS))


def save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def assert_same(state: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> None:
    assert list(state) == TEACHER_KEYS
    for key in TEACHER_KEYS:
        assert torch.equal(state[key], teacher[key]), key


# ------------------------------------------------------------------------------------------------ the layout


def test_layout_numbers_of_img15() -> None:
    weight_bias = sum(math.prod(s) for k, s in TORCHVISION.items() if k.rsplit(".", 1)[1] in ("weight", "bias"))
    running = sum(math.prod(s) for k, s in TORCHVISION.items()
                  if k.rsplit(".", 1)[1] in ("running_mean", "running_var"))
    assert (len(TORCHVISION), weight_bias, running) == (218, 21_797_672, 17_024)
    assert len(TEACHER_KEYS) == 174 and len([k for k in TORCHVISION if not k.startswith("fc.")]) == 216
    assert TEACHER_LAYOUT == {k: TORCHVISION[k] for k in TEACHER_KEYS} and list(TEACHER_LAYOUT) == TEACHER_KEYS
    assert {**basic_resnet_layout((3, 4, 6, 3)), **FC} == TORCHVISION


def test_layout_matches_img15_expected_file() -> None:
    expected = json.loads(shared_path("cases", "image", "expected", "IMG-15.json").read_text())
    assert [[k, list(s)] for k, s in TORCHVISION.items()] == expected["resnet34_state_dict"]["keys_and_shapes"]
    assert TEACHER_KEYS == expected["teacher_layers_1_to_3_required_keys"]["keys"]
    resnet18 = {k for k in TORCHVISION if not _block_beyond(k, 2)}
    assert len(set(TORCHVISION) - resnet18) == expected["variants"]["resnet18 file"]["resnet34_keys_absent_in_resnet18"]


def _block_beyond(key: str, blocks: int) -> bool:
    parts = key.split(".")
    return parts[0].startswith("layer") and int(parts[1]) >= blocks


# -------------------------------------------------------------------------------------- containers and names


def test_container_forms_give_identical_tensors(tmp_path, teacher_state, caplog) -> None:
    full = full_state(teacher_state)
    forms = {
        "plain": full,
        "module": OrderedDict((f"module.{k}", v) for k, v in full.items()),
        "state_dict": {"state_dict": full, "epoch": 3},
        "model": {"model": full},
        "ema": {"state_dict": {k: constant(tuple(v.shape), -1) for k, v in full.items()}, "state_dict_ema": full},
        "module_in_state_dict": {"state_dict": OrderedDict((f"module.{k}", v) for k, v in full.items())},
    }
    caplog.set_level(logging.INFO, logger="fsad.layers.encoder_weights")
    for name, obj in forms.items():
        path = save(obj, tmp_path / f"{name}.pth")
        state, info = load_resnet34_state(path)
        assert_same(state, teacher_state)
        leftovers = [k for k in TORCHVISION if k.startswith(("layer4.", "fc."))]
        assert sorted(info.ignored_keys) == sorted(leftovers) and len(leftovers) == 44, name
        assert "fc.weight" in info.ignored_keys and "layer4.2.bn2.running_var" in info.ignored_keys
        assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert info.filled_keys == ()
    assert load_resnet34_state(tmp_path / "ema.pth")[1].containers == ("state_dict_ema",)
    assert load_resnet34_state(tmp_path / "module.pth")[1].stripped_prefixes == ("module.",)
    assert "44 entries not used by the layer1-3 teacher ignored (layer4.* x42, fc.* x2)" in caplog.text


def test_ader_checkpoint_teacher_is_taken_from_net_t(tmp_path, teacher_state) -> None:
    net = OrderedDict((f"net_t.{k}", v) for k, v in teacher_state.items())
    net["net_s.decoder.weight"] = torch.ones(3)
    net["mff_oce.conv.weight"] = torch.ones(2)
    path = save({"net": net, "optimizer": {"state": {}, "param_groups": []}, "epoch": 100}, tmp_path / "ckpt.pth")
    state, info = load_resnet34_state(path)
    assert_same(state, teacher_state)
    assert info.containers == ("net",) and info.stripped_prefixes == ("net_t.",)
    assert set(info.ignored_keys) == {"net_s.decoder.weight", "mff_oce.conv.weight"}
    bare = save(OrderedDict((f"module.{k}", v) for k, v in net.items()), tmp_path / "net.pth")
    assert_same(load_resnet34_state(bare)[0], teacher_state)


def test_timm_flattened_feature_names(tmp_path, teacher_state) -> None:
    flat = OrderedDict((k.replace(".", "_", 1) if k.startswith("layer") else k, v) for k, v in teacher_state.items())
    assert "layer1_0.conv1.weight" in flat
    assert_same(load_resnet34_state(save(flat, tmp_path / "flat.pth"))[0], teacher_state)


def test_absent_num_batches_tracked_is_filled(tmp_path, teacher_state) -> None:
    old = OrderedDict((k, v) for k, v in teacher_state.items() if not k.endswith("num_batches_tracked"))
    state, info = load_resnet34_state(save(old, tmp_path / "old.pth"))
    assert len(info.filled_keys) == 29 and list(state) == TEACHER_KEYS
    assert all(int(state[k]) == 0 for k in info.filled_keys)
    assert all(torch.equal(state[k], v) for k, v in old.items())


def test_safetensors_gives_the_same_tensors(tmp_path, teacher_state) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    full = {k: v.contiguous() for k, v in full_state(teacher_state).items()}
    safetensors_torch.save_file(full, str(tmp_path / "model.safetensors"))
    from_st, info = load_resnet34_state(tmp_path / "model.safetensors")
    from_pth, _ = load_resnet34_state(save(full, tmp_path / "model.pth"))
    assert_same(from_st, teacher_state)
    assert all(torch.equal(from_st[k], from_pth[k]) for k in TEACHER_KEYS) and len(info.ignored_keys) == 44


def test_safetensors_without_the_package_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(ImportError, match="pip install safetensors") as err:
        load_resnet34_state(path)
    assert "convert" in str(err.value) and str(path) in str(err.value)


# ------------------------------------------------------------------------------------------------ wrong files


def test_missing_key_is_named(tmp_path, teacher_state) -> None:
    full = full_state(teacher_state)
    del full["layer3.5.conv2.weight"]
    path = save(full, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"1 required key\(s\) missing: layer3\.5\.conv2\.weight") as err:
        load_resnet34_state(path)
    assert str(path) in str(err.value)


def test_wrong_shape_names_key_and_both_shapes(tmp_path, teacher_state) -> None:
    full = full_state(teacher_state)
    full["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    path = save(full, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.weight: expected \[64, 64, 3, 3\], found "
                                         r"\[64, 64, 1, 1\]") as err:
        load_resnet34_state(path)
    assert str(path) in str(err.value)


def test_resnet18_is_rejected_as_such(tmp_path, teacher_state) -> None:
    resnet18 = OrderedDict((k, v) for k, v in full_state(teacher_state).items() if not _block_beyond(k, 2))
    assert len(resnet18) == 218 - 96
    with pytest.raises(ValueError, match=r"looks like a ResNet-18 \(BasicBlock blocks, layers \[2, 2, 2, 2\]\), "
                                         r"not a ResNet-34") as err:
        load_resnet34_state(save(resnet18, tmp_path / "resnet18.pth"))
    assert "layer1.2.conv1.weight" in str(err.value)


def test_bottleneck_resnet_is_rejected_as_such(tmp_path, teacher_state) -> None:
    bottleneck = full_state(teacher_state)
    bottleneck["layer1.0.conv3.weight"] = torch.zeros(256, 64, 1, 1)
    with pytest.raises(ValueError, match=r"looks like a ResNet-50 .*Bottleneck blocks, layers \[3, 4, 6, 3\]"):
        load_resnet34_state(save(bottleneck, tmp_path / "r50.pth"))


def test_unknown_keys_are_an_error(tmp_path, teacher_state) -> None:
    full = full_state(teacher_state)
    full["foo.bar"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 unexpected key\(s\): foo\.bar"):
        load_resnet34_state(save(full, tmp_path / "extra.pth"))
    other = {"encoder.weight": torch.zeros(4, 4), "head.bias": torch.zeros(4)}
    with pytest.raises(ValueError, match="no ResNet stage keys") as err:
        load_resnet34_state(save(other, tmp_path / "other.pth"))
    assert "174 required key(s) missing" not in str(err.value)  # num_batches_tracked are not counted as missing
    assert "145 required key(s) missing" in str(err.value) and "encoder.weight" in str(err.value)


def test_unknown_prefix_gets_a_hint_not_a_silent_load(tmp_path, teacher_state) -> None:
    nested = OrderedDict((f"backbone.{k}", v) for k, v in teacher_state.items())
    with pytest.raises(ValueError, match=r"nested under 'backbone\.'"):
        load_resnet34_state(save(nested, tmp_path / "nested.pth"))


class _NotAllowedByWeightsOnly:
    pass


def test_unreadable_files(tmp_path, teacher_state) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_resnet34_state(tmp_path / "absent.pth")
    pickled = save({"state_dict": teacher_state, "cfg": _NotAllowedByWeightsOnly()}, tmp_path / "pickled.pth")
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load_resnet34_state(pickled)
    with pytest.raises(ValueError, match=r"no state dict found.*'optimizer'"):
        load_resnet34_state(save({"optimizer": {}, "epoch": 1}, tmp_path / "optim.pth"))
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        load_resnet34_state(tmp_path / "garbage.pth")


def test_expected_sha256_is_enforced(tmp_path, teacher_state) -> None:
    path = save(teacher_state, tmp_path / "w.pth")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_resnet34_state(path, expected_sha256=digest.upper())[1].sha256 == digest
    with pytest.raises(ValueError, match="not the pinned file"):
        load_resnet34_state(path, expected_sha256="0" * 64)


# ------------------------------------------------------------------------------------------------- downloads


def test_pins_follow_the_hash_prefix_convention() -> None:
    """torchvision and timm name a file ``<name>-<first 8 hex digits of its SHA-256>.pth``."""
    assert set(RESNET34_FILES) == {"torchvision", "timm"}
    for remote in RESNET34_FILES.values():
        assert remote.url.endswith("/" + remote.path)
        assert remote.sha256 is not None and remote.path.split("-")[-1] == f"{remote.sha256[:8]}.pth"
    assert RESNET34_FILES["torchvision"].url == "https://download.pytorch.org/models/resnet34-b627a593.pth"


def test_default_cache_dir_is_the_torch_hub_checkpoints(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert default_cache_dir() == tmp_path / "th" / "hub" / "checkpoints"


@pytest.fixture
def pinned_test_file(tmp_path, teacher_state, monkeypatch) -> tuple[Path, str]:
    """A weight file served from a file:// URL and pinned as the torchvision download."""
    (tmp_path / "served").mkdir()
    source = save(full_state(teacher_state), tmp_path / "served" / "resnet34-test.pth")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(RESNET34_FILES, "torchvision", RemoteFile("resnet34-test.pth", source.as_uri(), digest))
    return source, digest


def _no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_download_is_atomic_verified_and_then_cached(tmp_path, pinned_test_file, teacher_state, monkeypatch) -> None:
    source, digest = pinned_test_file
    cache = tmp_path / "cache"
    path = download_resnet34(cache_dir=cache)
    assert path == cache / "resnet34-test.pth" and path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["resnet34-test.pth"]  # no SHA256SUMS, no .part files
    _no_network(monkeypatch)
    teacher = TeacherEncoder(weights="download", cache_dir=str(cache))  # cached: no network needed
    assert teacher.describe() == {"encoder/pretrained": True, "encoder/weights": str(path.resolve()),
                                  "encoder/sha256": digest}
    assert all(torch.equal(teacher.backbone.state_dict()[k], teacher_state[k]) for k in TEACHER_KEYS)
    assert resolve_weights("download:torchvision", cache) == (path, digest)


def test_download_without_network_says_where_to_put_the_file(tmp_path, pinned_test_file, monkeypatch) -> None:
    _no_network(monkeypatch)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        TeacherEncoder(weights="download", cache_dir=str(cache))
    message = str(err.value)
    assert RESNET34_FILES["torchvision"].url in message and str(cache / "resnet34-test.pth") in message
    assert "model.encoder.weights=/path/to/file" in message
    assert not cache.exists() or list(cache.iterdir()) == []


def test_cached_file_with_another_digest_is_refused(tmp_path, pinned_test_file, teacher_state) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    save({k: constant(tuple(v.shape), -1) for k, v in teacher_state.items()}, cache / "resnet34-test.pth")
    with pytest.raises(ValueError, match="not the pinned file"):
        TeacherEncoder(weights="download", cache_dir=str(cache))


def test_real_pin_rejects_other_bytes(tmp_path, teacher_state) -> None:
    """The pinned torchvision entry served from a local mirror with other bytes: checksum error, nothing kept."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    save(teacher_state, mirror / RESNET34_FILES["torchvision"].path)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_resnet34("torchvision", cache_dir=cache, mirror=mirror.as_uri())
    assert not (cache / RESNET34_FILES["torchvision"].path).exists()


def test_unknown_download_source(tmp_path) -> None:
    with pytest.raises(ValueError, match="known: torchvision, timm"):
        resolve_weights("download:imagenet21k", tmp_path)
    assert resolve_weights(None) == (None, None) and resolve_weights("") == (None, None)
    assert resolve_weights("~/w.pth") == (Path("~/w.pth").expanduser(), None)
    assert encoder_weights.DEFAULT_DOWNLOAD == "torchvision"
