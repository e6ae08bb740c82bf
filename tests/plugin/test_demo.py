import json

import pytest

from ragarbiter.cli.demo import DEMO_QUESTIONS
from ragarbiter.cli.main import main
from tests.tiny_lm import save_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    texts = ["The Kestrel Bay lighthouse was designed by the harbour engineer Margit Holm."] * 4
    return save_tiny_lm(tmp_path_factory.mktemp("tiny-demo"), texts, vocab=300, max_positions=2048)


def test_demo_indexes_the_corpus_and_flags_the_planted_copies(tmp_path, tiny, capsys):
    from ragarbiter.lm import load_generator

    assert main(["demo", "--store", str(tmp_path / "store"), "--generator", str(tiny), "--json"]) == 0
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
    # both answers are there; the ragarbiter one is the generator's answer to the passages that were kept
    answers = designer["answers"]
    kept = [p["text"] for p in designer["passages"]]
    assert set(answers) == {"plain", "ragarbiter"} and len(kept) <= 5
    assert answers["ragarbiter"] == load_generator(tiny).answer(designer["query"], kept, max_new_tokens=64)
    assert not any("Eiffel" in t for t in kept)
