"""FKM-AD (Fourier-KAN-Mamba): network, objective / LEH score, LightningModule (``model=fkm_ad``)."""

from fsad.methods.fkm_ad.module import FKMAD

__all__ = ["FKMAD"]
