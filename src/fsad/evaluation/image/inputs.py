"""Checked inputs of the image metrics, and the per-image anomaly scores.

Every failure raises ``ValueError`` with a message that names the class (when one is given) and what is wrong:
the two shapes when maps and masks differ, the number of non-finite map values, the valid protocols.
"""

from __future__ import annotations

import numpy as np

PROTOCOLS = ("exact", "ader")

# Images per chunk when pooling: keeps the float64 work arrays near 4 Mi pixels (32 MB) whatever N is.
_POOL_CHUNK_PIXELS = 1 << 22


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`, else ``ValueError`` listing the valid ones."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    return protocol


def _where(class_name: str) -> str:
    return f"class {class_name!r}: " if class_name else ""


def check_maps(maps: np.ndarray, class_name: str = "") -> np.ndarray:
    """``maps`` as a non-empty (N, H, W) real array of finite values (dtype kept; bool/int become float64)."""
    arr = np.asarray(maps)
    where = _where(class_name)
    if arr.ndim != 3:
        raise ValueError(f"{where}maps must have shape (N, H, W), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{where}maps is empty (shape {arr.shape})")
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{where}maps must be real numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{where}maps contain {bad} non-finite value(s) (NaN or inf) out of {arr.size}")
    return arr


def check_class(maps: np.ndarray, masks: np.ndarray, class_name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(maps, masks)`` of one class: maps as by :func:`check_maps`, masks as bool (nonzero = anomalous).

    Raises ``ValueError`` naming both shapes when they differ, and for masks that are not bool/integer/float
    or hold NaN.
    """
    arr = check_maps(maps, class_name)
    gt = np.asarray(masks)
    where = _where(class_name)
    if gt.shape != arr.shape:
        raise ValueError(f"{where}maps shape {arr.shape} and masks shape {gt.shape} differ")
    if gt.dtype == bool:
        return arr, gt
    if np.issubdtype(gt.dtype, np.floating):
        if np.isnan(gt).any():
            raise ValueError(f"{where}masks contain NaN")
    elif not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f"{where}masks must be bool or numbers (nonzero = anomalous), got dtype {gt.dtype}")
    return arr, gt != 0


def work_dtype(dtype: np.dtype) -> type:
    """The dtype pixel scores are compared in: float64 for float64 maps, float32 for float16/float32 (exact)."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _check_pool(pool: int | None, height: int, width: int) -> int | None:
    if pool is None:
        return None
    if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)):
        raise ValueError(f"image_score_pool must be None or a positive int, got {pool!r}")
    if not 1 <= pool <= min(height, width):
        raise ValueError(f"image_score_pool must be in [1, {min(height, width)}] for maps of {height}x{width}, "
                         f"got {pool}")
    return int(pool)


def pooled_max(maps: np.ndarray, pool: int | None) -> np.ndarray:
    """Image scores of checked maps (no validation): see :func:`image_scores`."""
    n, height, width = maps.shape
    pool = _check_pool(pool, height, width)
    if pool is None or pool == 1:
        return maps.reshape(n, -1).max(axis=1).astype(np.float64)
    out = np.empty(n, dtype=np.float64)
    per_chunk = max(1, _POOL_CHUNK_PIXELS // (height * width))
    for start in range(0, n, per_chunk):
        x = maps[start:start + per_chunk].astype(np.float64)
        b = x.shape[0]
        # Separable k x k box sums from running sums along W then along H (each within one image).
        run = np.zeros((b, height, width + 1))
        np.cumsum(x, axis=2, out=run[:, :, 1:])
        rows = run[:, :, pool:] - run[:, :, :-pool]
        run = np.zeros((b, height + 1, rows.shape[2]))
        np.cumsum(rows, axis=1, out=run[:, 1:, :])
        boxes = run[:, pool:, :] - run[:, :-pool, :]
        out[start:start + b] = boxes.reshape(b, -1).max(axis=1) / (pool * pool)
    return out


def image_scores(maps: np.ndarray, pool: int | None = None) -> np.ndarray:
    """Image-level anomaly score of each map: its maximum, or the maximum of its k x k moving average.

    Definition: ``pool=None`` (or 1): ``max`` over the H x W pixels. ``pool=k``: average every k x k window at
    stride 1 without padding (an (H-k+1) x (W-k+1) map, as ``torch.nn.functional.avg_pool2d(x, k, stride=1)``
    in ADer's ``Evaluator`` with ``pooling_ks``), then take the maximum. Each image is scored on its own, so
    the scores do not depend on how the maps are batched or ordered.

    Args:
        maps: (N, H, W) anomaly maps (float16/32/64; higher = more anomalous).
        pool: None or the window side k in pixels, 1 <= k <= min(H, W).

    Returns:
        (N,) float64 scores. The plain maximum is exact; pooled means are float64 sums of the map values
        (relative error ~1e-15).

    Raises ``ValueError`` for a map stack that is not (N, H, W), holds non-finite values, or an invalid ``pool``.
    """
    return pooled_max(check_maps(maps), pool)
