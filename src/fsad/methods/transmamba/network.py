"""TransMamba network (mash0926/TransMamba), following the math of the official code.

Notation: B batch, W window, C channels, D d_model, H heads, p patch size ("number of tokens"), n = W / p,
W_f = W // 2 + 1 frequency bins, U = len(patch sizes) * e_layers map pairs.

Forward, for x of shape (B, W, C):

1. RevIN: per sample and channel over time, ``x_n = (x - mean) / sqrt(var_pop + 1e-5)`` (statistics detached,
   no learned affine);
2. time branch (LVPM): for each patch size p of the high list, then of the low list: ``x_n`` as (B*C, p, n)
   with the "(p n)" ordering (token i = the n consecutive steps ``[i n, (i + 1) n)``) -> ``DataEmbedding(n -> D)``
   -> per e_layer, softmax(Q K^T / sqrt(E)) with dropout: (B*C, H, p, p). The official code tiles every
   channel's map to (B*C, H, W, W) (entry (t, s) = map[t mod p, s mod p]) and then averages over the C channels.
   Tiling is linear, so this network averages the small maps first and returns the **compact** channel mean
   (B, H, p, p); its tiling is exactly the official (B, H, W, W) map (``fsad.layers.patch_attention.upsample``
   with ``Layout.TILE``). No W x W tensor is built here; the objective works on the compact maps
   (``objective.py``), and ``materialised.py`` keeps the official order for tests and benchmarks. Without active
   dropout (scoring) the maps come from the factored embedding (``DualPatchAttention.affine_maps``, exact);
3. frequency branch (GPRM): ``F = rfft_time(x_n)`` (B, W_f, C) -> ``Linear(2C -> D)([Re F, Im F])`` ->
   ``Mamba`` over the W_f bins (DC -> Nyquist) -> heads ``R, I = Linear(D -> C)`` -> ``x̂_n = irfft(R + iI)``;
   in training/validation also the coarse and fine views through the same embedding and Mamba for the
   contrastive loss (NT-Xent, the view side detached);
4. ``x̂ = RevIN^{-1}(x̂_n)``.

Registered but unused (the official model builds them; they count towards the paper's 111.28 K parameters and
never influence an output): a ``DataEmbedding(C -> D)`` of the raw window, a LayerNorm(D) handed to the
temporal encoder and never applied, and the fixed (frozen) temporal-embedding tables of every DataEmbedding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fsad.layers.embedding import AffineTokens, DataEmbedding, PositionalEmbedding
from fsad.layers.mamba import Mamba
from fsad.layers.patch_attention import DualPatchAttention, channel_mean
from fsad.layers.revin import revin_statistics
from fsad.methods.transmamba.augmentation import fine_view, moving_average

# Row counts of the fixed calendar tables of the Informer embedding with freq="h" (no minute table):
# hour, weekday, day, month. 24 + 7 + 32 + 13 = 76 rows of width D.
TEMPORAL_TABLES = {"hour": 24, "weekday": 7, "day": 32, "month": 13}


class FixedTemporalTables(nn.Module):
    """Frozen sinusoidal calendar tables (Informer's ``TemporalEmbedding(embed_type="fixed", freq="h")``).

    Registered only so that the parameter count matches the official model (76 * D parameters, all with
    ``requires_grad=False``); TransMamba never calls them (windows carry no time stamps).
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.tables = nn.ModuleDict()
        for name, rows in TEMPORAL_TABLES.items():
            table = nn.Embedding(rows, d_model)
            table.weight = nn.Parameter(PositionalEmbedding(d_model, max_len=rows).table.clone(), requires_grad=False)
            self.tables[name] = table


class PatchEmbedding(DataEmbedding):
    """``DataEmbedding`` (token conv + sinusoidal positions + dropout) plus the official, unused temporal tables.

    ``(N, T, c_in) -> (N, T, D)``; ``temporal`` never enters the forward pass.
    """

    def __init__(self, c_in: int, d_model: int, dropout: float = 0.0) -> None:
        super().__init__(c_in, d_model, dropout)
        self.temporal = FixedTemporalTables(d_model)


@dataclass
class TransMambaOutput:
    """What the network returns for a batch x of shape (B, W, C).

    Attributes:
        high, low: U channel-averaged attention maps each, ordered patch sizes outer, layers inner.
            Compact form (B, H, p, p) from ``TransMambaNetwork``; the official (B, H, W, W) tiled maps from
            ``materialised_forward`` (a W x W map is its own tiling, so the objective accepts both).
        x_hat: (B, W, C) reconstruction in the input's (scaled) space.
        loss_cl: scalar NT-Xent loss of the two views (0 when the views were not computed).
        recon_loss_f: scalar ``MSE(Re F, R) + MSE(Im F, I)`` in the normalised frequency space.
    """

    high: list[Tensor]
    low: list[Tensor]
    x_hat: Tensor
    loss_cl: Tensor
    recon_loss_f: Tensor


def nt_xent(anchor: Tensor, positive: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent of the official code: (B, ...) x (B, ...) -> scalar; ``positive`` is detached.

    With a_i, p_j the flattened samples, ``S_ij = cos(a_i, p_j)``, ``E = exp(S / temperature)``:
    ``loss = mean_i -log(E_ii / (sum_j E_ij - E_ii))`` (the positive pair is excluded from the denominator).
    Undefined for B = 1 (empty denominator); returns 0 there (the official loaders drop the last partial batch,
    so it never sees B = 1).
    """
    if anchor.shape[0] < 2:
        return anchor.new_zeros(())
    a = anchor.flatten(1)
    p = positive.flatten(1).detach()
    sim = (a @ p.T) / torch.outer(a.norm(dim=1), p.norm(dim=1))  # (B, B) cosine similarities
    logits = sim / temperature
    positive_logit = logits.diagonal()
    others = logits.masked_fill(torch.eye(len(a), dtype=torch.bool, device=a.device), float("-inf"))
    return (torch.logsumexp(others, dim=1) - positive_logit).mean()


class TransMambaNetwork(nn.Module):
    """TransMamba encoder: compact patch-attention maps of both resolutions + a frequency-domain reconstruction.

    Args:
        n_channels: C.
        window: W; every patch size must divide it.
        patch_size_high, patch_size_low: patch sizes ("number of tokens" p, token length W / p) of the two
            resolutions, paired by index (equal lengths).
        d_model: D, width of the patch tokens and of the Mamba block.
        n_heads: H of the patch attention (D must be divisible by H).
        e_layers: parallel attention layers, all fed the same embeddings (U = len(patch sizes) * e_layers).
        dropout: on the patch embeddings and on the small attention maps (0.1 in the code).
        revin: per-window instance normalisation (on in every official script).
        aug_rate: rate r of the fine view's masking, point noise and segment swap.
        coarse_kernel: moving-average kernel of the coarse view.
        ntx_temperature: NT-Xent temperature.
        seg_swap_faithful_bug: reproduce the official segment swap on the channel axis (see ``segment_swap``).
        d_state, d_conv, expand, scan_backend: the Mamba block (``mamba_ssm`` defaults 16, 4, 2).
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        patch_size_high: Sequence[int] = (3, 5),
        patch_size_low: Sequence[int] = (6, 10),
        d_model: int = 64,
        n_heads: int = 1,
        e_layers: int = 1,
        dropout: float = 0.1,
        revin: bool = True,
        aug_rate: float = 0.1,
        coarse_kernel: int = 3,
        ntx_temperature: float = 0.5,
        seg_swap_faithful_bug: bool = False,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        self.patch_size_high, self.patch_size_low = tuple(patch_size_high), tuple(patch_size_low)
        _validate(n_channels, window, self.patch_size_high, self.patch_size_low, d_model, n_heads, e_layers)
        self.n_channels, self.window, self.e_layers = n_channels, window, e_layers
        self.revin, self.aug_rate, self.coarse_kernel = revin, aug_rate, coarse_kernel
        self.ntx_temperature, self.seg_swap_faithful_bug = ntx_temperature, seg_swap_faithful_bug

        # time branch (LVPM)
        self.embedding_high = nn.ModuleList(PatchEmbedding(window // p, d_model, dropout) for p in self.patch_size_high)
        self.embedding_low = nn.ModuleList(PatchEmbedding(window // p, d_model, dropout) for p in self.patch_size_low)
        self.attention = nn.ModuleList(
            DualPatchAttention(d_model, n_heads, dropout=dropout, with_values=False) for _ in range(e_layers)
        )
        # registered, never used (official: the raw-window embedding and the temporal encoder's norm_layer)
        self.window_embedding = PatchEmbedding(n_channels, d_model, dropout)
        self.unused_norm = nn.LayerNorm(d_model)

        # frequency branch (GPRM)
        self.spectral_embedding = nn.Linear(2 * n_channels, d_model)
        self.mamba = Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand, scan_backend=scan_backend)
        self.head_real = nn.Linear(d_model, n_channels)
        self.head_imag = nn.Linear(d_model, n_channels)

    # --- parameter groups (the two optimisers) ---------------------------------------------------------------
    def time_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters that ``loss_T`` reaches: patch embeddings and Q/K projections."""
        for module in (self.embedding_high, self.embedding_low, self.attention):
            yield from (p for p in module.parameters() if p.requires_grad)

    def frequency_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters that ``loss_F`` reaches: spectral embedding, Mamba, heads."""
        for module in (self.spectral_embedding, self.mamba, self.head_real, self.head_imag):
            yield from (p for p in module.parameters() if p.requires_grad)

    # --- forward -------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, contrastive: bool = True) -> TransMambaOutput:
        """``x``: (B, W, C). ``contrastive``: compute the two views and ``loss_cl`` (the official ``mode=='train'``,
        i.e. training and validation; off for scoring)."""
        return self.encode(x, self.time_maps, contrastive)

    def encode(self, x: Tensor, time_maps, contrastive: bool = True) -> TransMambaOutput:
        """Forward with a given time-branch function ``time_maps(x_n) -> (high, low)`` (see ``materialised``)."""
        self._check_input(x)
        if self.revin:
            mean, std = revin_statistics(x)
            x_n = (x - mean) / std
        else:
            x_n = x
        high, low = time_maps(x_n)
        recon_n, loss_cl, recon_loss_f = self.frequency(x_n, contrastive)
        x_hat = recon_n * std + mean if self.revin else recon_n
        return TransMambaOutput(high, low, x_hat, loss_cl, recon_loss_f)

    def patch_tokens(self, x_n: Tensor, affine: bool = False) -> Iterator[tuple[int, Tensor | AffineTokens, bool]]:
        """Token embeddings of every patch size, high list first: yields ``(p, tokens (B*C, p, D), is_high)``.

        ``affine``: yield the factored form (``DataEmbedding.affine``) where the embedding is affine (no active
        dropout, i.e. scoring); the attention maps are then computed without forming tokens, queries or keys.
        """
        b, w, c = x_n.shape
        series = x_n.transpose(1, 2)  # (B, C, W)
        for sizes, embeddings, is_high in ((self.patch_size_high, self.embedding_high, True),
                                           (self.patch_size_low, self.embedding_low, False)):
            for p, embedding in zip(sizes, embeddings):
                patches = series.reshape(b * c, p, w // p)  # "(p n)": p tokens of n consecutive steps
                yield p, embedding.affine(patches) if affine and embedding.is_affine else embedding(patches), is_high

    def time_maps(self, x_n: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Compact channel-averaged maps: x_n (B, W, C) -> (high, low), U tensors (B, H, p, p) each."""
        high: list[Tensor] = []
        low: list[Tensor] = []
        for _, tokens, is_high in self.patch_tokens(x_n, affine=True):
            for attention in self.attention:
                (high if is_high else low).append(channel_mean(attention(tokens), self.n_channels))
        return high, low

    def spectrum_tokens(self, view: Tensor) -> tuple[Tensor, Tensor]:
        """``view`` (B, W, C) -> rFFT along time (B, W_f, C) complex, embedded bins (B, W_f, D)."""
        spectrum = torch.fft.rfft(view, dim=1)
        return spectrum, self.spectral_embedding(torch.cat([spectrum.real, spectrum.imag], dim=-1))

    def frequency(self, x_n: Tensor, contrastive: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """x_n (B, W, C) -> (x̂_n (B, W, C), loss_cl, recon_loss_f).

        With ``contrastive`` the fine and coarse views go through the same embedding and Mamba block in one
        batched call (Mamba is per sample, so this equals three calls).
        """
        spectrum, tokens = self.spectrum_tokens(x_n)
        if contrastive:
            fine = fine_view(x_n, self.aug_rate, self.seg_swap_faithful_bug)  # drawn first, as the official code
            coarse = moving_average(x_n, self.coarse_kernel)
            views = [tokens, self.spectrum_tokens(coarse)[1], self.spectrum_tokens(fine)[1]]
            encoded, encoded_coarse, encoded_fine = self.mamba(torch.cat(views, dim=0)).chunk(3, dim=0)
            loss_cl = (nt_xent(encoded, encoded_coarse, self.ntx_temperature)
                       + nt_xent(encoded, encoded_fine, self.ntx_temperature))
        else:
            encoded = self.mamba(tokens)  # (B, W_f, D)
            loss_cl = tokens.new_zeros(())
        real, imag = self.head_real(encoded), self.head_imag(encoded)  # (B, W_f, C) each
        mse = nn.functional.mse_loss
        recon_loss_f = mse(real, spectrum.real) + mse(imag, spectrum.imag)
        recon_n = torch.fft.irfft(torch.complex(real, imag), n=self.window, dim=1)  # (B, W, C)
        return recon_n, loss_cl, recon_loss_f

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.window or x.shape[2] != self.n_channels:
            raise ValueError(f"expected input of shape (B, {self.window}, {self.n_channels}), got {tuple(x.shape)}")


def _validate(
    n_channels: int,
    window: int,
    high: tuple[int, ...],
    low: tuple[int, ...],
    d_model: int,
    n_heads: int,
    e_layers: int,
) -> None:
    """Raise ``ValueError`` on an inconsistent configuration."""
    if min(n_channels, window, d_model, n_heads, e_layers) < 1:
        raise ValueError("n_channels, window, d_model, n_heads and e_layers must be >= 1")
    if not high or len(high) != len(low):
        raise ValueError(f"patch_size_high and patch_size_low must be non-empty and paired, got {high}, {low}")
    for p in high + low:
        if p < 1 or window % p:
            raise ValueError(f"patch size {p} does not divide the window {window}")
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
