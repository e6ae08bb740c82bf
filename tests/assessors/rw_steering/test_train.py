"""RW-Steering's training mixtures, and the generators it trains."""

from __future__ import annotations

import json

import pytest

from ragarbiter.assessors.rw_steering import build_mixtures, write_jsonl
from ragarbiter.errors import ConfigError, InvalidInputError

from .pool import RECORD


def test_training_mixtures_per_stage_from_a_pool_and_from_jsonl(tmp_path):
    from ragarbiter.assessors.qa import held_out
    from ragarbiter.assessors.rw_steering.train import file_mixtures

    records = [{**RECORD, "Question": f"What is the capital of Norland number {i}?"} for i in range(40)]
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(records), encoding="utf-8")
    train_questions = {r["Question"] for r in records if not held_out(r["Question"])}
    stage1 = file_mixtures(str(pool), 1, n=10, seed=0)
    stage2 = file_mixtures(str(pool), 2, n=10, seed=0)
    assert {m.question for m in stage1} == train_questions and len(stage1) == 2 * len(train_questions)
    lengths = {len(m.sentences) for m in stage1}
    assert lengths <= set(range(4, 11)) and len(lengths) >= 4  # lengths vary, so numbering must be read
    few = [m for m in stage2 if sum(m.inappropriate) in (1, 2)]
    assert len(few) >= 0.5 * len(stage2)  # 70% expected, the rest is stage-1 replay
    held = file_mixtures(str(pool), 2, n=10, seed=0, held_out_only=True)
    assert held and all(m.question not in train_questions for m in held)
    two = file_mixtures(str(pool), 2, n=2, seed=0)  # two sentences: one inappropriate at most
    assert two and all(len(m.sentences) == 2 and sum(m.inappropriate) <= 1 for m in two)
    jsonl = tmp_path / "mix.jsonl"
    write_jsonl(build_mixtures(records, [0.0, 0.1, 0.5, 0.9], n=10, seed=0), jsonl)
    picked = file_mixtures(str(jsonl), 2, seed=0)
    counts = [sum(m.inappropriate) for m in picked]
    n_few = sum(c == 1 for c in counts)
    assert n_few == len(train_questions) and len(counts) - n_few == round(n_few * 0.3 / 0.7)
    limited = file_mixtures(str(jsonl), 2, limit=5, seed=0)  # --limit counts questions, and replay stays
    assert len({m.question for m in limited}) == 5 and any(sum(m.inappropriate) != 1 for m in limited)
    write_jsonl(build_mixtures(records, [0.5], n=10, source_tags=True, seed=0), jsonl)
    assert all(m.sources for m in file_mixtures(str(jsonl), 1))
    assert not any(m.sources for m in file_mixtures(str(jsonl), 1, source_tags=False))
    with pytest.raises(InvalidInputError, match="no mixture with one or two inappropriate sentences"):
        file_mixtures(str(jsonl), 2)


def test_any_local_causal_lm_loads_as_a_generator_without_a_world(tmp_path):
    """`train rw` / `bench rw` take a plain Hugging Face folder; a tokenizer without <s> still collates."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from ragarbiter.assessors.generators import load_generator
    from ragarbiter.assessors.rw_steering.train import train_rw
    from ragarbiter.lm import Example, ExampleCollator, bpe_tokenizer
    from ragarbiter.training import TrainConfig

    base = bpe_tokenizer([RECORD["Question"], *RECORD["Generated Information"]], 300)
    tok = PreTrainedTokenizerFast(tokenizer_object=base.backend_tokenizer, pad_token="<pad>", eos_token="</s>")
    assert tok.bos_token is None
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    lm = load_generator(str(tmp_path / "lm"))
    assert lm.world is None and lm.tokenizer.padding_side == "left"
    batch = ExampleCollator(lm.tokenizer, answer_only=True)([Example("Where is Tarrow?", " Norland", "x")])
    prompt = lm.tokenizer("Where is Tarrow?", add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0, : len(prompt)].tolist() == prompt  # no <s> in front
    assert (batch["labels"][0, : len(prompt)] == -100).all() and (batch["labels"][0, len(prompt) :] != -100).all()
    assert len(lm.generate(["Where is Tarrow?"], max_new_tokens=2, progress=False)) == 1
    with pytest.raises(ConfigError, match="not a testbed model.*--data POOL.json"):
        train_rw(str(tmp_path / "lm"), 1, str(tmp_path / "out"), TrainConfig(out_dir=str(tmp_path / "out")))


def test_stage_one_draws_every_shared_proportion_and_stage_two_mostly_one_or_two():
    import random

    from ragarbiter.assessors.rw_steering.train import stage_proportion
    from ragarbiter.synthetic.conditions import PROPORTIONS

    rng = random.Random(0)
    assert {stage_proportion(1, 20, rng) for _ in range(400)} == set(PROPORTIONS)
    stage2 = [stage_proportion(2, 20, rng) for _ in range(1000)]
    few = sum(p in (1 / 20, 2 / 20) for p in stage2)
    # 70% are one or two of 20 sentences; 2 in 9 of the 30% replay draw 0.05 or 0.1 too: 767 expected
    assert few == pytest.approx(767, abs=40)


def test_train_rw_passes_the_lora_rank_and_alpha_options_on(monkeypatch, tmp_path):
    import ragarbiter.assessors.rw_steering.train as train
    from ragarbiter.cli.main import main

    seen = {}
    monkeypatch.setattr(train, "train_rw", lambda *args, **kwargs: seen.update(kwargs))
    argv = [
        "train",
        "rw",
        "--base-model",
        "m",
        "--stage",
        "1",
        "--out",
        str(tmp_path),
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
    ]
    assert main(argv) == 0
    assert (seen["lora_r"], seen["lora_alpha"]) == (4, 8)
