import json

from ragarbiter.cli.demo import DEMO_QUESTIONS
from ragarbiter.cli.main import main


def test_demo_indexes_the_corpus_and_flags_the_planted_copies(tmp_path, capsys):
    assert main(["demo", "--store", str(tmp_path / "store"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["indexed"]["chunks"] >= 50
    assert [r["query"] for r in out["results"]] == DEMO_QUESTIONS
    designer = out["results"][0]["passages"]
    planted = [p for p in designer if "Eiffel" in p["text"]]
    assert len(planted) >= 3
    flagged = [p for p in planted if any(j["label"] == "redundant" for j in p["judgements"])]
    assert len(flagged) == len(planted) - 1  # every copy but the first is marked, with evidence
    assert all(j["evidence"] for p in flagged for j in p["judgements"])
    assert any("Margit Holm" in p["text"] for p in designer)
