"""Reverse distillation: RD4AD's frame (frozen teacher, Half-FPN bottleneck, student decoder)."""

from fsad.methods.reverse_distillation.decoder import ConvStudentDecoder
from fsad.methods.reverse_distillation.module import ReverseDistillation

__all__ = ["ConvStudentDecoder", "ReverseDistillation"]
