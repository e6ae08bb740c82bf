"""Kernel tests: run the Triton kernels on CPU under the interpreter when there is no GPU.

triton 3.9 chooses interpreted or compiled mode when it is imported (its own ``tl.*``
helpers are jit functions) and when ``triton.jit`` wraps a kernel. ``ragarbiter.kernels``
imports triton and wraps its kernels on first launch, so setting ``TRITON_INTERPRET`` here,
before the kernel test modules are collected, is enough, unless some module collected
earlier already imported triton (torch.compile and transformers models do); the Triton
tests then skip with that reason. With a GPU the same tests run compiled kernels on CUDA.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")
DEVICE = "cpu" if INTERPRETING else "cuda"


def _interpreter_unusable() -> str | None:
    """Why triton cannot interpret kernels in this process, or None if it can."""
    if "triton" not in sys.modules:
        return None
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    if isinstance(tl.zeros, InterpretedFunction):
        return None
    return (
        "triton was imported before TRITON_INTERPRET=1 was set (by a module collected earlier); "
        "set TRITON_INTERPRET=1 in the environment or run tests/kernels on its own"
    )


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float, what: str = "") -> None:
    """``torch.isclose`` that, on failure, names the first mismatching indices and values."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    ok = torch.isclose(actual, expected, atol=atol, rtol=rtol, equal_nan=False)
    if bool(ok.all()):
        return
    bad = (~ok).nonzero()
    lines = [
        f"  at {tuple(i.tolist())}: got {actual[tuple(i)].item():.7g}, expected {expected[tuple(i)].item():.7g}"
        for i in bad[:10]
    ]
    finite = torch.isfinite(actual) & torch.isfinite(expected)
    worst = (actual - expected)[finite].abs().max().item() if bool(finite.any()) else float("nan")
    header = f"{what}: {len(bad)} of {ok.numel()} values differ (atol={atol}, rtol={rtol}, max abs diff {worst:.3g})"
    raise AssertionError("\n".join([header, *lines]))


@pytest.fixture
def assert_close():
    """The allclose helper every kernel test uses."""
    return _assert_close


@pytest.fixture
def device() -> str:
    """Where the Triton path runs: CPU under the interpreter, else CUDA."""
    pytest.importorskip("triton")
    if DEVICE == "cpu" and (reason := _interpreter_unusable()):
        pytest.skip(reason)
    return DEVICE


@pytest.fixture
def gpu_device() -> str:
    """CUDA with compiled kernels, for the bf16 suite; skips cleanly otherwise."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if INTERPRETING:
        pytest.skip("bf16 checks need compiled kernels; unset TRITON_INTERPRET")
    pytest.importorskip("triton")
    return "cuda"
