"""Benchmark `ragarbiter.kernels.segment_attention_mass` against PyTorch attention read-outs.

Setting: batch 1, Hq = 32 query heads over Hkv = 8 kv heads (GQA), d = 128, bf16, the last
m in {1, 8} query rows against a key cache of N in {4k, 32k, 128k}, causal, 20 segments
(retrieved passages) tiling the middle 90% of the context. Baselines:

- eager: Hugging Face "eager" attention, which repeats K per query head, materialises the
  (B, Hq, m, N) probabilities in fp32, then sums them per segment;
- recompute: what an SDPA model has to do since SDPA returns no weights: recompute
  matmul + softmax for the last rows only (GQA by reshaping q, no K copy), then segment sums;
- torch.compile(recompute).

Usage: ``python benchmarks/kernels/bench_segment_attention.py`` (needs a CUDA GPU).
"""

from __future__ import annotations

import torch
from bench_common import Result, Row, bench_ms, peak_extra_mib, require_cuda

HQ, HKV, D, N_SEGMENTS = 32, 8, 128, 20
MS = (1, 8)
NS = (4_096, 32_768, 131_072)
FUSED = "segment_attention_mass, Triton (public API call)"


def make_inputs(m: int, n: int, device: str = "cuda", seed: int = 0):
    torch.manual_seed(seed)
    q = torch.randn(1, HQ, m, D, device=device, dtype=torch.bfloat16)  # (1, Hq, m, D)
    k = torch.randn(1, HKV, n, D, device=device, dtype=torch.bfloat16)  # (1, Hkv, N, D)
    edges = torch.linspace(0.05 * n, 0.95 * n, N_SEGMENTS + 1).long()
    segments = torch.stack([edges[:-1], edges[1:]], dim=1).to(device)  # (S, 2)
    positions = torch.arange(n - m, n, device=device)  # the last m rows of the sequence
    return q, k, segments, positions


def segment_sums(probs, segments):
    """(..., N) probabilities -> (..., S) sums over each [start, end) range."""
    prefix = torch.nn.functional.pad(probs.cumsum(dim=-1), (1, 0))  # (..., N + 1)
    return prefix[..., segments[:, 1]] - prefix[..., segments[:, 0]]


def eager_mass(q, k, segments, positions):
    keys = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # (B, Hq, N, D), repeat_kv
    scores = (q @ keys.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, Hq, m, N)
    hidden = torch.arange(k.shape[2], device=q.device)[None, :] > positions[:, None]  # (m, N)
    probs = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1, dtype=torch.float32)
    return segment_sums(probs, segments)  # (B, Hq, m, S)


def recompute_mass(q, k, segments, positions):
    b, hq, m, d = q.shape
    hkv, n = k.shape[1], k.shape[2]
    grouped = q.reshape(b, hkv, (hq // hkv) * m, d)  # (B, Hkv, G*m, D), rows of one kv head together
    scores = (grouped @ k.transpose(-1, -2)).float() * d**-0.5  # (B, Hkv, G*m, N)
    scores = scores.view(b, hkv, hq // hkv, m, n)  # (B, Hkv, G, m, N)
    hidden = torch.arange(n, device=q.device)[None, :] > positions[:, None]  # (m, N)
    probs = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1)
    return segment_sums(probs, segments).reshape(b, hq, m, -1)  # (B, Hq, m, S)


def bytes_read(q, k) -> int:
    """K dominates: every key of every kv head is read once, plus q."""
    return k.numel() * k.element_size() + q.numel() * q.element_size()


def run(ms=MS, ns=NS) -> list[Result]:
    from ragarbiter.kernels import segment_attention_mass, segment_attention_mass_reference

    compiled = torch.compile(recompute_mass, dynamic=False)
    results = []
    for m in ms:
        for n in ns:
            q, k, segments, positions = make_inputs(m, n)
            got = segment_attention_mass(q, k, segments, q_positions=positions, backend="triton")
            want = segment_attention_mass_reference(q, k, segments, q_positions=positions)
            result = Result(
                config=f"m = {m}, N = {n:,} keys, Hq = {HQ}, Hkv = {HKV}, d = {D}, {N_SEGMENTS} segments, bf16",
                bytes_read=bytes_read(q, k),
                max_abs_err=(got - want).abs().max().item(),
            )
            methods = {
                FUSED: lambda: segment_attention_mass(q, k, segments, q_positions=positions, backend="triton"),
                "eager attention + segment sum": lambda: eager_mass(q, k, segments, positions),
                "recompute last rows (SDPA-era)": lambda: recompute_mass(q, k, segments, positions),
                "torch.compile(recompute)": lambda: compiled(q, k, segments, positions),
            }
            for name, fn in methods.items():
                fn()  # compile / warm up before measuring memory
                result.rows.append(Row(name, bench_ms(fn), peak_extra_mib(fn)))
            results.append(result)
    return results


def main() -> None:
    require_cuda()
    for result in run():
        print(result.markdown(FUSED), end="\n\n")


if __name__ == "__main__":
    main()
