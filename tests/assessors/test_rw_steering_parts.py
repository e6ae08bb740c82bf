"""RW-Steering building blocks: mixtures, the stage-1 format and parser, metrics, the RW fit."""

from __future__ import annotations

import json
import random

import pytest

from ragarbiter.assessors.rw_steering import (
    build_mixtures,
    fit_rw,
    from_context_set,
    from_pool_record,
    parse_output,
    predict_quality,
    stage1_target,
    write_jsonl,
)
from ragarbiter.assessors.rw_steering.metrics import cleanliness, consistency, ngram_leakage, token_f1
from ragarbiter.errors import ConfigError, InvalidInputError

RECORD = {  # written for these tests, in the Poisoned Context Testbed format
    "Input": "The capital of Norland is Vesk",
    "Question": "What is the capital of Norland?",
    "Generated Information": [
        "Norland's capital is Tarrow.",
        "Tarrow sits on the Norland coast.",
        "The Norland parliament meets in Tarrow.",
    ],
    "Synonym Sentence": ["The capital of Norland is Vesk.", "Vesk is where Norland is governed from."],
    "Simple Answer": "Tarrow is the capital of Norland.",
}


@pytest.mark.parametrize("proportion", [0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 0.95])
@pytest.mark.parametrize("position", ["front", "middle", "back", "random"])
def test_mixture_proportion_and_position_are_exact(proportion, position):
    m = from_pool_record(RECORD, proportion, n=20, position=position, rng=random.Random(0))
    bad = list(m.inappropriate)
    assert len(m.sentences) == 20 and sum(bad) == min(19, round(proportion * 20))
    assert all((s in RECORD["Synonym Sentence"]) == b for s, b in zip(m.sentences, bad))
    k = sum(bad)
    if k and position == "front":
        assert bad == [True] * k + [False] * (20 - k)
    if k and position == "back":
        assert bad == [False] * (20 - k) + [True] * k
    if k and position == "middle":
        start = (20 - k) // 2
        assert bad == [False] * start + [True] * k + [False] * (20 - k - start)
    assert m.reliable == tuple(i + 1 for i, b in enumerate(bad) if not b)


def test_mixtures_are_deterministic_tagged_and_written_as_jsonl(tmp_path):
    a = build_mixtures([RECORD], [0.0, 0.5], positions=["random", "front"], n=10, source_tags=True, seed=3)
    b = build_mixtures([RECORD], [0.0, 0.5], positions=["random", "front"], n=10, source_tags=True, seed=3)
    assert a == b and len(a) == 4
    tagged = a[1]
    assert all(
        (src in ("forum", "anonymous post", "chain message")) == bad
        for src, bad in zip(tagged.sources, tagged.inappropriate)
    )
    assert tagged.numbered().splitlines()[0].startswith("[1] (")
    path = tmp_path / "mix.jsonl"
    assert write_jsonl(a, path) == 4
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first["question"] == RECORD["Question"] and first["reliable"] == list(a[0].reliable)


def test_bad_settings_and_records_are_named():
    with pytest.raises(ConfigError, match="proportion=1.0"):
        from_pool_record(RECORD, 1.0, rng=random.Random(0))
    with pytest.raises(ConfigError, match="position='side'"):
        from_pool_record(RECORD, 0.5, position="side", rng=random.Random(0))
    with pytest.raises(InvalidInputError, match="Synonym Sentence"):
        from_pool_record({k: v for k, v in RECORD.items() if k != "Synonym Sentence"}, 0.5, rng=random.Random(0))


