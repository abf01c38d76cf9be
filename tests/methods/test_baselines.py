"""Classical baselines: feature vectors and z-scores by hand, PyOD detectors on obvious outliers, configs, and
every baseline end to end through ``train()`` (and ``evaluate()``) on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import PropertyMock, patch

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from fsad.methods.baselines import HBOS, KNN, LOF, OCSVM, PCA, ClassicalBaseline, IsolationForest, ZScore
from fsad.methods.baselines.detectors import TRAINING_SERIES_KEY
from fsad.methods.baselines.features import StepCollector, spread_to_positions, training_vectors, window_vectors
from fsad.pipeline import evaluate, train
from fsad.utils.run_config import with_run_config
from tests.pipeline.helpers import compose_cfg

PYOD_MODELS = {"iforest": IsolationForest, "lof": LOF, "ocsvm": OCSVM, "pca": PCA, "hbos": HBOS, "knn": KNN}
MODELS = {**PYOD_MODELS, "zscore": ZScore}
TINY_DATA = [
    "data.generator.length=600",
    "data.generator.train_length=600",
    "data.window=30",
    "data.train_stride=10",
    "data.batch_size=16",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_model_summary=false",
    "print_config=false",
]


def fitted(model: ClassicalBaseline, series: np.ndarray) -> ClassicalBaseline:
    """``model`` fitted on a fully seen (T, C) series, as the end of its training epoch does."""
    model.fit_series(series.astype(np.float32), np.ones(len(series), dtype=bool))
    return model


# --- feature vectors ----------------------------------------------------------------------------------------------
def test_window_vectors_flatten_the_steps_ending_at_each_position_oldest_first():
    x = np.arange(8.0).reshape(1, 4, 2)  # steps [0, 1], [2, 3], [4, 5], [6, 7]
    assert np.array_equal(window_vectors(x, 2), [[[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]])
    assert np.array_equal(window_vectors(x, 3), [[[0, 1, 2, 3, 4, 5], [2, 3, 4, 5, 6, 7]]])
    assert np.array_equal(window_vectors(x, 1), x)  # input=step: the step itself
    with pytest.raises(ValueError, match=r"window_size must be in \[1, 4\]"):
        window_vectors(x, 5)


def test_training_vectors_need_a_fully_seen_history():
    values = np.arange(6.0).reshape(6, 1)
    seen = np.array([True, True, True, False, True, True])
    assert np.array_equal(training_vectors(values, seen, 1, None, 0), [[0], [1], [2], [4], [5]])
    assert np.array_equal(training_vectors(values, seen, 2, None, 0), [[0, 1], [1, 2], [4, 5]])
    with pytest.raises(ValueError, match="no training step has 3 collected steps"):
        training_vectors(values, np.array([True, False] * 3), 3, None, 0)


def test_training_vectors_subsample_is_seeded_and_in_time_order():
    values = np.arange(100.0).reshape(100, 1)
    seen = np.ones(100, dtype=bool)
    a = training_vectors(values, seen, 1, 10, seed=3)
    assert a.shape == (10, 1) and np.all(np.diff(a[:, 0]) > 0)
    assert np.array_equal(a, training_vectors(values, seen, 1, 10, seed=3))
    assert not np.array_equal(a, training_vectors(values, seen, 1, 10, seed=4))


def test_positions_without_full_history_take_the_first_full_vectors_score():
    assert np.array_equal(spread_to_positions(np.array([[5.0, 7.0]]), 3), [[5, 5, 5, 7]])
    assert np.array_equal(spread_to_positions(np.array([[5.0, 7.0]]), 1), [[5, 7]])


def test_collector_keeps_each_step_once_from_shuffled_overlapping_windows():
    series = np.arange(14.0, dtype=np.float32).reshape(7, 2)
    collector = StepCollector(2)
    for start in (4, 0, 2):  # windows of 3 steps: 0-2, 2-4, 4-6
        collector.add(np.array([start]), series[None, start:start + 3])
    values, seen = collector.series()
    assert np.array_equal(values, series) and seen.all()
    gappy = StepCollector(2)
    gappy.add(np.array([0, 4]), np.stack([series[0:2], series[4:6]]))
    values, seen = gappy.series()
    assert seen.tolist() == [True, True, False, False, True, True] and np.array_equal(values[4:6], series[4:6])
    with pytest.raises(ValueError, match=r"expected windows \(B, W, 2\)"):
        gappy.add(np.array([0]), np.zeros((1, 3, 5), dtype=np.float32))


# --- scores by hand -----------------------------------------------------------------------------------------------
def test_zscore_by_hand():
    # channel 0: mean 1, std 1; channel 1: constant 5 in training (std 0 -> divided by 1)
    model = fitted(ZScore(n_channels=2, window=2), np.array([[0.0, 5.0], [2.0, 5.0]]))
    x = torch.tensor([[[4.0, 5.0], [1.0, 6.5]]])
    assert torch.allclose(model.score(x), torch.tensor([[3.0, 1.5]]))  # max(3, 0), max(0, 1.5)
    assert model.n_fit_steps == 2 and model.mean.tolist() == [1.0, 5.0] and model.std.tolist() == [1.0, 1.0]


def test_knn_distance_by_hand_per_step_and_windowed():
    series = np.arange(4.0).reshape(4, 1)  # training steps 0, 1, 2, 3
    step = fitted(KNN(n_channels=1, window=3, n_neighbors=1), series)
    assert torch.allclose(step.score(torch.tensor([[[0.5], [5.0], [-1.0]]])), torch.tensor([[0.5, 2.0, 1.0]]))
    # windowed, 2 steps: training vectors [0, 1], [1, 2], [2, 3]
    windowed = fitted(KNN(n_channels=1, window=3, n_neighbors=1, input="window", window_size=2), series)
    assert windowed.n_fit_vectors == 3
    # vectors [1, 2] (distance 0) and [2, 4] (nearest [2, 3]: 1); the first step takes the first vector's score
    assert torch.allclose(windowed.score(torch.tensor([[[1.0], [2.0], [4.0]]])), torch.tensor([[0.0, 0.0, 1.0]]))


# every PyOD detector per step and windowed; the z-score is per step by definition
OUTLIER_CASES = [(name, kind) for name in sorted(PYOD_MODELS) for kind in ("step", "window")] + [("zscore", "step")]


@pytest.mark.parametrize("name,input_kind", OUTLIER_CASES)
def test_an_obvious_outlier_gets_the_highest_score(name: str, input_kind: str):
    rng = np.random.default_rng(0)
    train_series = rng.normal(size=(400, 3))
    extra = {} if name == "zscore" else {"input": input_kind, "window_size": 3}
    model = fitted(MODELS[name](n_channels=3, window=20, **extra), train_series)
    x = rng.normal(size=(2, 20, 3))
    x[1, 12] = 8.0
    scores = model.score(torch.tensor(x, dtype=torch.float32))
    assert scores.shape == (2, 20) and torch.isfinite(scores).all()
    flat = int(scores.argmax())
    assert flat // 20 == 1 and (flat % 20 == 12 if input_kind == "step" else 12 <= flat % 20 <= 14)


def test_pca_default_stays_finite_with_a_constant_training_channel():
    rng = np.random.default_rng(1)
    series = np.column_stack([rng.normal(size=(300, 2)), np.zeros(300)])
    x = torch.tensor(rng.normal(size=(1, 10, 3)), dtype=torch.float32)
    assert torch.isfinite(fitted(PCA(n_channels=3, window=10), series).score(x)).all()
    with pytest.raises(ValueError, match="non-finite scores"):  # PyOD's default keeps the zero-variance axis
        fitted(PCA(n_channels=3, window=10, n_components=None), series).score(x)


def test_unfitted_model_and_bad_settings_are_clear_errors():
    with pytest.raises(RuntimeError, match="IsolationForest is not fitted"):
        IsolationForest(n_channels=2, window=5).score(torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match=r"expects windows \(B, W, 2\)"):
        fitted(ZScore(n_channels=2, window=5), np.zeros((4, 2))).score(torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match="model.input must be one of"):
        KNN(n_channels=2, window=5, input="patch")
    with pytest.raises(ValueError, match=r"model.window_size must be in \[1, data.window = 5\]"):
        KNN(n_channels=2, window=5, input="window", window_size=6)
    with pytest.raises(ValueError, match="max_train_vectors"):
        KNN(n_channels=2, window=5, max_train_vectors=0)


def test_fitting_under_ddp_is_refused():
    model = IsolationForest(n_channels=2, window=5)
    with patch.object(type(model), "trainer", new_callable=PropertyMock) as trainer:
        trainer.return_value.world_size = 2
        with pytest.raises(RuntimeError, match="in one process"):
            model.on_fit_start()


# --- checkpoints --------------------------------------------------------------------------------------------------
def test_checkpoint_round_trip_refits_the_same_detector():
    rng = np.random.default_rng(2)
    model = fitted(IsolationForest(n_channels=3, window=8, seed=5), rng.normal(size=(200, 3)))
    x = torch.tensor(rng.normal(size=(2, 8, 3)), dtype=torch.float32)
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    assert set(checkpoint[TRAINING_SERIES_KEY]) == {"values", "seen"}
    restored = IsolationForest(n_channels=3, window=8, seed=5)
    restored.on_load_checkpoint(checkpoint)
    assert not restored.is_fitted  # refitted lazily, at the first score
    assert torch.equal(restored.score(x), model.score(x))
    detector = model.detector
    model.on_load_checkpoint(checkpoint)  # its own series: the fitted detector is kept
    assert model.detector is detector
    empty = IsolationForest(n_channels=3, window=8)
    empty.on_load_checkpoint({"state_dict": {}})
    with pytest.raises(RuntimeError, match="not fitted"):
        empty.score(x)


# --- configs and the pipeline -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_instantiates_from_its_config(tmp_path: Path, name: str):
    cfg = compose_cfg("train", [f"model={name}"], tmp_path)
    model = instantiate(cfg.model, _convert_="all")
    assert type(model) is MODELS[name]
    assert model.n_channels == cfg.data.n_channels and model.window == cfg.data.window
    if name != "zscore":
        assert model.input == "step" and model.seed == cfg.seed


def test_experiment_files_default_to_isolation_forest_and_take_the_models_choice(tmp_path: Path):
    cfg = compose_cfg("train", ["experiment=baselines/msl"], tmp_path)
    assert cfg.model._target_.endswith("IsolationForest") and cfg.trainer.max_epochs == 1
    assert cfg.task_name == "baselines_msl" and cfg.data.train_stride == cfg.data.window == 90
    cfg = compose_cfg("train", ["experiment=baselines/gecco", "model=lof"], tmp_path)
    assert cfg.model._target_.endswith(".LOF") and cfg.data.n_channels == cfg.model.n_channels == 9


@pytest.fixture(scope="module")
def baseline_runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Every baseline trained once on tiny synthetic data, with the default 3 epochs (they stop after one)."""
    root = tmp_path_factory.mktemp("baselines")
    runs = {}
    for name in sorted(MODELS):
        run_dir = root / name
        runs[name] = run_dir, train(compose_cfg("train", [f"model={name}", *TINY_DATA], run_dir))
    return runs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_train_runs_end_to_end(baseline_runs, name: str):
    run_dir, report = baseline_runs[name]
    assert report["time/epochs"] == 1.0  # one epoch collects everything, whatever trainer.max_epochs says
    assert report["ckpt_path"].endswith(".ckpt") and Path(report["ckpt_path"]).is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert 0.0 <= report["test/auc_roc"] <= 1.0
    scores = np.load(run_dir / "scores.npz")
    assert scores["test_scores"].shape == (600,) and np.isfinite(scores["test_scores"]).all()
    assert "val/loss" in next((run_dir / "csv").glob("*/metrics.csv")).read_text()


