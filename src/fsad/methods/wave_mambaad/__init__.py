"""Wave-MambaAD (Zhang et al.): the Wavelet-Mamba decoder in the reverse-distillation frame. HFSS
(:mod:`.hfss`), LFSS (:mod:`.lfss`), the Wavelet-Mamba module (:mod:`.block`) and the decoder (:mod:`.decoder`);
the Haar transform, scan orders, the 2-D scan mixer and DSE live in :mod:`fsad.layers`; ``conf/model/wave_mambaad.yaml``
and ``conf/experiment/wave_mambaad/`` configure it."""
