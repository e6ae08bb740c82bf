"""Attention mass that the last query rows put on segments of the key cache.

``mass[b, h, r, s] = sum_{t in segment s} softmax_t(scale * <q[b, h, r], k[b, h // G, t]>)``
where the softmax runs over every key visible to row ``r`` and ``G = Hq // Hkv`` query heads
share one kv head (GQA). Attention sorting and passage attribution read this to see which
retrieved passages the model actually looks at.

The Triton kernel is FlashAttention with a 0/1 "segment membership" matrix in place of V: one
pass over the keys keeps the running row max, the normaliser and per-segment sums rescaled
online, so the (Hq, m, N) probabilities never reach global memory. One program serves every
query head of a kv head, so each K tile is read once per kv head. As in flash-decoding, the
keys are split across programs so that a few kv heads still fill the GPU; a small second
kernel merges the per-split partial results.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch

from ragarbiter.errors import ConfigError, ShapeError

from ._dispatch import block_size, cdiv, check_launchable, dot_precision, jit, resolve_backend

tl = None  # triton.language once `_compiled_kernels` has run: triton (the "gpu" extra) loads on first launch

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_INDEX_DTYPES = (torch.int32, torch.int64)
_NAME = "segment_attention_mass"
_MAX_SPLITS = 128


def segment_attention_mass(
    q: torch.Tensor,
    k: torch.Tensor,
    segments: torch.Tensor,
    scale: float | None = None,
    q_positions: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Softmax probability mass of each query row on each key segment.

    Args:
        q: (B, Hq, m, d) the last m query rows, after RoPE.
        k: (B, Hkv, N, d) the key cache after RoPE; Hq must be a multiple of Hkv.
        segments: (S, 2) int32/int64 ``[start, end)`` key ranges; may be empty or overlap.
        scale: softmax temperature, ``d ** -0.5`` when None.
        q_positions: optional (m,) int absolute positions; key t is visible to row r iff
            ``t <= q_positions[r]``. None makes every key visible.
        backend: ``"auto"``, ``"triton"`` or ``"torch"`` (see ``ragarbiter.kernels``).

    Returns:
        (B, Hq, m, S) fp32 probability mass per segment.
    """
    scale = _validate(q, k, segments, scale, q_positions)
    if resolve_backend(_NAME, backend, q.device) == "torch":
        return _segment_mass_torch(q, k, segments, scale, q_positions)
    return _segment_mass_triton(q, k, segments, scale, q_positions)


def segment_attention_mass_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    segments: torch.Tensor,
    scale: float | None = None,
    q_positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """PyTorch version in fp32: the CPU path and the test oracle.

    Materialises the (m, N) probabilities of one (batch, head) at a time, so memory stays at
    ``m * N`` floats however many heads there are.
    """
    scale = _validate(q, k, segments, scale, q_positions)
    return _segment_mass_torch(q, k, segments, scale, q_positions)


