"""Turn sweep (or run) folders into the papers' tables and figures: ``python report.py <folder> [<folder> ...]``.

``--list`` prints every study sweep file with its job count. One folder: ``report.md`` / ``report.csv`` /
``report_cells.csv`` / ``report.png`` / ``report.svg`` in it, and the Markdown printed. Several: each one's report,
then (``--out``, default a new ``reports/<time>_<id>/`` folder) the cross-method table of study sweeps, or
``runs.md`` / ``runs.csv`` with every job side by side when a folder has no study.
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import rootutils

rootutils.setup_root(__file__, indicator="pyproject.toml", pythonpath=True)

from fsad.studies.folders import FolderError, read_folder  # noqa: E402
from fsad.studies.report import study_markdown, write_cross_method, write_study_report  # noqa: E402
from fsad.studies.spec import StudyError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="sweep folders (logs/<task>/multiruns/<id>) or runs")
    parser.add_argument("--out", type=Path, default=None, help="folder of the cross-method table")
    parser.add_argument("--list", action="store_true", help="list every study sweep file (Markdown) and exit")
    args = parser.parse_args(argv)
    if args.list:
        from fsad.studies.catalog import catalog
        from fsad.studies.tables import markdown

        try:
            print(markdown(catalog()), end="")
        except Exception as err:  # noqa: BLE001 - a sweep file that does not compose, or a malformed study block
            print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
            return 2
        return 0
    if not args.folders:
        parser.error("give at least one sweep or run folder (or --list)")
    given = Counter(folder.resolve() for folder in args.folders)
    twice = sorted({str(f) for f in args.folders if given[f.resolve()] > 1})
    if twice:
        parser.error(f"a folder given twice: {', '.join(twice)}")
    try:
        sweeps = [read_folder(folder) for folder in args.folders]
    except (FolderError, StudyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for sweep in sweeps:
        paths = write_study_report(sweep)
        print(study_markdown(sweep))
        print("written: " + ", ".join(str(p) for p in paths.values()) + "\n")
    if len(sweeps) > 1:
        try:
            paths = write_cross_method(sweeps, args.out)
        except ValueError as err:
            print(f"error: no cross-method table: {err}", file=sys.stderr)
            return 2
        print(paths["md"].read_text())
        print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
