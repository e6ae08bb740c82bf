"""Attention capture through transformers' AttentionInterface equals eager attention.

Tiny Llama-, Qwen2- and Mistral-style models (GQA and MHA, one with a sliding window) are built
in code with random weights; the tokenizer is a byte-level BPE trained on a small world. The
reference is the eager implementation's ``output_attentions`` summed over each document's
tokens, for the last prompt position, averaged over heads then layers.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from transformers import (  # noqa: E402
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from ragarbiter.errors import ConfigError, ShapeError  # noqa: E402
from ragarbiter.lm import PromptTemplate, SegmentAttention, capture_attention, check_hookable  # noqa: E402
from ragarbiter.lm.capture import CAPTURE_IMPL  # noqa: E402
from tests.eager import eager_document_mass  # noqa: E402


@pytest.fixture(scope="module")
def world_and_tokenizer():
    from ragarbiter.synthetic import WorldConfig, build_world
    from ragarbiter.testbed.lm import build_tokenizer

    world = build_world(WorldConfig(seed=3, people=16, companies=4, cities=4, countries=2))
    return world, build_tokenizer(world, 400)


@pytest.fixture(scope="module")
def documents(world_and_tokenizer):
    world, _ = world_and_tokenizer
    texts = list(world.texts())
    return [" ".join(texts[3 * i : 3 * i + 3]) for i in range(5)]


def _model(family: str, vocab: int):
    torch.manual_seed(0)
    common = dict(
        vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=3, max_position_embeddings=2048
    )
    if family == "llama-gqa":
        model = LlamaForCausalLM(LlamaConfig(**common, num_attention_heads=8, num_key_value_heads=2))
    elif family == "qwen2-gqa":
        model = Qwen2ForCausalLM(Qwen2Config(**common, num_attention_heads=4, num_key_value_heads=2))
    elif family == "mistral-mha-window":
        # A window shorter than the prompt: the last token sees only part of the documents.
        model = MistralForCausalLM(
            MistralConfig(**common, num_attention_heads=4, num_key_value_heads=4, sliding_window=160)
        )
    else:  # pragma: no cover
        raise AssertionError(family)
    return model.eval()


def _eager_mass(model, prompt) -> list[float]:
    return eager_document_mass(model, prompt.ids, prompt.spans)


FAMILIES = ("llama-gqa", "qwen2-gqa", "mistral-mha-window")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prefix_cache", [True, False])
def test_captured_mass_equals_eager_attention(family, prefix_cache, world_and_tokenizer, documents):
    _, tok = world_and_tokenizer
    model = _model(family, len(tok))
    model.set_attn_implementation("sdpa")
    attention = SegmentAttention(model, tok, prefix_cache=prefix_cache, min_prefix_tokens=1)
    template = PromptTemplate()
    orders = ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0], [1, 4, 3])  # different lengths in one batch
    prompts = [
        attention.encode(*template.render("Where was Tavo born?", [documents[i] for i in order])) for order in orders
    ]
    got = attention.mass(prompts, batch_size=3)  # a batch of 3, then a batch of 1
    assert model.config._attn_implementation == "sdpa"  # restored after capture
    for prompt, mass in zip(prompts, got):
        want = _eager_mass(model, prompt)
        assert mass == pytest.approx(want, abs=2e-5), family
    if family == "mistral-mha-window":  # the window really cuts the first document off
        assert got[0][0] == 0.0 and got[0][-1] > 0.0
    else:
        assert all(m > 0 for m in got[0])


def test_prefix_cache_is_reused_across_calls(world_and_tokenizer, documents):
    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))
    attention = SegmentAttention(model, tok, min_prefix_tokens=8)
    template = PromptTemplate(instruction="Read every document carefully, then answer the question briefly.\n")
    first = attention.encode(*template.render("Where was Tavo born?", documents[:3]))
    second = attention.encode(*template.render("Who employs Kiri?", documents[2:]))
    attention.mass([first])
    calls = []
    original = attention._prefill
    attention._prefill = lambda ids: calls.append(len(ids)) or original(ids)
    attention.mass([second])
    assert calls == []  # the instruction's key/value cache from the first call served the second
    assert len(attention._prefixes) == 1
    short = SegmentAttention(model, tok, min_prefix_tokens=10_000)
    short.mass([first])
    assert not short._prefixes  # a prefix this short is recomputed, not cached


def test_capture_runs_sdpa_and_never_eager(world_and_tokenizer, documents, monkeypatch):
    import transformers.models.llama.modeling_llama as llama
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))

    def forbidden(*args, **kwargs):
        raise AssertionError("eager attention was called")

    sdpa, calls = ALL_ATTENTION_FUNCTIONS["sdpa"], []

    def counting_sdpa(module, *args, **kwargs):
        calls.append(kwargs.get("output_attentions"))
        return sdpa(module, *args, **kwargs)

    monkeypatch.setattr(llama, "eager_attention_forward", forbidden)
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "sdpa", counting_sdpa)
    attention = SegmentAttention(model, tok)
    mass = attention.mass([attention.encode(*PromptTemplate().render("q?", documents[:2]))])
    assert len(mass[0]) == 2
    assert len(calls) == model.config.num_hidden_layers and not any(calls)  # one SDPA call per layer


def test_a_model_loaded_with_eager_attention_is_wrapped_too(world_and_tokenizer, documents):
    _, tok = world_and_tokenizer
    model = _model("qwen2-gqa", len(tok))
    model.set_attn_implementation("eager")
    attention = SegmentAttention(model, tok)
    prompt = attention.encode(*PromptTemplate().render("q?", documents[:3]))
    got = attention.mass([prompt])[0]
    assert model.config._attn_implementation == "eager"
    assert got == pytest.approx(_eager_mass(model, prompt), abs=2e-5)


def test_layer_and_head_selection_matches_eager_on_the_same_slice(world_and_tokenizer, documents):
    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))
    attention = SegmentAttention(model, tok, layers=[0, 2], heads=[1, 5])
    prompt = attention.encode(*PromptTemplate().render("q?", documents[:3]))
    got = attention.mass([prompt])[0]
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(torch.tensor([prompt.ids]), output_attentions=True)
    finally:
        model.set_attn_implementation("sdpa")
    last = torch.stack([out.attentions[i][0, [1, 5], -1] for i in (0, 2)])  # (2 layers, 2 heads, N)
    want = [last[:, :, s:e].sum(-1).mean(1).mean(0).item() for s, e in prompt.spans]
    assert got == pytest.approx(want, abs=2e-5)
    assert got != pytest.approx(_eager_mass(model, prompt), abs=1e-4)  # the selection changes the figure


def test_nested_capture_blocks_hand_the_model_back(world_and_tokenizer, documents):
    from ragarbiter.lm.capture import CaptureRequest

    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))
    attention = SegmentAttention(model, tok)
    prompt = attention.encode(*PromptTemplate().render("q?", documents[:2]))
    ids = torch.tensor([prompt.ids])
    outer = CaptureRequest([len(prompt.ids) - 1], [len(prompt.ids)], [torch.tensor(prompt.spans)], len(prompt.ids))
    with torch.no_grad(), capture_attention(model, outer):
        assert attention.mass([prompt])[0] == pytest.approx(_eager_mass_inside(attention, prompt), abs=2e-5)
        assert model.config._attn_implementation == CAPTURE_IMPL  # still the outer block's
        model.base_model(input_ids=ids)
    assert model.config._attn_implementation == "sdpa"
    assert sorted(outer.mass) == [0, 1, 2]  # the outer block captured after the inner one ended


def _eager_mass_inside(attention, prompt):
    """The same figure from a second, independent SegmentAttention (its own forward pass)."""
    return SegmentAttention(attention.model, attention.tokenizer, prefix_cache=False).mass([prompt])[0]


def test_position_dependent_rope_is_never_batched_or_cached(world_and_tokenizer, documents):
    _, tok = world_and_tokenizer
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            rope_scaling={"rope_type": "dynamic", "factor": 4.0},
        )
    ).eval()
    attention = SegmentAttention(model, tok, min_prefix_tokens=1)
    assert attention.position_dependent_rope
    prompts = [attention.encode(*PromptTemplate().render("q?", documents[:k])) for k in (4, 1)]
    assert len(prompts[0].ids) > 128 > len(prompts[1].ids)  # one beyond the original window, one within
    got = attention.mass(prompts, batch_size=2)
    assert not attention._prefixes
    for prompt, mass in zip(prompts, got):
        assert mass == pytest.approx(_eager_mass(model, prompt), abs=2e-5)


def test_triton_kernel_path_matches_eager(world_and_tokenizer, documents):
    from ragarbiter.kernels._dispatch import interpreting, triton_available

    if not triton_available() or not (interpreting() or torch.cuda.is_available()):
        pytest.skip("needs triton and a GPU or TRITON_INTERPRET=1")
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    if not torch.cuda.is_available() and not isinstance(tl.zeros, InterpretedFunction):
        pytest.skip("triton was imported before TRITON_INTERPRET=1 was set")
    _, tok = world_and_tokenizer
    model = _model("qwen2-gqa", len(tok))
    attention = SegmentAttention(model, tok, backend="triton")
    prompt = attention.encode(*PromptTemplate().render("Where was Tavo born?", documents[:3]))
    assert attention.mass([prompt])[0] == pytest.approx(_eager_mass(model, prompt), abs=2e-5)


def test_document_spans_come_from_offsets(world_and_tokenizer, documents):
    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))
    attention = SegmentAttention(model, tok)
    prompt_text, spans = PromptTemplate().render("q?", documents[:3], ["wiki", None, "forum"])
    assert [prompt_text[s:e] for s, e in spans] == documents[:3]
    enc = attention.encode(prompt_text, spans)
    assert enc.ids[0] == tok.bos_token_id
    for (s, e), doc in zip(enc.spans, documents[:3]):
        assert tok.decode(enc.ids[s:e]).strip() == doc


def test_unhookable_model_gets_a_clear_error():
    class NotAnHFModel(torch.nn.Module):
        config = None

    with pytest.raises(ConfigError, match="Supported families: Llama"):
        check_hookable(NotAnHFModel())


def test_bad_layer_or_head_indices_are_named(world_and_tokenizer):
    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))
    with pytest.raises(ShapeError, match=r"layers=\[7\]"):
        SegmentAttention(model, tok, layers=[7])
    with pytest.raises(ShapeError, match="heads"):
        SegmentAttention(model, tok, heads=[])


def test_slow_tokenizer_is_refused(world_and_tokenizer):
    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))

    class Slow:
        is_fast = False

    with pytest.raises(ConfigError, match="use_fast=True"):
        SegmentAttention(model, Slow())


def test_capture_block_restores_the_implementation_on_error(world_and_tokenizer):
    _, tok = world_and_tokenizer
    model = _model("llama-gqa", len(tok))
    with pytest.raises(RuntimeError), capture_attention(model):
        assert model.config._attn_implementation == CAPTURE_IMPL
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"


def test_sliding_window_cache_shorter_than_the_cached_prefix(world_and_tokenizer, documents):
    """The prefix cache keeps only the last `window` keys; absolute spans must still line up."""
    _, tok = world_and_tokenizer
    torch.manual_seed(0)
    model = MistralForCausalLM(
        MistralConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            sliding_window=64,
            max_position_embeddings=2048,
        )
    ).eval()
    attention = SegmentAttention(model, tok, min_prefix_tokens=1)
    template = PromptTemplate(instruction="Please read the documents. " * 30 + "\n")
    prompts = [
        attention.encode(*template.render("q?", documents[:2])),
        attention.encode(*template.render("q?", [documents[1]])),
    ]
    got = attention.mass(prompts)
    assert [len(k) for k in attention._prefixes] and min(len(k) for k in attention._prefixes) > 64
    for prompt, mass in zip(prompts, got):
        assert mass == pytest.approx(_eager_mass(model, prompt), abs=2e-5)


# -- token spans and piecewise encoding -------------------------------------------------------------
def _scanned_spans(offsets, char_spans):
    """The reference: every token checked against every span."""
    spans = []
    for start, end in char_spans:
        inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
        spans.append((inside[0], inside[-1] + 1) if inside else None)
    return spans


def test_token_spans_equal_a_scan_of_every_token():
    import random

    from ragarbiter.errors import InvalidInputError
    from ragarbiter.lm.capture import token_spans

    rng = random.Random(0)
    for trial in range(300):
        offsets, at = [(0, 0)], 0  # BOS
        for _ in range(rng.randrange(0, 25)):
            width = rng.choice([0, 1, 1, 2, 3])  # empty tokens too
            start = at - 1 if at and rng.random() < 0.15 else at  # tokens that share a character
            offsets.append((start, start + width))
            at = max(at, start + width)
        if trial % 10 == 0 and len(offsets) > 2:
            rng.shuffle(offsets)  # out of order: the scan fallback
        spans = []
        for _ in range(rng.randrange(1, 5)):
            a = rng.randrange(0, at + 2)
            spans.append((a, a + rng.randrange(0, 4)))
        want = _scanned_spans(offsets, spans)
        if None in want:
            with pytest.raises(InvalidInputError, match="map to no token"):
                token_spans(offsets, spans)
        else:
            assert token_spans(offsets, spans) == want, (offsets, spans)


@pytest.fixture(scope="module")
def smollm2_tokenizer(default_generator_models):
    """The packaged generator's tokenizer (a GPT-2-style byte-level BPE); only the tokenizer is loaded."""
    from transformers import AutoTokenizer

    from ragarbiter.lm.generator import DEFAULT_GENERATOR

    return AutoTokenizer.from_pretrained(default_generator_models / DEFAULT_GENERATOR)


