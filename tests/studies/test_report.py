"""report.py on hand-made sweep folders (exact values) and on a real sweep run end to end."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fsad.studies.folders import FolderError, read_folder
from fsad.studies.report import cross_method_markdown, study_markdown, write_cross_method, write_study_report
from fsad.studies.spec import StudyError
from fsad.studies.tables import (all_positive_key, cell_table, common_overrides, cross_method_table, job_table,
                                 random_key, runs_table)
from tests.conftest import PROJECT_ROOT

STUDY = {
    "title": "Demo: F1 against the horizon",
    "grid": "stated",
    "metrics": {"F1": "test/spot/aff_f1"},
    "scale": 100,
    "figure": {"kind": "line", "x": "data.horizon", "series": "experiment"},
}


def _sweep_folder(root: Path, paper: list[dict], jobs: dict[int, dict]) -> Path:
    """A sweep over experiment a/x,a/y x data.horizon 32,64 with the given job folders (others are missing)."""
    multirun = {"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                                      "params": {"experiment": "a/x,a/y", "data.horizon": "32,64"}},
                          "overrides": {"task": ["sweep=demo/study"]},
                          "runtime": {"choices": {"sweep": "demo/study"}}},
                "study": STUDY, "paper": paper}
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    for number, job in jobs.items():
        folder = root / str(number) / ".hydra"
        folder.mkdir(parents=True)
        (folder / "overrides.yaml").write_text(yaml.safe_dump(job["overrides"]))
        (folder / "hydra.yaml").write_text(yaml.safe_dump(
            {"hydra": {"runtime": {"choices": {"model": job.get("model", "red_f"), "data": job["data"]}}}}))
        if "metrics" in job:
            (root / str(number) / "metrics.json").write_text(json.dumps(job["metrics"]))
        if "error" in job:
            (root / str(number) / "failed.json").write_text(json.dumps({"error": job["error"]}))
    return root


def _demo(tmp_path: Path) -> Path:
    paper = [{"experiment": "a/x", "F1": 50.0},                      # averages two jobs
             {"experiment": "a/y", "data.horizon": 32, "F1": 70.0}]  # one job, which failed
    jobs = {
        0: {"overrides": ["experiment=a/x", "data.horizon=32", "sweep=demo/study"], "data": "msl",
            "metrics": {"test/spot/aff_f1": 0.40, "test/random/spot/aff_f1": 0.30, "test/all_positive/aff_f1": 0.6,
                        "test/auc_pr": 0.2, "test/random/auc_pr": 0.1, "time/epochs": 3, "time/fit_seconds": 12.5}},
        1: {"overrides": ["experiment=a/x", "data.horizon=64", "sweep=demo/study"], "data": "msl",
            "metrics": {"test/spot/aff_f1": 0.65, "test/random/spot/aff_f1": 0.50}},
        2: {"overrides": ["experiment=a/y", "data.horizon=32", "sweep=demo/study"], "data": "psm",
            "error": "ValueError: window 7 does not fit"},
    }
    return _sweep_folder(tmp_path / "sweep", paper, jobs)


def test_reference_keys_of_each_metric_family():
    assert random_key("test/auc_pr") == "test/random/auc_pr"
    assert random_key("test/paper/f1_pa") == "test/random/paper/f1_pa"
    assert random_key("test/ader/mean/mad") == "test/ader/random/mean/mad"
    assert all_positive_key("test/paper/f1_pa") == "test/all_positive/f1_pa"
    assert all_positive_key("test/auc_pr") is None and all_positive_key("test/exact/mean/mad") is None


def test_every_job_appears_with_its_status_and_exact_values(tmp_path: Path):
    sweep = read_folder(_demo(tmp_path))
    table = job_table(sweep)
    assert list(table["status"]) == ["ok", "ok", "failed", "missing"]
    assert list(table["job"]) == [0, 1, 2, "-"]
    assert table.loc[3, "experiment"] == "a/y" and table.loc[3, "data.horizon"] == "64"
    assert table.loc[0, "F1"] == pytest.approx(40.0) and table.loc[0, "F1 random"] == pytest.approx(30.0)
    assert table.loc[0, "F1 all positive"] == pytest.approx(60.0)
    assert table.loc[0, "test/auc_pr random"] == pytest.approx(0.1)
    assert table.loc[0, "epochs"] == 3 and table.loc[0, "fit s"] == 12.5
    assert math.isnan(table.loc[0, "F1 paper"])          # its cell spans two jobs: compared in the cell table
    assert table.loc[2, "F1 paper"] == 70.0 and table.loc[2, "error"].startswith("ValueError")


def test_a_cell_over_several_jobs_is_compared_with_their_mean(tmp_path: Path):
    cells = cell_table(read_folder(_demo(tmp_path)))
    assert cells.loc[0, "F1"] == pytest.approx(52.5) and cells.loc[0, "F1 delta"] == pytest.approx(2.5)
    assert cells.loc[0, "F1 random"] == pytest.approx(40.0) and cells.loc[0, "jobs finished"] == "2/2"
    assert math.isnan(cells.loc[1, "F1"]) and cells.loc[1, "jobs finished"] == "0/1"


def test_report_files_are_written_into_the_sweep_folder(tmp_path: Path):
    sweep = read_folder(_demo(tmp_path))
    paths = write_study_report(sweep)
    assert {p.name for p in paths.values()} == {"report.md", "report.csv", "report_cells.csv", "report.png",
                                                "report.svg"}
    text = (sweep.folder / "report.md").read_text()
    assert "4 jobs" not in text and "Jobs: 4 (2 ok, 1 failed, 1 missing)" in text
    assert (sweep.folder / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_cross_method_table_pivots_methods_against_datasets(tmp_path: Path):
    first = read_folder(_demo(tmp_path))
    table = cross_method_table([first])
    row = table[(table.method == "red_f") & (table.dataset == "msl")].iloc[0]
    assert row["ours"] == pytest.approx(52.5) and row["paper"] == pytest.approx(50.0)
    assert row["jobs finished"] == "2/2"
    text = cross_method_markdown(table, "F1")
    assert "| red_f | 52.50 / 50.00 | - / 70.00 |" in text
    assert "Not run (missing from the sweep folder): demo/study: data.horizon=64 experiment=a/y" in text


def _run_folder(folder: Path, model: str, data: str, overrides: list[str], metrics: dict) -> Path:
    """A single run folder (no study): its overrides, config choices and metrics.json."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"choices": {"model": model, "data": data}}}}))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_runs_without_a_study_are_reported_side_by_side(tmp_path: Path):
    first = _run_folder(tmp_path / "frect_msl", "frect", "msl", ["experiment=frect/msl", "threads=1"],
                        {"test/paper/f1_pa": 0.9, "test/random/paper/f1_pa": 0.8, "test/all_positive/f1_pa": 0.95,
                         "test/auc_roc": 0.6, "test/random/auc_roc": 0.5, "time/fit_seconds": 7.0})
    second = _run_folder(tmp_path / "lof_msl", "lof", "msl", ["model=lof", "data=msl", "threads=1"],
                         {"test/auc_roc": 0.7, "test/random/auc_roc": 0.49})
    sweeps = [read_folder(first), read_folder(second)]
    table = job_table(sweeps[0])
    assert list(table.columns) == ["job", "model", "data", "experiment", "threads", "status", "test/paper/f1_pa",
                                   "test/paper/f1_pa random", "test/paper/f1_pa all positive", "test/auc_roc",
                                   "test/auc_roc random", "fit s", "error"]
    runs = runs_table(sweeps)
    assert runs["job"].tolist() == ["frect_msl", "lof_msl"]
    assert runs["test/auc_roc"].tolist() == [0.6, 0.7] and runs["test/auc_roc random"].tolist() == [0.5, 0.49]
    assert runs.columns[-2:].tolist() == ["fit s", "error"] and math.isnan(runs["test/paper/f1_pa"][1])
    paths = write_cross_method(sweeps, tmp_path / "out")
    text = paths["md"].read_text()
    assert paths["md"].name == "runs.md" and "| lof_msl | lof | msl | - | ok | - | - | - | 0.700 | 0.490 | - |  |" \
        in text
    assert "threads" not in runs.columns and "Common to every run: `threads=1`" in text
    mixed = runs_table([read_folder(_demo(tmp_path)), sweeps[1]])  # a study sweep shown like the runs: fractions
    assert "F1" not in mixed.columns and mixed["test/auc_pr"][0] == 0.2
    assert mixed["job"].tolist() == ["sweep/0", "sweep/1", "sweep/2", "sweep/-", "lof_msl"]


