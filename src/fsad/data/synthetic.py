"""Seeded multivariate synthetic benchmark with the five anomaly kinds of the TODS benchmark.

The anomaly taxonomy follows Lai et al., "Revisiting Time Series Outlier Detection: Definitions and Benchmarks"
(NeurIPS 2021 datasets track). Each channel is a sum of sinusoids, ``X = sum_k a_k sin(2 pi t / P_k + phi_k) + b
+ noise``, with channel-specific periods, phases, amplitudes and offset. The train part is clean; anomalies are
injected only into the test part.

Ranges (``min``, ``max``, ``range = max - min``) are those of the channel's clean train+test series.

- ``point_global``: one value far outside the channel's range: ``max + u * range`` or ``min - u * range``,
  ``u ~ U(0.5, 1)`` (the paper's ``mu +- lambda sigma`` with a lambda large enough to leave the range).
- ``point_contextual``: one value inside the channel's global range ``[min, max]`` but far from its local
  context: ``min + 0.1 range`` where the clean value is in the upper half, ``max - 0.1 range`` otherwise
  (deviation > 0.4 range from the clean value; the neighbours stay clean).
- ``collective_shapelet``: a segment whose shape function is replaced: the sum of sinusoids becomes a square
  or sawtooth wave with the channel's dominant period and total amplitude (plus the same noise).
- ``collective_seasonal``: a segment whose frequencies are multiplied by a factor in ``[2, 4]``.
- ``collective_trend``: a segment with an added linear trend ramping from 0 to ``+-U(0.5, 1) * range``.

Each anomaly event hits a random subset of channels (1 to ceil(C/2)); every time step of the event is labelled 1.
Events never overlap and are separated by at least ``_GAP`` clean steps. ``anomaly_ratio`` is the FRACTION of
anomalous test time steps targeted (not a percentage, not a count of events).

The clean signal depends only on the seed and the signal arguments (lengths, channels, noise, components,
periods): calling with ``anomaly_ratio=0`` returns the clean version of the same test series (to check injections).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil

import numpy as np

from fsad.data.record import DataValidationError, SeriesRecord

ANOMALY_KINDS: tuple[str, ...] = (
    "point_global",
    "point_contextual",
    "collective_shapelet",
    "collective_seasonal",
    "collective_trend",
)
_POINT_KINDS = ("point_global", "point_contextual")
_GAP = 2  # clean steps kept between two events (so a contextual point keeps clean neighbours)
_MIN_SEGMENT = 3


def make_synthetic(
    length: int = 4000,
    n_channels: int = 5,
    anomaly_ratio: float = 0.05,
    kinds: Sequence[str] = ANOMALY_KINDS,
    seed: int = 0,
    train_length: int | None = None,
    noise_std: float = 0.05,
    n_components: int = 2,
    period_range: tuple[float, float] = (20.0, 100.0),
    segment_length: tuple[int, int] = (20, 50),
) -> SeriesRecord:
    """Generate a synthetic benchmark.

    Args:
        length: number of TEST time steps T'.
        n_channels: number of channels C.
        anomaly_ratio: fraction of test time steps targeted as anomalous, in [0, 0.5). The budget
            ``round(anomaly_ratio * length)`` is split evenly across ``kinds``; each requested kind gets at least
            one event when the ratio is > 0, so the realised ratio is the target up to a few points.
        kinds: anomaly kinds to inject, a subset of :data:`ANOMALY_KINDS`.
        seed: seeds everything; same arguments and seed give identical arrays.
        train_length: number of TRAIN time steps T (default: ``length``).
        noise_std: standard deviation of the Gaussian noise, relative to the channel's first amplitude.
        n_components: sinusoids per channel.
        period_range: (min, max) period in time steps, drawn log-uniformly per component.
        segment_length: (min, max) length of a collective anomaly, before truncation to the kind's budget.

    Returns:
        SeriesRecord with ``train`` (T, C) float32, ``test`` (T', C) float32, ``test_labels`` (T',) int8, and
        ``meta``: ``kinds`` (kinds present, in :data:`ANOMALY_KINDS` order), ``segments`` (list of
        ``(start, end_exclusive, kind)`` in test time steps, sorted by start), ``segment_channels`` (the channel
        indices each segment modified, parallel to ``segments``), ``anomaly_ratio_target``, ``seed``.
    """
    train_length = length if train_length is None else train_length
    _check_args(length, train_length, n_channels, anomaly_ratio, kinds, segment_length)
    kinds = tuple(dict.fromkeys(kinds))
    total = train_length + length
    t = np.arange(total, dtype=np.float64)

    waves = _Waves.draw(np.random.default_rng([seed, 0]), n_channels, n_components, period_range, noise_std, total)
    clean = np.stack([waves.base(t, c) for c in range(n_channels)], axis=1) + waves.noise
    lo_c, hi_c = clean.min(axis=0), clean.max(axis=0)
    test = clean[train_length:].copy()
    t_test = t[train_length:]
    noise_test = waves.noise[train_length:]
    labels = np.zeros(length, dtype=np.int8)
    free = np.ones(length, dtype=bool)

    rng = np.random.default_rng([seed, 1])  # anomalies only
    segments: list[tuple[int, int, str]] = []
    channels_of: list[list[int]] = []
    budget = int(round(anomaly_ratio * length))
    shares = _split_budget(budget, len(kinds)) if budget > 0 else [0] * len(kinds)
    # collective kinds first: the single points fit into whatever room the segments leave
    plan = sorted(zip(kinds, shares), key=lambda ks: ks[0] in _POINT_KINDS)
    for kind, share in plan:
        remaining = max(share, 1 if budget > 0 else 0)
        while remaining > 0:
            if kind in _POINT_KINDS:
                seg_len = 1
            else:
                drawn = int(rng.integers(segment_length[0], segment_length[1] + 1))
                seg_len = max(_MIN_SEGMENT, min(remaining, drawn))
            start = _place(free, seg_len, rng)
            while start is None and seg_len > _MIN_SEGMENT:  # crowded: try a shorter segment
                seg_len = max(_MIN_SEGMENT, seg_len // 2)
                start = _place(free, seg_len, rng)
            if start is None:
                raise DataValidationError(
                    f"synthetic: field 'anomaly_ratio'={anomaly_ratio} leaves no room for another {kind} event of "
                    f"length {seg_len} in {length} test steps; expected a smaller ratio or a longer series"
                )
            end = start + seg_len
            free[start:end] = False
            labels[start:end] = 1
            n_hit = int(rng.integers(1, ceil(n_channels / 2) + 1))
            chans = sorted(int(c) for c in rng.choice(n_channels, size=n_hit, replace=False))
            for c in chans:
                seg = slice(start, end)
                test[seg, c] = _inject(kind, waves, c, test[seg, c], t_test[seg], noise_test[seg, c],
                                       (lo_c[c], hi_c[c]), rng)
            segments.append((start, end, kind))
            channels_of.append(chans)
            remaining -= seg_len

    order = np.argsort([s[0] for s in segments], kind="stable")
    segments = [segments[i] for i in order]
    channels_of = [channels_of[i] for i in order]
    present = [k for k in ANOMALY_KINDS if any(s[2] == k for s in segments)]
    record = SeriesRecord(
        train=clean[:train_length].astype(np.float32),
        test=test.astype(np.float32),
        test_labels=labels,
        channel_names=[f"ch{c}" for c in range(n_channels)],
        source="synthetic",
        meta={
            "kinds": present,
            "segments": segments,
            "segment_channels": channels_of,
            "anomaly_ratio_target": float(anomaly_ratio),
            "seed": seed,
        },
    )
    return record.validate()


@dataclass
class _Waves:
    """Per-channel sinusoid parameters, each (C, K), plus offsets (C,) and the noise (T_total, C)."""

    periods: np.ndarray
    phases: np.ndarray
    amps: np.ndarray
    offsets: np.ndarray
    noise: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n_channels: int, n_components: int,
             period_range: tuple[float, float], noise_std: float, total: int) -> "_Waves":
        size = (n_channels, n_components)
        periods = np.exp(rng.uniform(np.log(period_range[0]), np.log(period_range[1]), size=size))
        phases = rng.uniform(0.0, 2.0 * np.pi, size=size)
        amps = rng.uniform(0.5, 1.5, size=size) / np.arange(1, n_components + 1)
        offsets = rng.uniform(-1.0, 1.0, size=n_channels)
        noise = rng.normal(0.0, 1.0, size=(total, n_channels)) * (noise_std * amps[:, 0])
        return cls(periods, phases, amps, offsets, noise)

    def base(self, tt: np.ndarray, c: int, freq_factor: float = 1.0) -> np.ndarray:
        """Noise-free channel ``c`` at times ``tt`` (n,) -> (n,); ``freq_factor`` scales every frequency."""
        arg = 2.0 * np.pi * freq_factor * tt[:, None] / self.periods[c] + self.phases[c]
        return self.offsets[c] + (self.amps[c] * np.sin(arg)).sum(axis=1)


def _inject(kind: str, waves: _Waves, c: int, clean_seg: np.ndarray, tt: np.ndarray, noise_seg: np.ndarray,
            bounds: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Anomalous version of channel ``c`` on one segment: ``clean_seg``, ``tt``, ``noise_seg`` are (n,)."""
    lo, hi = bounds
    span = hi - lo
    if kind == "point_global":
        u = rng.uniform(0.5, 1.0)
        return np.array([hi + u * span if rng.random() < 0.5 else lo - u * span])
    if kind == "point_contextual":
        mid = 0.5 * (lo + hi)
        return np.array([lo + 0.1 * span if clean_seg[0] > mid else hi - 0.1 * span])
    if kind == "collective_shapelet":
        k = int(np.argmax(waves.amps[c]))
        arg = 2.0 * np.pi * tt / waves.periods[c, k] + waves.phases[c, k]
        if rng.random() < 0.5:
            shape = np.sign(np.sin(arg))  # square wave
        else:
            shape = 2.0 * ((arg / (2.0 * np.pi)) % 1.0) - 1.0  # sawtooth
        return waves.offsets[c] + waves.amps[c].sum() * shape + noise_seg
    if kind == "collective_seasonal":
        return waves.base(tt, c, freq_factor=rng.uniform(2.0, 4.0)) + noise_seg
    if kind == "collective_trend":
        height = (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.5, 1.0) * span
        return clean_seg + height * np.linspace(0.0, 1.0, len(clean_seg) + 1)[1:]
    raise AssertionError(kind)


