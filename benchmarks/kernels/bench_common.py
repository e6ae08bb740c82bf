"""Shared pieces of the kernel benchmarks: the GPU check, timing, environment and tables.

Every figure comes from a CUDA GPU in the run that prints it. Without one the benchmarks
stop with a message and a non-zero exit status instead of inventing numbers.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass, field

import torch

HBM_PEAK_BYTES_PER_S = 4.8e12  # H200 HBM3e peak; the "% of peak" column uses this figure
NO_GPU_EXIT_CODE = 2


def require_cuda() -> None:
    """Exit with a clear message unless a CUDA GPU and triton are present."""
    if not torch.cuda.is_available():
        print(
            "The kernel benchmarks need a CUDA GPU, and torch sees none on this machine; "
            "no figures were measured. Run `python benchmarks/kernels/run_all.py` on a GPU host.",
            file=sys.stderr,
        )
        raise SystemExit(NO_GPU_EXIT_CODE)
    try:
        import triton  # noqa: F401
    except ImportError:
        print("The kernel benchmarks need triton: pip install 'ragarbiter[gpu]'.", file=sys.stderr)
        raise SystemExit(NO_GPU_EXIT_CODE) from None


def bench_ms(fn) -> float:
    """Median time of ``fn`` in ms; ``triton.testing.do_bench`` flushes L2 before every run."""
    from triton.testing import do_bench

    return do_bench(fn, warmup=25, rep=200, return_mode="median")


def peak_extra_mib(fn) -> float:
    """Memory ``fn`` allocates on top of what is already live, at its peak, in MiB."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def environment() -> dict[str, str]:
    """GPU name, driver, and library versions, for the results header."""
    import triton

    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip().splitlines()[0]  # fmt: skip
    except (OSError, subprocess.SubprocessError, IndexError):
        driver = "unknown (nvidia-smi unavailable)"
    return {
        "GPU": torch.cuda.get_device_name(),
        "driver": driver,
        "CUDA (torch build)": str(torch.version.cuda),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "Python": platform.python_version(),
    }


@dataclass
class Row:
    """One method timed on one configuration."""

    method: str
    ms: float
    peak_mib: float | None = None


@dataclass
class Result:
    """All methods timed on one configuration; ``bytes_read`` is the fused kernel's minimum traffic."""

    config: str
    bytes_read: int
    rows: list[Row] = field(default_factory=list)
    max_abs_err: float | None = None  # fused kernel versus the reference, on this configuration

    def markdown(self, fused: str) -> str:
        fused_ms = next(r.ms for r in self.rows if r.method == fused)
        with_mem = any(r.peak_mib is not None for r in self.rows)
        head = "| method | time (ms) | GB/s | % HBM peak | fused kernel speed-up |"
        rule = "|---|---:|---:|---:|---:|"
        if with_mem:
            head, rule = head + " peak extra memory (MiB) |", rule + "---:|"
        lines = [f"**{self.config}**, bytes read by the fused kernel: {self.bytes_read / 1e6:,.1f} MB", "", head, rule]
        for r in self.rows:
            gbps = self.bytes_read / (r.ms * 1e-3) / 1e9
            cells = [r.method, f"{r.ms:.4f}", f"{gbps:,.0f}", f"{100 * gbps * 1e9 / HBM_PEAK_BYTES_PER_S:.1f}"]
            cells.append("1.00x" if r.method == fused else f"{r.ms / fused_ms:.2f}x")
            if with_mem:
                cells.append("" if r.peak_mib is None else f"{r.peak_mib:,.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        if self.max_abs_err is not None:
            lines += ["", f"Max abs difference, fused kernel vs reference: {self.max_abs_err:.3g}"]
        return "\n".join(lines)