def _segment_mass_torch(q, k, segments, scale, q_positions) -> torch.Tensor:
    bsz, hq, m, _ = q.shape
    hkv, n = k.shape[1], k.shape[2]
    group = hq // hkv
    starts, ends = segments[:, 0].long(), segments[:, 1].long()  # (S,), (S,)
    out = torch.empty((bsz, hq, m, segments.shape[0]), dtype=torch.float32, device=q.device)
    hidden = None
    if q_positions is not None:
        keys = torch.arange(n, device=q.device)
        hidden = keys[None, :] > q_positions.long()[:, None]  # (m, N)
    for b in range(bsz):
        for h in range(hq):
            scores = (q[b, h].float() @ k[b, h // group].float().T) * scale  # (m, N)
            if hidden is not None:
                scores = scores.masked_fill(hidden, float("-inf"))
            probs = torch.softmax(scores, dim=-1)  # (m, N)
            prefix = torch.nn.functional.pad(probs.double().cumsum(dim=-1), (1, 0))  # (m, N + 1)
            out[b, h] = (prefix[:, ends] - prefix[:, starts]).float()  # (m, S)
    return out


def _validate(q, k, segments, scale, q_positions) -> float:
    """Check every argument; return the resolved softmax scale."""
    _check_shapes(q, k, segments, q_positions)
    _check_ranges(k.shape[2], segments, q_positions)
    return _resolve_scale(scale, q.shape[3])


def _check_shapes(q, k, segments, q_positions) -> None:
    for arg, t in (("q", q), ("k", k), ("segments", segments)):
        if not isinstance(t, torch.Tensor):
            raise ShapeError(f"{_NAME}: {arg} must be a torch.Tensor, got {type(t).__name__}.")
    if q.dim() != 4 or min(q.shape[1:]) == 0:
        raise ShapeError(f"{_NAME}: q must have shape (B, Hq, m, d) with Hq, m, d >= 1, got {tuple(q.shape)}.")
    if k.dim() != 4 or min(k.shape[1:]) == 0:
        raise ShapeError(f"{_NAME}: k must have shape (B, Hkv, N, d) with Hkv, N, d >= 1, got {tuple(k.shape)}.")
    for arg, t in (("q", q), ("k", k)):
        if t.dtype not in _FLOAT_DTYPES:
            raise ShapeError(f"{_NAME}: {arg} must be float32, float16 or bfloat16, got {t.dtype}.")
    if k.shape[0] != q.shape[0] or k.shape[3] != q.shape[3]:
        msg = f"{_NAME}: k {tuple(k.shape)} must share the batch size and head size d of q {tuple(q.shape)}."
        raise ShapeError(msg)
    if q.shape[1] % k.shape[1] != 0:
        msg = (
            f"{_NAME}: q has {q.shape[1]} heads, which is not a multiple of the {k.shape[1]} kv "
            "heads of k; pass the key cache of the same attention layer."
        )
        raise ShapeError(msg)
    if segments.dim() != 2 or segments.shape[1] != 2 or segments.dtype not in _INDEX_DTYPES:
        msg = (
            f"{_NAME}: segments must be an (S, 2) int32 or int64 tensor of [start, end) ranges, "
            f"got shape {tuple(segments.shape)} and dtype {segments.dtype}."
        )
        raise ShapeError(msg)
    if q_positions is not None:
        if not isinstance(q_positions, torch.Tensor) or q_positions.dtype not in _INDEX_DTYPES:
            raise ShapeError(f"{_NAME}: q_positions must be an int32 or int64 tensor of shape (m,).")
        if tuple(q_positions.shape) != (q.shape[2],):
            msg = f"{_NAME}: q_positions must have shape (m,) = ({q.shape[2]},), got {tuple(q_positions.shape)}."
            raise ShapeError(msg)
    for arg, t in (("k", k), ("segments", segments), ("q_positions", q_positions)):
        if t is not None and t.device != q.device:
            raise ShapeError(f"{_NAME}: {arg} is on {t.device} but q is on {q.device}; move both to one device.")


def _check_ranges(n: int, segments, q_positions) -> None:
    starts, ends = segments[:, 0], segments[:, 1]
    bad = ~((starts >= 0) & (starts <= ends) & (ends <= n))  # (S,)
    if q_positions is None:
        bad_segments, negative_positions = bool(bad.any()), False
    else:  # one host sync for all value checks
        bad_segments, negative_positions = torch.stack([bad.any(), (q_positions < 0).any()]).tolist()
    if bad_segments:
        msg = f"{_NAME}: every row of segments must satisfy 0 <= start <= end <= N = {n} (the number of keys)."
        raise ShapeError(msg)
    if negative_positions:
        raise ShapeError(f"{_NAME}: q_positions must be >= 0 so that every row sees at least key 0.")


def _resolve_scale(scale, d: int) -> float:
    if scale is None:
        return d**-0.5
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"{_NAME}: scale={scale!r} must be a positive finite number, or None for d ** -0.5.")
    return float(scale)


def _segment_mass_triton(q, k, segments, scale, q_positions) -> torch.Tensor:
    """Launch the split pass over the keys, then the combine pass."""
    partial_kernel, combine_kernel = _compiled_kernels()
    check_launchable(partial_kernel, _NAME, q.device)
    bsz, hq, m, d = q.shape
    hkv, n = k.shape[1], k.shape[2]
    n_seg = segments.shape[0]
    out = torch.empty((bsz, hq, m, n_seg), dtype=torch.float32, device=q.device)  # (B, Hq, m, S)
    if bsz == 0 or n_seg == 0:
        return out
    causal = q_positions is not None
    # Keys past the last visible position carry no mass: stop there.
    n_keys = min(n, int(q_positions.max().item()) + 1) if causal else n
    positions = q_positions.to(torch.int64).contiguous() if causal else out  # dummy when unused
    rows = (hq // hkv) * m  # query rows that share one kv head
    block_r, block_s, block_n = block_size(rows, hi=64), block_size(n_seg, hi=64), 64
    row_chunks, seg_chunks = cdiv(rows, block_r), cdiv(n_seg, block_s)
    keys_per_split, splits = _split_keys(n_keys, block_n, bsz * hkv * row_chunks * seg_chunks, q.device)
    part_max = torch.empty((bsz, hq, m, splits), dtype=torch.float32, device=q.device)  # (B, Hq, m, P)
    part_denom = torch.empty_like(part_max)  # (B, Hq, m, P)
    part_acc = torch.empty((bsz, hq, m, splits, n_seg), dtype=torch.float32, device=q.device)  # (B, Hq, m, P, S)
    partial_kernel[(bsz * hkv, row_chunks * seg_chunks, splits)](
        q, k, segments.to(torch.int64).contiguous(), positions, part_max, part_denom, part_acc,
        hkv, m, n_keys, d, n_seg, keys_per_split, splits, seg_chunks, scale * math.log2(math.e),
        q.stride(0), q.stride(1), q.stride(2), q.stride(3),
        k.stride(0), k.stride(1), k.stride(2), k.stride(3),
        GROUP=hq // hkv, CAUSAL=causal,
        BLOCK_R=block_r, BLOCK_N=block_n, BLOCK_D=block_size(d, hi=128), BLOCK_S=block_s,
        QK_PRECISION=dot_precision(q.dtype, k.dtype),
        num_warps=4,
    )  # fmt: skip
    combine_kernel[(bsz * hq * m, seg_chunks)](
        part_max, part_denom, part_acc, out, splits, n_seg,
        BLOCK_P=block_size(splits, lo=1, hi=_MAX_SPLITS), BLOCK_S=block_s,
    )  # fmt: skip
    return out


def _split_keys(n_keys: int, block_n: int, programs: int, device: torch.device) -> tuple[int, int]:
    """Split the keys so that the grid fills the GPU (flash-decoding); return (keys per split, splits).

    With a handful of (batch, kv head) pairs and a long cache, one program per kv head would
    leave most SMs idle. The CPU interpreter aims at a few splits so tests exercise the combine.
    """
    target = 4 * torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 8
    blocks = cdiv(n_keys, block_n)
    splits = max(1, min(blocks, _MAX_SPLITS, cdiv(target, programs)))
    keys_per_split = cdiv(blocks, splits) * block_n  # whole tiles, so no tile straddles two splits
    return keys_per_split, cdiv(n_keys, keys_per_split)


@functools.cache
def _compiled_kernels():
    """Both kernels wrapped by triton.jit; their bodies read ``tl`` as a module global."""
    global tl  # noqa: PLW0603
    import triton.language as tl

    return jit(_segment_mass_kernel), jit(_segment_mass_combine_kernel)


# A Triton kernel, wrapped by triton.jit on first launch (`_compiled_kernels`) so that triton stays optional.
def _segment_mass_kernel(
    q_ptr,  # queries (B, Hq, M, D), strides (stride_qb, stride_qh, stride_qm, stride_qd)
    k_ptr,  # key cache (B, Hkv, N, D), strides (stride_kb, stride_kh, stride_kn, stride_kd)
    seg_ptr,  # segments (S, 2) int64, contiguous, rows [start, end)
    pos_ptr,  # query positions (M,) int64, contiguous; unread unless CAUSAL
    max_ptr,  # out: partial row max of base-2 logits (B, Hq, M, SPLITS) fp32, contiguous
    denom_ptr,  # out: partial sum of exp2(logit - max) (B, Hq, M, SPLITS) fp32, contiguous
    acc_ptr,  # out: the same sum per segment (B, Hq, M, SPLITS, S) fp32, contiguous
    Hkv, M, n_keys, D, S,
    keys_per_split, SPLITS, seg_chunks,
    scale_log2e,  # softmax scale * log2(e): the kernel works in base 2
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    GROUP: tl.constexpr,  # query heads per kv head
    CAUSAL: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_S: tl.constexpr,
    QK_PRECISION: tl.constexpr,
):  # fmt: skip
    pid_bh, pid_rs, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    b = pid_bh // Hkv
    kv_head = pid_bh % Hkv
    # Row r of this kv head's block is query row r % M of query head kv_head * GROUP + r // M.
    offs_r = (pid_rs // seg_chunks) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,)
    row_ok = offs_r < GROUP * M
    row_i = offs_r % M  # (BLOCK_R,)
    head = kv_head * GROUP + offs_r // M  # (BLOCK_R,)
    q_rows = q_ptr + b.to(tl.int64) * stride_qb + head * stride_qh + row_i * stride_qm  # (BLOCK_R,)
    k_base = k_ptr + b.to(tl.int64) * stride_kb + kv_head.to(tl.int64) * stride_kh

    segs = (pid_rs % seg_chunks) * BLOCK_S + tl.arange(0, BLOCK_S)  # (BLOCK_S,)
    seg_ok = segs < S
    seg_start = tl.load(seg_ptr + 2 * segs, mask=seg_ok, other=0)  # (BLOCK_S,), padding is empty
    seg_end = tl.load(seg_ptr + 2 * segs + 1, mask=seg_ok, other=0)  # (BLOCK_S,)
    if CAUSAL:
        last_key = tl.load(pos_ptr + row_i, mask=row_ok, other=0)  # (BLOCK_R,)

    offs_n = tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    offs_d = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    row_max = tl.full((BLOCK_R,), float("-inf"), dtype=tl.float32)  # (BLOCK_R,)
    denom = tl.zeros((BLOCK_R,), dtype=tl.float32)  # (BLOCK_R,)
    acc = tl.zeros((BLOCK_R, BLOCK_S), dtype=tl.float32)  # (BLOCK_R, BLOCK_S)
    split_start = split * keys_per_split
    split_end = tl.minimum(split_start + keys_per_split, n_keys)
    for n0 in range(split_start, split_end, BLOCK_N):
        keys = n0 + offs_n  # (BLOCK_N,)
        logits = tl.zeros((BLOCK_R, BLOCK_N), dtype=tl.float32)  # (BLOCK_R, BLOCK_N)
        for d0 in range(0, D, BLOCK_D):
            dims = d0 + offs_d  # (BLOCK_D,)
            q_tile = tl.load(
                q_rows[:, None] + dims[None, :] * stride_qd,
                mask=row_ok[:, None] & (dims[None, :] < D),
                other=0.0,
            ).to(tl.float32)  # (BLOCK_R, BLOCK_D)
            k_tile_t = tl.load(
                k_base + keys[None, :] * stride_kn + dims[:, None] * stride_kd,
                mask=(keys[None, :] < split_end) & (dims[:, None] < D),
                other=0.0,
            ).to(tl.float32)  # (BLOCK_D, BLOCK_N), the tile transposed
            logits = tl.dot(q_tile, k_tile_t, logits, input_precision=QK_PRECISION)
        visible = keys[None, :] < split_end  # (1, BLOCK_N)
        if CAUSAL:
            visible = visible & (keys[None, :] <= last_key[:, None])  # (BLOCK_R, BLOCK_N)
        logits = tl.where(visible, logits * scale_log2e, float("-inf"))  # (BLOCK_R, BLOCK_N)

        new_max = tl.maximum(row_max, tl.max(logits, axis=1))  # (BLOCK_R,)
        base = tl.where(new_max == float("-inf"), 0.0, new_max)  # no visible key yet: avoid inf - inf
        alpha = tl.exp2(row_max - base)  # (BLOCK_R,) rescales what was summed so far
        p = tl.exp2(logits - base[:, None])  # (BLOCK_R, BLOCK_N)
        member = (keys[:, None] >= seg_start[None, :]) & (keys[:, None] < seg_end[None, :])
        member = member.to(tl.float32)  # (BLOCK_N, BLOCK_S) 1 where key t lies in segment s
        denom = denom * alpha + tl.sum(p, axis=1)
        acc = tl.dot(p, member, acc * alpha[:, None], input_precision="tf32x3")  # (BLOCK_R, BLOCK_S)
        row_max = new_max

    part = ((b * GROUP * Hkv + head).to(tl.int64) * M + row_i) * SPLITS + split  # (BLOCK_R,)
    # Row statistics are the same in every segment chunk: the first one writes them.
    stats_ok = row_ok & (offs_r * 0 + pid_rs % seg_chunks == 0)  # (BLOCK_R,)
    tl.store(max_ptr + part, row_max, mask=stats_ok)
    tl.store(denom_ptr + part, denom, mask=stats_ok)
    tl.store(acc_ptr + part[:, None] * S + segs[None, :], acc, mask=row_ok[:, None] & seg_ok[None, :])


# A Triton kernel, wrapped by triton.jit on first launch (`_compiled_kernels`).
def _segment_mass_combine_kernel(
    max_ptr,  # partial row max (R, P) fp32, contiguous; R = B * Hq * M rows, P = SPLITS
    denom_ptr,  # partial normalisers (R, P) fp32, contiguous
    acc_ptr,  # partial segment sums (R, P, S) fp32, contiguous
    out_ptr,  # mass (R, S) fp32, contiguous
    SPLITS, S,
    BLOCK_P: tl.constexpr,
    BLOCK_S: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    segs = tl.program_id(1) * BLOCK_S + tl.arange(0, BLOCK_S)  # (BLOCK_S,)
    parts = tl.arange(0, BLOCK_P)  # (BLOCK_P,)
    part_ok = parts < SPLITS
    part_max = tl.load(max_ptr + row * SPLITS + parts, mask=part_ok, other=float("-inf"))  # (BLOCK_P,)
    part_denom = tl.load(denom_ptr + row * SPLITS + parts, mask=part_ok, other=0.0)  # (BLOCK_P,)
    top = tl.max(part_max, axis=0)
    top = tl.where(top == float("-inf"), 0.0, top)
    weight = tl.exp2(part_max - top)  # (BLOCK_P,) splits with no visible key weigh 0
    denom = tl.sum(part_denom * weight, axis=0)
    acc = tl.load(
        acc_ptr + (row * SPLITS + parts[:, None]) * S + segs[None, :],
        mask=part_ok[:, None] & (segs[None, :] < S),
        other=0.0,
    )  # (BLOCK_P, BLOCK_S)
    mass = tl.sum(acc * weight[:, None], axis=0) / denom  # (BLOCK_S,)
    tl.store(out_ptr + row * S + segs, mass, mask=segs < S)
