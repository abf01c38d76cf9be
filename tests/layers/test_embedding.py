"""Token embedding: the matrix-product form equals the circular convolution it stands for."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fsad.layers.embedding import DataEmbedding, TokenEmbedding


def test_token_embedding_is_the_circular_convolution() -> None:
    torch.manual_seed(0)
    embedding = TokenEmbedding(c_in=5, d_model=8).double()
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    padded = F.pad(x.transpose(1, 2), (1, 1), mode="circular")  # (B, c_in, L + 2)
    expected = F.conv1d(padded, embedding.conv.weight).transpose(1, 2)
    torch.testing.assert_close(embedding(x), expected, rtol=1e-12, atol=1e-12)


def test_hand_computed_token() -> None:
    """c_in = d_model = 1, taps (1, 10, 100): token t = x[t-1] + 10 x[t] + 100 x[t+1], circularly."""
    embedding = TokenEmbedding(1, 1)
    with torch.no_grad():
        embedding.conv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]))
    x = torch.tensor([[[1.0], [2.0], [3.0]]])
    expected = torch.tensor([[[3 + 10 + 200], [1 + 20 + 300], [2 + 30 + 100]]], dtype=torch.float32)
    torch.testing.assert_close(embedding(x), expected)


def test_affine_form_equals_forward_without_dropout() -> None:
    torch.manual_seed(1)
    embedding = DataEmbedding(4, 6, dropout=0.1).eval()
    x = torch.randn(2, 9, 4)
    torch.testing.assert_close(embedding.affine(x).dense(), embedding(x), rtol=1e-6, atol=1e-6)
