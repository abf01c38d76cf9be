"""A study's tables: one row per job (ours beside the paper, the chance references, the honest metrics, the
budget), one row per published cell, and the cross-method table of several sweeps.

Values are in the paper's unit (ours x ``study.scale``). References: ``random`` is what scores without
information get on the same labels (``test/random/...``, ``test/<protocol>/random/...``), ``all positive`` what
flagging every test step gets (``test/all_positive/...``, thresholded time-series metrics only).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd

from fsad.studies.folders import Job, Sweep
from fsad.studies.grid import matches
from fsad.studies.spec import PaperCell, Study

IMAGE_PROTOCOLS = ("exact", "ader")


def random_key(key: str) -> str:
    """The chance reference of a metric key: ``test/auc_pr`` -> ``test/random/auc_pr``, ``test/paper/f1_pa`` ->
    ``test/random/paper/f1_pa``, ``test/ader/mean/mad`` -> ``test/ader/random/mean/mad``."""
    parts = key.split("/")
    if len(parts) > 2 and parts[0] == "test" and parts[1] in IMAGE_PROTOCOLS:
        return "/".join(parts[:2] + ["random"] + parts[2:])
    return "/".join(parts[:1] + ["random"] + parts[1:])


def all_positive_key(key: str) -> str | None:
    """The predict-everything reference of a thresholded time-series key (``test/<strategy>/<metric>`` ->
    ``test/all_positive/<metric>``), None for threshold-free and image keys."""
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "test" and parts[1] not in IMAGE_PROTOCOLS + ("random", "raw"):
        return f"test/all_positive/{parts[2]}"
    return None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _scaled(job: Job, key: str | None, scale: float) -> float:
    return _number(job.metrics.get(key)) * scale if key else math.nan


def _label(value: Any) -> str:
    return "[" + ",".join(_label(v) for v in value) + "]" if isinstance(value, list) else str(value)


def _cell_for(study: Study, job: Job, jobs: list[Job]) -> PaperCell | None:
    """The paper cell that selects this job and no other one (a cell over several jobs goes to the cell table)."""
    for cell in study.paper:
        if matches(cell.where, job.values) and sum(matches(cell.where, j.values) for j in jobs) == 1:
            return cell
    return None


# The columns of a run or sweep without a study: the paper protocol's point-adjusted F1 (time series), the
# affiliation and point-wise F1 at the honest train-percentile threshold, the threshold-free metrics (also on the
# raw, unsmoothed scores) and the exact image protocol's mAD; keys no job has are dropped from the table.
PLAIN_KEYS = ("test/paper/f1_pa", "test/train_percentile/aff_f1", "test/train_percentile/f1", "test/auc_roc",
              "test/raw/auc_roc", "test/auc_pr", "test/vus_pr", "test/exact/mean/mad")


def job_table(sweep: Sweep) -> pd.DataFrame:
    """One row per job (missing and failed ones included): the swept values, the status, each paper column's
    ours / paper / delta, the headline's random and all-positive references, the honest metrics each with its
    random reference, and the budget (epochs trained, seconds of fitting). Without a study (a plain multirun or a
    single run): the job's ``model`` and ``data`` choices, its overrides and :data:`PLAIN_KEYS` with their random
    (and all-positive) references."""
    study = sweep.study
    keys = list(study.grid) if study else list(dict.fromkeys(k for job in sweep.jobs for k in job.values))
    rows = []
    for job in sorted(sweep.jobs, key=lambda j: (j.number is None, j.number or 0)):
        row: dict[str, Any] = {"job": job.number if job.number is not None else "-"}
        if not study:  # what ran, as the run's config groups name it
            row.update(model=job.choices.get("model", ""), data=job.choices.get("data", ""))
        row.update({key: _label(job.values.get(key, "")) for key in keys})
        row["status"] = job.status
        if study:
            cell = _cell_for(study, job, sweep.jobs)
            for column, key in study.metrics.items():
                ours = _scaled(job, key, study.scale)
                paper = cell.values.get(column, math.nan) if cell else math.nan
                row[column] = ours
                row[f"{column} paper"] = paper
                row[f"{column} delta"] = ours - paper
            head = study.metrics[study.headline]
            row[f"{study.headline} random"] = _scaled(job, random_key(head), study.scale)
            row[f"{study.headline} all positive"] = _scaled(job, all_positive_key(head), study.scale)
            honest = study.honest
        else:
            honest = PLAIN_KEYS
        for key in honest:
            row[key] = _number(job.metrics.get(key))
            row[f"{key} random"] = _number(job.metrics.get(random_key(key)))
            if all_positive_key(key):
                row[f"{key} all positive"] = _number(job.metrics.get(all_positive_key(key)))
        row["epochs"] = _number(job.metrics.get("time/epochs"))
        row["fit s"] = _number(job.metrics.get("time/fit_seconds"))
        row["error"] = job.error or ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.dropna(axis=1, how="all") if not frame.empty else frame


def common_overrides(sweeps: list[Sweep]) -> dict[str, str]:
    """The overrides every job of these folders that ran shares, as ``{key: label}`` (e.g. the budget of a
    comparison); grid points that never ran and jobs whose overrides could not be read are not counted."""
    jobs = [job for sweep in sweeps for job in sweep.jobs
            if job.status != "missing" and (job.status != "unreadable" or job.overrides)]
    if not jobs:
        return {}
    keys = dict.fromkeys(k for job in jobs for k in job.values)
    return {k: _label(jobs[0].values[k]) for k in keys
            if all(k in job.values and _label(job.values[k]) == _label(jobs[0].values[k]) for job in jobs)}


def runs_table(sweeps: list[Sweep]) -> pd.DataFrame:
    """Every job of several folders without a common study (single runs, plain multiruns) in one table: the
    job as ``<folder>/<number>`` (or ``<folder>`` for a single run), then each folder's :func:`job_table` (columns a
    folder lacks are empty) without the overrides all jobs share (:func:`common_overrides`). A study sweep among them
    is shown like the others (:data:`PLAIN_KEYS`, fractions), not in its paper's columns."""
    def labels(sweep: Sweep, numbers: pd.Series) -> list[str]:
        single_run = [job.folder for job in sweep.jobs] == [sweep.folder]
        return [sweep.folder.name if single_run else f"{sweep.folder.name}/{n}" for n in numbers]

    plain = [replace(s, study=None) for s in sweeps]  # study sweeps too, so every row has the same keys and units
    frames = [job_table(s).assign(job=lambda f, s=s: labels(s, f["job"])) for s in plain]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True).drop(columns=list(common_overrides(sweeps)), errors="ignore")
    tail = [c for c in ("epochs", "fit s", "error") if c in frame.columns]
    return frame[[c for c in frame.columns if c not in tail] + tail]


