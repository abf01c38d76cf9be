"""Type and range checks of the main numeric options, run when the config is composed (before any data is read),
so ``trainer.max_epochs=abc`` is a clear error at once instead of a bare AssertionError deep inside a library."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from fsad.evaluation.thresholds import SPOT_INITS, THRESHOLD_STRATEGIES
from fsad.layers.selective_scan import MAMBA_SSM_MISSING, mamba_ssm_available
from fsad.utils.allocator import ALLOCATORS


class ConfigValueError(ValueError):
    """A config option has the wrong type or is out of range; the message names the key and what was expected."""


@dataclass(frozen=True)
class NumericOption:
    """One checked option: ``kind`` int or float, inclusive bounds, whether ``null`` is allowed, and words that
    are accepted instead of a number (``words``, e.g. ``auto``)."""

    key: str
    kind: type
    low: float | None = None
    high: float | None = None
    nullable: bool = False
    words: tuple[str, ...] = ()
    exclusive: bool = False  # bounds excluded


    def problem(self, value: object) -> str | None:
        """None when ``value`` is acceptable, else what was expected."""
        if (value is None and self.nullable) or value in self.words:
            return None
        numeric = isinstance(value, int) or (self.kind is float and isinstance(value, float))
        if isinstance(value, bool) or not numeric:
            return self.expected()
        below = self.low is not None and (value <= self.low if self.exclusive else value < self.low)
        above = self.high is not None and (value >= self.high if self.exclusive else value > self.high)
        if below or above:
            return self.expected()
        return None

    def expected(self) -> str:
        text = "an integer" if self.kind is int else "a number"
        brackets = "()" if self.exclusive else "[]"
        if self.low is not None and self.high is not None:
            text += f" in {brackets[0]}{self.low:g}, {self.high:g}{brackets[1]}"
        elif self.low is not None:
            text += f" {'>' if self.exclusive else '>='} {self.low:g}"
        return text + "".join(f" or {word}" for word in self.words) + (" or null" if self.nullable else "")


OPTIONS = (
    NumericOption("seed", int, 0),
    NumericOption("threads", int, 1, nullable=True),
    NumericOption("trainer.max_epochs", int, -1, nullable=True),
    NumericOption("trainer.min_epochs", int, 0, nullable=True),
    NumericOption("trainer.check_val_every_n_epoch", int, 1, nullable=True),
    NumericOption("trainer.log_every_n_steps", int, 1, nullable=True),
    NumericOption("trainer.num_sanity_val_steps", int, -1, nullable=True),
    NumericOption("trainer.gradient_clip_val", float, 0, nullable=True),
    NumericOption("data.window", int, 1),
    NumericOption("data.batch_size", int, 1),
    NumericOption("data.train_stride", int, 1),
    NumericOption("data.val_stride", int, 1, nullable=True),
    NumericOption("data.val_fraction", float, 0, 1, exclusive=True),
    NumericOption("data.anomaly_ratio", float, 0, 100),
    NumericOption("data.horizon", int, 0),
    NumericOption("data.horizon_blocks", int, 1),
    NumericOption("data.num_workers", int, 0),
    NumericOption("model.lr", float, 0),
    NumericOption("model.d_model", int, 1),
    NumericOption("model.e_layers", int, 1),
    NumericOption("evaluation.anomaly_ratio", float, 0, 100),
    NumericOption("evaluation.vus_window", int, 1, words=("auto",)),
    NumericOption("evaluation.train_score_stride", int, 1, nullable=True),
    NumericOption("evaluation.spot.q", float, 0, 1, exclusive=True),
    NumericOption("evaluation.spot.level", float, 0, 1, exclusive=True),
)

# options that take one of a few words (lists: every element)
CHOICES = {
    "score_ckpt": ("best", "last"),
    "allocator": ALLOCATORS,
    "evaluation.strategies": THRESHOLD_STRATEGIES,
    "evaluation.spot.init": SPOT_INITS,
}


def check_options(cfg: DictConfig) -> None:
    """Raise :class:`ConfigValueError` naming every main numeric option (:data:`OPTIONS`) of ``cfg`` that has the
    wrong type or range and every word option (:data:`CHOICES`) with an unknown word; options the config does
    not have are skipped."""
    problems = []
    for option in OPTIONS:
        value = OmegaConf.select(cfg, option.key, default=_ABSENT)
        if value is _ABSENT:
            continue
        expected = option.problem(value)
        if expected:
            problems.append(f"{option.key}={value!r}: expected {expected}")
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        values = list(value) if isinstance(value, ListConfig) else [value]
        if value is not _ABSENT and any(v not in allowed for v in values):
            problems.append(f"{key}={OmegaConf.to_container(value) if isinstance(value, ListConfig) else value!r}: "
                            f"expected {'each of ' if isinstance(value, ListConfig) else ''}{', '.join(allowed)}")
    for key in ("model.scan_backend", "model.decoder.scan_backend"):
        if OmegaConf.select(cfg, key, default=None) == "mamba_ssm" and not mamba_ssm_available():
            problems.append(f"{key}='mamba_ssm': {MAMBA_SSM_MISSING} and a CUDA device; on this machine use auto, "
                            "native or chunked")
    if problems:
        raise ConfigValueError("invalid config values: " + "; ".join(problems)
                               + " (fix them on the command line or in the config file)")


_ABSENT = object()

