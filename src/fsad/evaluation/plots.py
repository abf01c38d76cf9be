"""Score plots written next to the metrics."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fsad.utils.io import atomic_write  # noqa: E402


def plot_scores(scores: np.ndarray, labels: np.ndarray, thresholds: dict[str, float], path: str | Path,
                title: str = "test scores") -> Path:
    """Plot (T,) test scores with labelled anomalies shaded and one horizontal line per threshold; save a PNG."""
    fig, ax = plt.subplots(figsize=(14, 3.5), dpi=100)
    t = np.arange(len(scores))
    ax.plot(t, scores, lw=0.6, color="tab:blue", label="score")
    top = float(np.nanmax(scores)) if len(scores) else 1.0
    ax.fill_between(t, float(np.nanmin(scores)) if len(scores) else 0.0, top, where=labels.astype(bool), color="tab:red", alpha=0.25, step="mid",
                    label="labelled anomaly")
    for (name, value), color in zip(thresholds.items(), ("k", "tab:green", "tab:purple", "tab:orange", "0.5")):
        ax.axhline(value, color=color, lw=0.8, ls="--", label=f"threshold {name} = {value:.4g}")
    low = float(np.nanmin(scores)) if len(scores) else 0.0
    ax.set_ylim(low - 0.02 * (top - low), top + 0.1 * (top - low) + 1e-12)  # off-scale thresholds: legend only
    ax.set_xlabel("time step")
    ax.set_ylabel("anomaly score")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return Path(path)
