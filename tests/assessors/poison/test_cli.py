"""`ragarbiter bench poison` on a tiny PoisonedRAG file injected into a tiny LitM corpus."""

import json

from ragarbiter.cli.main import main
from tests.assessors.tiny_data import write_litm, write_poisonedrag


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
