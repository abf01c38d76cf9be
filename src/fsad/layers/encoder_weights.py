"""ImageNet weight files of the ResNet-34 teacher: read, check, and (on request) download a pinned file.

:func:`load_resnet34_state` turns a user's weight file into the 174-entry state dict of
:class:`fsad.layers.resnet.ResNet34Features`, or fails loudly. It reads torchvision and timm files (their key
names are the same), DataParallel files (``module.``), training checkpoints (``state_dict``, ``model``, their EMA
variants) and ADer/MambaAD checkpoints (``{'net': {'net_t.*': ...}}``). What the teacher does not use (``layer4``,
``fc``, the student of an ADer checkpoint) is reported and dropped; a missing tensor, a wrong shape, another
architecture (ResNet-18/50) or an unknown key is an error. Never ``strict=False``: ADer/timm load the teacher with
``strict=False``, which also accepts a file whose every key is misnamed and leaves the teacher random.

:func:`download_resnet34` fetches one of :data:`RESNET34_FILES` into the torch-hub cache with
:func:`fsad.data.download.fetch_files` (atomic, SHA-256 verified); a file already in the cache is used without
network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from fsad.data.download import DownloadError, RemoteFile, fetch_files

log = logging.getLogger(__name__)

CONTAINER_KEYS: tuple[str, ...] = ("state_dict_ema", "model_ema", "state_dict", "model", "net")
"""Keys under which checkpoints nest their state dict, tried in this order (EMA first, as timm's loader does;
``net`` is ADer's ``ckpt.pth``)."""

TEACHER_SUBMODULE = "net_t."
"""Prefix of the teacher inside an ADer / MambaAD / Wave-MambaAD checkpoint (beside ``net_s.``, ``mff_oce.``)."""

RESNET34_FILES: dict[str, RemoteFile] = {
    # torchvision's IMAGENET1K_V1 weights (87,319,819 bytes); its name carries the first 8 hex digits of the
    # SHA-256, and the full digest below is the one published for this file in many public manifests.
    "torchvision": RemoteFile(
        "resnet34-b627a593.pth",
        "https://download.pytorch.org/models/resnet34-b627a593.pth",
        "b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f",
    ),
    # timm's ``resnet34`` weights before timm 0.9 (``resnet34.bt_in1k`` since): the file ADer's MambaAD
    # benchmark logs load as model/pretrain/resnet34-43635321.pth. URL from timm's resnet34 cfg.
    "timm": RemoteFile(
        "resnet34-43635321.pth",
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/resnet34-43635321.pth",
        "436353219a11d07c7c74cf1a686ed3b02f6c954d4c7863e2046822e047c6f246",
    ),
}
"""Pinned ResNet-34 ImageNet files, by the name used in ``weights="download:<name>"``."""

DEFAULT_DOWNLOAD = "torchvision"
"""The file that ``weights="download"`` means."""


def _bn_entries(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,),
            f"{prefix}.running_mean": (channels,), f"{prefix}.running_var": (channels,),
            f"{prefix}.num_batches_tracked": ()}


