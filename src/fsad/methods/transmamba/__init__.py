"""TransMamba (time-frequency discriminative features for multivariate time-series anomaly detection).

``network``: the pure network (compact patch-attention maps + Mamba over the spectrum); ``objective``: losses and
score; ``module``: the LightningModule (two optimisers, manual optimisation); ``materialised``: the official
W x W computation order, for tests and benchmarks; ``augmentation``: the contrastive views.
"""

from fsad.methods.transmamba.module import TransMamba
from fsad.methods.transmamba.network import TransMambaNetwork, TransMambaOutput

__all__ = ["TransMamba", "TransMambaNetwork", "TransMambaOutput"]
