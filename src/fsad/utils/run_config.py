"""Evaluation reuses the training run's configuration, so a checkpoint is scored exactly as it was trained.

``python eval.py ckpt_path=<run folder or checkpoint> [data.root=...] [model.scan_backend=...] [evaluation=paper]``:

- ``data``, ``model``, ``evaluation`` and ``seed`` come from the run's ``config.yaml``; any key of them can be
  overridden on the command line (``data.root=/new/place``, ``evaluation.spot.q=1e-2``), and a key the run does
  not have is an error (add one with ``+data.key=value``);
- ``evaluation=<preset>`` replaces the run's evaluation by that preset (then ``evaluation.*`` keys apply);
- ``data=...``, ``model=...``, ``experiment=...`` or ``ablation=...`` that contradict the run are an error, never
  silently ignored (the same choice as the run is accepted).

:func:`prepare_eval_argv` turns ``data.x=v`` / ``model.x=v`` / ``evaluation.x=v`` into ``++`` overrides before
Hydra composes ``eval.yaml`` (whose placeholder groups do not have the run's keys); :func:`with_run_config` then
puts the run's values in and applies the user's overrides on top.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from fsad.layers.resnet import FROM_CHECKPOINT
from fsad.utils.runs import flatten_keys, scored_checkpoint

log = logging.getLogger(__name__)

FROM_RUN = ("data", "model", "evaluation", "seed")
FIXED_GROUPS = ("data", "model", "experiment", "ablation")  # chosen at training time; a contradiction is an error
USAGE = ("usage: python eval.py ckpt_path=<run folder or checkpoint .ckpt> [data.root=...] [evaluation=paper] "
         "[key=value ...]")


class EvalConfigError(ValueError):
    """An ``eval.py`` override contradicts the training run or names a key the run does not have."""


def checkpoint_file(ckpt_path: str | Path) -> Path:
    """``ckpt_path`` as a checkpoint file: a run folder stands for the checkpoint its training scored
    (:func:`fsad.utils.runs.scored_checkpoint`)."""
    path = Path(str(ckpt_path))
    return scored_checkpoint(path) if path.is_dir() else path


def run_config_path(ckpt_path: str | Path) -> Path:
    """``<run>/checkpoints/x.ckpt`` (or ``<run>``) -> ``<run>/config.yaml``."""
    return checkpoint_file(ckpt_path).resolve().parent.parent / "config.yaml"


def prepare_eval_argv(argv: list[str]) -> list[str]:
    """Command-line arguments of ``eval.py`` made composable: ``data.*``, ``model.*`` and ``evaluation.*`` key
    overrides become ``++key=value`` when the checkpoint has a run config beside it. Prints :data:`USAGE` and
    exits with status 2 when ``ckpt_path`` is not given (and no help was asked for)."""
    flags = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c"}
    ckpt = next((a.split("=", 1)[1] for a in argv if a.startswith("ckpt_path=")), None)
    if ckpt is None and not flags & set(argv):
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    if ckpt is None or not Path(ckpt).exists() or not run_config_path(ckpt).is_file():
        return argv
    out = []
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" in arg and not arg.startswith(("+", "~", "-")) and key.split(".")[0] in FROM_RUN and "." in key:
            arg = "++" + arg
        out.append(arg)
    return out


def teacher_from_checkpoint(cfg: DictConfig) -> None:
    """A run that loads a checkpoint (re-scoring, resuming, starting from weights) takes a frozen teacher's weights
    from it: ``model.encoder.weights`` becomes ``checkpoint``, so the weight file named at training time is not read
    again (it may be gone, or need the network) and the checkpoint's record of it is what ``metrics.json`` shows."""
    weights = OmegaConf.select(cfg, "model.encoder.weights", default=None)
    if weights not in (None, "", FROM_CHECKPOINT):
        log.info("model.encoder.weights=%s: the teacher's weights come from the checkpoint instead", weights)
        with open_dict(cfg):
            cfg.model.encoder.weights = FROM_CHECKPOINT