def cell_table(sweep: Sweep) -> pd.DataFrame:
    """One row per published cell that selects a job of this sweep: its swept values, each paper column beside
    ours (the mean over the finished jobs the cell selects), the delta, the random reference of the headline and
    how many of its jobs finished (:func:`cells_outside` lists the others)."""
    study = sweep.study
    if study is None or not study.paper:
        return pd.DataFrame()
    rows = []
    for cell in study.paper:
        selected = [j for j in sweep.jobs if matches(cell.where, j.values)]
        if not selected:  # outside this sweep's grid (e.g. another dataset when one was pinned): see cells_outside
            continue
        done = [j for j in selected if j.status == "ok"]
        row: dict[str, Any] = {key: _label(value) for key, value in cell.where.items()}
        for column, key in study.metrics.items():
            ours = _mean([_scaled(j, key, study.scale) for j in done])
            paper = cell.values.get(column, math.nan)
            row[column], row[f"{column} paper"], row[f"{column} delta"] = ours, paper, ours - paper
        head = study.metrics[study.headline]
        row[f"{study.headline} random"] = _mean([_scaled(j, random_key(head), study.scale) for j in done])
        row["jobs finished"] = f"{len(done)}/{len(selected)}"
        rows.append(row)
    return pd.DataFrame(rows)


def cells_outside(sweep: Sweep) -> list[PaperCell]:
    """Paper cells that select no job of this sweep (their grid point was not part of the run, e.g. the other
    datasets when the command line pinned one)."""
    study = sweep.study
    return [c for c in (study.paper if study else []) if not any(matches(c.where, j.values) for j in sweep.jobs)]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def cross_method_table(sweeps: list[Sweep]) -> pd.DataFrame:
    """The paper's main table across methods: one row per method (the job's ``model`` choice, with its
    ``ablation`` if any), one column per dataset (the ``data`` choice), each cell ``ours`` and ``paper`` of the
    sweeps' headline column (mean over the finished jobs of that method and dataset, e.g. over horizons).
    Grid points that never ran are listed in ``frame.attrs["missing"]`` (their method and dataset are unknown).

    Raises:
        ValueError: the sweeps have no study, or headline columns with different names (e.g. F1 and Aff-F1).
    """
    studies = [s.study for s in sweeps]
    if any(study is None for study in studies):
        raise ValueError("a cross-method table needs sweep folders made from conf/sweep/<method>/<study> files")
    headlines = {study.headline for study in studies}
    if len(headlines) != 1:
        raise ValueError(f"the sweeps report different headline columns {sorted(headlines)}; one table needs one")
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    missing = []
    for sweep in sweeps:
        study = sweep.study
        for job in sweep.jobs:
            if job.status == "missing":  # never composed: its method and dataset are unknown
                missing.append(f"{sweep.name}: " + " ".join(f"{k}={_label(v)}" for k, v in job.values.items()))
                continue
            method = job.choices.get("model") or "?"
            if job.choices.get("ablation"):
                method = f"{method} ({job.choices['ablation']})"
            dataset = job.choices.get("data") or "?"
            entry = groups.setdefault((method, dataset), {"ours": [], "paper": [], "jobs": [], "done": []})
            entry["jobs"].append(1)
            if job.status == "ok":
                entry["done"].append(1)
                entry["ours"].append(_scaled(job, study.metrics[study.headline], study.scale))
            cells = [c for c in study.paper if matches(c.where, job.values) and study.headline in c.values]
            entry["paper"] += [c.values[study.headline] for c in cells]
    rows = []
    for (method, dataset), entry in sorted(groups.items()):
        rows.append({"method": method, "dataset": dataset, "ours": _mean(entry["ours"]),
                     "paper": _mean(entry["paper"]), "jobs finished": f"{len(entry['done'])}/{len(entry['jobs'])}"})
    frame = pd.DataFrame(rows, columns=["method", "dataset", "ours", "paper", "jobs finished"])
    frame["delta"] = frame["ours"] - frame["paper"]
    frame.attrs["missing"] = missing
    return frame


COLUMN_DIGITS = {"epochs": 0, "fit s": 0}


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table of ``frame``; NaN is ``-``; floats rounded to ``digits``, except metric keys
    (``test/...``, fractions: 3 digits) and the budget columns (whole epochs and seconds)."""
    if frame.empty:
        return "(no rows)\n"

    def text(value: Any, column: str) -> str:
        if isinstance(value, float):
            places = COLUMN_DIGITS.get(column, 3 if column.startswith("test/") else digits)
            return "-" if math.isnan(value) else f"{value:.{places}f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    columns = [str(c) for c in frame.columns]
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(text(v, c) for v, c in zip(row, columns)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
