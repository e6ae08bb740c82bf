"""Fused Triton kernels for ragarbiter's hot loops, each with its PyTorch reference.

Every kernel takes ``backend="auto" | "triton" | "torch"``. ``"auto"`` runs the Triton
kernel when the inputs are on CUDA and triton (the ``gpu`` extra) is installed, and the
PyTorch reference otherwise. triton is optional: this package imports without it.
"""

if __name__.partition(".")[0] != "ragarbiter":  # imported by its bare folder name: see ragarbiter._layout
    from ragarbiter._layout import hand_over

    hand_over(__name__, "ragarbiter.kernels")
else:
    from .maxsim import maxsim, maxsim_reference
    from .segment_attention import segment_attention_mass, segment_attention_mass_reference

    __all__ = [
        "maxsim",
        "maxsim_reference",
        "segment_attention_mass",
        "segment_attention_mass_reference",
    ]
