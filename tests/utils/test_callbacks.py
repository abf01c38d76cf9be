"""The epoch clock and the run-aware progress bar."""

from __future__ import annotations

import math
from types import SimpleNamespace

from fsad.utils.callbacks import FitClock, RunProgressBar, run_name


def test_fit_clock_counts_the_epochs_of_this_fit():
    clock, trainer = FitClock(), SimpleNamespace(current_epoch=4)
    assert math.isnan(clock.seconds_per_epoch)  # nothing trained yet
    clock.on_train_start(trainer, None)
    trainer.current_epoch = 7
    clock.on_train_end(trainer, None)
    assert (clock.first_epoch, clock.epochs) == (4, 3)
    assert clock.seconds_per_epoch == clock.seconds / 3


def test_run_name_shows_the_folder_and_the_sweep_of_a_job():
    assert run_name("logs/train/runs/2026-01-01_00-00-00_abcdef") == "2026-01-01_00-00-00_abcdef"
    assert run_name("logs/train/multiruns/2026-01-01_00-00-00_abcdef/3") == "2026-01-01_00-00-00_abcdef/3"


def test_progress_bar_names_the_run_and_the_split_being_scored(monkeypatch):
    bar = RunProgressBar()
    assert bar.test_description == "Scoring"
    module = SimpleNamespace(scoring_splits=["train", "val", "test"])
    monkeypatch.setattr(RunProgressBar.__mro__[1], "on_test_batch_start", lambda *args, **kwargs: None)
    bar.on_test_batch_start(None, module, None, 0, dataloader_idx=2)
    assert bar.test_description == "Scoring test"
    monkeypatch.setattr(RunProgressBar.__mro__[1], "get_metrics", lambda self, t, m: {"v_num": "2-21", "loss": 1.0})
    metrics = bar.get_metrics(SimpleNamespace(default_root_dir="logs/train/runs/2026-01-01_00-00-00_abcdef"), None)
    assert metrics == {"run": "2026-01-01_00-00-00_abcdef", "loss": 1.0}

