"""Classical baselines: PyOD's Isolation Forest, LOF, OC-SVM, PCA, HBOS and KNN, and a no-learning z-score, as
time-series methods of the common pipeline."""

from fsad.methods.baselines.detectors import HBOS, KNN, LOF, OCSVM, PCA, IsolationForest, PyODBaseline
from fsad.methods.baselines.module import ClassicalBaseline, ZScore

__all__ = ["ClassicalBaseline", "PyODBaseline", "IsolationForest", "LOF", "OCSVM", "PCA", "HBOS", "KNN", "ZScore"]
