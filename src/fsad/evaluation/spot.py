"""SPOT: streaming peaks-over-threshold (Siffer et al., KDD 2017).

Reference: A. Siffer, P.-A. Fouque, A. Termier, C. Largouet, "Anomaly Detection in Streams with
Extreme Value Theory", KDD 2017. D3R and VAN-AD threshold their anomaly scores with it
(``getThreshold``: ``SPOT(q)``, ``fit(init, test)``, ``initialize(level=0.98)``, ``run()``, threshold =
mean of the per-step thresholds). This module re-implements that algorithm.

Definitions (``n`` = number of observations seen, ``N_t`` = number of peaks):

* initial threshold ``t``: the ``level`` empirical quantile of the init scores, taken as the order
  statistic ``sorted(init)[int(level * n_init)]`` (as the original code does, no interpolation);
* peaks: the excesses ``Y = x - t`` of the values strictly above ``t``;
* the peaks are modelled by a Generalised Pareto Distribution ``GPD(gamma, sigma)`` (shape ``gamma``,
  scale ``sigma``) fitted by maximum likelihood with Grimshaw's trick: the stationary points of the
  likelihood are ``gamma = mean(log(1 + theta Y))``, ``sigma = gamma / theta`` for the roots ``theta`` of
  ``w(theta) = (1 + mean(log(1 + theta Y))) * mean(1 / (1 + theta Y)) - 1``, which lie in a negative
  interval ``(-1/max(Y), 0)`` and a positive one; the roots are found with scipy's L-BFGS-B on the
  squared function ``w**2``; every root, plus the exponential model ``gamma = 0, sigma = mean(Y)``, is
  scored by its log-likelihood and the best one is kept;
* extreme quantile (the alarm threshold) at risk ``q``:
  ``z_q = t + sigma / gamma * ((q * n / N_t) ** (-gamma) - 1)``, or ``t - sigma * log(q * n / N_t)``
  when ``gamma == 0``;
* streaming (``run``): a value ``> z_q`` is an alarm (not used to update the model); a value in
  ``(t, z_q]`` is a new peak (``N_t += 1``, ``n += 1``, GPD refitted, ``z_q`` updated); any other value
  only increments ``n``. The per-step threshold is ``z_q`` after processing the value.

Two root searches are implemented.

``legacy=True`` reproduces the original Python implementation (Amossys ``spot.py``, copied into D3R /
VAN-AD), defects included: L-BFGS-B on ``sum_k w(theta_k)**2`` from 10 regularly spaced starting
points in ``(-1/max + 2 eps, -eps)`` and in ``(2 (mean - min) / (mean * min), 2 (mean - min) / min**2)``,
with scipy's default tolerances, and the exponential log-likelihood written ``+N_t (1 + log(mean(Y)))``.
Its defects: (i) with continuous scores the smallest peak is tiny, so the positive interval starts
far above the root of a heavy tail (``gamma > 0``), which is then never found; (ii) the sign error
makes the exponential model win whenever the mean excess exceeds about ``1/e`` and rarely below it,
so the fitted tail depends on the score units; (iii) with scipy's default tolerances the optimiser
stops where ``|w|`` is still about ``1e-4`` (``w`` is very flat), which moves gamma by 0.01 to 0.02 on
samples of thousands of peaks.

The default search fixes these while keeping the same ingredients (bracketing intervals, L-BFGS-B on
the squared function, log-likelihood selection, exponential candidate):

* the peaks are divided by their mean (the GPD fit is scale-equivariant, so the threshold of
  ``c * scores`` is ``c`` times the threshold of ``scores``);
* intervals: ``(-1/max + 2 eps, -eps)`` and ``(eps, 2 (mean - min) / min**2)`` (Grimshaw's upper bound,
  the positive interval of Siffer's later libspot);
* ``w`` is evaluated on a grid of ``scan_points`` points per interval (logit-spaced towards both ends
  of the negative interval, log-spaced on the positive one, which spans many orders of magnitude),
  vectorised over points and peaks; every sign change brackets a root;
* each bracket is first narrowed by a few bisections (until its ends are within ~15% of each other,
  so ``w`` is nearly linear in it: ``w`` is very flat near its double root at 0, where a gradient
  stopping rule on ``w**2`` would fire far from the root), then all brackets are polished in one
  L-BFGS-B call on ``sum_k (w(theta_k) / slope_k)**2``, each coordinate bounded to its bracket and
  rescaled to ``[0, 1]`` (it cannot leave its bracket, and the tolerance is a relative position in
  it); a bracket the optimiser leaves with ``|w| > 1e-6 * slope`` is bisected to machine precision;
* sign changes next to 0 (rounding noise around the double root) and roots with ``|theta| < 1e-6``
  (mean-normalised units) are left to the exponential candidate, of which they are numerical copies.

Streaming refits: with ``warm_start=True`` (default), a refit re-brackets each root of the previous fit
in a small neighbourhood (adding one peak moves the roots very little) and refines it; the full scan
runs at initialisation, every ``full_search_every`` refits, and whenever a root can no longer be
re-bracketed. ``warm_start=False`` runs the full search at every refit (``legacy=True,
warm_start=False`` is the original algorithm, refit for refit). Values ``<= t`` of the stream only
increment ``n`` and are skipped in bulk. Invalid inputs raise ``ValueError``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import Bounds, minimize
from scipy.special import expit, logit

__all__ = ["GPDFit", "SPOT", "SPOTRunResult", "grimshaw_fit", "spot_threshold"]

# Roots this close to 0 (mean-normalised units) are the exponential model up to rounding.
_ZERO_ROOT = 1e-6
# Half-widths of the neighbourhoods (logit / log coordinates) tried in turn to re-bracket a tracked root.
_TRACK_WIDTHS = (0.05, 0.4, 1.5)
# Bisections before the L-BFGS-B polish: at most _PRE_BISECT, until |tb / ta| <= exp(_LINEAR_LOG_RATIO).
_PRE_BISECT = 12
_LINEAR_LOG_RATIO = 0.15
# A refined root must satisfy |w| <= _REFINE_RTOL * |w(b) - w(a)| over its bracket [a, b].
_REFINE_RTOL = 1e-6
# Largest (points x peaks) block evaluated at once.
_BLOCK = 1 << 21


@dataclass(frozen=True)
class GPDFit:
    """A fitted Generalised Pareto Distribution on peaks (excesses over the initial threshold).

    gamma: shape (``0`` = exponential tail); sigma: scale (> 0, in score units);
    loglik: log-likelihood of the peaks under the fit, in score units (the value used to pick among
    candidates; with ``legacy`` the exponential candidate carries the original's sign error).
    """

    gamma: float
    sigma: float
    loglik: float


@dataclass(frozen=True)
class SPOTRunResult:
    """Output of :meth:`SPOT.run`.

    thresholds: shape (T,), the extreme quantile ``z_q`` after each stream value;
    alarms: shape (A,), int64 indices into the stream of the values flagged as alarms (``> z_q``).
    """

    thresholds: NDArray[np.float64]
    alarms: NDArray[np.int64]


def _as_scores(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """Flatten ``x`` to a float64 vector and reject NaN / infinite values."""
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); SPOT needs finite scores")
    return arr


@functools.lru_cache(maxsize=1)
def _scipy_openblas_threads() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """Getter / setter of the thread count of the OpenBLAS bundled with scipy wheels, if any."""
    try:
        import scipy

        libdir = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
        for path in sorted(libdir.glob("libscipy_openblas*.so*")):
            lib = ctypes.CDLL(str(path))
            get = getattr(lib, "scipy_openblas_get_num_threads", None)
            set_ = getattr(lib, "scipy_openblas_set_num_threads", None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return get, set_
    except (OSError, ImportError):  # pragma: no cover - platform dependent
        pass
    return None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run scipy's L-BFGS-B with one BLAS thread.

    Each L-BFGS-B iteration makes a few tiny BLAS calls; with a multi-threaded OpenBLAS on a busy
    machine the thread hand-offs dominate (measured: 1 ms per call with one thread, 10 to 50 ms with
    the default threads on a loaded 2-core machine). Uses threadpoolctl when installed, otherwise
    the thread-count functions of the OpenBLAS bundled with scipy wheels; a no-op when neither exists.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        return
    funcs = _scipy_openblas_threads()
    old = funcs[0]() if funcs is not None else 1
    if funcs is None or old <= 1:
        yield
        return
    funcs[1](1)
    try:
        yield
    finally:
        funcs[1](old)


def _check_q(q: float) -> float:
    q = float(q)
    if not (0.0 < q < 1.0):
        raise ValueError(f"SPOT risk q must be in (0, 1), got {q}")
    return q


def _check_level(level: float) -> float:
    level = float(level)
    if not (0.0 < level < 1.0):
        raise ValueError(f"SPOT initial level must be in (0, 1), got {level}")
    return level


# ----------------------------------------------------------------------------------------------
# The Grimshaw function
# ----------------------------------------------------------------------------------------------


def _w_terms(theta: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """``u``, ``v``, ``mean(1/s**2)`` for ``s = 1 + theta_k y`` (theta: (K,), y: (N,)); each (K,)."""
    s = 1.0 + np.multiply.outer(theta, y)  # (K, N)
    inv = np.reciprocal(s)
    n = y.size
    u = 1.0 + np.log(s).sum(axis=1) / n
    v = inv.sum(axis=1) / n
    v2 = np.einsum("kn,kn->k", inv, inv) / n
    return u, v, v2


def _w(theta: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Grimshaw's ``w(theta_k) = u v - 1`` for every ``theta_k`` (shape (K,)), in blocks of rows."""
    out = np.empty(theta.size, dtype=np.float64)
    rows = max(1, _BLOCK // max(1, y.size))
    for i in range(0, theta.size, rows):
        th = theta[i : i + rows]
        s = 1.0 + np.multiply.outer(th, y)
        out[i : i + rows] = (1.0 + np.log(s).mean(axis=1)) * np.reciprocal(s).mean(axis=1) - 1.0
    return out


def _w_and_dw(theta: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``w(theta_k)`` and ``dw/dtheta = (u (mean(1/s**2) - v) + v (1 - v)) / theta`` (shapes (K,))."""
    u, v, v2 = _w_terms(theta, y)
    return u * v - 1.0, (u * (v2 - v) + v * (1.0 - v)) / theta


def _select_best(y: NDArray[np.float64], roots: NDArray[np.float64], legacy: bool) -> GPDFit:
    """Score every root and the exponential model by log-likelihood; keep the best.

    y: shape (N,), positive peaks (score units); roots: shape (K,), ``theta`` in score units.
    For a root: ``gamma = mean(log(1 + theta y))``, ``sigma = gamma / theta`` and the GPD log-likelihood
    ``-N log(sigma) - (1 + 1/gamma) sum(log(1 + gamma y / sigma))`` equals ``-N log(sigma) - N (1 + gamma)``
    (because ``gamma / sigma = theta``). Exponential model: ``sigma = mean(y)``, log-likelihood
    ``-N (1 + log(mean(y)))`` (``+N (1 + log(mean(y)))`` with ``legacy``). Ties keep the exponential
    model, then the first root, as the original loop does.
    """
    n = y.size
    mean = float(y.mean())
    exp_ll = n * (1.0 + math.log(mean)) if legacy else -n * (1.0 + math.log(mean))
    best = GPDFit(0.0, mean, exp_ll)
    roots = roots[roots != 0.0]
    if roots.size == 0:
        return best
    s = 1.0 + np.multiply.outer(roots, y)
    valid = np.all(s > 0.0, axis=1)
    if not np.any(valid):
        return best
    roots, s = roots[valid], s[valid]
    gammas = np.log(s).sum(axis=1) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        sigmas = gammas / roots
        ll = -n * np.log(sigmas) - n * (1.0 + gammas)
    ok = (gammas != 0.0) & (sigmas > 0.0) & np.isfinite(ll)
    if not np.any(ok):
        return best
    ll = np.where(ok, ll, -np.inf)
    k = int(np.argmax(ll))
    if ll[k] > best.loglik:
        best = GPDFit(float(gammas[k]), float(sigmas[k]), float(ll[k]))
    return best


def _left_eps(y_max: float, epsilon: float, n_points: int) -> float:
    """The original's ``eps``: ``epsilon``, shrunk to ``1/(max * n_points)`` when ``1/max < 2 epsilon``."""
    a = 1.0 / y_max
    return a / n_points if a < 2.0 * epsilon else epsilon


# ----------------------------------------------------------------------------------------------
# Legacy search: the original implementation
# ----------------------------------------------------------------------------------------------


def _squared_w_theta(theta: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """``sum_k w(theta_k)**2`` and its gradient in ``theta`` (shape (K,)).

    In score units the left end ``-1/max + 2 eps`` can round to ``-1/max`` (tiny peaks), where ``w`` is
    infinite; the original lets numpy warn and carries on, so do we, silently.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        w, dw = _w_and_dw(theta, y)
    return float(np.dot(w, w)), 2.0 * w * dw


def _legacy_roots(
    y: NDArray[np.float64], epsilon: float, n_points: int, warm: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """The original root search on peaks ``y`` (score units); returns the converged points, shape (K,).

    Per interval (left, then right), one L-BFGS-B run (scipy defaults) on ``sum w**2`` from ``n_points``
    regular interior points (or from the ``warm`` points of that sign), then ``np.unique``.
    """
    y_min, y_max, y_mean = float(y.min()), float(y.max()), float(y.mean())
    eps = _left_eps(y_max, epsilon, n_points)
    intervals = [(-1.0 / y_max + 2.0 * eps, -eps)]
    if y_mean > y_min:  # the original crashes on an empty interval; skip it instead
        intervals.append((2.0 * (y_mean - y_min) / (y_mean * y_min), 2.0 * (y_mean - y_min) / (y_min * y_min)))
    found = []
    for k, (lo, hi) in enumerate(intervals):
        if not hi > lo:
            continue
        if warm is None:
            x0 = lo + (hi - lo) * np.arange(1, n_points + 1, dtype=np.float64) / (n_points + 1)
        else:
            x0 = np.clip(warm[warm < 0] if k == 0 else warm[warm > 0], lo, hi)
            if x0.size == 0:
                continue
        res = minimize(
            _squared_w_theta,
            x0,
            args=(y,),
            jac=True,
            method="L-BFGS-B",
            bounds=Bounds(np.full(x0.size, lo), np.full(x0.size, hi)),
        )
        found.append(np.unique(res.x))
    return np.concatenate(found) if found else np.empty(0)


# ----------------------------------------------------------------------------------------------
# Default search: scan for sign changes, refine every bracket with L-BFGS-B
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Domain:
    """Search domain on mean-normalised peaks (max ``y_max``).

    Left interval ``theta = -p / y_max`` for ``p`` in ``[p_lo, p_hi]`` (scanned in ``logit(p)``);
    right interval ``theta`` in ``right = (lo, hi)`` (scanned in ``log(theta)``), ``None`` when empty.
    """

    y_max: float
    p_lo: float
    p_hi: float
    right: tuple[float, float] | None

    @staticmethod
    def of(y_norm: NDArray[np.float64], epsilon: float, n_points: int) -> "_Domain":
        y_min, y_max = float(y_norm.min()), float(y_norm.max())
        eps = _left_eps(y_max, epsilon, n_points)
        right = None
        if y_min < 1.0:  # the mean is 1: otherwise all peaks are equal
            hi = 2.0 * (1.0 - y_min) / (y_min * y_min)
            if hi > epsilon:
                right = (epsilon, hi)
        return _Domain(y_max, eps * y_max, 1.0 - 2.0 * eps * y_max, right)

    def scan_grids(self, points: int) -> list[NDArray[np.float64]]:
        """Increasing ``theta`` grids (ends included), one per non-empty interval."""
        grids = []
        if self.p_hi > self.p_lo:
            p = expit(np.linspace(logit(self.p_lo), logit(self.p_hi), points))
            grids.append(np.sort(-np.clip(p, self.p_lo, self.p_hi) / self.y_max))
        if self.right is not None:
            lo, hi = self.right
            grids.append(np.clip(np.exp(np.linspace(math.log(lo), math.log(hi), points)), lo, hi))
        return grids

    def neighbourhood(self, theta: float, half_width: float) -> tuple[float, float] | None:
        """A small bracket candidate ``(theta_a, theta_b)`` around ``theta`` (same coordinates as the scan)."""
        if theta < 0.0:
            if not self.p_hi > self.p_lo:
                return None
            p = min(max(-theta * self.y_max, self.p_lo), self.p_hi)
            z_lo, z_hi = float(logit(self.p_lo)), float(logit(self.p_hi))
            z = float(logit(p))
            pa, pb = expit(max(z - half_width, z_lo)), expit(min(z + half_width, z_hi))
            return (-min(pb, self.p_hi) / self.y_max, -max(pa, self.p_lo) / self.y_max)
        if self.right is None:
            return None
        lo, hi = self.right
        g = math.log(min(max(theta, lo), hi))
        return (max(math.exp(g - half_width), lo), min(math.exp(g + half_width), hi))


def _brackets(
    grid: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sign changes of ``w`` along an increasing ``grid`` (both shape (G,)).

    Returns ``(exact_roots, ta, tb, wa, wb)``: grid points where ``w == 0`` and the ends / values of
    every bracket ``[ta, tb]`` with ``wa * wb < 0``.
    """
    exact = grid[w == 0.0]
    change = np.flatnonzero(w[:-1] * w[1:] < 0.0)
    return exact, grid[change], grid[change + 1], w[change], w[change + 1]


def _lbfgsb_brackets(
    y: NDArray[np.float64],
    ta: NDArray[np.float64],
    tb: NDArray[np.float64],
    wa: NDArray[np.float64],
    wb: NDArray[np.float64],
) -> tuple[NDArray[np.float64], float]:
    """One L-BFGS-B call on ``sum_k (w(theta_k) / (wb_k - wa_k))**2`` with ``theta_k = ta_k + x_k (tb_k - ta_k)``,
    ``x_k`` in ``[0, 1]``, started at the secant zero ``x_k = wa_k / (wa_k - wb_k)``.

    Returns ``theta`` (K,) and the final objective ``sum_k (w(theta_k) / (wb_k - wa_k))**2``.
    """
    width = tb - ta
    slope = wb - wa

    def objective(x: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        w, dw = _w_and_dw(ta + x * width, y)
        r = w / slope
        return float(np.dot(r, r)), 2.0 * r * dw * width / slope

    x0 = np.clip(wa / (wa - wb), 0.0, 1.0)
    res = minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(np.zeros(x0.size), np.ones(x0.size)),
        options={"ftol": 0.0, "gtol": 1e-8, "maxiter": 100},
    )
    return ta + np.asarray(res.x, dtype=np.float64) * width, float(res.fun)


def _bisect(
    y: NDArray[np.float64],
    ta: NDArray[np.float64],
    tb: NDArray[np.float64],
    wa: NDArray[np.float64],
    wb: NDArray[np.float64],
    steps: int,
    max_log_ratio: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised bisections of the brackets (shapes (K,)) at the geometric mean of their ends (a
    bracket never contains 0), keeping a sign change in each: ``steps`` at most, stopping once every
    bracket has ``log(max(|ta|, |tb|) / min(|ta|, |tb|)) <= max_log_ratio``."""
    ta, tb, wa, wb = ta.copy(), tb.copy(), wa.copy(), wb.copy()
    for _ in range(steps):
        if np.all(np.abs(np.log(tb / ta)) <= max_log_ratio):
            break
        mid = np.sign(ta) * np.sqrt(ta * tb)
        wm = _w(mid, y)
        left = wa * wm <= 0.0  # the sign change is in [ta, mid]
        tb = np.where(left, mid, tb)
        wb = np.where(left, wm, wb)
        ta = np.where(left, ta, mid)
        wa = np.where(left, wa, wm)
    return ta, tb, wa, wb


def _refine(
    y: NDArray[np.float64],
    ta: NDArray[np.float64],
    tb: NDArray[np.float64],
    wa: NDArray[np.float64],
    wb: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Roots of ``w`` inside the brackets ``[ta_k, tb_k]`` (``wa_k * wb_k < 0``), shapes (K,).

    ``w`` is very flat near 0 (double root) and over wide brackets, where a gradient stopping rule
    on ``w**2`` fires far from the root. So: bisections first, until the ends of every bracket are
    within a factor ``exp(_LINEAR_LOG_RATIO)`` (``w`` is then nearly linear in it), then one L-BFGS-B
    polish of all brackets (:func:`_lbfgsb_brackets`); a bracket whose result still has
    ``|w| > _REFINE_RTOL * |wb - wa|`` is bisected to machine precision instead.
    """
    ta, tb, wa, wb = _bisect(y, ta, tb, wa, wb, _PRE_BISECT, _LINEAR_LOG_RATIO)
    theta, residual = _lbfgsb_brackets(y, ta, tb, wa, wb)
    if residual <= _REFINE_RTOL**2:  # then every bracket passes the test below
        return theta
    stalled = np.abs(_w(theta, y)) > _REFINE_RTOL * np.abs(wb - wa)
    if np.any(stalled):
        a, b, fa, fb = _bisect(y, ta[stalled], tb[stalled], wa[stalled], wb[stalled], 60)
        theta[stalled] = np.where(np.abs(fa) <= np.abs(fb), a, b)
    return theta


def _scan_roots(y_norm: NDArray[np.float64], dom: _Domain, points: int) -> NDArray[np.float64]:
    """Full search: scan both intervals, refine every bracket; roots in normalised units, shape (K,)."""
    grids = dom.scan_grids(points)
    if not grids:
        return np.empty(0)
    w_all = _w(np.concatenate(grids), y_norm)
    parts, start = [], 0
    for g in grids:
        parts.append(_brackets(g, w_all[start : start + g.size]))
        start += g.size
    exact = np.concatenate([p[0] for p in parts])
    ta, tb, wa, wb = (np.concatenate([p[i] for p in parts]) for i in range(1, 5))
    # sign changes next to 0 are rounding noise around the double root of w at 0: skip them
    keep = np.maximum(np.abs(ta), np.abs(tb)) >= _ZERO_ROOT
    ta, tb, wa, wb = ta[keep], tb[keep], wa[keep], wb[keep]
    roots = np.concatenate([exact, _refine(y_norm, ta, tb, wa, wb)]) if ta.size else exact
    return roots


def _track_roots(
    y_norm: NDArray[np.float64], dom: _Domain, previous: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """Warm search: re-bracket each previous root (normalised units) in a neighbourhood, widened
    step by step (``_TRACK_WIDTHS``), and refine it. Returns ``None`` when some root can no longer
    be bracketed (the caller then runs the full search)."""
    k = previous.size
    if k == 0:
        return previous
    ta, tb = np.empty(k), np.empty(k)
    wa, wb = np.empty(k), np.empty(k)
    todo = np.arange(k)
    for half_width in _TRACK_WIDTHS:
        ends = [dom.neighbourhood(float(previous[i]), half_width) for i in todo]
        if any(e is None for e in ends):
            return None
        ta[todo] = [e[0] for e in ends]  # type: ignore[index]
        tb[todo] = [e[1] for e in ends]  # type: ignore[index]
        w = _w(np.concatenate([ta[todo], tb[todo]]), y_norm)
        wa[todo], wb[todo] = w[: todo.size], w[todo.size :]
        todo = todo[wa[todo] * wb[todo] > 0.0]
        if todo.size == 0:
            break
    else:
        return None
    exact = np.concatenate([ta[wa == 0.0], tb[(wb == 0.0) & (wa != 0.0)]])
    strict = (wa * wb) < 0.0
    if not np.any(strict):
        return exact
    return np.concatenate([exact, _refine(y_norm, ta[strict], tb[strict], wa[strict], wb[strict])])


def _fit(
    y: NDArray[np.float64],
    *,
    legacy: bool,
    epsilon: float,
    n_points: int,
    scan_points: int,
    previous: NDArray[np.float64] | None,
) -> tuple[GPDFit, NDArray[np.float64], bool]:
    """Grimshaw fit on positive peaks ``y`` (shape (N,), score units).

    previous: the roots (score units) of the previous fit, to warm-start from; ``None`` = full search.
    Returns the fit, the roots found (score units, shape (K,)) and whether a full search ran.
    """
    if legacy:
        roots = _legacy_roots(y, epsilon, n_points, previous)
        return _select_best(y, roots, legacy=True), _distinct(roots), previous is None
    scale = float(y.mean())
    y_norm = y / scale
    dom = _Domain.of(y_norm, epsilon, n_points)
    roots_norm = None if previous is None else _track_roots(y_norm, dom, previous * scale)
    full = roots_norm is None
    if roots_norm is None:
        roots_norm = _scan_roots(y_norm, dom, scan_points)
    roots_norm = _distinct(roots_norm[np.abs(roots_norm) >= _ZERO_ROOT])
    roots = roots_norm / scale
    return _select_best(y, roots, legacy=False), roots, full


def _distinct(x: NDArray[np.float64], rtol: float = 1e-9) -> NDArray[np.float64]:
    """Sorted values of ``x`` (shape (K,)) with near-duplicates (relative gap <= rtol) merged."""
    if x.size == 0:
        return x
    xs = np.sort(x)
    keep = np.ones(xs.size, dtype=bool)
    keep[1:] = np.diff(xs) > rtol * np.maximum(np.abs(xs[1:]), 1e-300)
    return xs[keep]


def grimshaw_fit(
    peaks: ArrayLike,
    *,
    legacy: bool = False,
    epsilon: float = 1e-8,
    n_points: int = 10,
    scan_points: int = 48,
) -> GPDFit:
    """Maximum-likelihood GPD fit of ``peaks`` (shape (N,), strictly positive excesses), Grimshaw's way.

    Full search (see the module docstring): the default scans ``scan_points`` points per interval and
    refines every sign change with L-BFGS-B; ``legacy=True`` runs the original search from ``n_points``
    starting points per interval. Returns the best :class:`GPDFit` among the roots and the exponential
    model.
    """
    y = _as_scores(peaks, "peaks")
    if y.size == 0:
        raise ValueError("grimshaw_fit needs at least one peak")
    if np.any(y <= 0):
        raise ValueError("peaks must be strictly positive excesses over the threshold")
    with _single_threaded_blas():
        fit, _, _ = _fit(y, legacy=legacy, epsilon=epsilon, n_points=n_points, scan_points=scan_points, previous=None)
    return fit


# ----------------------------------------------------------------------------------------------
# SPOT
# ----------------------------------------------------------------------------------------------


class SPOT:
    """Streaming Peaks-Over-Threshold detector (upper tail), as in Siffer et al. (2017).

    Usage (D3R / VAN-AD ``getThreshold``)::

        spot = SPOT(q=1e-3)
        spot.fit(init_scores, test_scores)   # init: train or validation scores; stream: test scores
        spot.initialize(level=0.98)          # t, peaks, GPD fit, z_q from the init scores only
        result = spot.run()                  # streams the test scores
        threshold = result.thresholds.mean()

    Args:
        q: risk, in (0, 1): the target probability of exceeding the alarm threshold ``z_q``.
        legacy: run the original implementation's root search and exponential log-likelihood (see the
            module docstring); for comparisons with published numbers only.
        warm_start: during streaming, refit from the previous roots (see the module docstring);
            ``False`` runs the full search at every refit.
        full_search_every: with ``warm_start``, run the full search every this many refits.
        min_peaks: fewest peaks accepted at initialisation (default 3, a bare minimum for a
            two-parameter fit; estimates from fewer than a few tens of peaks are very noisy).
        epsilon: margin kept from the singular ends of the root intervals (``-1/max(Y)`` and ``0``), in
            mean-normalised units (score units with ``legacy``).
        n_points: starting points per interval of the legacy search (and the original's ``epsilon``
            shrinking rule).
        scan_points: scan points per interval of the default search.
    """

    def __init__(
        self,
        q: float = 1e-3,
        *,
        legacy: bool = False,
        warm_start: bool = True,
        full_search_every: int = 100,
        min_peaks: int = 3,
        epsilon: float = 1e-8,
        n_points: int = 10,
        scan_points: int = 48,
    ) -> None:
        self.q = _check_q(q)
        for name, value, least in (
            ("full_search_every", full_search_every, 1),
            ("min_peaks", min_peaks, 1),
            ("n_points", n_points, 1),
            ("scan_points", scan_points, 2),
        ):
            if int(value) < least:
                raise ValueError(f"SPOT {name} must be >= {least}, got {value}")
        if not (0.0 < epsilon < 0.25):
            raise ValueError(f"SPOT epsilon must be in (0, 0.25), got {epsilon}")
        self.legacy = bool(legacy)
        self.warm_start = bool(warm_start)
        self.full_search_every = int(full_search_every)
        self.min_peaks = int(min_peaks)
        self.epsilon = float(epsilon)
        self.n_points = int(n_points)
        self.scan_points = int(scan_points)

        self.init_data: NDArray[np.float64] | None = None
        self.data: NDArray[np.float64] = np.empty(0)
        self.init_threshold: float | None = None
        self.extreme_quantile: float | None = None
        self.gpd: GPDFit | None = None
        self.n = 0
        self.n_peaks = 0
        self.n_full_searches = 0
        self._peaks = np.empty(0)
        self._roots = np.empty(0)
        self._refits_since_full = 0
        self._has_run = False

    # -- data ---------------------------------------------------------------------------------

    def fit(self, init_data: ArrayLike, data: ArrayLike | None = None) -> "SPOT":
        """Store the calibration scores ``init_data`` (shape (n_init,)) and the stream ``data`` (shape (T,)).

        Nothing is computed here (the original API's split); ``data`` may be omitted when only the
        initial threshold is wanted. Arrays of any shape are flattened. NaN / inf raise ``ValueError``.
        """
        self.init_data = _as_scores(init_data, "init scores")
        if self.init_data.size == 0:
            raise ValueError("SPOT needs a non-empty set of init scores")
        self.data = np.empty(0) if data is None else _as_scores(data, "stream scores")
        self.init_threshold = None
        self.extreme_quantile = None
        self.gpd = None
        self._has_run = False
        return self

    @property
    def peaks(self) -> NDArray[np.float64]:
        """Current peaks (excesses over the initial threshold), shape (N_t,); a copy."""
        return self._peaks[: self.n_peaks].copy()

    # -- algorithm ----------------------------------------------------------------------------

    def initialize(self, level: float = 0.98) -> float:
        """Calibrate on the init scores and return the initial extreme quantile ``z_q``.

        ``t = sorted(init)[int(level * n_init)]``; peaks = init values ``> t`` minus ``t``; GPD fitted by a
        full search; ``n = n_init``. Raises ``ValueError`` when fewer than ``min_peaks`` values exceed
        ``t``, or when ``q * n / N_t >= 1`` (the extreme quantile would not exceed ``t``).
        """
        if self.init_data is None:
            raise RuntimeError("SPOT.initialize called before SPOT.fit")
        level = _check_level(level)
        init = self.init_data
        n_init = init.size
        k = int(level * n_init)
        t = float(np.partition(init, k)[k])
        excess = init[init > t] - t
        if excess.size < self.min_peaks:
            raise ValueError(
                f"SPOT: only {excess.size} init score(s) exceed the initial threshold t={t:.6g} "
                f"(level={level}, {n_init} init scores); at least min_peaks={self.min_peaks} are needed "
                "to fit the GPD. Use more init scores or a lower level."
            )
        if self.q * n_init / excess.size >= 1.0:
            raise ValueError(
                f"SPOT: q={self.q} is not below the fraction of peaks N_t/n={excess.size / n_init:.4g}; "
                "the extreme quantile would not exceed the initial threshold. Use a smaller q or a lower level."
            )
        self.init_threshold = t
        self._peaks = np.empty(excess.size + self.data.size, dtype=np.float64)
        self._peaks[: excess.size] = excess
        self.n_peaks = excess.size
        self.n = n_init
        self.n_full_searches = 0
        self._roots = np.empty(0)
        self._has_run = False
        with _single_threaded_blas():
            self._update(full=True)
        return self.extreme_quantile  # type: ignore[return-value]

    def _quantile(self, fit: GPDFit) -> float:
        """``z_q`` for the current ``n``, ``N_t`` and GPD fit."""
        assert self.init_threshold is not None
        r = self.q * self.n / self.n_peaks
        if fit.gamma != 0.0:
            return self.init_threshold + fit.sigma / fit.gamma * (r ** (-fit.gamma) - 1.0)
        return self.init_threshold - fit.sigma * math.log(r)

    def _update(self, full: bool) -> None:
        """Refit the GPD on the current peaks and update ``z_q``."""
        self.gpd, self._roots, did_full = _fit(
            self._peaks[: self.n_peaks],
            legacy=self.legacy,
            epsilon=self.epsilon,
            n_points=self.n_points,
            scan_points=self.scan_points,
            previous=None if full else self._roots,
        )
        if did_full:
            self.n_full_searches += 1
            self._refits_since_full = 0
        else:
            self._refits_since_full += 1
        self.extreme_quantile = self._quantile(self.gpd)

    def _refit(self) -> None:
        full = not self.warm_start or self._refits_since_full + 1 >= self.full_search_every
        self._update(full=full)

    def run(self, with_alarm: bool = True) -> SPOTRunResult:
        """Stream the ``data`` given to :meth:`fit`; return the per-step thresholds and the alarms.

        For each value ``x``: ``x > z_q`` is an alarm and leaves the model unchanged (with
        ``with_alarm=False`` it is treated as a peak instead, as in the original); ``t < x <= z_q`` is a
        peak (added, ``n += 1``, GPD refitted, ``z_q`` updated); otherwise ``n += 1``. Runs once per
        :meth:`initialize`.
        """
        if self.extreme_quantile is None or self.init_threshold is None:
            raise RuntimeError("SPOT.run called before SPOT.initialize")
        if self._has_run:
            raise RuntimeError("SPOT.run was already called; call initialize() again before re-running")
        self._has_run = True
        data = self.data
        t = self.init_threshold
        thresholds = np.empty(data.size, dtype=np.float64)
        alarms: list[int] = []
        z = self.extreme_quantile
        prev = 0  # values in data[prev:i] are <= t: they only increment n
        with _single_threaded_blas():
            for i in np.flatnonzero(data > t).tolist():
                thresholds[prev:i] = z
                self.n += i - prev
                x = float(data[i])
                if x > z and with_alarm:
                    alarms.append(i)
                else:
                    self._peaks[self.n_peaks] = x - t
                    self.n_peaks += 1
                    self.n += 1
                    self._refit()
                    z = self.extreme_quantile
                thresholds[i] = z
                prev = i + 1
        thresholds[prev:] = z
        self.n += data.size - prev
        return SPOTRunResult(thresholds=thresholds, alarms=np.asarray(alarms, dtype=np.int64))


def spot_threshold(
    init_scores: ArrayLike,
    stream_scores: ArrayLike | None = None,
    q: float = 1e-3,
    level: float = 0.98,
    *,
    stream: bool = True,
    **spot_kwargs: object,
) -> float:
    """Alarm threshold from SPOT; predictions are then ``scores > threshold``. Never sees labels.

    Args:
        init_scores: shape (n_init,), calibration scores (training or validation scores).
        stream_scores: shape (T,), scores streamed after initialisation (D3R / VAN-AD stream the TEST
            scores); required when ``stream=True``, ignored otherwise.
        q: risk in (0, 1). level: initial-threshold quantile in (0, 1).
        stream: ``True`` (paper style, D3R / VAN-AD ``getThreshold``): run SPOT over ``stream_scores``
            and return the MEAN of the per-step thresholds, so the threshold depends on the test scores
            (not on their labels). ``False`` (honest): return the initial ``z_q`` computed from
            ``init_scores`` alone; no test data is seen at all.
        **spot_kwargs: forwarded to :class:`SPOT` (``legacy``, ``warm_start``, ``min_peaks``, ...).

    Returns:
        The threshold, a float in score units.
    """
    spot = SPOT(q, **spot_kwargs)  # type: ignore[arg-type]
    if not stream:
        spot.fit(init_scores, None)
        return float(spot.initialize(level))
    if stream_scores is None:
        raise ValueError("spot_threshold(stream=True) needs stream_scores (the scores to stream, e.g. test scores)")
    spot.fit(init_scores, stream_scores)
    if spot.data.size == 0:
        raise ValueError("spot_threshold(stream=True) got an empty stream; use stream=False for the initial z_q")
    spot.initialize(level)
    return float(spot.run().thresholds.mean())
