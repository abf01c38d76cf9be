"""Every ``conf/sweep/<method>/<study>.yaml`` composes, each value of each swept key composes into a job, and every
published cell of its ``paper:`` block selects at least one job of its grid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from fsad.studies.grid import expand, swept_values
from fsad.studies.spec import Study, load_study
from fsad.utils.resolvers import register_resolvers
from tests.conftest import PROJECT_ROOT

register_resolvers()
SWEEPS = PROJECT_ROOT / "conf" / "sweep"
STUDY_FILES = sorted(p.relative_to(SWEEPS).with_suffix("").as_posix() for p in SWEEPS.glob("*/*.yaml"))


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def _study(name: str) -> Study:
    study = load_study(_compose([f"sweep={name}"]))
    assert study is not None, f"conf/sweep/{name}.yaml has no study: block"
    return study


def test_there_is_a_study_file_per_method():
    methods = {name.split("/")[0] for name in STUDY_FILES}
    assert {"frect", "fkm_ad", "red_f", "transmamba", "wave_mambaad"} <= methods


@pytest.mark.parametrize("name", STUDY_FILES)
def test_every_paper_cell_selects_a_job(name: str):
    study = _study(name)
    assert study.jobs(), f"{name}: empty grid"
    assert not study.unmatched_cells(), f"{name}: cells without a job: {study.unmatched_cells()}"
    assert study.grid_source in ("stated", "reconstruction")


# One job per swept value of every file is ~70 s of composing: the window study here, every file in `make test-full`
# (every file composes in the default suite: tests/studies/test_catalog.py).
@pytest.mark.parametrize("name", [n if n == "frect/window" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in STUDY_FILES])
def test_every_swept_value_composes_into_a_job(name: str):
    """One job per value of each swept key (the first grid point holding it): the override keys exist, the
    config groups resolve, and the metric keys of the study are the kind this job reports."""
    study = _study(name)
    jobs = study.jobs()
    chosen = {}
    for key, values in study.grid.items():
        for value in values:
            job = next(j for j in jobs if j[key] == value)
            chosen[tuple(sorted((k, repr(v)) for k, v in job.items()))] = job
    for job in chosen.values():
        overrides = [f"sweep={name}"] + [f"{k}={_hydra_value(v)}" for k, v in job.items()]
        cfg = _compose(overrides)
        assert cfg.model._target_ and cfg.data._target_


def _hydra_value(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return str(value)


def test_grid_expansion_is_the_cartesian_product_in_sweeper_order():
    assert expand({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


@pytest.mark.parametrize("name", STUDY_FILES)
def test_pinning_one_dataset_keeps_the_study_grid(name: str):
    """``sweep=<study> experiment=<one of its experiments>`` sweeps the study's keys only: an experiment file's
    own ``hydra.sweeper.params`` (RED-F's horizons) must not add a dimension to a study that fixes it."""
    study = _study(name)
    for experiment in study.grid.get("experiment", [])[:3]:
        cfg = _compose([f"sweep={name}", f"experiment={experiment}"])
        grid = swept_values(dict(cfg.hydra.sweeper.params), [f"experiment={experiment}"])
        assert set(grid) == set(study.grid), f"{name} with experiment={experiment}: {grid}"
        assert len(expand(grid)) == len(study.jobs()) // len(study.grid["experiment"])


@pytest.mark.parametrize("edit,message", [
    (lambda text: "\n".join(line for line in text.split("\n") if not line.startswith("  metrics:")),
     "study.metrics: expected"),
    (lambda text: text.replace("{experiment: frect/msl, data.window: 90,", "{experiment: frect/msl, data.window: 95,"),
     "experiment=frect/msl data.window=95 select no point of the file's grid"),
])
def test_a_malformed_study_file_stops_the_sweep_before_any_job(tmp_path: Path, edit, message: str):
    (tmp_path / "sweep" / "bad").mkdir(parents=True)
    text = (PROJECT_ROOT / "conf" / "sweep" / "frect" / "window.yaml").read_text()
    (tmp_path / "sweep" / "bad" / "window.yaml").write_text(edit(text))
    sweep_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "train.py", "-m", "sweep=bad/window",
                           f"hydra.searchpath=[file://{tmp_path}]", f"hydra.sweep.dir={sweep_dir}"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and f"{tmp_path / 'sweep' / 'bad' / 'window.yaml'}: " in proc.stderr
    assert proc.stderr.count(message) == 1, proc.stderr[-2000:]
    assert not any(p.name.isdigit() for p in sweep_dir.iterdir()) if sweep_dir.exists() else True
