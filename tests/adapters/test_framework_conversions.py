"""Passage -> Document -> Passage -> NodeWithScore -> Passage loses nothing."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from ragarbiter import Judgement, Passage  # noqa: E402

CASES = [
    Passage(
        "The lighthouse was first lit in 1871.",
        id="p-1",
        score=0.0,
        source="archive.md",
        metadata={"page": 3, "tags": ["history", "lighthouse"]},
    ),
    Passage("No score and no source; the id is the content hash."),
    Passage("Nested metadata survives too.", score=0.75, metadata={"span": {"start": 4, "end": [9, 12]}}),
]


@pytest.mark.parametrize("passage", CASES, ids=["full", "bare", "nested"])
def test_round_trip_through_both_frameworks(passage):
    doc = passage.to_langchain()
    node = Passage.from_langchain(doc).to_llama_index()
    back = Passage.from_llama_index(node)
    assert back == passage
    assert (doc.id, node.node.node_id, node.score) == (passage.id, passage.id, passage.score)
    assert doc.metadata.get("relevance_score") == passage.score


def test_judgements_ride_along_and_are_not_passage_data():
    passage = CASES[0]
    judgement = Judgement("dedupe", passage.id, "redundant", 0.97, "copy of p-0", ("p-0",))
    doc = passage.to_langchain([judgement])
    node = Passage.from_langchain(doc).to_llama_index([judgement])
    assert doc.metadata["ragarbiter"] == node.node.metadata["ragarbiter"] == [judgement.to_dict()]
    assert Passage.from_llama_index(node) == Passage.from_langchain(doc) == passage
