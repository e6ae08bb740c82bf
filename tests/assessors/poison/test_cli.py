"""`ragarbiter bench poison` on a tiny PoisonedRAG file injected into a tiny LitM corpus."""

import json

import pytest

from ragarbiter.assessors.poison.config import default_judge_dir
from ragarbiter.cli.main import build_parser, main
from ragarbiter.errors import EmptyCorpusError
from tests.assessors.test_trained import adapter_trained_on
from tests.assessors.tiny_data import LITM, POISON_TARGET, write_litm, write_poisonedrag


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_poison_compares_defended_and_undefended_retrieval(tmp_path, capsys):
    corpus = write_litm(tmp_path / "litm.jsonl")
    data = write_poisonedrag(tmp_path / "nq.json")
    assert (
        main(
            [
                "bench",
                "poison",
                "--data",
                str(data),
                "--corpus",
                str(corpus),
                "--candidates",
                "6",
                "--clean-questions",
                "4",
                "--json",
            ]
        )
        == 0
    )
    out = last_json(capsys)
    assert out["n_targets"] == 1 and out["n_clean_questions"] == 4
    keys = {"adv_in_top5", "asr_any", "asr_majority", "clean_R@5"}
    assert set(out["undefended"]) == set(out["defended"]) == set(out["defended_demote"]) == keys
    assert out["undefended"]["adv_in_top5"] >= out["defended_demote"]["adv_in_top5"] >= out["defended"]["adv_in_top5"]


def bench_poison(tmp_path, *argv: str) -> dict:
    from ragarbiter.assessors.poison.bench import run

    corpus = write_litm(tmp_path / "litm.jsonl")
    data = write_poisonedrag(tmp_path / "nq.json")
    base = ["bench", "poison", "--data", str(data), "--corpus", str(corpus), "--candidates", "6", "--json"]
    return run(build_parser(["bench", "poison"]).parse_args([*base, *argv]))


def test_bench_poison_measures_only_the_questions_its_judge_was_not_trained_on(tmp_path):
    """The judge was trained on corpus questions 2 and 4: the first 4 clean questions are then 1, 3, 5 and 6."""
    judge = adapter_trained_on(default_judge_dir(), tmp_path / "judge", [LITM[1][0], LITM[3][0]])
    out = bench_poison(tmp_path, "--conflict-adapter", str(judge), "--clean-questions", "4")
    assert out["unseen_only"] is True
    assert (out["n_targets"], out["n_excluded_trained"]) == (1, 0)
    assert (out["n_clean_questions"], out["n_excluded_trained_clean"]) == (4, 2)
    everything = bench_poison(tmp_path, "--conflict-adapter", str(judge), "--clean-questions", "4", "--include-trained")
    assert everything["unseen_only"] is False
    assert (everything["n_clean_questions"], everything["n_excluded_trained_clean"]) == (4, 0)


def test_bench_poison_names_the_option_when_every_target_was_trained_on(tmp_path):
    judge = adapter_trained_on(default_judge_dir(), tmp_path / "judge", [POISON_TARGET["question"]])
    with pytest.raises(EmptyCorpusError, match=r"Every one of the 1 targets in .*--unseen-by DIR.*--include-trained"):
        bench_poison(tmp_path, "--conflict-adapter", str(judge))


def test_bench_poison_can_take_the_unseen_questions_from_another_adapter(tmp_path):
    """The judge has seen every question; --unseen-by names the adapter whose manifest decides instead."""
    judge = adapter_trained_on(default_judge_dir(), tmp_path / "judge", [q for q, *_ in LITM])
    other = adapter_trained_on(default_judge_dir(), tmp_path / "other", [LITM[1][0], LITM[3][0]])
    with pytest.raises(EmptyCorpusError, match="--unseen-by DIR"):
        bench_poison(tmp_path, "--conflict-adapter", str(judge))
    out = bench_poison(tmp_path, "--conflict-adapter", str(judge), "--unseen-by", str(other), "--clean-questions", "3")
    assert (out["n_targets"], out["n_excluded_trained"]) == (1, 0)
    assert (out["n_clean_questions"], out["n_excluded_trained_clean"]) == (3, 2)
