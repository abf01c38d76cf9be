"""MambaAD (He et al., NeurIPS 2024): the Locality-Enhanced State Space decoder in the reverse-distillation frame.
The HSS block with its multi-direction Hilbert scans (:mod:`.hss`), the LSS module (:mod:`.lss`) and the decoder
(:mod:`.decoder`); patch expansion and the code's initialisation are Wave-MambaAD's
(:mod:`fsad.methods.wave_mambaad.decoder`), the scan orders and the selective scan live in :mod:`fsad.layers`."""
