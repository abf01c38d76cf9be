"""OmegaConf resolvers the configs use; :func:`register_resolvers` runs before Hydra composes a config."""

from __future__ import annotations

from omegaconf import OmegaConf

from fsad.utils.help import help_text
from fsad.utils.runs import unique_suffix


def register_resolvers() -> None:
    """Register ``${fsad.unique:}`` (six random hex digits, the same for every use within one composed config, so
    run folders started in the same second differ), ``${fsad.sweep_constant:${key}}`` (the value ``key`` has in
    the sweep's own config, kept by every job of the sweep: Hydra copies a sweep's resolver cache into each job's
    config, so a sweep over experiments, which set ``task_name``, keeps all its jobs in one sweep folder) and
    ``${fsad.help:train|eval}`` (the ``--help`` page)."""
    OmegaConf.register_new_resolver("fsad.unique", unique_suffix, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("fsad.sweep_constant", lambda value: value, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("fsad.help", help_text, replace=True)