@pytest.mark.parametrize("name", ["knn", "zscore"])
def test_eval_of_a_baseline_run_reproduces_its_metrics(baseline_runs, tmp_path: Path, name: str):
    run_dir, report = baseline_runs[name]
    again = evaluate(with_run_config(compose_cfg("eval", [f"ckpt_path={run_dir}", "print_config=false"],
                                                 tmp_path / "eval")))
    for key, value in report.items():
        if key.startswith("test/") and isinstance(value, float):
            assert again[key] == value, key
    assert np.array_equal(np.load(tmp_path / "eval" / "scores.npz")["test_scores"],
                          np.load(run_dir / "scores.npz")["test_scores"])


def test_eval_of_a_checkpoint_without_training_series_is_a_clear_error(baseline_runs, tmp_path: Path):
    run_dir, report = baseline_runs["iforest"]
    checkpoint = torch.load(report["ckpt_path"], weights_only=True)
    del checkpoint[TRAINING_SERIES_KEY]
    stripped = run_dir / "checkpoints" / "stripped.ckpt"
    torch.save(checkpoint, stripped)
    cfg = with_run_config(compose_cfg("eval", [f"ckpt_path={stripped}", "print_config=false"], tmp_path / "eval"))
    with pytest.raises(RuntimeError, match="IsolationForest is not fitted"):
        evaluate(cfg)
    assert json.loads((run_dir / "metrics.json").read_text())["ckpt_path"] == report["ckpt_path"]
