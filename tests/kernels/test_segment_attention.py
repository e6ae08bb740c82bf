"""segment_attention_mass: Triton kernel versus the reference, and the reference versus softmax."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from ragarbiter.errors import ConfigError, ShapeError
from ragarbiter.kernels import segment_attention_mass, segment_attention_mass_reference


@dataclass(frozen=True)
class Case:
    name: str
    b: int
    hq: int
    hkv: int
    m: int
    n: int
    d: int
    segments: tuple[tuple[int, int], ...]
    positions: tuple[int, ...] | None = None
    scale: float | None = None
    cache_layout: str = "bhnd"  # "bnhd": k is a transposed view, as some caches store it


OVERLAPPING = ((0, 10), (5, 5), (0, 150), (100, 149), (3, 40), (140, 150), (30, 35))
CASES = [
    Case("gqa_overlapping", b=1, hq=6, hkv=2, m=3, n=150, d=24, segments=OVERLAPPING),
    Case("gqa_causal", b=1, hq=6, hkv=2, m=3, n=150, d=24, segments=OVERLAPPING, positions=(60, 120, 149)),
    Case("mha_m1_causal", b=2, hq=2, hkv=2, m=1, n=77, d=16, segments=((0, 77), (10, 10), (70, 77)), positions=(50,)),
    Case("mha_all_visible", b=2, hq=3, hkv=3, m=2, n=40, d=16, segments=((0, 0), (0, 40), (39, 40)), scale=0.3),
    Case("positions_past_the_end", b=1, hq=2, hkv=1, m=2, n=30, d=16, segments=((0, 30), (29, 30)), positions=(5, 99)),
    Case("rows_and_dims_over_one_tile", b=1, hq=4, hkv=1, m=20, n=40, d=136, segments=((0, 20), (20, 40))),
    Case("many_segments", b=1, hq=2, hkv=1, m=2, n=90, d=16, segments=tuple((i, i + 5) for i in range(70))),
    Case("strided_cache", b=2, hq=4, hkv=2, m=2, n=70, d=16, segments=((0, 35), (35, 70)), cache_layout="bnhd"),
]

DTYPES = [  # (dtype, atol, rtol)
    (torch.float32, 1e-5, 1e-4),
    (torch.float16, 1e-4, 1e-3),
]


def make_inputs(case: Case, dtype: torch.dtype, device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(case.b, case.hq, case.m, case.d, generator=gen).to(dtype)
    if case.cache_layout == "bnhd":
        k = torch.randn(case.b, case.n, case.hkv, case.d, generator=gen).to(dtype).transpose(1, 2)
    else:
        k = torch.randn(case.b, case.hkv, case.n, case.d, generator=gen).to(dtype)
    segments = torch.tensor(case.segments, dtype=torch.int64).reshape(-1, 2)
    positions = None if case.positions is None else torch.tensor(case.positions)
    tensors = [t if t is None else t.to(device) for t in (q, k, segments, positions)]
    return (*tensors, case.scale)


def dense_mass(q, k, segments, scale, positions) -> torch.Tensor:
    """Full float64 softmax over (B, Hq, m, N), then a sum per segment."""
    d, n = q.shape[-1], k.shape[2]
    keys = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1).double()  # (B, Hq, N, d)
    scores = q.double() @ keys.transpose(-1, -2) * (d**-0.5 if scale is None else scale)  # (B, Hq, m, N)
    if positions is not None:
        scores = scores.masked_fill(torch.arange(n)[None, :] > positions[:, None], float("-inf"))
    probs = scores.softmax(dim=-1)
    return torch.stack([probs[..., s:e].sum(-1) for s, e in segments.tolist()], dim=-1)  # (B, Hq, m, S)


@pytest.mark.parametrize("dtype, atol, rtol", DTYPES, ids=lambda v: str(v).replace("torch.", ""))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_triton_matches_reference(case, dtype, atol, rtol, device, assert_close):
    q, k, segments, positions, scale = make_inputs(case, dtype, device)
    got = segment_attention_mass(q, k, segments, scale, positions, backend="triton")
    want = segment_attention_mass_reference(q, k, segments, scale, positions)
    assert got.dtype == torch.float32
    assert got.shape == (case.b, case.hq, case.m, len(case.segments))
    assert_close(got, want, atol, rtol, f"segment_attention_mass[{case.name}, {dtype}]")


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_triton_matches_reference_bf16_on_gpu(case, gpu_device, assert_close):
    q, k, segments, positions, scale = make_inputs(case, torch.bfloat16, gpu_device)
    got = segment_attention_mass(q, k, segments, scale, positions, backend="triton")
    want = segment_attention_mass_reference(q, k, segments, scale, positions)
    assert_close(got, want, 1e-3, 1e-2, f"segment_attention_mass[{case.name}, bf16]")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reference_matches_dense_softmax(case, assert_close):
    q, k, segments, positions, scale = make_inputs(case, torch.float32, "cpu")
    got = segment_attention_mass_reference(q, k, segments, scale, positions)
    assert_close(got, dense_mass(q, k, segments, scale, positions), 1e-6, 1e-5, case.name)


def test_whole_range_gets_all_mass_and_empty_segment_none():
    q, k, _, positions, _ = make_inputs(CASES[1], torch.float32, "cpu")
    segments = torch.tensor([[0, 150], [7, 7]])
    mass = segment_attention_mass(q, k, segments, q_positions=positions, backend="torch")
    assert torch.allclose(mass[..., 0], torch.ones(()), atol=1e-6)
    assert bool((mass[..., 1] == 0).all())


def test_keys_after_the_position_get_no_mass():
    q, k, _, _, _ = make_inputs(CASES[1], torch.float32, "cpu")
    segments = torch.tensor([[61, 150]])
    mass = segment_attention_mass(q, k, segments, q_positions=torch.tensor([60, 60, 149]), backend="torch")
    assert bool((mass[:, :, :2] == 0).all())
    assert bool((mass[:, :, 2] > 0).all())


def _good():
    q, k, segments, positions, _ = make_inputs(CASES[2], torch.float32, "cpu")
    return q, k, segments, positions


BAD_INPUTS = [  # (what is wrong, replacement arguments, pattern naming the argument)
    ("q_3d", lambda q, k, s, p: (q[0], k, s, p), "q must"),
    ("k_3d", lambda q, k, s, p: (q, k[0], s, p), "k must"),
    ("d_mismatch", lambda q, k, s, p: (q, k[..., :8], s, p), "head size d"),
    ("heads_not_multiple", lambda q, k, s, p: (torch.randn(2, 3, 1, 16), k, s, p), "kv heads of k"),
    ("int_k", lambda q, k, s, p: (q, k.long(), s, p), "k must"),
    ("segments_shape", lambda q, k, s, p: (q, k, s[:, :1], p), "segments"),
    ("segments_float", lambda q, k, s, p: (q, k, s.float(), p), "segments"),
    ("segment_past_end", lambda q, k, s, p: (q, k, torch.tensor([[0, 78]]), p), "segments"),
    ("segment_reversed", lambda q, k, s, p: (q, k, torch.tensor([[5, 4]]), p), "segments"),
    ("segment_negative", lambda q, k, s, p: (q, k, torch.tensor([[-1, 4]]), p), "segments"),
    ("positions_shape", lambda q, k, s, p: (q, k, s, torch.tensor([1, 2])), "q_positions"),
    ("positions_negative", lambda q, k, s, p: (q, k, s, torch.tensor([-1])), "q_positions"),
    ("positions_float", lambda q, k, s, p: (q, k, s, torch.tensor([3.0])), "q_positions"),
]


@pytest.mark.parametrize("what, corrupt, argument", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_argument(what, corrupt, argument):
    q, k, segments, positions = corrupt(*_good())
    with pytest.raises(ShapeError, match=argument):
        segment_attention_mass(q, k, segments, q_positions=positions, backend="torch")


def test_inputs_on_different_devices_name_the_argument():
    q, k, segments, positions = _good()
    with pytest.raises(ShapeError, match="k is on meta"):
        segment_attention_mass(q, k.to("meta"), segments, q_positions=positions, backend="torch")


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), "0.1"])
def test_bad_scale_is_a_config_error(scale):
    q, k, segments, positions = _good()
    with pytest.raises(ConfigError, match="scale"):
        segment_attention_mass(q, k, segments, scale=scale, q_positions=positions, backend="torch")


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="backend='gpu'.*'auto', 'triton', 'torch'"):
        segment_attention_mass(*_good()[:3], backend="gpu")