def test_bad_folders_and_blocks_are_named(tmp_path: Path):
    with pytest.raises(FolderError, match="no such folder"):
        read_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderError, match="neither a sweep folder"):
        read_folder(tmp_path / "empty")
    root = _sweep_folder(tmp_path / "bad", [{"experiment": "a/x", "data.window": 90, "F1": 1.0}], {})
    with pytest.raises(StudyError, match=r"conf/sweep/demo/study.yaml: paper\[0\].data.window: expected a swept key"):
        read_folder(root)


def test_damaged_files_are_named_and_damaged_jobs_stay_rows(tmp_path: Path):
    root = _demo(tmp_path)
    (root / "0" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=a/x", "data.horizon"]))
    (root / "1" / "metrics.json").write_text("[1, 2]")
    jobs = {job.number: job for job in read_folder(root).jobs}
    assert jobs[0].status == jobs[1].status == "unreadable"
    assert str(root / "0" / ".hydra" / "overrides.yaml") in jobs[0].error and "key=value" in jobs[0].error
    assert jobs[1].error == f"{root / '1' / 'metrics.json'}: expected a JSON object ({{\"key\": value, ...}}), got list"
    assert "Jobs: 5 (1 failed, 2 unreadable, 2 missing)" in study_markdown(read_folder(root))
    # job 1's overrides were read (its metrics were not): it still counts for what every job ran with
    assert common_overrides([read_folder(root)]) == {"sweep": "demo/study"}
    hydra_yaml = root / "2" / ".hydra" / "hydra.yaml"  # overrides.yaml cut short, still valid YAML
    hydra_yaml.write_text(yaml.safe_dump({"hydra": {"overrides": {"task": [
        "experiment=a/y", "data.horizon=32", "sweep=demo/study"]}, "runtime": {"choices": {"data": "psm"}}}}))
    (root / "2" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=a/y"]))
    job = {job.number: job for job in read_folder(root).jobs}[2]
    assert job.status == "unreadable" and "disagrees with hydra.overrides.task" in job.error
    multirun = yaml.safe_load((root / "multirun.yaml").read_text())
    (root / "multirun.yaml").write_text(yaml.safe_dump({"study": multirun["study"]}))
    with pytest.raises(FolderError, match=r"multirun.yaml: no hydra.overrides.task .* the file is damaged"):
        read_folder(root)
    (root / "multirun.yaml").write_text("hydra: [")
    with pytest.raises(FolderError, match=r"multirun.yaml: not readable as YAML"):
        read_folder(root)
    with pytest.raises(FolderError, match="a file, not a folder"):
        read_folder(root / "multirun.yaml")
    report = importlib.util.spec_from_file_location("report_cli", PROJECT_ROOT / "report.py")
    cli = importlib.util.module_from_spec(report)
    report.loader.exec_module(cli)
    with pytest.raises(SystemExit) as stop:
        cli.main([str(root), str(root / "." / "")])
    assert stop.value.code == 2


def test_the_report_says_what_every_job_ran_with_and_warns_before_a_misleading_comparison(tmp_path: Path):
    root = _demo(tmp_path)
    for number in (0, 1, 2):
        path = root / str(number) / ".hydra" / "overrides.yaml"
        path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) + ["data=synthetic", "trainer.max_epochs=1"]))
    multirun = yaml.safe_load((root / "multirun.yaml").read_text())
    multirun["study"]["metrics"]["PA-F1"] = "test/paper/f1_pa"
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    text = study_markdown(read_folder(root))
    assert "Every job also ran with: `sweep=demo/study` `data=synthetic` `trainer.max_epochs=1`." in text
    assert "**Warning:** `data=` replaces the datasets" in text
    assert "**Warning:** paper column PA-F1 is `test/paper/f1_pa`, which no finished job's metrics.json has" in text
    assert "paper column F1" not in text


