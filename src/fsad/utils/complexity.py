"""Model size and compute as the image-AD papers report them (ADer's start-up table, which Wave-MambaAD's and
MambaAD's Table 2 reproduce): parameters of the whole model including the frozen teacher, and multiply-adds of one
forward pass on a 1 x 3 x 256 x 256 image.

Counting convention (that of fvcore's ``FlopCountAnalysis`` as ADer uses it, whose "FLOPs" are multiply-adds):
convolutions, linear layers, matrix products and einsums, counted by PyTorch's own
:class:`torch.utils.flop_counter.FlopCounterMode` (which counts 2 FLOPs per multiply-add; halved here). Not
counted, as in the papers' figures: element-wise operations, normalisations, interpolation and the selective scans
(custom kernels that fvcore does not see; 3 multiply-adds per channel, state and step). Count with the ``native``
or ``sequential`` scan backend: the ``chunked``, ``decay`` and ``parallel`` backends do part of the scan with
matrix products, which the counter would add (Wave-MambaAD: 7.595 G instead of 7.504 G with ``chunked``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def parameter_count(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``module`` (shared parameters once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def multiply_adds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Multiply-adds of one call ``fn(*args, **kwargs)`` under the convention above (a module or any function of
    modules; wrap it in ``torch.no_grad()``). Count a part of a model by calling that part (e.g. ``model.encoder``
    on the image, ``model.decoder`` on the embedding). A backward pass inside ``fn`` is counted too, but PyTorch's
    counter counts the backward of a grouped (depthwise) convolution as a dense one: count a training step as
    the forward plus twice the forward of the trained parts instead."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args, **kwargs)
    return counter.get_total_flops() // 2
