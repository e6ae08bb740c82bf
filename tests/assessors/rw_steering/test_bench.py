"""`bench rw`: the answer metrics and the behaviour curve under mixed contexts."""

from __future__ import annotations

import random

import pytest

from ragarbiter.assessors.metrics import cleanliness, consistency, ngram_leakage, token_f1
from ragarbiter.assessors.rw_steering import from_pool_record

from .pool import RECORD


def test_metrics():
    assert token_f1("Tarrow", "Tarrow is the capital of Norland.") == pytest.approx(2 * (1 * 1 / 5) / (1 + 1 / 5))
    assert token_f1("The Tarrow!", "tarrow") == 1.0
    leaked = ngram_leakage("It is Vesk, where Norland is governed from.", RECORD["Synonym Sentence"])
    assert leaked == pytest.approx(4 / 6)  # 4 of the 6 bigrams of the second false sentence
    assert cleanliness("Tarrow is the capital.", RECORD["Synonym Sentence"]) == 1.0
    assert consistency("Tarrow", "Tarrow")["token_f1"] == 1.0


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
    # Quality is polarity-aware correctness at the development threshold (0.05): polarity decides, so
    # the swapped value "Vesk" at 50% still passes on shared words; the leakage curve is what flags it.
    assert curve["quality"] == [1.0, 1.0]
    assert curve["token_f1"][0] == pytest.approx((1.0 + token_f1("Tarrow", RECORD["Simple Answer"])) / 2, abs=1e-4)
    # One answer at 50% repeats a false sentence whole; the other shares only the question's words with one.
    assert curve["leakage"] == [0.0, 0.5]


def test_a_negated_answer_scores_zero_where_token_f1_scores_high():
    from ragarbiter.assessors.rw_steering.bench import behaviour_curve

    m = from_pool_record(RECORD, 0.0, n=4, rng=random.Random(0))
    curve = behaviour_curve([m], ["Tarrow is not the capital of Norland."])
    assert curve["quality"] == [0.0] and curve["token_f1"][0] > 0.8


def test_evaluation_mixtures_are_held_out_and_untagged_by_default(tmp_path):
    import json

    from ragarbiter.assessors.qa import held_out
    from ragarbiter.assessors.rw_steering.bench import file_eval_mixtures

    records = [{**RECORD, "Question": f"What is the capital of Norland number {i}?"} for i in range(30)]
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(records), encoding="utf-8")
    mixtures = file_eval_mixtures(str(pool), 60, n=6, seed=0, proportions=(0.0, 0.5))
    assert mixtures and all(held_out(m.question) and not m.sources for m in mixtures)
    assert sorted({m.proportion for m in mixtures}) == [0.0, 0.5]
    assert all(m.sources for m in file_eval_mixtures(str(pool), 60, n=6, seed=0, source_tags=True))


def test_training_coverage_separates_seen_from_held_out(tmp_path):
    import json

    from ragarbiter.assessors.rw_steering.bench import training_coverage

    (tmp_path / "rw.json").write_text(
        json.dumps({"target": "rw", "seen": {"proportions": [0.0, 0.5], "pools": ["/d/fakenews_output.json"]}}),
        encoding="utf-8",
    )
    held = training_coverage(tmp_path, [0.0, 0.25, 0.5], "/e/non_factual_output.json")
    assert held["proportions_seen"] == [0.0, 0.5] and held["proportions_held_out"] == [0.25]
    assert held["eval_pool_seen_in_training"] is False
    assert training_coverage(tmp_path, [0.25], "/x/fakenews_output.json")["eval_pool_seen_in_training"] is True


def test_missing_shipped_adapter_names_the_training_command(tmp_path, monkeypatch, capsys):
    import json
    import re

    import ragarbiter.assessors.rw_steering.bench as bench
    from ragarbiter.cli.main import main

    monkeypatch.setattr(bench, "SHIPPED", tmp_path / "shipped")
    monkeypatch.setattr(bench, "SHIPPED_ANSWER_ONLY", tmp_path / "shipped_answer_only")
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([RECORD]), encoding="utf-8")
    assert main(["bench", "rw", "--data", str(pool), "--json"]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"no shipped adapter at .*shipped_answer_only\. Train one with `ragarbiter train rw .*--target answer", err
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "rw.json").write_text(json.dumps({"target": "answer"}), encoding="utf-8")
    assert main(["bench", "rw", "--data", str(pool), "--answer-only", str(tmp_path / "a"), "--json"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"no shipped adapter at .*shipped\. Train one .*--stage 1 --out DIR` and pass --adapter DIR", err)