def test_a_study_sweep_runs_end_to_end_and_reports(tmp_path: Path):
    """``train.py sweep=frect/window`` pinned to two windows on the synthetic series at debug size, then
    ``report.py`` on its folder: every job reported with the paper protocol's F1 and its references."""
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "sweep=frect/window", "experiment=frect/msl", "data=synthetic",
           "data.window=30,60", "debug=limit", "data.generator.length=1200", "data.generator.train_length=1200",
           "model.d_model=16", "model.e_layers=1", "print_config=false", f"hydra.sweep.dir={sweep_dir}"]
    run = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = subprocess.run([sys.executable, "report.py", str(sweep_dir)], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "# FreCT, Fig. 5: F1 against the window size" in report.stdout
    import pandas as pd

    table = pd.read_csv(sweep_dir / "report.csv")
    assert list(table["data.window"]) == [30, 60] and list(table["status"]) == ["ok", "ok"]
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    for row, job in zip(table.itertuples(), summary["jobs"]):
        assert row.F1 == pytest.approx(100 * job["metrics"]["test/paper/f1_pa"])
    assert "F1 random" in table.columns and "F1 all positive" in table.columns


def test_bars_figure_marks_jobs_without_result(tmp_path: Path):
    """Bars per variant (ablation tables): a failed or missing job gets a labelled empty bar, not a gap."""
    STUDY["figure"] = {"kind": "bars", "x": "experiment", "series": "data.horizon"}
    try:
        sweep = read_folder(_demo(tmp_path))
        paths = write_study_report(sweep)
    finally:
        STUDY["figure"] = {"kind": "line", "x": "data.horizon", "series": "experiment"}
    svg = paths["svg"].read_text()
    assert svg.count("no result") == 2  # a/y at horizon 32 (failed) and 64 (missing)


def test_a_pinned_experiment_outside_the_sweep_file_is_warned_about(tmp_path: Path):
    """``-m sweep=<study> experiment=<other data>`` runs the grid on other data: the report must not present the
    comparison with the paper as if it held (it used to, silently)."""
    assert "is not an experiment these paper cells" not in study_markdown(read_folder(_demo(tmp_path / "a")))
    root = _demo(tmp_path / "b")
    path = root / "0" / ".hydra" / "overrides.yaml"
    path.write_text(path.read_text().replace("experiment=a/x", "experiment=b/synthetic"))
    text = study_markdown(read_folder(root))
    assert ("**Warning:** `experiment=b/synthetic` is not an experiment these paper cells were published for "
            "(a/x, a/y)") in text