def with_run_config(cfg: DictConfig) -> DictConfig:
    """Put the training run's ``data``, ``model``, ``evaluation`` and ``seed`` into ``cfg`` and re-apply the
    command-line overrides that touch them (module docstring). No-op with ``from_run=false`` or when the
    checkpoint has no ``config.yaml`` beside it. Raises :class:`EvalConfigError` for contradicting group choices
    or unknown keys."""
    cfg.ckpt_path = str(checkpoint_file(cfg.ckpt_path))
    path = run_config_path(cfg.ckpt_path)
    if not cfg.get("from_run", True) or not path.is_file():
        if cfg.get("from_run", True):
            log.warning("%s not found: data, model and evaluation come from the command line", path)
        return cfg
    run = OmegaConf.load(path)
    overrides = OverridesParser.create().parse_overrides(
        list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [])
    _check_group_choices(cfg, run, path, [o for o in overrides if o.key_or_group in FIXED_GROUPS])
    chosen_evaluation = any(o.key_or_group == "evaluation" for o in overrides)
    with open_dict(cfg):
        for key in FROM_RUN:
            if key == "evaluation" and key in run and not chosen_evaluation:
                # keys added to the platform after the run was made keep their defaults (same component only)
                target = run.evaluation.get("_target_", cfg.evaluation.get("_target_"))
                cfg.evaluation = (OmegaConf.merge(cfg.evaluation, run.evaluation)
                                  if target == cfg.evaluation.get("_target_") else run.evaluation)
            elif key in run and key != "evaluation":
                cfg[key] = run[key]
        _link_model_to_data(cfg, path, overrides)
        for override in overrides:
            key = override.key_or_group
            if "." not in key and key != "seed" or key.split(".")[0] not in FROM_RUN:
                continue
            if override.is_delete():
                raise EvalConfigError(f"{override.input_line}: keys cannot be deleted from the run's config")
            if not override.is_add() and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
                parent = key.rsplit(".", 1)[0]
                known = OmegaConf.select(cfg, parent)
                keys = ", ".join(map(str, known.keys())) if isinstance(known, DictConfig) else "none"
                raise EvalConfigError(f"{override.input_line.lstrip('+')}: '{key}' is not a key of the training "
                                      f"run's config ({path}); keys of '{parent}': {keys} "
                                      f"(add a new key with +{key}=...)")
            OmegaConf.update(cfg, key, override.value(), force_add=True)
    return cfg


_ABSENT = object()


def _link_model_to_data(cfg: DictConfig, path: Path, overrides: list) -> None:
    """Restore the run's ``model.<key>: ${data.<key>}`` links, nested ones too (``model.decoder.image_size:
    ${data.crop_size}``; ``config.yaml`` stores them resolved, the run's
    ``.hydra/config.yaml`` as written), so ``data.n_channels=5`` reaches the model as at training time; keys the
    command line sets itself are left alone."""
    composed = path.parent / ".hydra" / "config.yaml"
    if not composed.is_file():
        return
    model = OmegaConf.to_container(OmegaConf.load(composed), resolve=False).get("model") or {}
    given = {o.key_or_group for o in overrides}
    leaves: dict[str, Any] = {}
    flatten_keys(model, "model", leaves)
    for key, value in leaves.items():
        if isinstance(value, str) and value.startswith("${data.") and key not in given:
            OmegaConf.update(cfg, key, value, merge=False)


def _check_group_choices(cfg: DictConfig, run: DictConfig, path: Path, overrides: list) -> None:
    """EvalConfigError for a ``data=``/``model=``/``experiment=``/``ablation=`` choice that the run did not make."""
    choices_file = path.parent / ".hydra" / "hydra.yaml"
    choices = OmegaConf.load(choices_file).hydra.runtime.choices if choices_file.is_file() else None
    for override in overrides:
        group, value = override.key_or_group, override.value()
        if choices is not None and group in choices:
            agrees = str(choices[group]) == str(value)
            made = choices[group]
        elif group in ("data", "model"):
            agrees = cfg[group].get("_target_") == run[group].get("_target_")
            made = run[group].get("_target_")
        else:
            agrees, made = False, "unknown (no .hydra/hydra.yaml)"
        if not agrees:
            raise EvalConfigError(f"{group}={value}: the checkpoint was trained with {group}={made} ({path}); "
                                  f"drop the {group} choice (the run's is used) or pick a checkpoint trained with it")
