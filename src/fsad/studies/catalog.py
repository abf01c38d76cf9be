"""Every study of ``conf/sweep/<method>/<study>.yaml`` with its job and paper-cell counts (``report.py --list``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from fsad.studies.spec import load_study

CONF = Path(__file__).resolve().parents[3] / "conf"


def study_names(conf: Path = CONF) -> list[str]:
    """``<method>/<study>`` of every study file, sorted."""
    return sorted(p.relative_to(conf / "sweep").with_suffix("").as_posix() for p in (conf / "sweep").glob("*/*.yaml"))


def catalog(conf: Path = CONF) -> pd.DataFrame:
    """One row per study file: its name, title, whether the grid is the paper's, the number of jobs, the swept
    keys and the number of published cells it compares with."""
    from fsad.utils.resolvers import register_resolvers

    register_resolvers()
    rows = []
    for name in study_names(conf):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            study = load_study(compose(config_name="train", overrides=[f"sweep={name}"], return_hydra_config=True))
        rows.append({"sweep": f"`sweep={name}`", "study": study.title, "grid": study.grid_source,
                     "jobs": len(study.jobs()), "swept": ", ".join(f"`{k}`" for k in study.grid),
                     "paper cells": len(study.paper)})
    GlobalHydra.instance().clear()
    return pd.DataFrame(rows)
