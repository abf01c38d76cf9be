"""REM, RED-F's Reconstruction-Elimination Model: a frequency-domain reconstruction of the look-back window.

Data flow for x (B, L, C) (spec ``red_f.md`` §2; [SR] = the spec's sensible reading, each an option here):

1. instance norm per sample and channel over time (detached statistics): ``xn`` (B, C, L);
2. spectrum ``XR, XI = Re, Im fft(xn)`` along time, full length L (B, C, L);
3. frequency patches of ``p`` bins every ``s`` bins on XR and XI, concatenated: (B, C, N, 2p),
   ``N = (L - p) // s + 1`` (23 for L = 192, p = 16, s = 8);
4. inter-band branch: per band, tokens = channels, ``Linear(2p, D)`` embedding, attention masked by the
   learned channel graph (:class:`ChannelGraphMask`) -> (B, N, C, D);
   intra-band branch: per channel, tokens = bands, its own embedding [SR], unmasked attention -> (B, C, N, D);
5. fusion: element-wise sum [SR] (or concat + ``Linear(2D, D)``), flattened per channel to ``N * D``;
6. two heads ``N * D -> L`` give ``XR_rec, XI_rec`` (B, C, L); ``xn_rec = Re ifft(XR_rec + i XI_rec)`` [SR] (or
   CATCH's ``Linear(2L, L)`` over real and imaginary parts of the ifft), de-normalised -> ``x_rec`` (B, L, C).

Table III switches: ``use_frequency=False`` patches the normalised *time* series (p values per patch, one head
straight to L steps, no FFT / iFFT); ``patching=False`` takes the whole spectrum as one band (p = s = L, N = 1);
``use_inter`` / ``use_intra`` drop a branch; ``use_graph=False`` leaves inter-band attention unmasked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fsad.layers.dropout import FastDropout
from fsad.layers.revin import revin_statistics
from fsad.methods.red_f.attention import ChannelGraphMask, PreNormLayer

FUSIONS = ("sum", "concat")
HEADS = ("residual", "mlp", "linear")
INVERSES = ("real", "linear")
INTRA_EMBEDDINGS = ("separate", "shared")


@dataclass
class REMOutput:
    """x_rec: (B, L, C) reconstruction in the input's (scaled) space. spectrum / spectrum_rec: (real, imaginary)
    parts, each (B, C, L), of fft(xn) and of the reconstruction heads (of fft(xn_rec) without frequency modelling).
    """

    x_rec: Tensor
    spectrum: tuple[Tensor, Tensor]
    spectrum_rec: tuple[Tensor, Tensor]


class ReconstructionHead(nn.Module):
    """Per-channel head (B, C, F) -> (B, C, L), F = N * D.

    ``residual`` (CATCH): three blocks ``h = h + ReLU(Linear(F, F) h)``, dropout, ``Linear(F, L)``;
    ``mlp``: ``Linear(F, hidden)``, ReLU, dropout, ``Linear(hidden, L)``; ``linear``: dropout, ``Linear(F, L)``.
    """

    def __init__(self, kind: str, n_features: int, length: int, hidden: int, dropout: float):
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
        self.blocks = nn.ModuleList(nn.Linear(n_features, n_features) for _ in range(3 if kind == "residual" else 0))
        if kind == "mlp":
            self.project = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), FastDropout(dropout),
                                         nn.Linear(hidden, length))
        else:
            self.project = nn.Sequential(FastDropout(dropout), nn.Linear(n_features, length))

    def forward(self, h: Tensor) -> Tensor:
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.project(h)


class REM(nn.Module):
    """Reconstruction-Elimination Model (see the module docstring for the data flow). x (B, L, C) -> REMOutput.

    Args:
        n_channels, window: C and L.
        patch_size, patch_stride: p and s of the frequency patches (16, 8).
        d_model, n_heads, ffn_ratio, dropout, layers: encoder sizes (32, 4 [SR], 2 [SR], 0.1, 1 per branch [SR]).
            D = 32 with ``linear`` heads is the reading that reproduces the paper's parameter count (Table VI; see
            :data:`fsad.methods.red_f.module.MODEL_SIZE_READINGS`): CATCH's channel-fusion width on GECCO
            (``cf_dim`` 32 in ``scripts/multivariate_detection/detect_label/GECCO_script/CATCH.sh``); the
            paper's D = 256 is then the DFM's width.
        use_frequency, patching, use_inter, use_intra, use_graph: Table III switches (module docstring).
        graph: ``distance`` (paper) | ``learned`` (CATCH's sigmoid generator). temperature: Gumbel τ (1).
        mask_style: ``catch`` (bounded mask gradient) | ``additive`` (-1e9; see :mod:`fsad.methods.red_f.attention`).
        mask_eval, mask_seed: the inter-band mask in eval mode (``sample`` with a fixed seed | ``threshold``).
        fusion: ``sum`` | ``concat``. intra_embedding: ``separate`` | ``shared`` band-token embedding.
        head, head_hidden, head_dropout: reconstruction heads (``linear``: one ``Linear(N D, L)`` for the real and
            one for the imaginary part, shared by the channels, the single-linear form of CATCH's ``Flatten_Head``;
            ``residual``: CATCH's head with three residual ``Linear(N D, N D)`` blocks first; ``mlp``), the hidden
            width of ``mlp``, dropout 0.1.
        inverse: ``real`` (Re ifft) | ``linear`` (CATCH: ``Linear(2L, L)`` over Re and Im of the ifft).
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        patch_size: int = 16,
        patch_stride: int = 8,
        d_model: int = 32,
        n_heads: int = 4,
        ffn_ratio: int = 2,
        dropout: float = 0.1,
        layers: int = 1,
        use_frequency: bool = True,
        patching: bool = True,
        use_inter: bool = True,
        use_intra: bool = True,
        use_graph: bool = True,
        graph: str = "distance",
        temperature: float = 1.0,
        mask_style: str = "catch",
        mask_eval: str = "sample",
        mask_seed: int = 0,
        fusion: str = "sum",
        intra_embedding: str = "separate",
        head: str = "linear",
        head_hidden: int = 256,
        head_dropout: float = 0.1,
        inverse: str = "real",
    ):
        super().__init__()
        for name, value, allowed in (("fusion", fusion, FUSIONS), ("inverse", inverse, INVERSES),
                                     ("intra_embedding", intra_embedding, INTRA_EMBEDDINGS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not (use_inter or use_intra):
            raise ValueError("REM needs at least one of use_inter / use_intra")
        self.patch, self.stride = (patch_size, patch_stride) if patching else (window, window)
        if self.patch > window:
            raise ValueError(f"patch_size={patch_size} is longer than the window of {window} steps")
        self.window, self.use_frequency, self.d_model = window, use_frequency, d_model
        self.n_patches = (window - self.patch) // self.stride + 1
        token = 2 * self.patch if use_frequency else self.patch
        self.inter_embed = nn.Linear(token, d_model) if use_inter else None
        self.intra_embed = None
        if use_intra:
            shared = intra_embedding == "shared" and use_inter
            self.intra_embed = self.inter_embed if shared else nn.Linear(token, d_model)
        self.embed_drop = FastDropout(dropout)

        def stack() -> nn.ModuleList:
            return nn.ModuleList(PreNormLayer(d_model, n_heads, ffn_ratio, dropout, mask_style) for _ in range(layers))

        self.inter = stack() if use_inter else None
        self.intra = stack() if use_intra else None
        self.graph = (ChannelGraphMask(d_model, n_channels, graph, temperature, mask_eval, mask_seed)
                      if use_inter and use_graph else None)
        both = use_inter and use_intra
        self.fuse = nn.Linear(2 * d_model, d_model) if both and fusion == "concat" else None
        n_features = self.n_patches * d_model
        self.head_real = ReconstructionHead(head, n_features, window, head_hidden, head_dropout)
        self.head_imag = ReconstructionHead(head, n_features, window, head_hidden, head_dropout) \
            if use_frequency else None
        self.mix = nn.Linear(2 * window, window) if use_frequency and inverse == "linear" else None

    def patches(self, xn: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """xn (B, C, L) -> (tokens (B, C, N, 2p) or (B, C, N, p), spectrum (XR, XI))."""
        spectrum = torch.fft.fft(xn, dim=-1)
        parts = (spectrum.real, spectrum.imag)
        source = parts if self.use_frequency else (xn,)
        tokens = torch.cat([s.unfold(-1, self.patch, self.stride) for s in source], dim=-1)
        return tokens, parts

    def forward(self, x: Tensor) -> REMOutput:
        b, length, c = x.shape
        if length != self.window:
            raise ValueError(f"REM expects windows of {self.window} steps, got {length}")
        mean, std = revin_statistics(x)
        xn = ((x - mean) / std).transpose(1, 2)  # (B, C, L)
        tokens, spectrum = self.patches(xn)
        n, d = self.n_patches, self.d_model
        branches = []
        if self.inter is not None:
            h = self.embed_drop(self.inter_embed(tokens.transpose(1, 2))).reshape(b * n, c, -1)  # (B N, C, D)
            mask = self.graph(h) if self.graph is not None else None
            for layer in self.inter:
                h = layer(h, mask)
            branches.append(h.view(b, n, c, d).transpose(1, 2))
        if self.intra is not None:
            h = self.embed_drop(self.intra_embed(tokens)).reshape(b * c, n, -1)  # (B C, N, D)
            for layer in self.intra:
                h = layer(h)
            branches.append(h.view(b, c, n, d))
        if len(branches) == 1:
            fused = branches[0]
        elif self.fuse is not None:
            fused = self.fuse(torch.cat(branches, dim=-1))
        else:
            fused = branches[0] + branches[1]
        flat = fused.reshape(b, c, n * d)
        if self.use_frequency:
            real, imag = self.head_real(flat), self.head_imag(flat)
            signal = torch.fft.ifft(torch.complex(real, imag), dim=-1)
            xn_rec = signal.real if self.mix is None else self.mix(torch.cat([signal.real, signal.imag], dim=-1))
            spectrum_rec = (real, imag)
        else:
            xn_rec = self.head_real(flat)
            rec = torch.fft.fft(xn_rec, dim=-1)
            spectrum_rec = (rec.real, rec.imag)
        x_rec = xn_rec.transpose(1, 2) * std + mean
        return REMOutput(x_rec=x_rec, spectrum=spectrum, spectrum_rec=spectrum_rec)
