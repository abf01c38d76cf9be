"""The papers' classical baselines through PyOD (Zhao et al., "PyOD: A Python Toolbox for Scalable Outlier
Detection", JMLR 20, 2019): Isolation Forest, LOF, OC-SVM, PCA, HBOS and KNN as time-series methods.

Each step becomes one feature vector (:mod:`fsad.methods.baselines.features`):

- ``input=step`` (default): the C values of the step. These detectors are built for independent points and a
  step of a multivariate series already is one; it keeps the vectors as wide as the data (55 on MSL), so the
  distance-based detectors stay meaningful and every baseline fits and scores MSL in well under a minute, and it
  needs no extra length setting.
- ``input=window``: the ``window_size`` steps ending at the step, flattened oldest first (``window_size * C``
  values), for anomalies that only show in context (shapes, changes of rhythm, univariate series). Inside a
  scoring window the first ``window_size - 1`` steps have no full history; they take the score of the first full
  vector (edge padding), so ``window_size`` must not exceed ``data.window``.

Training: the detector is fitted on at most ``max_train_vectors`` vectors drawn without replacement (seeded by
``seed``) from every training step with a full history. Scores are PyOD's ``decision_function`` (higher = more
anomalous), unscaled.

Checkpoints: a fitted PyOD detector is a Python object, which a checkpoint read with ``weights_only=True`` cannot
hold. The checkpoint stores the collected training series instead (``checkpoint["fsad_training_series"]``: values
(T, C) float32, seen (T,) bool); the detector is refitted from it, deterministically (same vectors, same seed),
the first time a freshly loaded model scores, so ``eval.py`` reproduces the training run's scores. When the
pipeline scores the checkpoint of the run it just trained, the series is the one in memory and nothing is
refitted. A checkpoint of ~``4 * T * C`` bytes (10 MB for MSL's 46,653 training steps).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from fsad.methods.baselines.features import INPUTS, spread_to_positions, training_vectors, window_vectors
from fsad.methods.baselines.module import ClassicalBaseline

log = logging.getLogger(__name__)

TRAINING_SERIES_KEY = "fsad_training_series"


class PyODBaseline(ClassicalBaseline):
    """A PyOD detector fitted on per-step (or windowed) vectors of the training split; subclasses name the
    detector in :meth:`build_detector`.

    Args:
        n_channels, window: C and W of the data.
        input: ``step`` (one vector per step, C values) or ``window`` (``window_size`` steps, flattened).
        window_size: steps per vector with ``input=window`` (1 <= window_size <= window); unused with ``step``.
        max_train_vectors: at most this many training vectors are fitted on (None: all of them).
        seed: seed of the subsample and of randomised detectors.

    Raises:
        ValueError: an unknown ``input``, ``window_size`` outside [1, window], ``max_train_vectors`` < 1.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0):
        super().__init__(n_channels=n_channels, window=window)
        if input not in INPUTS:
            raise ValueError(f"model.input must be one of {INPUTS}, got {input!r}")
        if input == "window" and not 1 <= window_size <= window:
            raise ValueError(f"model.window_size must be in [1, data.window = {window}] with input=window, "
                             f"got {window_size}")
        if max_train_vectors is not None and max_train_vectors < 1:
            raise ValueError(f"model.max_train_vectors must be >= 1 or null, got {max_train_vectors}")
        self.input, self.window_size = input, window_size
        self.max_train_vectors, self.seed = max_train_vectors, seed
        self.detector = None  # the fitted PyOD detector
        self.n_fit_vectors = 0
        self._training_series: tuple[torch.Tensor, torch.Tensor] | None = None  # what the detector was fitted on

    @property
    def steps_per_vector(self) -> int:
        """Steps in one feature vector: ``window_size`` with ``input=window``, else 1."""
        return self.window_size if self.input == "window" else 1

    def build_detector(self):
        """A new, unfitted PyOD detector."""
        raise NotImplementedError

    # --- fit and score ----------------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.detector is not None

    def fit_series(self, values: np.ndarray, seen: np.ndarray) -> None:
        vectors = training_vectors(values, seen, self.steps_per_vector, self.max_train_vectors, self.seed)
        detector = self.build_detector()
        detector.fit(vectors)
        self.detector, self.n_fit_vectors = detector, len(vectors)
        self._training_series = (torch.from_numpy(values), torch.from_numpy(seen))

    def ensure_fitted(self) -> None:
        if self.detector is None and self._training_series is not None:
            values, seen = (t.cpu().numpy() for t in self._training_series)
            log.info("%s: refitting on the training series stored in the checkpoint (%d steps)",
                     type(self).__name__, int(seen.sum()))
            self.fit_series(values, seen)
        super().ensure_fitted()

    def score_steps(self, x: np.ndarray) -> np.ndarray:
        k = self.steps_per_vector
        vectors = window_vectors(x, k)  # (B, W - k + 1, k * C)
        flat = vectors.reshape(-1, vectors.shape[-1])
        scores = np.asarray(self.detector.decision_function(flat), dtype=np.float64)
        return spread_to_positions(scores.reshape(vectors.shape[:2]), k)

    # --- checkpoints: the training series instead of the fitted object ------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self._training_series is not None:
            values, seen = self._training_series
            checkpoint[TRAINING_SERIES_KEY] = {"values": values, "seen": seen}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Take the checkpoint's training series; keep the fitted detector only if it was fitted on that very
        series, else refit lazily at the first score."""
        super().on_load_checkpoint(checkpoint)
        stored = checkpoint.get(TRAINING_SERIES_KEY)
        if stored is None:
            self.detector, self._training_series = None, None
            return
        values, seen = stored["values"], stored["seen"]
        current = self._training_series
        if current is not None and torch.equal(current[0], values) and torch.equal(current[1], seen):
            return
        self.detector, self._training_series = None, (values, seen)


class IsolationForest(PyODBaseline):
    """Isolation Forest (Liu, Ting, Zhou, ICDM 2008) via ``pyod.models.iforest.IForest`` (scikit-learn's trees):
    the score rises as the mean depth at which random axis-parallel splits isolate a vector falls.

    Args:
        n_estimators: trees; max_samples: vectors per tree (``auto`` = min(256, N)); max_features: share of the
        features each tree draws; n_jobs: joblib workers. Common arguments: :class:`PyODBaseline`.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0, n_estimators: int = 100,
                 max_samples: str | int | float = "auto", max_features: float = 1.0, n_jobs: int = 1):
        super().__init__(n_channels, window, input, window_size, max_train_vectors, seed)
        self.save_hyperparameters()
        self.n_estimators, self.max_samples, self.max_features, self.n_jobs = (n_estimators, max_samples,
                                                                              max_features, n_jobs)

    def build_detector(self):
        from pyod.models.iforest import IForest

        return IForest(n_estimators=self.n_estimators, max_samples=self.max_samples, max_features=self.max_features,
                       n_jobs=self.n_jobs, random_state=self.seed)


