"""The project's ``--help`` page (``hydra.help.template``): the main commands and the config groups a user
chooses from, listed from ``conf/`` so the page never goes stale. A config file whose text has a line starting
with ``# internal:`` (a preset other files compose, a nested group) is left out."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

GROUPS = ("experiment", "data", "model", "evaluation", "trainer", "logger", "callbacks", "debug", "ablation", "sweep")

COMMANDS = {
    "train": [
        ("python train.py", "train FreCT on the embedded synthetic data, then evaluate it"),
        ("python train.py experiment=frect/msl data.root=/data/MSL", "a paper's setting on a benchmark"),
        ("python train.py experiment=rd4ad/synthetic_images", "image anomaly detection on embedded synthetic images"),
        ("python train.py -m model.patch_sizes=[3,5],[1,3,5]", "a sweep: one folder per job, sweep_summary.json"),
        ("python train.py -m sweep=frect/window", "a paper's study (sweep/<method>/<study>), report written at the end"),
        ("python report.py <sweep folder> [...]", "the study's table and figure beside the paper's numbers"),
        ("python train.py ... ckpt_path=last", "resume the newest unfinished run of the same experiment"),
        ("python train.py ckpt_path=<finished run>", "a new run starting from that run's weights"),
        ("python train.py debug=fdr", "one batch of everything (no evaluation)"),
        ("python eval.py ckpt_path=<run folder or .ckpt>", "re-score a trained model (data.root=... to move data)"),
        ("python train.py --cfg job", "print the composed config without running"),
    ],
}
COMMANDS["eval"] = [
    ("python eval.py ckpt_path=<run folder or .ckpt>", "re-score with the training run's data, model, evaluation"),
    ("python eval.py ckpt_path=... data.root=/new/place", "any data.*, model.*, evaluation.* key can be changed"),
    ("python eval.py ckpt_path=... evaluation=paper", "another evaluation preset"),
]


def config_options(conf_dir: Path, group: str) -> list[str]:
    """The selectable options of ``group`` under ``conf_dir`` (``frect/msl`` for ``experiment/frect/msl.yaml``),
    sorted, without internal files."""
    folder = conf_dir / group
    if not folder.is_dir():
        return []
    options = []
    for path in sorted(folder.rglob("*.yaml")):
        if any(line.startswith("# internal:") for line in path.read_text().splitlines()):
            continue
        options.append(path.relative_to(folder).with_suffix("").as_posix())
    return options


def help_text(entry: str = "train") -> str:
    """The help page of ``train`` or ``eval`` (registered as the ``fsad.help`` resolver). Hydra's ``$FLAGS_HELP``
    is kept for its own flags."""
    conf_dir = Path(os.environ.get("PROJECT_ROOT", ".")) / "conf"
    entry = entry if entry in COMMANDS else "train"
    lines = [f"fsad {entry}: anomaly detection with frequency-domain and state-space models (Hydra + Lightning)", "",
             "Commands"]
    width = max(len(command) for command, _ in COMMANDS[entry])
    lines += [f"  {command.ljust(width)}  {what}" for command, what in COMMANDS[entry]]
    lines += ["", "Config groups (choose with group=option; any key with key=value, new keys with +key=value)"]
    for group in GROUPS:
        options = config_options(conf_dir, group)
        if options:
            lines += textwrap.wrap(", ".join(options), width=110, initial_indent=f"  {group}: ",
                                   subsequent_indent=" " * (len(group) + 4))
    lines += ["", "Each run writes into its own folder logs/<task_name>/runs/<time>_<id>/ (config.yaml, checkpoints/,",
              "metrics.json, scores.npz, scores.png, <task_name>.log; failed.json if it failed).", "",
              "Hydra flags", "$FLAGS_HELP"]
    return "\n".join(lines).replace("$", "$$").replace("$$FLAGS_HELP", "$FLAGS_HELP")
