"""`ragarbiter demo` with the default pipeline catches the corpus's planted cases, with reasons."""

import json

import pytest

from ragarbiter.cli.main import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["demo", "--store", str(tmp_path_factory.mktemp("demo") / "store"), "--json"]) == 0
    designer, first_lit, docks = json.loads(out.getvalue().strip().splitlines()[-1])["results"]
    return {"designer": designer, "first_lit": first_lit, "docks": docks}


def test_the_planted_eiffel_copies_are_dropped_as_poison(demo):
    planted = [d for d in demo["designer"]["dropped"] if "Eiffel" in d["text"]]
    assert len(planted) >= 3
    assert all(d["stage"] == "poison" and "contradicts" in d["reason"] for d in planted)
    assert not [p for p in demo["designer"]["passages"] if "Eiffel" in p["text"]]
    assert any("Margit Holm" in p["text"] for p in demo["designer"]["passages"])


def test_the_two_first_lit_years_are_flagged_as_conflicting(demo):
    result = demo["first_lit"]
    assert result["flags"]["conflict"] is True
    by_text = {p["text"]: p for p in result["passages"]}
    [brochure] = [p for t, p in by_text.items() if "first lit in 1874" in t]
    [judgement] = [j for j in brochure["judgements"] if j["label"] == "conflicting"]
    partners = {p["id"]: t for t, p in by_text.items()}
    assert any("1871" in partners[e] for e in judgement["evidence"])


def test_the_hateful_doxxing_comment_does_not_reach_the_llm(demo):
    result = demo["docks"]
    assert not [p for p in result["passages"] if "vermin" in p["text"] or "555-0143" in p["text"]]
    removed = [e for e in result["events"] if e["event"] == "passage_flagged" and e["stage"] == "inappropriate"]
    assert any("hateful" in e["reason"] for e in removed)
    assert any("private personal information" in e["reason"] for e in removed)