class LOF(PyODBaseline):
    """Local Outlier Factor (Breunig, Kriegel, Ng, Sander, SIGMOD 2000) via ``pyod.models.lof.LOF`` in novelty
    mode: the ratio of the neighbours' local reachability density to the vector's own.

    Args:
        n_neighbors: k of the neighbourhoods; metric, p: the distance (Minkowski p = 2: Euclidean); n_jobs:
        neighbour-search workers. Common arguments: :class:`PyODBaseline`.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0, n_neighbors: int = 20,
                 metric: str = "minkowski", p: int = 2, n_jobs: int = 1):
        super().__init__(n_channels, window, input, window_size, max_train_vectors, seed)
        self.save_hyperparameters()
        self.n_neighbors, self.metric, self.p, self.n_jobs = n_neighbors, metric, p, n_jobs

    def build_detector(self):
        from pyod.models.lof import LOF as PyODLOF

        return PyODLOF(n_neighbors=self.n_neighbors, metric=self.metric, p=self.p, n_jobs=self.n_jobs, novelty=True)


class OCSVM(PyODBaseline):
    """One-class SVM (Schölkopf et al., Neural Computation 2001) via ``pyod.models.ocsvm.OCSVM`` (libsvm): the
    negated signed distance to the learnt boundary of the training vectors (``nu`` bounds the share of them left
    outside it from above and the share of support vectors from below).

    Scoring costs O(support vectors x vectors); the support vectors are about ``nu * N``, which is why the preset
    caps N (``max_train_vectors``).

    Args:
        kernel, gamma (``auto`` = 1 / features, ``scale``, or a number), nu: the SVM. Common arguments:
        :class:`PyODBaseline`.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0, kernel: str = "rbf",
                 gamma: str | float = "auto", nu: float = 0.5):
        super().__init__(n_channels, window, input, window_size, max_train_vectors, seed)
        self.save_hyperparameters()
        self.kernel, self.gamma, self.nu = kernel, gamma, nu

    def build_detector(self):
        from pyod.models.ocsvm import OCSVM as PyODOCSVM

        return PyODOCSVM(kernel=self.kernel, gamma=self.gamma, nu=self.nu)


