"""Backend resolution shared by every kernel in `ragarbiter.kernels`.

A kernel runs either as a Triton program or as its PyTorch reference. The caller picks
with ``backend="auto" | "triton" | "torch"``:

- ``"torch"`` always runs the reference.
- ``"triton"`` runs the Triton kernel. CUDA tensors need nothing more; CPU tensors are
  allowed only under the Triton interpreter (``TRITON_INTERPRET=1``), which is how the
  tests run the kernels without a GPU.
- ``"auto"`` runs Triton when the inputs are on CUDA and triton is installed, otherwise
  the reference, and says so once per kernel and process in the log.
"""

from __future__ import annotations

import functools
import logging
import math
import os

import torch

from ragarbiter.errors import ConfigError, MissingExtraError

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "triton", "torch")

_fallbacks_logged: set[str] = set()


@functools.cache
def triton_available() -> bool:
    """Whether the optional ``gpu`` extra (triton) can be imported."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    """Whether Triton kernels run under the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def resolve_backend(kernel: str, backend: str, device: torch.device) -> str:
    """Turn the user's ``backend`` choice into ``"triton"`` or ``"torch"``."""
    if backend not in BACKENDS:
        valid = ", ".join(repr(b) for b in BACKENDS)
        msg = f"{kernel}: backend={backend!r} is not a known backend; use one of {valid}."
        raise ConfigError(msg)
    on_cuda = device.type == "cuda"
    if backend == "torch":
        return "torch"
    if backend == "triton":
        if not triton_available():
            raise MissingExtraError("triton", "gpu", f"{kernel}(backend='triton')")
        if not on_cuda and not interpreting():
            msg = (
                f"{kernel}: backend='triton' got tensors on {device}, but Triton kernels need "
                "CUDA tensors. Move the inputs to a CUDA device, use backend='torch' (or "
                "'auto'), or set TRITON_INTERPRET=1 in the environment before triton is first "
                "imported to run the kernel under the CPU interpreter."
            )
            raise ConfigError(msg)
        return "triton"
    if on_cuda and triton_available():
        return "triton"
    reason = (
        f"the inputs are on {device}, not CUDA"
        if not on_cuda
        else "triton is not installed (pip install 'ragarbiter[gpu]')"
    )
    _log_fallback_once(kernel, reason)
    return "torch"


def _log_fallback_once(kernel: str, reason: str) -> None:
    if kernel in _fallbacks_logged:
        return
    _fallbacks_logged.add(kernel)
    logger.info("%s: using the PyTorch reference instead of the Triton kernel because %s.", kernel, reason)


@functools.cache
def jit(fn):
    """``triton.jit(fn)``, built on first launch and cached.

    Kernels stay plain functions until they first run: importing ``ragarbiter.kernels``
    must work without triton, and triton picks interpreted or compiled mode when it is
    imported and when it wraps a function, so doing both late (the kernel modules import
    triton on first launch too) honours a ``TRITON_INTERPRET`` set after
    ``ragarbiter.kernels`` was imported.
    """
    import triton

    return triton.jit(fn)


def check_launchable(kernel_fn: object, kernel: str, device: torch.device) -> None:
    """Refuse, with the fix, a CPU launch that the interpreter cannot run."""
    if device.type == "cuda":
        return
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(tl.zeros, InterpretedFunction):  # triton's own helpers are jit functions too
        msg = (
            f"{kernel}: triton was imported before TRITON_INTERPRET=1 was set, so it can only run "
            "compiled kernels on a GPU. Set TRITON_INTERPRET=1 in the environment before anything "
            "imports triton (torch.compile and transformers models do), e.g. at the top of conftest.py."
        )
        raise ConfigError(msg)
    if not isinstance(kernel_fn, InterpretedFunction):
        msg = (
            f"{kernel}: the Triton kernel was first launched without TRITON_INTERPRET=1, so "
            "it was compiled for a GPU and cannot take CPU tensors. Set TRITON_INTERPRET=1 "
            "in the environment before the first launch in this process."
        )
        raise ConfigError(msg)


def cdiv(a: int, b: int) -> int:
    """Ceiling division for grid sizes."""
    return -(-a // b)


def block_size(n: int, lo: int = 16, hi: int = 128) -> int:
    """Power-of-two tile length covering ``n`` within ``[lo, hi]`` (``tl.dot`` needs >= 16)."""
    return max(lo, min(hi, 1 << max(0, math.ceil(math.log2(max(n, 1))))))


def dot_precision(*dtypes: torch.dtype) -> str:
    """``tl.dot`` precision for tiles upcast to fp32 from ``dtypes``.

    fp16 and bf16 values are exact in tf32, so plain tf32 tensor-core math loses nothing;
    genuine fp32 inputs use three tf32 passes to stay close to full fp32 accuracy.
    """
    return "tf32" if all(d in (torch.float16, torch.bfloat16) for d in dtypes) else "tf32x3"
