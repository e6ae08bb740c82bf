"""maxsim: Triton kernel versus the PyTorch reference, and the reference versus a naive loop."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pytest
import torch

from ragarbiter.errors import ConfigError, ShapeError
from ragarbiter.kernels import maxsim, maxsim_reference


@dataclass(frozen=True)
class Case:
    name: str
    bq: int
    lq: int
    d: int
    lengths: tuple[int, ...]
    padded: tuple[int, ...] = ()  # number of padded tokens at the end of each query
    index_dtype: torch.dtype = torch.int32
    strided_docs: bool = False  # docs is a column slice of a wider matrix


CASES = [
    Case("odd_shapes_padded", bq=2, lq=7, d=24, lengths=(1, 3, 0, 129), padded=(0, 3)),
    Case("int64_offsets", bq=1, lq=5, d=16, lengths=(2, 0, 70), index_dtype=torch.int64),
    Case("query_longer_than_tile", bq=1, lq=70, d=40, lengths=(3, 65), padded=(6,)),
    Case("wide_embedding", bq=2, lq=3, d=200, lengths=(17, 0, 1)),
    Case("only_empty_documents", bq=2, lq=4, d=16, lengths=(0, 0)),
    Case("fully_padded_query", bq=2, lq=4, d=16, lengths=(5, 0, 2), padded=(4, 1)),
    Case("strided_docs", bq=1, lq=6, d=20, lengths=(9, 40), strided_docs=True),
]

DTYPES = [  # (dtype, atol, rtol)
    (torch.float32, 1e-4, 1e-5),
    (torch.float16, 1e-3, 1e-4),
]


def make_inputs(case: Case, dtype: torch.dtype, device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    queries = torch.randn(case.bq, case.lq, case.d, generator=gen).to(dtype)
    docs = torch.randn(sum(case.lengths), 2 * case.d if case.strided_docs else case.d, generator=gen)
    docs = docs[:, : case.d].to(dtype) if case.strided_docs else docs.to(dtype)
    cu_seqlens = torch.tensor((0, *case.lengths), dtype=torch.int64).cumsum(0).to(case.index_dtype)
    mask = None
    if case.padded:
        mask = torch.ones(case.bq, case.lq, dtype=torch.bool)
        for b, pad in enumerate(case.padded):
            mask[b, case.lq - pad :] = False
    move = (lambda t: t.to(device)) if device != "cpu" else (lambda t: t)
    return move(queries), move(docs), move(cu_seqlens), None if mask is None else move(mask)


def naive_maxsim(queries, docs, cu_seqlens, mask) -> torch.Tensor:
    """Dense float64 MaxSim, one document at a time."""
    bq, lq, _ = queries.shape
    real = torch.ones(bq, lq, dtype=torch.bool) if mask is None else mask.cpu()
    bounds = cu_seqlens.tolist()
    out = torch.full((bq, len(bounds) - 1), float("-inf"), dtype=torch.float64)
    for j in range(len(bounds) - 1):
        if bounds[j + 1] > bounds[j]:
            sim = queries.cpu().double() @ docs[bounds[j] : bounds[j + 1]].cpu().double().T  # (Bq, Lq, T)
            out[:, j] = (sim.amax(-1) * real).sum(-1)
    return out


@pytest.mark.parametrize("dtype, atol, rtol", DTYPES, ids=lambda v: str(v).replace("torch.", ""))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_triton_matches_reference(case, dtype, atol, rtol, device, assert_close):
    queries, docs, cu_seqlens, mask = make_inputs(case, dtype, device)
    got = maxsim(queries, docs, cu_seqlens, mask, backend="triton")
    want = maxsim_reference(queries, docs, cu_seqlens, mask)
    assert got.dtype == torch.float32
    assert_close(got, want, atol, rtol, f"maxsim[{case.name}, {dtype}]")


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_triton_matches_reference_bf16_on_gpu(case, gpu_device, assert_close):
    queries, docs, cu_seqlens, mask = make_inputs(case, torch.bfloat16, gpu_device)
    got = maxsim(queries, docs, cu_seqlens, mask, backend="triton")
    want = maxsim_reference(queries, docs, cu_seqlens, mask)
    assert_close(got, want, 1e-2, 1e-3, f"maxsim[{case.name}, bf16]")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reference_matches_naive_loop(case, assert_close):
    queries, docs, cu_seqlens, mask = make_inputs(case, torch.float32, "cpu")
    got = maxsim_reference(queries, docs, cu_seqlens, mask)
    assert_close(got, naive_maxsim(queries, docs, cu_seqlens, mask), 1e-4, 1e-5, case.name)


def test_reference_chunking_does_not_change_scores(monkeypatch, assert_close):
    maxsim_module = importlib.import_module("ragarbiter.kernels.maxsim")  # the module, not the function
    queries, docs, cu_seqlens, mask = make_inputs(CASES[0], torch.float32, "cpu")
    whole = maxsim_reference(queries, docs, cu_seqlens, mask)
    monkeypatch.setattr(maxsim_module, "_REFERENCE_BUDGET", 1)  # one document per group
    assert_close(maxsim_reference(queries, docs, cu_seqlens, mask), whole, 1e-5, 1e-6, "chunked")


def test_empty_document_scores_minus_inf_and_padding_adds_nothing():
    queries = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
    docs = torch.tensor([[2.0, 5.0], [3.0, -1.0]])  # one document of two tokens, one empty
    cu_seqlens = torch.tensor([0, 2, 2])
    mask = torch.tensor([[True, False]])
    scores = maxsim(queries, docs, cu_seqlens, mask, backend="torch")
    assert scores.tolist() == [[3.0, float("-inf")]]


def test_auto_on_cpu_runs_the_reference(assert_close):
    queries, docs, cu_seqlens, mask = make_inputs(CASES[0], torch.float32, "cpu")
    auto = maxsim(queries, docs, cu_seqlens, mask)
    assert_close(auto, maxsim_reference(queries, docs, cu_seqlens, mask), 0.0, 0.0, "auto")


def _good():
    return make_inputs(Case("tiny", bq=2, lq=3, d=8, lengths=(2, 1), padded=(0, 1)), torch.float32, "cpu")


BAD_INPUTS = [  # (what is wrong, replacement arguments, pattern naming the argument)
    ("queries_2d", lambda q, dc, cu, m: (q[0], dc, cu, m), "queries must"),
    ("docs_3d", lambda q, dc, cu, m: (q, dc[None], cu, m), "docs"),
    ("d_mismatch", lambda q, dc, cu, m: (q, dc[:, :4], cu, m), "docs"),
    ("int_queries", lambda q, dc, cu, m: (q.long(), dc, cu, m), "queries must"),
    ("float_offsets", lambda q, dc, cu, m: (q, dc, cu.float(), m), "cu_seqlens"),
    (
        "decreasing_offsets",
        lambda q, dc, cu, m: (q, dc, torch.tensor([0, 2, 1, 3], dtype=torch.int32), m),
        "cu_seqlens",
    ),
    ("offsets_short_of_docs", lambda q, dc, cu, m: (q, dc, cu[:-1], m), "cu_seqlens"),
    ("mask_shape", lambda q, dc, cu, m: (q, dc, cu, m[:, :2]), "query_mask"),
    ("mask_dtype", lambda q, dc, cu, m: (q, dc, cu, m.float()), "query_mask"),
]


@pytest.mark.parametrize("what, corrupt, argument", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_argument(what, corrupt, argument):
    args = corrupt(*_good())
    with pytest.raises(ShapeError, match=argument):
        maxsim(*args, backend="torch")


def test_inputs_on_different_devices_name_the_argument():
    queries, docs, cu_seqlens, mask = _good()
    with pytest.raises(ShapeError, match="docs is on meta"):
        maxsim(queries, docs.to("meta"), cu_seqlens, mask, backend="torch")


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="backend='cuda'.*'auto', 'triton', 'torch'"):
        maxsim(*_good(), backend="cuda")
