import uuid

import pytest

from ragarbiter import Context, Judgement, Passage, content_id
from ragarbiter.errors import EmptyQueryError, InvalidInputError


def test_passage_id_is_a_stable_content_hash():
    a, b = Passage("The lighthouse was lit in 1871."), Passage("  The lighthouse was lit in 1871.\n")
    assert a.id == b.id == content_id("The lighthouse was lit in 1871.")
    assert uuid.UUID(a.id).version == 5  # an RFC 4122 UUID, usable as a Qdrant point id
    assert Passage("other text").id != a.id


def test_passage_keeps_a_given_id_and_coerces_score():
    p = Passage("x", id="doc-7", score=1)
    assert (p.id, p.score) == ("doc-7", 1.0)


@pytest.mark.parametrize("bad", [float("nan")])
def test_passage_rejects_nan_score(bad):
    with pytest.raises(InvalidInputError, match="NaN"):
        Passage("x", score=bad)


def test_passage_rejects_bytes():
    with pytest.raises(InvalidInputError, match="Decode"):
        Passage(b"raw bytes")


@pytest.mark.parametrize("score", [-0.1, 1.5, float("nan")])
def test_judgement_score_must_lie_in_unit_interval(score):
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        Judgement("s", "p", "reliable", score, "why")


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_rejected_with_the_fix(query):
    with pytest.raises(EmptyQueryError, match="at least one word"):
        Context.for_query(query)


def test_evolve_returns_a_new_context_and_leaves_the_input_alone():
    ctx = Context.for_query("q", [Passage("a")], k=3)
    new = ctx.evolve(passages=(), flags={"conflict": True})
    assert len(ctx.passages) == 1 and dict(ctx.flags) == {}
    assert new.passages == () and new.flags["conflict"] is True and new.options["k"] == 3
    with pytest.raises(TypeError):
        new.options["k"] = 5  # options are read-only


def test_to_dict_has_the_cli_json_shape():
    p = Passage("a", score=0.5, source="s.txt", metadata={"page": 2})
    ctx = Context.for_query("q", [p]).evolve(judgements=[Judgement("dedupe", p.id, "redundant", 0.9, "copy", ("x",))])
    out = ctx.to_dict()
    assert set(out) >= {"query", "passages", "dropped", "events"}
    row = out["passages"][0]
    assert row["rank"] == 1 and row["score"] == 0.5 and row["source"] == "s.txt" and row["metadata"] == {"page": 2}
    assert row["judgements"] == [
        {"stage": "dedupe", "label": "redundant", "score": 0.9, "reason": "copy", "evidence": ["x"]}
    ]
