"""The seam between the generic runner (:mod:`fsad.pipeline`) and a task's evaluation.

``conf/evaluation/*.yaml`` names its component with ``_target_``; the runner instantiates it and never knows which
task it runs. A component

1. checks that the data module and the method belong to its task (:meth:`Evaluation.check`, before training);
2. names the loaders the method scores after training (:meth:`Evaluation.scoring_loaders`, one per split);
3. turns what the method gathered while scoring into a report and the run's arrays and figures
   (:meth:`Evaluation.report`, on the main process only);
4. prints the headline of its report (:meth:`Evaluation.print_summary`).

The runner keeps the generic work: timing, versions, ``metrics.json``, loggers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TaskMismatchError(ValueError):
    """The data module, the method and the evaluation do not belong to the same task."""


@dataclass
class Outcome:
    """What :meth:`Evaluation.report` returns: the metrics (``metrics.json`` keys) and the figures written into the
    run folder, by the name they are logged under (``{"test/scores": <run>/scores.png}``)."""

    report: dict[str, Any]
    figures: dict[str, Path] = field(default_factory=dict)


class Evaluation:
    """Base of the evaluation components; see the module docstring for the contract."""

    #: the task's name, as printed in mismatch errors
    task = ""
    #: the data module and method base classes of the task (checked by :meth:`check`)
    datamodule_type: type = object
    method_type: type = object
    #: the ``data=`` / ``evaluation=`` options of this task, for the error messages
    hint = ""

    def check(self, datamodule: Any, model: Any) -> None:
        """:class:`TaskMismatchError` when ``datamodule`` or ``model`` is not of this component's task."""
        for role, obj, expected in (("data", datamodule, self.datamodule_type), ("model", model, self.method_type)):
            if not isinstance(obj, expected):
                raise TaskMismatchError(
                    f"{role}: {type(obj).__name__} is not a {self.task} {role} module, but the evaluation is "
                    f"{type(self).__name__} ({self.task}). {self.hint}")

    def scoring_loaders(self, datamodule: Any) -> dict[str, Any]:
        raise NotImplementedError

    def callbacks(self, run_dir: Path) -> list[Any]:
        """Callbacks the evaluation adds to training (e.g. evaluating every k epochs into ``run_dir``)."""
        return []

    def report(self, model: Any, datamodule: Any, loaders: dict[str, Any], run_dir: Path) -> Outcome:
        raise NotImplementedError

    def print_summary(self, report: dict[str, Any], run_dir: Path) -> None:
        raise NotImplementedError
