"""Patch-attention maps: the one-head bilinear form and the factored (affine) form equal softmax(Q K^T / sqrt(E))."""

from __future__ import annotations

import math

import pytest
import torch

from fsad.layers.embedding import DataEmbedding
from fsad.layers.patch_attention import DualPatchAttention


def _direct(attention: DualPatchAttention, tokens: torch.Tensor) -> torch.Tensor:
    n, t, _ = tokens.shape
    q = attention.query(tokens).view(n, t, attention.n_heads, -1)
    k = attention.key(tokens).view(n, t, attention.n_heads, -1)
    return torch.softmax(torch.einsum("nthe,nshe->nhts", q, k) / math.sqrt(attention.head_dim), dim=-1)


@pytest.mark.parametrize("heads", [1, 2])
def test_maps_equal_the_direct_form(heads: int) -> None:
    torch.manual_seed(0)
    attention = DualPatchAttention(8, heads, dropout=0.0, with_values=False).double()
    with torch.no_grad():  # non-zero biases, so the dropped row-constant terms are really there
        attention.query.bias.normal_()
        attention.key.bias.normal_()
    tokens = torch.randn(5, 7, 8, dtype=torch.float64)
    maps = attention.attention_maps(tokens)
    assert maps.shape == (5, heads, 7, 7)
    torch.testing.assert_close(maps, _direct(attention, tokens), rtol=1e-12, atol=1e-12)


def test_one_head_gradients_equal_the_direct_form() -> None:
    torch.manual_seed(1)
    attention = DualPatchAttention(6, 1, dropout=0.0, with_values=False).double()
    tokens = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    grads = []
    for form in (attention.attention_maps, lambda x: _direct(attention, x)):
        attention.zero_grad()
        tokens.grad = None
        (form(tokens) * weights).sum().backward()
        grads.append([tokens.grad.clone(), *(p.grad.clone() for p in attention.parameters())])  # all used
    for mine, reference in zip(*grads):
        torch.testing.assert_close(mine, reference, rtol=1e-10, atol=1e-12)


def test_affine_maps_equal_dense_tokens() -> None:
    torch.manual_seed(2)
    embedding = DataEmbedding(3, 8).double().eval()
    attention = DualPatchAttention(8, 2, dropout=0.0).double()
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(attention(embedding.affine(x)), _direct(attention, embedding(x)),
                               rtol=1e-12, atol=1e-12)