def _small_attention(tok):
    """SegmentAttention over a one-layer random Llama (only its tokenization is used)."""
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return SegmentAttention(LlamaForCausalLM(config).eval(), tok)


def _orders(n: int, count: int = 5) -> list[list[int]]:
    import random

    rng = random.Random(0)
    return [list(range(n)), list(range(n))[::-1], *(rng.sample(range(n), n) for _ in range(count))]


@pytest.mark.parametrize("tokenizer", ["world", "smollm2"])
def test_piecewise_encoding_equals_whole_prompt_encoding_in_every_order(
    tokenizer, request, world_and_tokenizer, documents, monkeypatch
):
    from ragarbiter.assessors.attention_sort.accuracy import chat_template
    from ragarbiter.lm import PiecewiseEncoder, prompt_template

    tok = world_and_tokenizer[1] if tokenizer == "world" else request.getfixturevalue("smollm2_tokenizer")
    attention = _small_attention(tok)
    whole = attention.encode
    texts = [*documents, "Tavo Rin was born in Dashel, 1911.  ", "\n  Kiri works at Orem Mills\n", "Lem (42)"]
    sources = ["encyclopedia", None, "forum", None, "registry", None, "anonymous post", "forum"]
    calls = []
    monkeypatch.setattr(attention, "encode", lambda *a: calls.append(a) or whole(*a))
    for template in (PromptTemplate(), prompt_template(), chat_template(tok)):
        for with_sources in (False, True):
            encoder, calls[:] = PiecewiseEncoder(attention), []
            for order in _orders(len(texts)):
                prompt, spans = template.render(
                    "Where was Tavo born?",
                    [texts[i] for i in order],
                    [sources[i] for i in order] if with_sources else None,
                )
                assert encoder.encode(prompt, spans) == whole(prompt, spans)
            assert encoder.exact is True
            assert len(calls) == 1  # only the first prompt was tokenized whole


