"""Run every kernel benchmark on a CUDA GPU and write `benchmarks/results/kernels.md`.

Usage (from the repository root, with the package and its ``gpu`` extra installed)::

    python benchmarks/kernels/run_all.py

Without a CUDA GPU it prints why and exits with a non-zero status; it never writes figures
it did not measure.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import bench_maxsim
import bench_segment_attention
from bench_common import HBM_PEAK_BYTES_PER_S, environment, require_cuda

COMMAND = "python benchmarks/kernels/run_all.py"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "kernels.md"


def render(env: dict[str, str], sections: list[tuple[str, str, list]]) -> str:
    lines = [
        "# Kernel benchmarks",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with `{COMMAND}`.",
        "",
        *[f"- {key}: {value}" for key, value in env.items()],
        "",
        "Times are medians of `triton.testing.do_bench` (L2 flushed before every run). Every row of a",
        "table divides the same byte count, the minimum traffic of the fused kernel, by its time, so GB/s",
        f'is effective bandwidth and "% HBM peak" compares it with {HBM_PEAK_BYTES_PER_S / 1e12:.1f} TB/s',
        "(H200). \"Speed-up\" is each method's time over the fused kernel's, measured in the same run.",
        '"Peak extra memory" is `torch.cuda.max_memory_allocated` during one call, above what was live.',
        "The fused rows call the public function, so they include its input checks (one host sync).",
        "",
    ]
    for title, fused, results in sections:
        lines += [f"## {title}", ""]
        for result in results:
            lines += [result.markdown(fused), ""]
    return "\n".join(lines)


def main() -> None:
    require_cuda()
    env = environment()
    sections = [
        ("maxsim", bench_maxsim.FUSED, bench_maxsim.run()),
        ("segment_attention_mass", bench_segment_attention.FUSED, bench_segment_attention.run()),
    ]
    text = render(env, sections)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"Wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
