"""MambaAD (He et al., NeurIPS 2024): the Locality-Enhanced State Space decoder in the reverse-distillation frame.
The HSS block with its multi-direction Hilbert scans (:mod:`.hss`), the LSS module (:mod:`.lss`) and the decoder
(:mod:`.decoder`); the 2-D scan mixer, patch expansion, the code's initialisation, the scan orders and the
selective scan live in :mod:`fsad.layers` (shared with Wave-MambaAD)."""
