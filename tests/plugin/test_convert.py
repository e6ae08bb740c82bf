import pytest

from ragarbiter import Judgement, Passage

PASSAGE = Passage(
    "The lighthouse was first lit in 1871.",
    id="p-1",
    score=0.0,
    source="archive.md",
    metadata={"page": 3, "tags": ["history"]},
)


def test_langchain_round_trip_is_lossless():
    pytest.importorskip("langchain_core")
    doc = PASSAGE.to_langchain()
    assert doc.metadata["relevance_score"] == 0.0 and doc.id == "p-1"
    assert Passage.from_langchain(doc) == PASSAGE


def test_llama_index_round_trip_is_lossless():
    pytest.importorskip("llama_index.core")
    node = PASSAGE.to_llama_index()
    assert node.score == 0.0 and node.node.node_id == "p-1"
    assert Passage.from_llama_index(node) == PASSAGE


def test_judgements_travel_in_metadata_but_not_into_the_prompt():
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import MetadataMode

    j = Judgement("dedupe", "p-1", "redundant", 0.97, "copy of p-0", ("p-0",))
    doc = PASSAGE.to_langchain([j])
    assert doc.metadata["ragarbiter"][0]["label"] == "redundant"
    node = PASSAGE.to_llama_index([j])
    assert "redundant" not in node.node.get_content(metadata_mode=MetadataMode.LLM)
    assert Passage.from_llama_index(node) == PASSAGE  # judgements are not passage data


def test_document_without_id_gets_the_content_hash():
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    p = Passage.from_langchain(Document(page_content="hello", metadata={"source": "a.txt"}))
    assert p.id == Passage("hello").id and p.source == "a.txt" and p.metadata == {}
