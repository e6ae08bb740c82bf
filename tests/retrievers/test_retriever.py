import pytest

from ragarbiter import Context, ListSink, Passage, Pipeline, default_pipeline
from ragarbiter.errors import ConfigError
from ragarbiter.retrievers import Deduplicator, QdrantRetriever


def test_retriever_stage_emits_what_it_retrieved(filled_store):
    sink = ListSink()
    out = Pipeline([QdrantRetriever(filled_store, k=2)], sinks=[sink]).run("where is the observatory?")
    [event] = [e for e in sink.events if e.kind == "passages_retrieved"]
    assert list(event.passage_ids) == [p.id for p in out.passages] and len(out.passages) == 2
    assert event.mode == "hybrid"


def test_per_call_options_override_the_constructor(filled_store):
    out = Pipeline([QdrantRetriever(filled_store, k=5)]).run("telescopes", k=1, mode="sparse")
    assert [p.source for p in out.passages] == ["library.txt"]
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        Pipeline([QdrantRetriever(filled_store)]).run("telescopes", k=0)
    with pytest.raises(ConfigError, match="hybrid, dense, sparse"):
        QdrantRetriever(filled_store, mode="fuzzy")


async def test_async_retrieval_matches_sync(filled_store):
    pipe = Pipeline([QdrantRetriever(filled_store, k=3)])
    sync = pipe.run("bakery buns")
    asyn = await pipe.arun("bakery buns")
    assert [p.id for p in sync.passages] == [p.id for p in asyn.passages]


def test_given_passages_stay_first_and_are_not_repeated(filled_store, fact_passages):
    given = fact_passages[5]
    out = Pipeline([QdrantRetriever(filled_store, k=3)]).run("cardamom bakery", passages=[given])
    ids = [p.id for p in out.passages]
    assert ids[0] == given.id and ids.count(given.id) == 1


def test_dedupe_flags_near_duplicates_with_evidence(encoder):
    a = Passage("Gustave Eiffel designed the Kestrel Bay lighthouse in 1869.", source="blog-1")
    b = Passage("The Kestrel Bay lighthouse was designed by Gustave Eiffel in 1869.", source="blog-2")
    c = Passage("Puffins nest on the islands from April to August.", source="nature")
    out = Deduplicator(encoder)(Context.for_query("who designed it?", [a, b, c]))
    [j] = out.judgements
    assert (j.passage_id, j.label, j.evidence) == (b.id, "redundant", (a.id,))
    assert "near-duplicate" in j.reason and len(out.passages) == 3
    dropped = Deduplicator(encoder, drop=True)(Context.for_query("q", [a, b, c]))
    assert [p.id for p in dropped.passages] == [a.id, c.id]
    assert dropped.dropped[0].passage.id == b.id and "near-duplicate" in dropped.dropped[0].reason


def test_default_pipeline_is_retrieval_then_the_default_stages(filled_store):
    pipe = default_pipeline(filled_store, k=4)
    assert [s.name for s in pipe.stages] == ["retrieve", "dedupe", "poison", "conflict", "inappropriate"]
    assert [s.name for s in pipe.without_retrieval().stages] == ["dedupe", "poison", "conflict", "inappropriate"]
    assert len(pipe.run("observatory").passages) == 4
    # the poison stage looks for planted copies in the store the pipeline retrieves from
    assert pipe.stages[2].store is filled_store
    assert default_pipeline(filled_store, retrieve=False).stages[1].store is filled_store
    assert default_pipeline(retrieve=False).stages[1].store is None


def test_default_stages_reuse_the_vectors_retrieval_fetched(filled_store, monkeypatch):
    pipe = default_pipeline(filled_store, k=4)
    dedupe = pipe.stages[1]
    calls = []
    assert dedupe.encoder is not filled_store.encoder  # separate objects, one shared cache
    monkeypatch.setattr(dedupe.encoder, "encode", lambda texts, **kw: calls.append(texts))
    pipe.run("who founded the observatory?")
    assert calls == []  # every passage's vector came from the search response
