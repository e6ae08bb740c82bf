"""Kernel tests: run the Triton kernels on CPU under the interpreter when there is no GPU.

Kernels in ``ragarbiter.kernels`` are built with ``triton.jit`` on first launch, and triton
reads ``TRITON_INTERPRET`` at that moment, so setting it here (before any kernel test
launches a kernel) is enough. With a GPU the same tests run the compiled kernels on CUDA.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")
DEVICE = "cpu" if INTERPRETING or not torch.cuda.is_available() else "cuda"


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
