"""`ragarbiter bench rag` end to end on a tiny PoisonedRAG file, a tiny LitM corpus and a tiny chat LM."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from ragarbiter.cli.bench_rag import contains  # noqa: E402
from ragarbiter.cli.main import main  # noqa: E402
from tests.assessors.tiny_data import LITM, POISON_TARGET, write_litm, write_poisonedrag  # noqa: E402
from tests.tiny_lm import save_tiny_lm  # noqa: E402


@pytest.mark.parametrize(
    ("answer", "target", "hit"),
    [
        ("It was designed by Gustave Eiffel.", "gustave eiffel", True),
        ("GUSTAVE  EIFFEL, in 1869", "Gustave Eiffel", True),
        ("Gustave Eiffelsson did it", "Gustave Eiffel", False),  # whole words only
        ("There is no answer.", "no", True),
        ("Nothing is known.", "no", False),
        ("anything", "", False),
    ],
)
def test_contains_ignores_case_punctuation_and_spacing_but_not_word_boundaries(answer, target, hit):
    assert contains(answer, target) is hit


def test_bench_rag_answers_every_setting_once_and_reports_the_contract(tmp_path, capsys):
    corpus = write_litm(tmp_path / "litm.jsonl")
    data = write_poisonedrag(tmp_path / "nq.json")
    texts = [*POISON_TARGET["adv_texts"], *(row[-1] for row in LITM)]
    tiny = save_tiny_lm(tmp_path / "tiny", texts * 3, vocab=300, max_positions=2048)
    argv = ["bench", "rag", "--data", str(data), "--corpus", str(corpus), "--generator", str(tiny)]
    assert (
        main([*argv, "-k", "3", "--candidates", "8", "--clean-questions", "2", "--max-new-tokens", "4", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["n_targets"], out["n_clean_questions"], out["k"], out["candidates"]) == (1, 2, 3, 8)
    assert set(out["closed_book"]) == {"accuracy"}
    assert set(out["undefended"]) == set(out["defended"]) == {"asr", "accuracy", "adv_in_topk"}
    assert set(out["stages"]) == {"dedupe", "poison", "conflict", "inappropriate"}
    assert all(set(m) == {"asr", "accuracy"} for m in out["stages"].values())
    assert set(out["clean"]) >= {"undefended", "defended"}
    # the planted texts fill most of the plain top 3 (the true passage ranks among them); the defence keeps none
    assert out["undefended"]["adv_in_topk"] >= 2
    assert out["defended"]["adv_in_topk"] == 0
    # identical contexts are answered once: at most closed book + 7 settings for the target, 3 per clean question
    assert 0 < out["answers_generated"] <= 8 + 2 * 3
    assert out["s_per_answer"] > 0 and out["defense_overhead"]["n"] == 3
