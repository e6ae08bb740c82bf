"""RW-Steering's training mixtures, and the generators it trains."""

from __future__ import annotations

import json

import pytest

from ragarbiter.assessors.rw_steering import build_mixtures, write_jsonl
from ragarbiter.errors import ConfigError, InvalidInputError

from .pool import RECORD, save_llama_without_bos


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
    assert all(m.sources for m in file_mixtures(str(jsonl), 1, source_tags=True))
    assert not any(m.sources for m in file_mixtures(str(jsonl), 1))  # untagged by default
    assert not any(m.sources for m in stage1)
    with pytest.raises(InvalidInputError, match=r"no mixture at --proportions \[0.1\] \(it has \[0.5\]\)"):
        file_mixtures(str(jsonl), 1, proportions=[0.1])
    with pytest.raises(InvalidInputError, match="no mixture with one or two inappropriate sentences"):
        file_mixtures(str(jsonl), 2)


def test_any_local_causal_lm_loads_as_a_generator_without_a_world(tmp_path):
    """`train rw` / `bench rw` take a plain Hugging Face folder; a tokenizer without <s> still collates."""

    from ragarbiter.assessors.generators import load_generator
    from ragarbiter.assessors.rw_steering.train import train_rw
    from ragarbiter.lm import Example, ExampleCollator
    from ragarbiter.training import TrainConfig

    tok = save_llama_without_bos(tmp_path / "lm", [RECORD["Question"], *RECORD["Generated Information"]], 256)
    assert tok.bos_token is None
    lm = load_generator(str(tmp_path / "lm"))
    assert lm.world is None and lm.tokenizer.padding_side == "left"
    batch = ExampleCollator(lm.tokenizer, answer_only=True)([Example("Where is Tarrow?", " Norland", "x")])
    prompt = lm.tokenizer("Where is Tarrow?", add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0, : len(prompt)].tolist() == prompt  # no <s> in front
    assert (batch["labels"][0, : len(prompt)] == -100).all() and (batch["labels"][0, len(prompt) :] != -100).all()
    assert len(lm.generate(["Where is Tarrow?"], max_new_tokens=2, progress=False)) == 1
    with pytest.raises(ConfigError, match="not a testbed model.*--data POOL.json"):
        train_rw(str(tmp_path / "lm"), 1, str(tmp_path / "out"), TrainConfig(out_dir=str(tmp_path / "out")))


def test_stage_one_trains_only_on_the_chosen_proportions(tmp_path):
    import random

    from ragarbiter.assessors.rw_steering.train import file_mixtures, stage_proportion

    rng = random.Random(0)
    assert {stage_proportion(1, 20, rng, (0.0, 0.5)) for _ in range(100)} == {0.0, 0.5}
    records = [{**RECORD, "Question": f"What is the capital of Norland number {i}?"} for i in range(20)]
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(records), encoding="utf-8")
    mixtures = file_mixtures(str(pool), 1, n=10, seed=0, proportions=(0.0, 0.5))
    assert {m.proportion for m in mixtures} == {0.0, 0.5}
    assert all(sum(m.inappropriate) == round(m.proportion * len(m.sentences)) for m in mixtures)


def test_training_mixtures_mix_several_pools(tmp_path):
    from ragarbiter.assessors.rw_steering.train import training_mixtures

    paths = []
    for name, capital in (("a.json", "Tarrow"), ("b.json", "Lund")):
        records = [{**RECORD, "Question": f"What is the capital of {capital} land {i}?"} for i in range(10)]
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(records), encoding="utf-8")
    mixed = training_mixtures([str(p) for p in paths], 1, n=6, seed=0)
    assert {m.question.split()[-3] for m in mixed} == {"Tarrow", "Lund"}
    assert mixed == training_mixtures([str(p) for p in paths], 1, n=6, seed=0)


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
