"""Console output: the resolved config as a rich tree at start."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from rich import print as rprint
from rich.syntax import Syntax
from rich.tree import Tree

FIRST = ("data", "model", "trainer", "evaluation", "callbacks", "logger", "paths")


def print_config_tree(cfg: DictConfig) -> None:
    """Print each top-level config group as a branch of a tree (resolved values)."""
    tree = Tree("config", guide_style="dim")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST]
    for key in keys:
        branch = tree.add(str(key), style="bold")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(Syntax(text, "yaml", theme="ansi_dark", word_wrap=True))
    rprint(tree)