class PCA(PyODBaseline):
    """PCA-based detector (after Shyu et al., ICDM workshop 2003) via ``pyod.models.pca.PCA``: PyOD's score sums,
    over the selected principal components, the Euclidean distance between the vector and the component's unit
    axis divided by the component's explained-variance ratio, so the low-variance components weigh most.

    ``n_components`` below 1 keeps the components that explain that share of the variance. PyOD's default (every
    component) divides by a zero ratio as soon as the training vectors have a constant direction (MSL's command
    channels are constant in training) and scores infinity; 0.99 avoids that.

    Args:
        n_components: components kept (int, a share of variance in (0, 1), or None for all);
        n_selected_components: how many of the smallest kept ones score (None: all kept);
        weighted: divide by the explained-variance ratios; standardization: PyOD's own standardisation of the
        vectors; svd_solver: scikit-learn's solver (``full`` supports a share of variance). Common arguments:
        :class:`PyODBaseline`.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0, n_components: int | float | None = 0.99,
                 n_selected_components: int | None = None, weighted: bool = True, standardization: bool = True,
                 svd_solver: str = "full"):
        super().__init__(n_channels, window, input, window_size, max_train_vectors, seed)
        self.save_hyperparameters()
        self.n_components, self.n_selected_components = n_components, n_selected_components
        self.weighted, self.standardization, self.svd_solver = weighted, standardization, svd_solver

    def build_detector(self):
        from pyod.models.pca import PCA as PyODPCA

        return PyODPCA(n_components=self.n_components, n_selected_components=self.n_selected_components,
                       weighted=self.weighted, standardization=self.standardization, svd_solver=self.svd_solver,
                       random_state=self.seed)


class HBOS(PyODBaseline):
    """Histogram-based Outlier Score (Goldstein, Dengel, KI 2012) via ``pyod.models.hbos.HBOS``: the sum over
    features of -log of the vector's histogram density (features treated as independent).

    Args:
        n_bins: bins per feature (an int, or ``auto``); alpha: regulariser of empty bins; tol: how far outside
        the training range a value still counts as in the edge bin. Common arguments: :class:`PyODBaseline`.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0, n_bins: int | str = 10, alpha: float = 0.1,
                 tol: float = 0.5):
        super().__init__(n_channels, window, input, window_size, max_train_vectors, seed)
        self.save_hyperparameters()
        self.n_bins, self.alpha, self.tol = n_bins, alpha, tol

    def build_detector(self):
        from pyod.models.hbos import HBOS as PyODHBOS

        return PyODHBOS(n_bins=self.n_bins, alpha=self.alpha, tol=self.tol)


class KNN(PyODBaseline):
    """k-nearest-neighbour distance (Ramaswamy, Rastogi, Shim, SIGMOD 2000) via ``pyod.models.knn.KNN``: the
    distance to the k-th nearest training vector (``method=largest``), or the mean / median of the k distances.

    Args:
        n_neighbors: k; method: ``largest`` | ``mean`` | ``median``; metric, p: the distance; n_jobs:
        neighbour-search workers. Common arguments: :class:`PyODBaseline`.
    """

    def __init__(self, n_channels: int, window: int, input: str = "step", window_size: int = 10,
                 max_train_vectors: int | None = None, seed: int = 0, n_neighbors: int = 5,
                 method: str = "largest", metric: str = "minkowski", p: int = 2, n_jobs: int = 1):
        super().__init__(n_channels, window, input, window_size, max_train_vectors, seed)
        self.save_hyperparameters()
        self.n_neighbors, self.method, self.metric, self.p, self.n_jobs = n_neighbors, method, metric, p, n_jobs

    def build_detector(self):
        from pyod.models.knn import KNN as PyODKNN

        return PyODKNN(n_neighbors=self.n_neighbors, method=self.method, metric=self.metric, p=self.p,
                       n_jobs=self.n_jobs)