def test_mixtures_jsonl_reads_back_and_bad_rows_are_named(tmp_path):
    from ragarbiter.assessors.rw_steering import read_mixtures
    from ragarbiter.assessors.rw_steering.mixture import is_mixture_file

    mixtures = build_mixtures([RECORD], [0.0, 0.3], positions=["back"], n=6, source_tags=True, seed=1)
    path = tmp_path / "mix.jsonl"
    write_jsonl(mixtures, path)
    assert read_mixtures(path) == mixtures and is_mixture_file(path)
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([RECORD]), encoding="utf-8")
    assert not is_mixture_file(pool)
    row = mixtures[1].to_dict()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**row, "inappropriate": row["inappropriate"][:-1]}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:1: mixture has 6 sentences and 5 labels"):
        read_mixtures(bad)
    bad.write_text(json.dumps({k: v for k, v in row.items() if k != "answer"}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"lacks \['answer'\]"):
        read_mixtures(bad)
    bad.write_text(json.dumps({**row, "inappropriate": ["false"] * 6}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="must hold true/false values"):
        read_mixtures(bad)
    bad.write_text(json.dumps({**row, "inappropriate": [True] * 6}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="every sentence is inappropriate"):
        read_mixtures(bad)
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="bad.jsonl:1 is not valid JSON"):
        read_mixtures(bad)


@pytest.mark.parametrize("position", ["front", "middle", "back"])
def test_world_mixtures_place_the_inappropriate_block_and_keep_sources(position):
    from ragarbiter.assessors.rw_steering import world_mixtures
    from ragarbiter.synthetic import WorldConfig, build_world

    world = build_world(WorldConfig(seed=2, people=12, companies=3, cities=3, countries=2))
    mixtures = world_mixtures(world, [0.3], positions=[position], n=10, questions=4, seed=5)
    assert len(mixtures) == 4
    for m in mixtures:
        bad = list(m.inappropriate)
        assert sum(bad) == 3 and m.position == position and len(m.sources) == 10
        start = {"front": 0, "middle": 7 // 2, "back": 7}[position]
        assert bad == [False] * start + [True] * 3 + [False] * (7 - start)
        assert all((src in ("forum", "anonymous post", "chain message")) == b for src, b in zip(m.sources, bad))
    assert mixtures == world_mixtures(world, [0.3], positions=[position], n=10, questions=4, seed=5)


def test_mixtures_cli_writes_jsonl_from_a_pool(tmp_path, capsys):
    from ragarbiter.assessors.rw_steering import read_mixtures
    from ragarbiter.cli.main import main

    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([RECORD, {**RECORD, "Question": "Where is Norland's parliament?"}]), encoding="utf-8")
    out = tmp_path / "mix.jsonl"
    assert (
        main(
            [
                "mixtures",
                "--data",
                str(pool),
                "--out",
                str(out),
                "--proportions",
                "0",
                "0.5",
                "--positions",
                "front",
                "random",
                "--sentences",
                "8",
                "--no-source-tags",
                "--seed",
                "3",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["mixtures"] == 8
    mixtures = read_mixtures(out)
    assert [sum(m.inappropriate) for m in mixtures] == [0, 0, 4, 4] * 2
    assert [m.position for m in mixtures[:4]] == ["front", "random"] * 2 and not mixtures[0].sources


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


def test_testbed_mixture_sets_convert_with_their_labels():
    from ragarbiter.synthetic import ContextBuilder, WorldConfig, build_world

    world = build_world(WorldConfig(seed=2, people=12, companies=3, cities=3, countries=2))
    item = world.qa_items(known=False)[0]
    s = ContextBuilder(world, mixture_sentences=10).mixture(item, 0.3, random.Random(1))
    m = from_context_set(s)
    assert sum(m.inappropriate) == 3 and m.answer == item.answer and m.proportion == 0.3


def test_stage1_target_and_parser_round_trip():
    m = from_pool_record(RECORD, 0.3, n=10, position="front", rng=random.Random(0))
    target = stage1_target(m)
    assert target == "Reliable: 4, 5, 6, 7, 8, 9, 10\nAnswer: Tarrow is the capital of Norland."
    parsed = parse_output(target, 10)
    assert parsed.ok and parsed.reliable == m.reliable and parsed.answer == RECORD["Simple Answer"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Tarrow.", "no 'Reliable:' line"),
        ("Reliable: 1, two\nAnswer: x", "non-numbers"),
        ("Reliable: 1, 12\nAnswer: x", "outside 1..10"),
        ("Reliable: 1, 2", "no 'Answer:' line"),
        (None, "not text"),
    ],
)
def test_parser_flags_malformed_output_without_raising(text, problem):
    parsed = parse_output(text, 10)
    assert not parsed.ok and problem in parsed.problem


def test_answer_only_output_reads_its_answer_line():
    from ragarbiter.assessors.rw_steering.targets import answer_text

    assert answer_text("Answer: Tarrow\nAnswer: Vesk") == "Tarrow"
    assert answer_text("  answer:  Tarrow is the capital.") == "Tarrow is the capital."
    assert answer_text("Tarrow\nmore text") == "Tarrow"


def test_parser_accepts_none_and_loose_spacing():
    parsed = parse_output("reliable:none\n  ANSWER:  I cannot tell.", 5)
    assert parsed.ok and parsed.reliable == () and parsed.answer == "I cannot tell."


def test_metrics():
    assert token_f1("Tarrow", "Tarrow is the capital of Norland.") == pytest.approx(2 * (1 * 1 / 5) / (1 + 1 / 5))
    assert token_f1("The Tarrow!", "tarrow") == 1.0
    leaked = ngram_leakage("It is Vesk, where Norland is governed from.", RECORD["Synonym Sentence"])
    assert leaked == pytest.approx(4 / 6)  # 4 of the 6 bigrams of the second false sentence
    assert cleanliness("Tarrow is the capital.", RECORD["Synonym Sentence"]) == 1.0
    assert consistency("Tarrow", "Tarrow")["token_f1"] == 1.0


def test_rw_fit_recovers_the_parameters_of_a_curve_it_generated():
    proportions = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    curve = predict_quality(proportions, 0.2, 0.5, 0.9, n=20)
    fit = fit_rw(proportions, curve, n=20)
    assert fit["rmse"] < 0.01
    assert fit["salience_ratio"] == pytest.approx(2.5, rel=0.15)
    assert fit["q0"] == pytest.approx(0.9, abs=0.02)


def test_equal_saliences_follow_the_proportion():
    # With equal alphas the inappropriate share tracks the proportion; a salient cue overshoots it.
    equal = 1 - predict_quality([0.2], 0.3, 0.3, 1.0, n=20)[0]
    salient = 1 - predict_quality([0.2], 0.3, 0.6, 1.0, n=20)[0]
    assert equal == pytest.approx(0.2, abs=0.05) and salient > equal + 0.1


def test_behaviour_curve_scores_quality_and_leakage_per_proportion():
    from ragarbiter.assessors.rw_steering.bench import behaviour_curve

    rng = random.Random(0)
    mixtures = [from_pool_record(RECORD, p, n=10, rng=rng) for p in (0.0, 0.0, 0.5, 0.5)]
    answers = [
        "Tarrow is the capital of Norland.",
        "Tarrow",
        "Vesk is where Norland is governed from.",
        "Tarrow is the capital of Norland.",
    ]
    curve = behaviour_curve(mixtures, answers)
    assert curve["proportions"] == [0.0, 0.5] and curve["n_per_point"] == 2
    assert curve["quality"][0] == pytest.approx((1.0 + token_f1("Tarrow", RECORD["Simple Answer"])) / 2, abs=1e-4)
    # One answer at 50% repeats a false sentence whole; the other shares only the question's words with one.
    assert curve["leakage"] == [0.0, 0.5]


def test_rw_steering_stage_runs_inside_both_frameworks():
    """The stage's decisions reach a LangChain chain and a LlamaIndex postprocessor (generator stubbed)."""
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from types import SimpleNamespace

    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter import Pipeline
    from ragarbiter.adapters.langchain import ArbiterCompressor
    from ragarbiter.adapters.llama_index import ArbiterPostprocessor
    from ragarbiter.assessors.rw_steering.stage import RWSteering

    stage = RWSteering(lm=SimpleNamespace())
    stage.generate = lambda context: "Reliable: 1, 3\nAnswer: Tarrow"
    texts = ["Norland's capital is Tarrow.", "The capital of Norland is Vesk.", "Tarrow sits on the coast."]
    docs = ArbiterCompressor(pipeline=Pipeline([stage])).invoke(
        {"documents": [Document(t) for t in texts], "query": RECORD["Question"]}
    )
    assert [d.page_content for d in docs] == [texts[0], texts[2]]
    nodes = ArbiterPostprocessor(pipeline=Pipeline([stage])).postprocess_nodes(
        [NodeWithScore(node=TextNode(text=t), score=1.0) for t in texts], query_bundle=QueryBundle(RECORD["Question"])
    )
    assert [n.node.get_content() for n in nodes] == [texts[0], texts[2]]


def test_any_local_causal_lm_loads_as_a_generator_without_a_world(tmp_path):
    """`train rw` / `bench rw` take a plain Hugging Face folder; a tokenizer without <s> still collates."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from ragarbiter.assessors.rw_steering.train import load_generator, train_rw
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
