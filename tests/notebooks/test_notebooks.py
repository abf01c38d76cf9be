"""The notebooks in ``notebooks/``: committed without outputs, and each one runs top to bottom in its TINY setting.

Each notebook is executed with nbclient in a temporary working copy (the notebook, ``pyproject.toml``, ``conf/``
and ``train.py``; the ``fsad`` package is the installed one), with its kernel's working folder the copy's
``notebooks/``, ``FSAD_NOTEBOOK_TINY=1`` and ``TMPDIR`` inside the test's folder; the copy must hold exactly the
same files afterwards (a notebook writes into temporary folders or a folder the user chooses, never beside itself).
The kernel is this interpreter, through a kernelspec written into the test's folder and found via
``JUPYTER_PATH`` (no ``ipykernel install`` and no user-level kernelspec needed).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
EXPECTED = ("01_quickstart.ipynb", "02_paper_vs_ours.ipynb", "03_image_maps.ipynb")
KERNEL = "fsad-notebook-tests"
CELL_TIMEOUT = 240  # seconds per cell; TINY cells take a few seconds
COPIED = ("pyproject.toml", "train.py")


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_notebooks_are_there():
    assert {p.name for p in notebook_paths()} >= set(EXPECTED)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path):
    """Outputs stripped: no outputs, ``execution_count`` null, no execution metadata; a valid nbformat 4 file
    whose first code cell is tagged ``parameters`` and reads the TINY switch."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    raw = json.loads(path.read_text())
    assert raw["nbformat"] == 4
    code_cells = [cell for cell in raw["cells"] if cell["cell_type"] == "code"]
    assert code_cells, f"{path.name}: no code cell"
    for number, cell in enumerate(raw["cells"]):
        where = f"{path.name}, cell {number}"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{where}: has outputs"
            assert cell["execution_count"] is None, f"{where}: execution_count {cell['execution_count']}"
        assert "execution" not in cell.get("metadata", {}), f"{where}: execution timings in its metadata"
        assert "attachments" not in cell, f"{where}: has attachments"
    assert "widgets" not in raw["metadata"], f"{path.name}: widget state in the notebook metadata"
    first = code_cells[0]
    assert "parameters" in first["metadata"].get("tags", []), f"{path.name}: first code cell not tagged parameters"
    assert "FSAD_NOTEBOOK_TINY" in "".join(first["source"]), f"{path.name}: parameters cell without the TINY switch"


JUPYTER_KEYS = ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory) -> dict[str, str]:
    """The environment of the notebook kernels: a kernelspec ``fsad-notebook-tests`` that starts this interpreter,
    found through ``JUPYTER_PATH``; Jupyter's runtime files and IPython's profile in the test's folder."""
    base = tmp_path_factory.mktemp("jupyter")
    spec_dir = base / "data" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "fsad tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    env = {**os.environ, "JUPYTER_PATH": str(base / "data"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "IPYTHONDIR": str(base / "ipython"), "FSAD_NOTEBOOK_TINY": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    with pytest.MonkeyPatch.context() as patch:
        for key in JUPYTER_KEYS:
            patch.setenv(key, env[key])
        found = KernelSpecManager().get_kernel_spec(KERNEL)
    assert found.argv[0] == sys.executable, found.argv
    return env


def working_copy(root: Path, name: str) -> Path:
    """A copy of what a notebook needs from the checkout, under ``root``; returns its notebooks/ folder."""
    for item in COPIED:
        shutil.copy2(PROJECT_ROOT / item, root / item)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "notebooks").mkdir()
    shutil.copy2(NOTEBOOKS / name, root / "notebooks" / name)
    return root / "notebooks"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_notebook(name: str, tmp_path: Path, env: dict[str, str]) -> tuple[nbformat.NotebookNode, Path]:
    """Execute ``notebooks/<name>`` in a working copy; returns the executed notebook and the temporary folder its
    kernel used (``TMPDIR``). Fails if the notebook wrote anything into the working copy."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    folder = working_copy(copy, name)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = files_under(copy)
    nb = nbformat.read(folder / name, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, startup_timeout=120, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(folder)}})
    started = time.perf_counter()
    try:
        with pytest.MonkeyPatch.context() as patch:  # the kernel manager looks the kernelspec up in this process
            for key in JUPYTER_KEYS:
                patch.setenv(key, env[key])
            client.execute(env={**env, "TMPDIR": str(scratch), "PROJECT_ROOT": str(copy)})
    finally:
        nbformat.write(nb, tmp_path / f"executed_{name}")  # what each cell printed, also after a failure
    print(f"{name}: {time.perf_counter() - started:.1f} s")
    written = sorted(files_under(copy) - before)
    assert not written, f"{name} wrote into its working copy: {written[:10]}"
    return nb, scratch


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All text the cells printed or displayed, and the number of PNG images they displayed."""
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            elif out.get("output_type") in ("display_data", "execute_result"):
                data = out.get("data", {})
                text.append(data.get("text/plain", "") + data.get("text/html", "") + data.get("text/markdown", ""))
                images += "image/png" in data
    return "\n".join(text), images


def test_quickstart_trains_and_reads_the_run(kernel_env, tmp_path: Path):
    nb, scratch = run_notebook("01_quickstart.ipynb", tmp_path, kernel_env)
    text, images = outputs(nb)
    runs = list(scratch.rglob("metrics.json"))
    assert len(runs) == 1 and (runs[0].parent / "scores.npz").is_file()
    metrics = json.loads(runs[0].read_text())
    assert f"{metrics['test/auc_pr']:.4f}" in text and f"{metrics['test/random/auc_pr']:.4f}" in text
    assert "test/paper/f1_pa" in text and "test_scores" in text
    assert images == 1  # the score plot


@pytest.mark.slow
def test_paper_vs_ours_runs_the_sweep_and_reports(kernel_env, tmp_path: Path):
    nb, scratch = run_notebook("02_paper_vs_ours.ipynb", tmp_path, kernel_env)
    text, images = outputs(nb)
    sweeps = [p.parent for p in scratch.rglob("multirun.yaml")]
    assert len(sweeps) == 1 and len(list(sweeps[0].glob("*/metrics.json"))) == 2
    assert "FreCT, Fig. 5: F1 against the window size" in text
    assert "F1 random" in text and "F1 all positive" in text and "PA-F1 all positive" in text
    assert images == 1  # the report figure


@pytest.mark.slow
def test_image_maps_trains_and_shows_maps(kernel_env, tmp_path: Path):
    nb, scratch = run_notebook("03_image_maps.ipynb", tmp_path, kernel_env)
    text, images = outputs(nb)
    runs = list(scratch.rglob("anomaly_maps.npz"))
    assert len(runs) == 1 and (runs[0].parent / "per_class.csv").is_file()
    assert "mean - random" in text and "exact protocol" in text and "ader protocol" in text
    assert images == 1  # images, maps, overlays, masks
