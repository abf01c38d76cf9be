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

    @classmethod
    def check(cls, datamodule: type, model: type) -> None:
        """:class:`TaskMismatchError` when the ``datamodule`` or ``model`` class is not of this component's task
        (checked from the config's ``_target_`` classes, before anything is built)."""
        for role, given, expected in (("data", datamodule, cls.datamodule_type), ("model", model, cls.method_type)):
            if not (isinstance(given, type) and issubclass(given, expected)):
                name = getattr(given, "__name__", str(given))
                raise TaskMismatchError(f"{role}: {name} is not a {role} module of the {cls.task} task, but the "
                                        f"evaluation is {cls.__name__} ({cls.task}). {cls.hint}")

    def scoring_loaders(self, datamodule: Any) -> dict[str, Any]:
        raise NotImplementedError

    def callbacks(self, run_dir: Path) -> list[Any]:
        """Callbacks the evaluation adds to training (e.g. evaluating every k epochs into ``run_dir``)."""
        return []

    def report(self, model: Any, datamodule: Any, loaders: dict[str, Any], run_dir: Path) -> Outcome:
        raise NotImplementedError

    def print_summary(self, report: dict[str, Any], run_dir: Path) -> None:
        raise NotImplementedError
