"""The LangChain adapter through LangChain's own entry points."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402

from ragarbiter import Passage, Pipeline, default_post_stages  # noqa: E402
from ragarbiter.adapters.langchain import (  # noqa: E402
    ArbiterCallbackHandler,
    ArbiterCompressor,
    ArbiterRetriever,
    LangChainRetrieverStage,
)
from ragarbiter.errors import ConfigError, InvalidInputError, UnknownCollectionError  # noqa: E402
from ragarbiter.retrievers import Deduplicator, QdrantRetriever, QdrantStore  # noqa: E402
from tests.adapters.support import DUPLICATE, ORIGINAL, PAIR, QUESTION, ROUTED  # noqa: E402


class ListRetriever(BaseRetriever):
    """Any LangChain retriever: returns its documents in order."""

    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return list(self.docs)


DOCS = [
    Document(ORIGINAL.text, id="a", metadata={"source": "observatory.txt", "relevance_score": 0.9, "page": 1}),
    Document(DUPLICATE.text, id="b", metadata={"relevance_score": 0.8, "page": 2}),
    Document("The river Lenne floods every spring when the snow on Mount Tarn melts.", metadata={"page": 3}),
]

try:
    from langchain_classic.retrievers import ContextualCompressionRetriever
except ImportError:  # langchain-classic is not a dependency; this makes the same calls it does

    class ContextualCompressionRetriever(BaseRetriever):
        base_compressor: Any
        base_retriever: Any

        def _get_relevant_documents(self, query: str, *, run_manager: Any, **kwargs: Any) -> list[Document]:
            docs = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
            return list(self.base_compressor.compress_documents(docs, query, callbacks=run_manager.get_child()))

        async def _aget_relevant_documents(self, query: str, *, run_manager: Any, **kwargs: Any) -> list[Document]:
            docs = await self.base_retriever.ainvoke(query, config={"callbacks": run_manager.get_child()}, **kwargs)
            return list(await self.base_compressor.acompress_documents(docs, query, callbacks=run_manager.get_child()))


def custom_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "on_custom_event" and e["name"].startswith("ragarbiter.")]


# -- ArbiterRetriever -----------------------------------------------------------------------
def test_invoke_returns_the_stores_ranking_with_scores_and_judgements(store, expected):
    docs = ArbiterRetriever(store=store, k=4).invoke(QUESTION)
    assert [d.id for d in docs] == [p.id for p in expected]
    assert [d.metadata["relevance_score"] for d in docs] == pytest.approx([p.score for p in expected])
    first, second = [d for d in docs if d.id in PAIR]
    assert "ragarbiter" not in first.metadata
    (judgement,) = second.metadata["ragarbiter"]
    assert (judgement["stage"], judgement["label"], judgement["evidence"]) == ("dedupe", "redundant", [first.id])
    copy = next(d for d in docs if d.id == DUPLICATE.id)
    assert (copy.metadata["source"], copy.metadata["topic"]) == ("copy.txt", "observatory")


def test_k_per_call_overrides_the_constructor(store):
    retriever = ArbiterRetriever(store=store, k=2)
    assert len(retriever.invoke(QUESTION)) == 2
    assert len(retriever.invoke(QUESTION, k=5)) == 5


def test_mode_and_filter_per_call(store):
    dense = ArbiterRetriever(store=store, k=3).invoke(QUESTION, mode="dense")
    assert [d.id for d in dense] == [p.id for p in store.search(QUESTION, k=3, mode="dense")]
    river = ArbiterRetriever(store=store, k=5).invoke(QUESTION, filter={"topic": "river"})
    assert [d.metadata["source"] for d in river] == ["river.txt"]


def test_unknown_option_names_the_valid_ones_and_the_fix(store):
    with pytest.raises(ConfigError, match="max_concurrency") as info:
        ArbiterRetriever(store=store).invoke(QUESTION, max_concurrency=2)
    assert "k, mode, filter" in str(info.value) and "config=" in str(info.value)


@pytest.mark.parametrize("bad", [{"k": 0}, {"mode": "fuzzy"}])
def test_bad_constructor_values_are_named(bad):
    with pytest.raises(ConfigError, match=repr(next(iter(bad.values())))):
        ArbiterRetriever(**bad)


def test_a_pipeline_without_retrieval_is_refused_with_the_fix(encoder):
    with pytest.raises(ConfigError, match="no retrieval stage"):
        ArbiterRetriever(pipeline=Pipeline([Deduplicator(encoder)]))


async def test_ainvoke_matches_invoke(store):
    retriever = ArbiterRetriever(store=store, k=4)
    sync, via_async = retriever.invoke(QUESTION), await retriever.ainvoke(QUESTION)
    assert [(d.id, d.metadata) for d in via_async] == [(d.id, d.metadata) for d in sync]


def test_batch_keeps_the_input_order(store):
    out = ArbiterRetriever(store=store, k=1).batch([q for q, _ in ROUTED])
    assert [docs[0].metadata["source"] for docs in out] == [src for _, src in ROUTED]


async def test_abatch_honours_max_concurrency(store, probe):
    retriever = ArbiterRetriever(pipeline=Pipeline([QdrantRetriever(store), probe]), k=1)
    queries = [q for q, _ in ROUTED] * 2
    out = await retriever.abatch(queries, config={"max_concurrency": 2})
    assert [docs[0].metadata["source"] for docs in out] == [src for _, src in ROUTED] * 2
    assert probe.most == 2


def test_an_empty_default_store_says_how_to_fill_it():
    with pytest.raises(UnknownCollectionError, match="ragarbiter index"):
        ArbiterRetriever().invoke(QUESTION)


def test_defaults_use_the_default_store_and_stages(encoder, fact_passages):
    with QdrantStore(encoder=encoder) as default_store:
        default_store.upsert(fact_passages)
    handler = ArbiterCallbackHandler()
    docs = ArbiterRetriever(k=2).invoke(QUESTION, config={"callbacks": [handler]})
    assert docs[0].id == ORIGINAL.id
    assert list(handler.stage_timings()) == ["retrieve", *(s.name for s in default_post_stages())]


# -- events -------------------------------------------------------------------------------
async def test_astream_events_carry_every_decision_with_its_data(judging_pipeline):
    events = [e async for e in ArbiterRetriever(pipeline=judging_pipeline, k=4).astream_events(QUESTION, version="v2")]
    custom = custom_events(events)
    assert [e["name"] for e in custom] == [
        "ragarbiter.passages_retrieved",
        "ragarbiter.stage_timed",
        "ragarbiter.passage_flagged",
        "ragarbiter.stage_timed",
    ]
    docs = next(e for e in events if e["event"] == "on_retriever_end")["data"]["output"]
    retrieved, flagged = custom[0]["data"], custom[2]["data"]
    assert retrieved["passage_ids"] == [d.id for d in docs] and retrieved["query"] == QUESTION
    copy = next(d for d in docs if "ragarbiter" in d.metadata)
    assert (flagged["passage_id"], flagged["label"], flagged["evidence"]) == (
        copy.id,
        "redundant",
        copy.metadata["ragarbiter"][0]["evidence"],
    )
    assert [e["data"]["stage"] for e in custom[1::2]] == ["retrieve", "dedupe"]
    run_id = next(e for e in events if e["event"] == "on_retriever_start")["run_id"]
    assert {e["run_id"] for e in custom} == {run_id}


async def test_events_arrive_while_the_run_is_still_going(store, gate):
    retriever = ArbiterRetriever(pipeline=Pipeline([QdrantRetriever(store), gate]), k=2)
    names, docs = [], None
    async for event in retriever.astream_events(QUESTION, version="v2"):
        if event["event"] == "on_custom_event":
            names.append(event["name"])
            if event["name"] == "ragarbiter.passages_retrieved":
                assert not gate.gate.is_set()
                gate.gate.set()  # only now can the pipeline finish
        elif event["event"] == "on_retriever_end":
            docs = event["data"]["output"]
    assert len(docs) == 2
    assert names[-1] == "ragarbiter.stage_timed"


def test_callback_handler_writes_audit_counts_and_timings(dropping_pipeline, tmp_path):
    audit = tmp_path / "audit" / "events.jsonl"
    handler = ArbiterCallbackHandler(audit)
    docs = ArbiterRetriever(pipeline=dropping_pipeline, k=4).invoke(QUESTION, config={"callbacks": [handler]})
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [line["name"] for line in lines] == [
        "ragarbiter.passages_retrieved",
        "ragarbiter.stage_timed",
        "ragarbiter.passage_flagged",
        "ragarbiter.passage_dropped",
        "ragarbiter.stage_timed",
    ]
    dropped_id = lines[3]["passage_id"]
    assert dropped_id in PAIR and dropped_id not in [d.id for d in docs] and len(docs) == 3
    assert handler.label_counts == {"redundant": 1}
    assert [d["passage_id"] for d in handler.dropped] == [dropped_id]
    assert "near-duplicate" in handler.dropped[0]["reason"]
    timings = handler.stage_timings()
    assert list(timings) == ["retrieve", "dedupe"] and [t["runs"] for t in timings.values()] == [1, 1]
    assert len({line["run_id"] for line in lines}) == 1
    assert handler.summary()["dropped"] == 1


# -- ArbiterCompressor --------------------------------------------------------------------
def test_compressor_composes_after_any_retriever(encoder):
    chain = {"documents": ListRetriever(docs=DOCS), "query": RunnablePassthrough()} | ArbiterCompressor(
        pipeline=Pipeline([Deduplicator(encoder)])
    )
    out = chain.invoke(QUESTION)
    assert [d.id for d in out] == ["a", "b", Passage(DOCS[2].page_content).id]
    assert out[0].metadata == DOCS[0].metadata
    assert out[1].metadata["relevance_score"] == 0.8 and out[1].metadata["page"] == 2
    assert out[1].metadata["ragarbiter"][0]["evidence"] == ["a"]
    assert out[2].metadata == {"page": 3}


def test_compressor_inside_contextual_compression_retriever_drops_visibly(encoder):
    handler = ArbiterCallbackHandler()
    retriever = ContextualCompressionRetriever(
        base_compressor=ArbiterCompressor(pipeline=Pipeline([Deduplicator(encoder, drop=True)])),
        base_retriever=ListRetriever(docs=DOCS),
    )
    out = retriever.invoke(QUESTION, config={"callbacks": [handler]})
    assert [d.id for d in out] == ["a", Passage(DOCS[2].page_content).id]
    assert [d["passage_id"] for d in handler.dropped] == ["b"]


async def test_acompress_documents_streams_its_events(encoder):
    retriever = ContextualCompressionRetriever(
        base_compressor=ArbiterCompressor(pipeline=Pipeline([Deduplicator(encoder)])),
        base_retriever=ListRetriever(docs=DOCS),
    )
    events = [e async for e in retriever.astream_events(QUESTION, version="v2")]
    flagged = [e["data"] for e in custom_events(events) if e["name"] == "ragarbiter.passage_flagged"]
    assert [(f["passage_id"], f["evidence"]) for f in flagged] == [("b", ["a"])]


def test_default_compressor_runs_only_the_default_post_retrieval_stages():
    handler = ArbiterCallbackHandler()
    out = ArbiterCompressor().compress_documents(DOCS, QUESTION, callbacks=[handler])
    assert [d.id for d in out][:2] == ["a", "b"]
    assert list(handler.stage_timings()) == [s.name for s in default_post_stages()]


def test_compressor_input_error_shows_how_to_compose():
    with pytest.raises(InvalidInputError, match="RunnablePassthrough"):
        ArbiterCompressor().invoke(DOCS)


# -- LangChainRetrieverStage --------------------------------------------------------------
async def test_a_langchain_retriever_feeds_a_pipeline_as_a_child_run(encoder):
    pipeline = Pipeline([LangChainRetrieverStage(ListRetriever(docs=DOCS)), Deduplicator(encoder)])
    retriever = ArbiterRetriever(pipeline=pipeline, k=2)
    events = [e async for e in retriever.astream_events(QUESTION, version="v2")]
    docs = next(e for e in events if e["event"] == "on_retriever_end" and e["name"] == "ArbiterRetriever")
    assert [d.id for d in docs["data"]["output"]] == ["a", "b"]  # k=2 keeps the first two
    outer = next(e for e in events if e["name"] == "ArbiterRetriever")["run_id"]
    inner = next(e for e in events if e["event"] == "on_retriever_start" and e["name"] == "ListRetriever")
    assert inner["parent_ids"] == [outer]
    retrieved = next(e for e in custom_events(events) if e["name"] == "ragarbiter.passages_retrieved")
    assert (retrieved["data"]["passage_ids"], retrieved["data"]["mode"]) == (["a", "b"], "langchain")


def test_the_stage_refuses_something_that_is_not_a_retriever():
    with pytest.raises(InvalidInputError, match="as_retriever"):
        LangChainRetrieverStage(object())
