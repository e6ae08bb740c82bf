"""RW-Steering's data: mixtures, their JSONL files and CLI, the stage-1 target format and its parser."""

from __future__ import annotations

import json
import random

import pytest

from ragarbiter.assessors.rw_steering import (
    build_mixtures,
    from_context_set,
    from_pool_record,
    parse_output,
    stage1_target,
    write_jsonl,
)
from ragarbiter.errors import ConfigError, InvalidInputError

from .pool import RECORD


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
    from ragarbiter.assessors.rw_steering.data import is_mixture_file

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
def test_world_mixtures_place_the_inappropriate_block_and_tag_only_on_request(position):
    from ragarbiter.assessors.rw_steering import world_mixtures
    from ragarbiter.synthetic import WorldConfig, build_world

    world = build_world(WorldConfig(seed=2, people=12, companies=3, cities=3, countries=2))
    assert not any(m.sources for m in world_mixtures(world, [0.3], positions=[position], n=10, questions=4))
    mixtures = world_mixtures(world, [0.3], positions=[position], n=10, questions=4, seed=5, source_tags=True)
    assert len(mixtures) == 4
    for m in mixtures:
        bad = list(m.inappropriate)
        assert sum(bad) == 3 and m.position == position and len(m.sources) == 10
        start = {"front": 0, "middle": 7 // 2, "back": 7}[position]
        assert bad == [False] * start + [True] * 3 + [False] * (7 - start)
        assert all((src in ("forum", "anonymous post", "chain message")) == b for src, b in zip(m.sources, bad))
    assert mixtures == world_mixtures(world, [0.3], positions=[position], n=10, questions=4, seed=5, source_tags=True)


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
    base = ["mixtures", "--data", str(pool), "--out", str(out), "--proportions", "0.5", "--sentences", "4"]
    assert main(base) == 0  # untagged by default
    assert not any(m.sources for m in read_mixtures(out))
    assert main([*base, "--source-tags"]) == 0
    assert all(len(m.sources) == 4 for m in read_mixtures(out))
    capsys.readouterr()
    assert main([*base[:-3], "1.5", "--sentences", "4"]) == 2
    assert (
        "--proportions got [1.5]; each share of inappropriate sentences must lie in [0, 1)" in capsys.readouterr().err
    )


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
    from ragarbiter.assessors.rw_steering.data import answer_text

    assert answer_text("Answer: Tarrow\nAnswer: Vesk") == "Tarrow"
    assert answer_text("  answer:  Tarrow is the capital.") == "Tarrow is the capital."
    assert answer_text("Tarrow\nmore text") == "Tarrow"


def test_parser_accepts_none_and_loose_spacing():
    parsed = parse_output("reliable:none\n  ANSWER:  I cannot tell.", 5)
    assert parsed.ok and parsed.reliable == () and parsed.answer == "I cannot tell."
