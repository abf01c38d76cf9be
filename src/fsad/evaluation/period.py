"""The VUS buffer width chosen as TSB-AD does: the dominant period of the series from its autocorrelation.

TSB-AD (Liu & Paparrizos, "The Elephant in the Room: Towards A Reliable Time-Series Anomaly Detection
Benchmark", NeurIPS 2024) sets ``slidingWindow = find_length_rank(data[:, 0], rank=1)`` for every series of its
benchmark and passes it to VUS-ROC / VUS-PR. The rule (TSB-AD's ``utils/slidingWindows.py``): take the first
20,000 points, their autocorrelation up to lag 400 (demeaned, normalised by the lag-0 autocovariance, biased
estimator, as ``statsmodels.tsa.stattools.acf(fft=True)``), drop lags 0-2, and find the strict local maxima; the
highest one at lag ``k`` gives the period ``k``, unless its position in the shortened curve is below 3 or above
300, or there is no local maximum at all (a constant or monotone series): then 125.

Multivariate series are reduced as TSB-AD does: only the first channel is used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MAX_POINTS = 20_000
MAX_LAG = 400
FIRST_LAG = 3
FALLBACK = 125


class Period(NamedTuple):
    """The chosen buffer width and whether a period was found (False: TSB-AD's fallback of 125)."""

    window: int
    found: bool


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """(max_lag + 1,) autocorrelation of a 1-D series at lags 0..max_lag (fewer if the series is shorter).

    Biased estimator ``r_k = sum_t (x_t - m)(x_{t+k} - m) / sum_t (x_t - m)^2`` computed with the FFT, the
    definition of ``statsmodels.tsa.stattools.acf(x, nlags=max_lag, fft=True)``. A constant series gives NaN
    for every lag (0 / 0), as statsmodels does.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x - x.mean()
    n = len(x)
    size = 1 << int(np.ceil(np.log2(max(2 * n - 1, 1))))
    spectrum = np.fft.rfft(x, size)
    covariance = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(max_lag, n - 1) + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return covariance / covariance[0]


def find_period(series: np.ndarray) -> Period:
    """TSB-AD's VUS window for a (T,) or (T, C) series (first channel), see the module docstring.

    Raises ValueError for an empty series.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, 0]
    if x.size == 0:
        raise ValueError("find_period: the series is empty")
    curve = autocorrelation(x[:MAX_POINTS], MAX_LAG)[FIRST_LAG:]
    inner = curve[1:-1]
    is_peak = (inner > curve[:-2]) & (inner > curve[2:])  # NaN compares False: no peak in a constant series
    peaks = np.flatnonzero(is_peak) + 1
    if peaks.size == 0:
        return Period(FALLBACK, False)
    best = peaks[np.argmax(curve[peaks])]  # the first of equal maxima, as argmax over the peak list
    if best < 3 or best > 300:
        return Period(FALLBACK, False)
    return Period(int(best) + FIRST_LAG, True)
