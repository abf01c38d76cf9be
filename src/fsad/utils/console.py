"""Console output: the resolved config as a rich tree at start, the headline metrics at the end."""

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


HONEST_STRATEGIES = ("train_percentile", "spot")


def headline_rows(report: dict) -> list[tuple[str, object, object]]:
    """The summary's rows ``(name, value, random reference)`` from a report (:mod:`fsad.evaluation.report`):
    VUS-PR, AUC-PR, AUC-ROC (and the raw score's AUC-ROC when the method reports one), affiliation F1 and
    point-wise F1 of the honest strategies, the paper protocol's PA-F1; only rows whose key is in the report."""
    rows = [("VUS-PR", "vus_pr"), ("AUC-PR", "auc_pr"), ("AUC-ROC", "auc_roc"), ("raw score AUC-ROC", "raw/auc_roc")]
    for strategy in HONEST_STRATEGIES:
        rows += [(f"{strategy}: affiliation F1", f"{strategy}/aff_f1"), (f"{strategy}: point-wise F1", f"{strategy}/f1")]
    rows.append(("paper protocol: PA-F1", "paper/f1_pa"))
    return [(name, report[f"test/{key}"], report.get(f"test/random/{key}")) for name, key in rows
            if f"test/{key}" in report]


def print_summary(report: dict, run_dir: str) -> None:
    """Print the headline metrics beside their random reference, then the run folder, the scored checkpoint and
    the timings; every other number is in ``<run_dir>/metrics.json``."""
    from rich.console import Console
    from rich.table import Table

    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else "n/a" if value is None else str(value)

    table = Table(title="test metrics (random: the same metric for random scores / random steps at that ratio)")
    for column, justify in (("metric", "left"), ("value", "right"), ("random", "right")):
        table.add_column(column, justify=justify)
    for name, value, reference in headline_rows(report):
        table.add_row(name, cell(value), cell(reference))
    console = Console()
    console.print(table)
    times = ", ".join(f"{name} {report[key]:.1f} s" for name, key in
                      (("fit", "time/fit_seconds"), ("scoring", "time/score_seconds"), ("metrics", "time/metrics_seconds"))
                      if isinstance(report.get(key), float))
    console.print(f"run folder: {run_dir}\nscored checkpoint: {report.get('ckpt_path') or 'the weights in memory'}\n"
                  f"time: {times}\nVUS window: {int(report.get('evaluation/vus_window') or 0)} steps "
                  f"({report.get('evaluation/vus_window_rule', '')})\nall metrics: {run_dir}/metrics.json")
