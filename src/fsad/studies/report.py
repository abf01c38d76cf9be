"""``python report.py <sweep or run folder> [...]``: a study's tables and figure written into its folder, and with
several sweep folders the cross-method table of their paper."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pandas as pd

from fsad.studies.figure import draw
from fsad.studies.folders import STATUSES, Sweep
from fsad.studies.spec import is_image_study
from fsad.studies.tables import (_label, cell_table, cells_outside, common_overrides, cross_method_table, job_table,
                                 markdown, runs_table)
from fsad.utils.io import atomic_write


def _digits(sweep: Sweep) -> int:
    return 2 if sweep.study and sweep.study.scale >= 100 else 3


def study_markdown(sweep: Sweep) -> str:
    """The study's report as Markdown: the header (title, grid stated or reconstructed, finished jobs), the table
    against the paper's cells and the table of every job."""
    study, jobs = sweep.study, sweep.jobs
    counts = {status: sum(j.status == status for j in jobs) for status in STATUSES}
    lines = [f"# {study.title if study else sweep.name}", "",
             f"Folder: `{sweep.folder}`. Jobs: {len(jobs)} ("
             + ", ".join(f"{n} {status}" for status, n in counts.items() if n) + ")."]
    lines += _settings_lines(sweep)
    if study:
        head = study.metrics[study.headline]
        lines += [f"Study `{study.name}`; grid {'as the paper states it' if study.grid_source == 'stated' else 'reconstructed (the paper does not state it fully; see the sweep file)'}."
                  f" Paper columns are our keys x {study.scale:g}: "
                  + ", ".join(f"{c} = `{k}`" for c, k in study.metrics.items())
                  + f". `random`: scores without information on the same labels (`{head}` -> its random key)"
                  + ("" if is_image_study(study.metrics) else "; `all positive`: every test step flagged")
                  + ". Honest metrics (fractions) beside, each with its random reference."]
        cells = cell_table(sweep)
        if not cells.empty:
            lines += ["", "## Against the paper", "", markdown(cells, _digits(sweep))]
        outside = cells_outside(sweep)
        if outside:
            lines += ["Published cells outside this sweep's grid (not run here): "
                      + "; ".join(" ".join(f"{k}={_label(v)}" for k, v in c.where.items()) for c in outside) + "."]
    lines += ["", "## Every job", "", markdown(job_table(sweep), _digits(sweep))]
    return "\n".join(lines)


def _settings_lines(sweep: Sweep) -> list[str]:
    """What every job ran with beyond its grid point (the budget, a replaced dataset), and the warnings a reader
    needs before comparing with the paper: a ``data=`` override under a study, a paper column no job reports."""
    study = sweep.study
    shared = {k: v for k, v in common_overrides([sweep]).items() if not (study and k in study.grid)}
    lines = [f"Every job also ran with: {' '.join(f'`{k}={v}`' for k, v in shared.items())}."] if shared else []
    if study and any("data" in job.values and "data" not in study.grid for job in sweep.jobs):
        lines.append("**Warning:** `data=` replaces the datasets of the experiments these paper cells were published"
                     " for; the paper's numbers are not numbers for these data.")
    ran = {str(job.values["experiment"]) for job in sweep.jobs if "experiment" in job.values}
    others = sorted(ran - set(study.experiments)) if study and study.experiments else []
    if others:
        lines.append(f"**Warning:** `experiment={','.join(others)}` is not an experiment these paper cells were "
                     f"published for ({', '.join(study.experiments)}); the paper's numbers are not numbers for "
                     "these data.")
    finished = [job for job in sweep.jobs if job.status == "ok"]
    for column, key in (study.metrics.items() if study and finished else []):
        if not any(key in job.metrics for job in finished):
            lines.append(f"**Warning:** paper column {column} is `{key}`, which no finished job's metrics.json"
                         " has (a misspelt key in the study block, or an evaluation that does not compute it).")
    return lines


def write_study_report(sweep: Sweep) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` (one row per job), ``report_cells.csv`` (one row per paper cell) and
    ``report.png`` / ``report.svg`` into the sweep folder (each atomically); returns the paths by name."""
    folder = sweep.folder
    paths = {"md": atomic_write(folder / "report.md", lambda p: p.write_text(study_markdown(sweep))),
             "csv": atomic_write(folder / "report.csv", lambda p: job_table(sweep).to_csv(p, index=False))}
    cells = cell_table(sweep)
    if not cells.empty:
        paths["cells_csv"] = atomic_write(folder / "report_cells.csv", lambda p: cells.to_csv(p, index=False))
    for path in draw(sweep, folder):
        paths[path.suffix[1:]] = path
    return paths


def cross_method_markdown(table: pd.DataFrame, headline: str) -> str:
    """The long table pivoted as the papers print it: a row per method, a column per dataset, ``ours / paper``."""
    def cell(row) -> str:
        ours = "-" if pd.isna(row["ours"]) else f"{row['ours']:.2f}"
        paper = "-" if pd.isna(row["paper"]) else f"{row['paper']:.2f}"
        return f"{ours} / {paper}"

    wide = table.assign(cell=table.apply(cell, axis=1)).pivot(index="method", columns="dataset", values="cell")
    wide = wide.fillna("not in these sweeps").reset_index()
    missing = table.attrs.get("missing") or []
    tail = "".join(f"\nNot run (missing from the sweep folder): {item}" for item in missing)
    return f"{headline}, ours / paper (`-`: no finished job or no published number)\n\n" + markdown(wide) + tail


def write_cross_method(sweeps: list[Sweep], out: Path | None = None) -> dict[str, Path]:
    """Write the cross-method table of several study sweeps into ``out`` (default: a new folder
    ``reports/<time>_<id>``): ``cross_method.md`` and ``cross_method.csv``. When a folder has no study (single
    runs, plain multiruns), every job of every folder side by side instead (:func:`~fsad.studies.tables.runs_table`):
    ``runs.md`` and ``runs.csv``.

    Raises:
        ValueError: study sweeps with different headline columns (see ``cross_method_table``).
    """
    out = out or Path("reports") / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{secrets.token_hex(3)}"
    if any(sweep.study is None for sweep in sweeps):
        runs, common = runs_table(sweeps), common_overrides(sweeps)
        shared = " ".join(f"`{k}={v}`" for k, v in common.items())
        text = ("Runs side by side (each metric beside its random reference; `all positive`: every test step"
                " flagged)\n\n" + markdown(runs) + (f"\nCommon to every run: {shared}\n" if common else "")
                + "\nFolders: " + ", ".join(f"`{s.folder}`" for s in sweeps) + "\n")
        return {"md": atomic_write(out / "runs.md", lambda p: p.write_text(text)),
                "csv": atomic_write(out / "runs.csv", lambda p: runs.to_csv(p, index=False))}
    table = cross_method_table(sweeps)
    headline = sweeps[0].study.headline
    text = cross_method_markdown(table, headline) + "\nSweeps: " + ", ".join(f"`{s.folder}`" for s in sweeps) + "\n"
    return {"md": atomic_write(out / "cross_method.md", lambda p: p.write_text(text)),
            "csv": atomic_write(out / "cross_method.csv", lambda p: table.to_csv(p, index=False))}