def basic_resnet_layout(blocks: tuple[int, ...], widths: tuple[int, ...] = (64, 128, 256, 512)
                        ) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a torchvision/timm BasicBlock ResNet state dict (stem + the given stages, no ``fc``).

    ``blocks[i]`` BasicBlocks of width ``widths[i]`` in ``layer{i+1}``; ``(3, 4, 6)`` is the ResNet-34 teacher
    (174 entries), ``(3, 4, 6, 3)`` the ResNet-34 trunk (216), ``(2, 2, 2, 2)`` ResNet-18. Keys in state-dict
    order. Layout from the ResNet definition (He et al. 2016) with torchvision's module names.
    """
    layout = {"conv1.weight": (64, 3, 7, 7), **_bn_entries("bn1", 64)}
    in_channels = 64
    for stage, (count, width) in enumerate(zip(blocks, widths), start=1):
        for block in range(count):
            name = f"layer{stage}.{block}"
            layout[f"{name}.conv1.weight"] = (width, in_channels, 3, 3)
            layout.update(_bn_entries(f"{name}.bn1", width))
            layout[f"{name}.conv2.weight"] = (width, width, 3, 3)
            layout.update(_bn_entries(f"{name}.bn2", width))
            if block == 0 and stage > 1:
                layout[f"{name}.downsample.0.weight"] = (width, in_channels, 1, 1)
                layout.update(_bn_entries(f"{name}.downsample.1", width))
            in_channels = width
    return layout


TEACHER_LAYOUT: dict[str, tuple[int, ...]] = basic_resnet_layout((3, 4, 6))
"""Every state-dict entry the layer1-3 ResNet-34 teacher needs, with its shape (174 entries)."""

_KNOWN_ARCHITECTURES = {
    ("BasicBlock", (2, 2, 2, 2)): "ResNet-18",
    ("BasicBlock", (3, 4, 6, 3)): "ResNet-34",
    ("Bottleneck", (3, 4, 6, 3)): "ResNet-50 (or Wide ResNet-50)",
    ("Bottleneck", (3, 4, 23, 3)): "ResNet-101",
    ("Bottleneck", (3, 8, 36, 3)): "ResNet-152",
}


@dataclass(frozen=True)
class WeightFileInfo:
    """What :func:`load_resnet34_state` found in a weight file.

    Attributes:
        path: absolute path of the file.
        sha256: lower-case hex SHA-256 of the file's bytes.
        containers: the nested keys the state dict was taken from, outermost first (e.g. ``("net",)``).
        stripped_prefixes: name prefixes removed (``"module."``, ``"net_t."``, timm's flattened ``"layer1_0"``).
        ignored_keys: entries the teacher does not use (``layer4.*``, ``fc.*``, other sub-networks of a
            checkpoint), after renaming; dropped and logged at INFO.
        filled_keys: ``num_batches_tracked`` entries absent from the file, set to 0 (they do not affect eval mode).
    """

    path: str
    sha256: str
    containers: tuple[str, ...] = ()
    stripped_prefixes: tuple[str, ...] = ()
    ignored_keys: tuple[str, ...] = ()
    filled_keys: tuple[str, ...] = ()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Lower-case hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_resnet34_state(path: str | os.PathLike[str], expected_sha256: str | None = None
                        ) -> tuple[OrderedDict[str, Tensor], WeightFileInfo]:
    """Read a ResNet-34 weight file into the state dict of the layer1-3 teacher (torchvision key names).

    Args:
        path: a ``.safetensors`` file (needs the ``safetensors`` package) or anything else ``torch.load`` reads
            (``.pth``, ``.pt``, ``.bin``, ``.ckpt``), loaded with ``map_location="cpu", weights_only=True``.
        expected_sha256: when given, the file's SHA-256 must equal it (a pinned download).

    Returns:
        ``(state, info)``: ``state`` has exactly the 174 keys of :data:`TEACHER_LAYOUT`, in that order, with the
        file's tensors (dtype as stored; ``load_state_dict`` converts); ``info`` is a :class:`WeightFileInfo`
        with the file's SHA-256 and what was unwrapped, renamed, dropped and filled.

    The file may hold a plain state dict or nest it under ``state_dict_ema``, ``model_ema``, ``state_dict``,
    ``model`` or ``net`` (tried in that order, repeatedly); ``module.`` prefixes are stripped; when keys start
    with ``net_t.`` (an ADer checkpoint) only those are kept; timm's flattened feature names (``layer1_0.``) are
    restored. ``layer4.*`` and ``fc.*`` are dropped and reported; absent ``num_batches_tracked`` entries are
    filled with 0.

    Raises:
        FileNotFoundError: no file at ``path``.
        ImportError: a ``.safetensors`` file without the ``safetensors`` package.
        ValueError: unreadable file, no state dict inside, a digest other than ``expected_sha256``, or a state
            dict that is not a ResNet-34 up to ``layer3``: the message names the file, says which architecture
            the file looks like (e.g. ResNet-18), and lists missing keys, keys with the wrong shape (expected vs
            found) and unknown keys.
    """
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(f"ResNet-34 weight file not found: {file}")
    sha256 = file_sha256(file)
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise ValueError(f"{file}: SHA-256 {sha256} differs from the expected {expected_sha256.lower()}: this is "
                         f"not the pinned file (delete it to download it again, or pass it as a path to use it "
                         f"as it is)")
    raw = _read(file)
    tensors, containers = _unwrap(raw, file)
    renamed, stripped, foreign = _rename(tensors, file)
    state, ignored, filled = _check(renamed, file, containers, stripped)
    ignored = foreign + ignored
    if ignored:
        log.info("%s: %d entr%s not used by the layer1-3 teacher ignored (%s)", file, len(ignored),
                 "y" if len(ignored) == 1 else "ies", _count_by_module(ignored))
    if filled:
        log.info("%s: %d absent num_batches_tracked entries set to 0", file, len(filled))
    info = WeightFileInfo(str(file), sha256, containers, stripped, tuple(ignored), tuple(filled))
    return state, info


def _read(file: Path) -> object:
    if file.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ImportError(f"{file} is a .safetensors file; reading it needs the 'safetensors' package "
                              f"(pip install safetensors), or convert it to a .pth file "
                              f"(torch.save(safetensors.torch.load_file(path), 'resnet34.pth'))") from exc
        try:
            return load_file(str(file), device="cpu")
        except Exception as exc:  # the package raises its own error types
            raise ValueError(f"{file}: not a readable .safetensors file: {exc}") from exc
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights-only errors have no common base class
        raise ValueError(f"{file}: cannot be read with torch.load(weights_only=True): {exc}. If it holds Python "
                         f"objects beyond tensors, re-save only the weights: torch.save(model.state_dict(), "
                         f"path)") from exc


def _is_tensor_mapping(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(value, Tensor) for value in obj.values())


def _unwrap(obj: object, file: Path) -> tuple[dict[str, Tensor], tuple[str, ...]]:
    containers: list[str] = []
    while isinstance(obj, Mapping) and not _is_tensor_mapping(obj):
        key = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            found = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
            where = f" under {'/'.join(containers)}" if containers else ""
            raise ValueError(f"{file}: no state dict found{where}: expected a mapping of names to tensors, or one "
                             f"nested under {', '.join(CONTAINER_KEYS)}; keys found: {found}")
        containers.append(key)
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{file}: expected a state dict (a mapping of names to tensors), found "
                         f"{type(obj).__name__}")
    return {str(k): v for k, v in obj.items()}, tuple(containers)


_TIMM_FLAT = re.compile(r"^layer(\d+)_(\d+)\.")


def _rename(tensors: dict[str, Tensor], file: Path) -> tuple[dict[str, Tensor], tuple[str, ...], list[str]]:
    """Strip ``module.``; keep only ``net_t.*`` when present; undo timm's flattened names. Returns the renamed
    tensors, the prefixes stripped, and the (original) keys of other sub-networks dropped."""
    stripped: list[str] = []
    out: dict[str, Tensor] = {}
    for key, value in tensors.items():
        name = key
        while name.startswith("module."):
            name = name[len("module."):]
        out[name] = value
    if len(out) < len(tensors):
        raise ValueError(f"{file}: keys collide once the 'module.' prefix is stripped")
    if any(k != n for k, n in zip(tensors, out)):
        stripped.append("module.")
    foreign: list[str] = []
    if any(name.startswith(TEACHER_SUBMODULE) for name in out):
        foreign = [name for name in out if not name.startswith(TEACHER_SUBMODULE)]
        out = {name[len(TEACHER_SUBMODULE):]: v for name, v in out.items() if name.startswith(TEACHER_SUBMODULE)}
        stripped.append(TEACHER_SUBMODULE)
    if any(_TIMM_FLAT.match(name) for name in out):
        out = {_TIMM_FLAT.sub(r"layer\1.\2.", name): v for name, v in out.items()}
        stripped.append("layer<i>_<j>. (timm flattened names)")
    return out, tuple(stripped), foreign


def _check(tensors: dict[str, Tensor], file: Path, containers: tuple[str, ...], stripped: tuple[str, ...]
           ) -> tuple[OrderedDict[str, Tensor], list[str], list[str]]:
    ignored = [k for k in tensors if k.startswith(("layer4.", "fc."))]
    unexpected = [k for k in tensors if k not in TEACHER_LAYOUT and k not in ignored]
    absent = [k for k in TEACHER_LAYOUT if k not in tensors]
    filled = [k for k in absent if k.endswith(".num_batches_tracked")]
    missing = [k for k in absent if k not in filled]
    misshaped = [(k, TEACHER_LAYOUT[k], tuple(tensors[k].shape)) for k in TEACHER_LAYOUT
                 if k in tensors and tuple(tensors[k].shape) != TEACHER_LAYOUT[k]]
    if missing or misshaped or unexpected:
        raise ValueError(_mismatch_message(tensors, file, containers, stripped, missing, misshaped, unexpected))
    state: OrderedDict[str, Tensor] = OrderedDict()
    for key in TEACHER_LAYOUT:
        state[key] = tensors[key] if key in tensors else torch.zeros((), dtype=torch.long)
    return state, ignored, filled


def _mismatch_message(tensors: dict[str, Tensor], file: Path, containers: tuple[str, ...],
                      stripped: tuple[str, ...], missing: list[str], misshaped: list[tuple[str, tuple, tuple]],
                      unexpected: list[str]) -> str:
    read = []
    if containers:
        read.append("taken from " + "/".join(repr(c) for c in containers))
    if stripped:
        read.append("prefixes stripped: " + ", ".join(repr(p) for p in stripped))
    lines = [f"{file}: not the state dict of a ResNet-34 up to layer3 (torchvision/timm key names)"
             + (f" ({'; '.join(read)})" if read else "") + "."]
    architecture = _describe_architecture(tensors)
    if architecture:
        lines.append(f"  {architecture}")
    if missing:
        lines.append(f"  {len(missing)} required key(s) missing: {_summarise(missing)}")
    if misshaped:
        shown = "; ".join(f"{k}: expected {list(want)}, found {list(got)}" for k, want, got in misshaped[:8])
        more = f"; ... ({len(misshaped) - 8} more)" if len(misshaped) > 8 else ""
        lines.append(f"  {len(misshaped)} key(s) with the wrong shape: {shown}{more}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected key(s): {_summarise(unexpected)}")
    prefix = _nesting_prefix(tensors)
    if prefix:
        lines.append(f"  The ResNet keys seem to be nested under {prefix!r}: extract that part of the state dict "
                     f"(strip the prefix) and save it as the weight file.")
    return "\n".join(lines)


def _describe_architecture(tensors: Mapping[str, object]) -> str:
    """One sentence on which ResNet the keys describe when it is not ResNet-34 (empty if it is, or unclear)."""
    blocks = [0, 0, 0, 0]
    bottleneck = False
    for key in tensors:
        match = re.match(r"^layer([1-4])\.(\d+)\.(\w+)", key)
        if match:
            stage, block = int(match.group(1)) - 1, int(match.group(2))
            blocks[stage] = max(blocks[stage], block + 1)
            bottleneck = bottleneck or match.group(3) in ("conv3", "bn3")
    if not any(blocks):
        return "It has no ResNet stage keys (layer1..layer4): it is not a torchvision/timm ResNet state dict."
    kind = "Bottleneck" if bottleneck else "BasicBlock"
    if kind == "BasicBlock" and tuple(blocks[:3]) == (3, 4, 6):
        return ""
    counts = blocks if blocks[3] else blocks[:3]
    name = _KNOWN_ARCHITECTURES.get((kind, tuple(blocks)))
    looks = f"a {name}" if name else "a different ResNet"
    return (f"It looks like {looks} ({kind} blocks, layers {counts}), not a ResNet-34 (BasicBlock, layers "
            f"[3, 4, 6, 3]).")


def _nesting_prefix(tensors: Mapping[str, object]) -> str:
    anchor = "layer1.0.conv1.weight"
    for key in tensors:
        if key.endswith("." + anchor):
            return key[: -len(anchor)]
    return ""


def _count_by_module(keys: list[str]) -> str:
    """``"layer4.* x42, fc.* x2"``: how many keys each top-level module holds, in first-seen order."""
    counts: dict[str, int] = {}
    for key in keys:
        top = key.split(".", 1)[0]
        counts[top] = counts.get(top, 0) + 1
    return ", ".join(f"{top}.* x{n}" for top, n in counts.items())


def _summarise(keys: list[str], shown: int = 8) -> str:
    text = ", ".join(keys[:shown])
    return text + (f", ... ({len(keys) - shown} more)" if len(keys) > shown else "")


# ----------------------------------------------------------------------------------------------- downloading


def default_cache_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, by default
    ``~/.cache/torch/hub/checkpoints``): where torchvision and timm keep these files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download_resnet34(source: str = DEFAULT_DOWNLOAD, cache_dir: str | os.PathLike[str] | None = None,
                      mirror: str | None = None, timeout: float = 60.0) -> Path:
    """Path of the pinned ResNet-34 file ``source`` (a key of :data:`RESNET34_FILES`) in ``cache_dir``.

    A file of that name already in ``cache_dir`` (default :func:`default_cache_dir`) is returned without network
    (its digest is checked when it is loaded with ``expected_sha256``); otherwise it is downloaded atomically and
    verified against the pinned SHA-256 by :func:`fsad.data.download.fetch_files`. ``mirror`` replaces the URL by
    ``<mirror>/<file name>``.

    Raises:
        ValueError: unknown ``source``.
        DownloadError: no network, a truncated transfer or a checksum mismatch; the message names the URL, where
            to put the file by hand, and the ``model.encoder.weights=/path/to/file`` alternative.
    """
    if source not in RESNET34_FILES:
        raise ValueError(f"unknown ResNet-34 weight source {source!r}; known: {', '.join(RESNET34_FILES)}")
    remote = RESNET34_FILES[source]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        (path,) = fetch_files([remote], root, mirror=mirror, timeout=timeout)
    except DownloadError as exc:
        raise DownloadError(f"{exc} Alternatively pass any local ResNet-34 weight file as "
                            f"model.encoder.weights=/path/to/file.") from exc
    return path


def resolve_weights(weights: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None = None
                    ) -> tuple[Path | None, str | None]:
    """Turn the ``weights`` option of the teacher into ``(file, pinned sha256)``; ``(None, None)`` means random.

    ``None`` or ``""``: random teacher. ``"download"``: torchvision's file (:data:`DEFAULT_DOWNLOAD`);
    ``"download:<name>"``: the file ``<name>`` of :data:`RESNET34_FILES` (``torchvision`` or ``timm``); both go
    through :func:`download_resnet34` with ``cache_dir`` and come with their pinned digest. Anything else: a path
    to a weight file (``~`` expanded), returned with ``None`` as digest.
    """
    if weights is None or str(weights) == "":
        return None, None
    text = str(weights)
    if text == "download" or text.startswith("download:"):
        source = text.partition(":")[2] or DEFAULT_DOWNLOAD
        path = download_resnet34(source, cache_dir)
        return path, RESNET34_FILES[source].sha256
    return Path(text).expanduser(), None
