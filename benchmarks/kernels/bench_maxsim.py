"""Benchmark `ragarbiter.kernels.maxsim` against the usual PyTorch ways of scoring MaxSim.

Setting: one query of Lq = 32 tokens, d = 128, bf16, N documents whose lengths are drawn
around 300 tokens. Baselines, all on padded (N, Lmax, d) documents prepared outside the timing:

- einsum: PyLate-style ``einsum("ash,bth->abst")`` that materialises every similarity;
- padded bmm: ``docs @ q.T``, mask the padding, max over tokens, sum over query tokens;
- torch.compile: the padded bmm expression compiled by inductor.

Usage: ``python benchmarks/kernels/bench_maxsim.py`` (needs a CUDA GPU).
"""

from __future__ import annotations

import torch
from bench_common import Result, Row, bench_ms, peak_extra_mib, require_cuda

LQ, D, MEAN_LEN, STD_LEN, MIN_LEN, MAX_LEN = 32, 128, 300, 60, 64, 512
N_DOCS = (1_000, 10_000, 100_000)
FUSED = "maxsim, Triton (public API call)"


def make_corpus(n_docs: int, device: str = "cuda", seed: int = 0):
    """Packed and padded bf16 documents with lengths drawn around MEAN_LEN."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    lengths = (torch.randn(n_docs, generator=gen) * STD_LEN + MEAN_LEN).round().clamp(MIN_LEN, MAX_LEN).long()
    cu_seqlens = torch.nn.functional.pad(lengths.cumsum(0), (1, 0)).to(device=device, dtype=torch.int32)
    docs = torch.randn(int(lengths.sum()), D, device=device, dtype=torch.bfloat16)  # (total_tokens, D)
    lmax = int(lengths.max())
    doc_mask = torch.arange(lmax)[None, :] < lengths[:, None]  # (N, Lmax)
    padded = torch.zeros(n_docs, lmax, D, device=device, dtype=torch.bfloat16)  # (N, Lmax, D)
    padded[doc_mask.to(device)] = docs
    query = torch.randn(1, LQ, D, device=device, dtype=torch.bfloat16)  # (1, Lq, D)
    return query, docs, cu_seqlens, padded, doc_mask.to(device)


def einsum_scores(query, padded, doc_mask):
    sim = torch.einsum("ash,bth->abst", query, padded)  # (1, N, Lq, Lmax), materialised
    sim = sim.masked_fill(~doc_mask[None, :, None, :], float("-inf"))
    return sim.amax(dim=-1).float().sum(dim=-1)  # (1, N)


def padded_bmm_scores(query, padded, doc_mask):
    sim = padded @ query[0].T  # (N, Lmax, Lq)
    sim = sim.masked_fill(~doc_mask[:, :, None], float("-inf"))
    return sim.amax(dim=1).float().sum(dim=-1)[None, :]  # (1, N)


def bytes_read(query, docs, cu_seqlens) -> int:
    """The fused kernel reads every document token once, plus the query and the offsets."""
    out_bytes = query.shape[0] * (cu_seqlens.numel() - 1) * 4
    return (
        docs.numel() * docs.element_size() + query.numel() * query.element_size() + cu_seqlens.numel() * 4 + out_bytes
    )


def run(n_docs_list=N_DOCS) -> list[Result]:
    from ragarbiter.kernels import maxsim, maxsim_reference

    compiled = torch.compile(padded_bmm_scores, dynamic=False)
    return [_run_one(n_docs, compiled, maxsim, maxsim_reference) for n_docs in n_docs_list]


def _run_one(n_docs: int, compiled, maxsim, maxsim_reference) -> Result:
    """One corpus size; its tensors are freed on return, before the next size is built."""
    query, docs, cu_seqlens, padded, doc_mask = make_corpus(n_docs)
    fused_scores = maxsim(query, docs, cu_seqlens, backend="triton")
    check = min(n_docs, 1_000)  # the reference loops in Python; check a prefix
    want = maxsim_reference(query, docs[: int(cu_seqlens[check])], cu_seqlens[: check + 1])
    result = Result(
        config=f"N = {n_docs:,} documents, {docs.shape[0]:,} tokens, Lq = {LQ}, d = {D}, bf16",
        bytes_read=bytes_read(query, docs, cu_seqlens),
        max_abs_err=(fused_scores[:, :check] - want).abs().max().item(),
    )
    methods = {
        FUSED: lambda: maxsim(query, docs, cu_seqlens, backend="triton"),
        "einsum (PyLate-style)": lambda: einsum_scores(query, padded, doc_mask),
        "padded bmm + mask + max": lambda: padded_bmm_scores(query, padded, doc_mask),
        "torch.compile(padded bmm)": lambda: compiled(query, padded, doc_mask),
    }
    for name, fn in methods.items():
        fn()  # compile / warm up before measuring memory
        result.rows.append(Row(name, bench_ms(fn), peak_extra_mib(fn)))
    torch.cuda.empty_cache()
    return result


def main() -> None:
    require_cuda()
    for result in run():
        print(result.markdown(FUSED), end="\n\n")


if __name__ == "__main__":
    main()