def _split_budget(budget: int, n: int) -> list[int]:
    """Split ``budget`` points into ``n`` near-equal integer shares."""
    return [budget // n + (1 if i < budget % n else 0) for i in range(n)]


def _place(free: np.ndarray, seg_len: int, rng: np.random.Generator) -> int | None:
    """Random start s with ``free[s - _GAP : s + seg_len + _GAP]`` all True (clipped at the ends), or None.

    Starts keep one step from each end of the series so that every event has a local context. Tries a few
    uniform draws first (cheap while the series is mostly free), then scans all admissible starts.
    """
    n = len(free)
    last = n - seg_len - 1  # largest admissible start
    if last < 1:
        return None
    for _ in range(32):
        s = int(rng.integers(1, last + 1))
        if free[max(0, s - _GAP) : s + seg_len + _GAP].all():
            return s
    padded = np.concatenate([np.ones(_GAP, bool), free, np.ones(_GAP, bool)])
    width = seg_len + 2 * _GAP
    csum = np.concatenate([[0], np.cumsum(~padded)])
    blocked = csum[width:] - csum[:-width]  # blocked[s]: occupied steps in the window of start s
    starts = np.flatnonzero(blocked[1 : last + 1] == 0) + 1
    if len(starts) == 0:
        return None
    return int(rng.choice(starts))


def _check_args(length: int, train_length: int, n_channels: int, anomaly_ratio: float, kinds: Sequence[str],
                segment_length: tuple[int, int]) -> None:
    def bad(field: str, value: object, expected: str) -> DataValidationError:
        return DataValidationError(f"synthetic: field '{field}'={value!r}; expected {expected}")

    if length < 10:
        raise bad("length", length, "at least 10 test steps")
    if train_length < 1:
        raise bad("train_length", train_length, "at least 1 train step")
    if n_channels < 1:
        raise bad("n_channels", n_channels, "at least 1")
    if not 0.0 <= anomaly_ratio < 0.5:
        raise bad("anomaly_ratio", anomaly_ratio, "a fraction in [0, 0.5)")
    unknown = [k for k in kinds if k not in ANOMALY_KINDS]
    if unknown or (anomaly_ratio > 0 and len(kinds) == 0):
        raise bad("kinds", tuple(kinds), f"a non-empty subset of {ANOMALY_KINDS}")
    if not _MIN_SEGMENT <= segment_length[0] <= segment_length[1]:
        raise bad("segment_length", segment_length, f"(min, max) with {_MIN_SEGMENT} <= min <= max")
