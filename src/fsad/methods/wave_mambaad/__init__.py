"""Wave-MambaAD (Zhang et al.): the Wavelet-Mamba decoder in the reverse-distillation frame. Built so far: HFSS
(:mod:`.hfss`), LFSS (:mod:`.lfss`), the Wavelet-Mamba module (:mod:`.block`) and the decoder (:mod:`.decoder`);
the Haar transform, scan orders and DSE live in :mod:`fsad.layers`. The model config and experiments follow."""