def test_pieces_that_tokenize_differently_fall_back_to_whole_prompts(world_and_tokenizer, documents, caplog):
    import logging

    from ragarbiter.lm import PiecewiseEncoder
    from ragarbiter.lm.capture import piece_cuts
    from tests.tiny_lm import metaspace_tokenizer

    world, _ = world_and_tokenizer
    template = PromptTemplate()
    tok = metaspace_tokenizer([*world.texts(), template.render("q?", ["a"], ["forum"])[0]], 400)
    attention = _small_attention(tok)
    texts = documents[:4]
    prompt, spans = template.render("Where was Tavo born?", texts)
    cuts = piece_cuts(prompt, spans)
    pieces = [prompt[a:b] for a, b in zip(cuts, cuts[1:])]
    joined = [i for piece in pieces for i in tok(piece, add_special_tokens=False)["input_ids"]]
    assert [tok.bos_token_id, *joined] != attention.encode(prompt, spans).ids  # "▁" in front of every piece
    encoder = PiecewiseEncoder(attention)
    with caplog.at_level(logging.DEBUG, logger="ragarbiter.lm.capture"):
        for order in _orders(len(texts)):
            prompt, spans = template.render("Where was Tavo born?", [texts[i] for i in order])
            assert encoder.encode(prompt, spans) == attention.encode(prompt, spans)
    assert encoder.exact is False and not encoder._pieces
    assert "tokenizes differently in pieces" in caplog.text
    # A document glued to the text around it cannot be cut at whitespace: whole prompts, always.
    glued = PiecewiseEncoder(_small_attention(world_and_tokenizer[1]))
    prompt, spans = PromptTemplate(document="[{index}]{text}\n").render("q?", texts)
    assert glued.encode(prompt, spans) == glued.attention.encode(prompt, spans) and glued.exact is False
