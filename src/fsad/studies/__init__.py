"""The papers' studies as sweeps: the study description in a sweep file, its grid, and the report of a sweep folder.

A ``conf/sweep/<method>/<study>.yaml`` file holds the grid (``hydra.sweeper.params``), the fixed settings, a
``study:`` block that says how to read the jobs (which metric is the paper's number, what the figure draws) and a
``paper:`` list with the published numbers, one entry per table cell (:mod:`fsad.studies.spec`). ``report.py``
turns a sweep folder into the study's table and figure (:mod:`fsad.studies.report`).
"""
