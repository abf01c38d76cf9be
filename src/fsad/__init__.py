"""fsad: frequency- and state-space anomaly detection on Hydra + PyTorch Lightning."""

__version__ = "0.1.0"
