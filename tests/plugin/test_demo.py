import json

from ragarbiter.cli.demo import DEMO_QUESTIONS
from ragarbiter.cli.main import main


def test_demo_indexes_the_corpus_and_flags_the_planted_copies(tmp_path, capsys):
    assert main(["demo", "--store", str(tmp_path / "store"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["indexed"]["chunks"] >= 50
    assert [r["query"] for r in out["results"]] == DEMO_QUESTIONS
    designer = out["results"][0]
    planted = [p for p in designer["passages"] + designer["dropped"] if "Eiffel" in p["text"]]
    assert len(planted) >= 3  # later stages may drop the copies; dedupe's marks stay in the events
    redundant = [e for e in designer["events"] if e["event"] == "passage_flagged" and e["label"] == "redundant"]
    flagged = {e["passage_id"] for e in redundant} & {p["id"] for p in planted}
    assert len(flagged) == len(planted) - 1  # every copy but the first is marked, with evidence
    assert all(e["evidence"] for e in redundant)
    assert any("Margit Holm" in p["text"] for p in designer["passages"])
