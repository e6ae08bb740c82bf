"""Backend resolution: auto / triton / torch, the fallback log line, and life without triton."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ragarbiter.errors import ConfigError
from ragarbiter.kernels import _dispatch

CPU = torch.device("cpu")


def test_torch_is_always_torch():
    assert _dispatch.resolve_backend("maxsim", "torch", CPU) == "torch"


def test_auto_on_cpu_falls_back_and_logs_once(monkeypatch, caplog):
    monkeypatch.setattr(_dispatch, "_fallbacks_logged", set())
    with caplog.at_level(logging.INFO, logger="ragarbiter.kernels"):
        for _ in range(3):
            assert _dispatch.resolve_backend("maxsim", "auto", CPU) == "torch"
        _dispatch.resolve_backend("segment_attention_mass", "auto", CPU)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 2
    assert "maxsim" in lines[0] and "not CUDA" in lines[0]
    assert "segment_attention_mass" in lines[1]


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    pytest.importorskip("triton")  # import it while TRITON_INTERPRET=1 still holds
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ConfigError, match="TRITON_INTERPRET=1"):
        _dispatch.resolve_backend("maxsim", "triton", CPU)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _dispatch.resolve_backend("maxsim", "triton", CPU) == "triton"


def test_unknown_backend_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError, match="'auto', 'triton', 'torch'"):
        _dispatch.resolve_backend("maxsim", "Triton", CPU)


def test_cpu_launch_of_a_gpu_built_kernel_says_how_to_fix_it():
    pytest.importorskip("triton")
    with pytest.raises(ConfigError, match="TRITON_INTERPRET=1"):
        _dispatch.check_launchable(object(), "maxsim", CPU)


@pytest.mark.parametrize("n, expected", [(1, 16), (7, 16), (16, 16), (17, 32), (70, 64), (1000, 128)])
def test_block_size_is_a_power_of_two_within_bounds(n, expected):
    assert _dispatch.block_size(n, hi=64 if n == 70 else 128) == expected


def test_package_imports_and_runs_the_reference_without_triton():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None  # as if the "gpu" extra were not installed
        import torch
        from ragarbiter.errors import MissingExtraError
        from ragarbiter.kernels import maxsim, segment_attention_mass

        scores = maxsim(torch.ones(1, 2, 4), torch.ones(3, 4), torch.tensor([0, 1, 3]))
        assert scores.tolist() == [[8.0, 8.0]], scores
        mass = segment_attention_mass(torch.ones(1, 1, 1, 4), torch.ones(1, 1, 4, 4), torch.tensor([[0, 2]]))
        assert abs(mass.item() - 0.5) < 1e-6, mass
        try:
            maxsim(torch.ones(1, 2, 4), torch.ones(3, 4), torch.tensor([0, 1, 3]), backend="triton")
        except MissingExtraError as exc:
            assert "ragarbiter[gpu]" in str(exc), exc
        else:
            raise SystemExit("backend='triton' without triton did not raise")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
