"""MaxSim (late-interaction, ColBERT-style) scores of queries against packed documents.

``scores[b, j] = sum_i max_t <queries[b, i], docs[t]>`` over the real tokens ``i`` of query
``b`` and the tokens ``t`` of document ``j``. Documents are packed varlen: document ``j``
owns rows ``cu_seqlens[j]:cu_seqlens[j + 1]`` of ``docs``.

The Triton kernel streams each document's tokens through on-chip tiles and keeps a running
max per query token (FlashAttention-style), so the (query tokens x document tokens)
similarity matrix never reaches global memory.
"""

from __future__ import annotations

import functools

import torch

from ragarbiter.errors import ShapeError

from ._dispatch import block_size, check_launchable, dot_precision, jit, resolve_backend

tl = None  # triton.language once `_compiled_kernel` has run: triton (the "gpu" extra) loads on first launch

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_INDEX_DTYPES = (torch.int32, torch.int64)
_REFERENCE_BUDGET = 1 << 24  # similarity entries per reference chunk (64 MiB of fp32)


def maxsim(
    queries: torch.Tensor,
    docs: torch.Tensor,
    cu_seqlens: torch.Tensor,
    query_mask: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """MaxSim scores of every query against every packed document.

    Args:
        queries: (Bq, Lq, d) query token embeddings, fp32, fp16 or bf16.
        docs: (total_tokens, d) packed document token embeddings, same dtype family.
        cu_seqlens: (N + 1,) int32 or int64 document offsets into ``docs``.
        query_mask: optional (Bq, Lq) bool, True for real tokens; padded tokens add 0.
        backend: ``"auto"``, ``"triton"`` or ``"torch"`` (see ``ragarbiter.kernels``).

    Returns:
        (Bq, N) fp32 scores; an empty document scores ``-inf``.
    """
    _validate(queries, docs, cu_seqlens, query_mask)
    if resolve_backend("maxsim", backend, queries.device) == "torch":
        return _maxsim_torch(queries, docs, cu_seqlens, query_mask)
    return _maxsim_triton(queries, docs, cu_seqlens, query_mask)


def maxsim_reference(
    queries: torch.Tensor,
    docs: torch.Tensor,
    cu_seqlens: torch.Tensor,
    query_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """PyTorch MaxSim in fp32: the CPU path and the test oracle.

    Works through groups of whole documents of bounded token count, so memory stays at
    about ``Bq * Lq * (tokens + documents)`` per group, whatever the corpus size.
    """
    _validate(queries, docs, cu_seqlens, query_mask)
    return _maxsim_torch(queries, docs, cu_seqlens, query_mask)


def _maxsim_torch(queries, docs, cu_seqlens, query_mask) -> torch.Tensor:
    bq, lq, d = queries.shape
    n_docs = cu_seqlens.numel() - 1
    q = queries.float().reshape(bq * lq, d)  # (Bq*Lq, d)
    real = torch.ones(bq, lq, dtype=torch.bool, device=queries.device) if query_mask is None else query_mask
    bounds = cu_seqlens.tolist()
    max_tokens = max(1, _REFERENCE_BUDGET // max(1, bq * lq))
    scores = torch.full((bq, n_docs), float("-inf"), device=queries.device)  # (Bq, N)
    first = 0
    while first < n_docs:
        last = first + 1  # documents [first, last) form one group
        while last < n_docs and bounds[last + 1] - bounds[first] <= max_tokens:
            last += 1
        lengths = torch.tensor(bounds[first : last + 1], device=queries.device).diff()  # (n,)
        owner = torch.repeat_interleave(torch.arange(last - first, device=queries.device), lengths)
        sim = q @ docs[bounds[first] : bounds[last]].float().T  # (Bq*Lq, T)
        best = torch.full((bq * lq, last - first), float("-inf"), device=queries.device)
        best = best.scatter_reduce(1, owner.expand_as(sim), sim, reduce="amax")  # (Bq*Lq, n)
        best = best.view(bq, lq, -1).masked_fill(~real[:, :, None], 0.0)  # (Bq, Lq, n)
        group = best.sum(dim=1)  # (Bq, n)
        scores[:, first:last] = group.masked_fill(lengths[None, :] == 0, float("-inf"))
        first = last
    return scores


def _validate(queries, docs, cu_seqlens, query_mask) -> None:
    """Check shapes, dtypes and devices, then the offsets' values."""
    _check_shapes(queries, docs, cu_seqlens, query_mask)
    first, last, decreasing = torch.stack([cu_seqlens[0], cu_seqlens[-1], (cu_seqlens.diff() < 0).any()]).tolist()
    if first != 0 or decreasing:  # one host sync for all value checks
        raise ShapeError("maxsim: cu_seqlens must start at 0 and never decrease.")
    if last != docs.shape[0]:
        msg = f"maxsim: cu_seqlens[-1] = {last} must equal the number of rows of docs ({docs.shape[0]})."
        raise ShapeError(msg)


def _check_shapes(queries, docs, cu_seqlens, query_mask) -> None:
    for name, t in (("queries", queries), ("docs", docs), ("cu_seqlens", cu_seqlens)):
        if not isinstance(t, torch.Tensor):
            raise ShapeError(f"maxsim: {name} must be a torch.Tensor, got {type(t).__name__}.")
    if queries.dim() != 3 or queries.shape[1] == 0 or queries.shape[2] == 0:
        msg = f"maxsim: queries must have shape (Bq, Lq, d) with Lq, d >= 1, got {tuple(queries.shape)}."
        raise ShapeError(msg)
    if docs.dim() != 2:
        raise ShapeError(f"maxsim: docs must have shape (total_tokens, d), got {tuple(docs.shape)}.")
    if docs.shape[1] != queries.shape[2]:
        msg = (
            f"maxsim: docs has embedding size {docs.shape[1]} but queries has {queries.shape[2]}; "
            "encode both with the same model."
        )
        raise ShapeError(msg)
    for name, t in (("queries", queries), ("docs", docs)):
        if t.dtype not in _FLOAT_DTYPES:
            raise ShapeError(f"maxsim: {name} must be float32, float16 or bfloat16, got {t.dtype}.")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 1 or cu_seqlens.dtype not in _INDEX_DTYPES:
        msg = (
            f"maxsim: cu_seqlens must be a 1-D int32 or int64 tensor of N + 1 offsets, got "
            f"shape {tuple(cu_seqlens.shape)} and dtype {cu_seqlens.dtype}."
        )
        raise ShapeError(msg)
    if query_mask is not None:
        if not isinstance(query_mask, torch.Tensor) or query_mask.dtype != torch.bool:
            raise ShapeError("maxsim: query_mask must be a bool tensor (True = real token).")
        if tuple(query_mask.shape) != tuple(queries.shape[:2]):
            msg = (
                f"maxsim: query_mask must have shape (Bq, Lq) = {tuple(queries.shape[:2])}, "
                f"got {tuple(query_mask.shape)}."
            )
            raise ShapeError(msg)
    for name, t in (("docs", docs), ("cu_seqlens", cu_seqlens), ("query_mask", query_mask)):
        if t is not None and t.device != queries.device:
            msg = f"maxsim: {name} is on {t.device} but queries is on {queries.device}; move both to one device."
            raise ShapeError(msg)


def _maxsim_triton(queries, docs, cu_seqlens, query_mask) -> torch.Tensor:
    """Launch `_maxsim_kernel`: one program per (query, document) pair."""
    kernel = _compiled_kernel()
    check_launchable(kernel, "maxsim", queries.device)
    bq, lq, d = queries.shape
    n_docs = cu_seqlens.numel() - 1
    scores = torch.empty((bq, n_docs), dtype=torch.float32, device=queries.device)  # (Bq, N)
    if bq == 0 or n_docs == 0:
        return scores
    has_mask = query_mask is not None
    mask = query_mask.to(torch.uint8).contiguous() if has_mask else scores  # dummy when unused
    kernel[(bq * n_docs,)](
        queries, mask, docs, cu_seqlens.contiguous(), scores,
        bq, lq, d, n_docs,
        queries.stride(0), queries.stride(1), queries.stride(2),
        docs.stride(0), docs.stride(1),
        HAS_MASK=has_mask,
        BLOCK_Q=block_size(lq, hi=64),
        BLOCK_T=64,
        BLOCK_D=block_size(d, hi=128),
        DOT_PRECISION=dot_precision(queries.dtype, docs.dtype),
        num_warps=4,
    )  # fmt: skip
    return scores


@functools.cache
def _compiled_kernel():
    """`_maxsim_kernel` wrapped by triton.jit; the kernel body reads ``tl`` as a module global."""
    global tl  # noqa: PLW0603
    import triton.language as tl

    return jit(_maxsim_kernel)


# A Triton kernel, wrapped by triton.jit on first launch (`_compiled_kernel`) so that triton stays optional.
def _maxsim_kernel(
    q_ptr,  # queries (Bq, Lq, D) fp32/fp16/bf16, strides (stride_qb, stride_ql, stride_qd)
    mask_ptr,  # query mask (Bq, Lq) uint8, contiguous, 1 = real token; unread unless HAS_MASK
    doc_ptr,  # packed document tokens (total_tokens, D) fp32/fp16/bf16, strides (stride_dt, stride_dd)
    cu_ptr,  # document offsets (N + 1,) int32 or int64, contiguous
    out_ptr,  # scores (Bq, N) fp32, contiguous
    Bq, Lq, D, N,
    stride_qb, stride_ql, stride_qd,
    stride_dt, stride_dd,
    HAS_MASK: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):  # fmt: skip
    # The Bq programs of one document are adjacent, so its tokens come from L2 after the first.
    pid = tl.program_id(0)
    b = pid % Bq
    j = pid // Bq
    start = tl.load(cu_ptr + j).to(tl.int64)  # 64-bit: token * stride can pass 2**31
    end = tl.load(cu_ptr + j + 1).to(tl.int64)
    offs_q = tl.arange(0, BLOCK_Q)  # (BLOCK_Q,)
    offs_t = tl.arange(0, BLOCK_T)  # (BLOCK_T,)
    offs_d = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    q_base = q_ptr + b.to(tl.int64) * stride_qb
    total = tl.zeros((BLOCK_Q,), dtype=tl.float32)  # (BLOCK_Q,) per-slot sum of row maxima
    for q0 in range(0, Lq, BLOCK_Q):
        rows = q0 + offs_q  # (BLOCK_Q,)
        real = rows < Lq
        if HAS_MASK:
            flags = tl.load(mask_ptr + b * Lq + rows, mask=real, other=0)  # (BLOCK_Q,)
            real = real & (flags != 0)
        best = tl.full((BLOCK_Q,), float("-inf"), dtype=tl.float32)  # (BLOCK_Q,) running max
        for t0 in range(start, end, BLOCK_T):
            toks = t0 + offs_t  # (BLOCK_T,)
            sim = tl.zeros((BLOCK_Q, BLOCK_T), dtype=tl.float32)  # (BLOCK_Q, BLOCK_T)
            for d0 in range(0, D, BLOCK_D):
                dims = d0 + offs_d  # (BLOCK_D,)
                q_tile = tl.load(
                    q_base + rows[:, None] * stride_ql + dims[None, :] * stride_qd,
                    mask=(rows[:, None] < Lq) & (dims[None, :] < D),
                    other=0.0,
                ).to(tl.float32)  # (BLOCK_Q, BLOCK_D)
                doc_tile_t = tl.load(
                    doc_ptr + toks[None, :] * stride_dt + dims[:, None] * stride_dd,
                    mask=(toks[None, :] < end) & (dims[:, None] < D),
                    other=0.0,
                ).to(tl.float32)  # (BLOCK_D, BLOCK_T), the tile transposed
                sim = tl.dot(q_tile, doc_tile_t, sim, input_precision=DOT_PRECISION)
            sim = tl.where(toks[None, :] < end, sim, float("-inf"))  # (BLOCK_Q, BLOCK_T)
            best = tl.maximum(best, tl.max(sim, axis=1))  # (BLOCK_Q,)
        total += tl.where(real, best, 0.0)  # (BLOCK_Q,)
    score = tl.sum(total, axis=0)
    score = tl.where(end > start, score, float("-inf"))  # an empty document scores -inf
    tl.store(out_ptr + b.to(tl.int64) * N + j, score)
