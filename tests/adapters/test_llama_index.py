"""The LlamaIndex adapter through LlamaIndex's own entry points and instrumentation."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeRelationship, NodeWithScore, RelatedNodeInfo, TextNode  # noqa: E402
from pydantic import Field  # noqa: E402

from ragarbiter import Pipeline, default_post_stages  # noqa: E402
from ragarbiter.adapters.llama_index import (  # noqa: E402
    ArbiterEvent,
    ArbiterPostprocessor,
    ArbiterRetriever,
    LlamaIndexRetrieverStage,
)
from ragarbiter.errors import InvalidInputError  # noqa: E402
from ragarbiter.retrievers import Deduplicator  # noqa: E402
from tests.adapters.support import DUPLICATE, ORIGINAL, PAIR, QUESTION  # noqa: E402

RIVER = "The river Lenne floods every spring when the snow on Mount Tarn melts."


def make_nodes() -> list[NodeWithScore]:
    a = TextNode(
        text=ORIGINAL.text,
        id_="a",
        metadata={"source": "observatory.txt", "page": 1},
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-1")},
    )
    b = TextNode(text=DUPLICATE.text, id_="b", metadata={"page": 2})
    c = TextNode(text=RIVER, id_="c", metadata={"page": 3}, excluded_llm_metadata_keys=["page"])
    return [NodeWithScore(node=a, score=0.9), NodeWithScore(node=b, score=0.8), NodeWithScore(node=c, score=0.0)]


class ListRetriever(BaseRetriever):
    """Any LlamaIndex retriever: returns its nodes in order."""

    def __init__(self, nodes: list[NodeWithScore]) -> None:
        super().__init__()
        self._nodes = nodes

    def _retrieve(self, query_bundle):
        return list(self._nodes)


class Collector(BaseEventHandler):
    events: list = Field(default_factory=list)

    def handle(self, event, **kwargs):
        self.events.append(event)

    def arbiter(self) -> list[ArbiterEvent]:
        return [e for e in self.events if isinstance(e, ArbiterEvent)]


@pytest.fixture
def instrumented():
    """An event handler and a span handler on the root dispatcher, removed afterwards."""
    root = get_dispatcher()
    events, spans = Collector(), SimpleSpanHandler()
    root.add_event_handler(events)
    root.add_span_handler(spans)
    yield events, spans
    root.event_handlers = [h for h in root.event_handlers if h is not events]
    root.span_handlers = [h for h in root.span_handlers if h is not spans]


def dedupe(encoder, drop: bool = False) -> Pipeline:
    return Pipeline([Deduplicator(encoder, drop=drop)])


# -- ArbiterRetriever -----------------------------------------------------------------------
def test_retrieve_keeps_the_stores_ranking_and_scores(store, expected):
    nodes = ArbiterRetriever(store=store, k=4).retrieve(QUESTION)
    assert [n.node.node_id for n in nodes] == [p.id for p in expected]
    assert [n.score for n in nodes] == pytest.approx([p.score for p in expected])
    first, second = [n for n in nodes if n.node.node_id in PAIR]
    assert "ragarbiter" not in first.node.metadata
    assert second.node.metadata["ragarbiter"][0]["evidence"] == [first.node.node_id]
    prompt = second.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "redundant" not in prompt and "relevance_score" not in prompt


async def test_aretrieve_matches_retrieve(store):
    retriever = ArbiterRetriever(store=store, k=4)
    sync, via_async = retriever.retrieve(QUESTION), await retriever.aretrieve(QUESTION)
    assert [(n.node.node_id, n.score, n.node.metadata) for n in via_async] == [
        (n.node.node_id, n.score, n.node.metadata) for n in sync
    ]


def test_events_reach_the_root_dispatcher_inside_the_retrieve_span(judging_pipeline, instrumented):
    events, spans = instrumented
    nodes = ArbiterRetriever(pipeline=judging_pipeline, k=4).retrieve(QUESTION)
    ours = events.arbiter()
    assert [type(e).__name__ for e in ours] == [
        "PassagesRetrievedEvent",
        "StageTimedEvent",
        "PassageFlaggedEvent",
        "StageTimedEvent",
    ]
    assert ours[0].data["passage_ids"] == [n.node.node_id for n in nodes]
    flagged = next(n for n in nodes if "ragarbiter" in n.node.metadata)
    assert (ours[2].stage, ours[2].data["passage_id"], ours[2].data["label"]) == (
        "dedupe",
        flagged.node.node_id,
        "redundant",
    )
    (span_id,) = {e.span_id for e in ours}
    finished = {s.id_: s for s in spans.completed_spans}
    assert span_id.startswith("ArbiterRetriever._retrieve-") and span_id in finished
    assert finished[span_id].parent_id.startswith("ArbiterRetriever.retrieve-")


def test_legacy_callbacks_get_retrieve_and_reranking_with_nodes(dropping_pipeline):
    debug = LlamaDebugHandler(print_trace_on_end=False)
    nodes = ArbiterRetriever(pipeline=dropping_pipeline, k=4, callback_manager=CallbackManager([debug])).retrieve(
        QUESTION
    )
    (retrieve,) = debug.get_event_pairs(CBEventType.RETRIEVE)
    (rerank,) = debug.get_event_pairs(CBEventType.RERANKING)
    kept = [n.node.node_id for n in nodes]
    assert [n.node.node_id for n in retrieve[1].payload[EventPayload.NODES]] == kept
    assert [n.node.node_id for n in rerank[1].payload[EventPayload.NODES]] == kept
    decisions = rerank[1].payload[EventPayload.ADDITIONAL_KWARGS]
    (dropped,) = decisions["dropped"]
    assert dropped["id"] in PAIR and dropped["id"] not in kept and len(kept) == 3
    assert [d["event"] for d in decisions["ragarbiter"]].count("passage_dropped") == 1


# -- ArbiterPostprocessor -----------------------------------------------------------------
def test_postprocess_nodes_keeps_scores_metadata_and_node_fields(encoder):
    given = make_nodes()
    out = ArbiterPostprocessor(pipeline=dedupe(encoder)).postprocess_nodes(given, query_str=QUESTION)
    assert [n.node.node_id for n in out] == ["a", "b", "c"]
    assert [n.score for n in out] == [0.9, 0.8, 0.0]
    assert out[0].node.metadata == {"source": "observatory.txt", "page": 1}
    assert out[0].node.relationships[NodeRelationship.SOURCE].node_id == "doc-1"
    assert out[1].node.metadata["page"] == 2 and out[1].node.metadata["ragarbiter"][0]["evidence"] == ["a"]
    assert out[2].node.excluded_llm_metadata_keys == ["page", "ragarbiter"]
    assert "ragarbiter" not in given[1].node.metadata  # the caller's nodes are not mutated


async def test_apostprocess_nodes_matches_and_spans_its_events(encoder, instrumented):
    events, spans = instrumented
    processor = ArbiterPostprocessor(pipeline=dedupe(encoder))
    sync = processor.postprocess_nodes(make_nodes(), query_str=QUESTION)
    events.events.clear()
    out = await processor.apostprocess_nodes(make_nodes(), query_str=QUESTION)
    assert [(n.node.node_id, n.score, n.node.metadata) for n in out] == [
        (n.node.node_id, n.score, n.node.metadata) for n in sync
    ]
    ours = events.arbiter()
    assert [e.kind for e in ours] == ["passage_flagged", "stage_timed"]
    assert ours[0].data["passage_id"] == "b"
    (span_id,) = {e.span_id for e in ours}
    assert span_id.startswith("ArbiterPostprocessor._apostprocess_nodes-")
    assert span_id in {s.id_ for s in spans.completed_spans}


def test_dropped_nodes_are_reported_not_silently_lost(encoder, instrumented):
    events, _ = instrumented
    debug = LlamaDebugHandler(print_trace_on_end=False)
    processor = ArbiterPostprocessor(pipeline=dedupe(encoder, drop=True), callback_manager=CallbackManager([debug]))
    out = processor.postprocess_nodes(make_nodes(), query_str=QUESTION)
    assert [n.node.node_id for n in out] == ["a", "c"]
    (dropped,) = [e for e in events.arbiter() if e.kind == "passage_dropped"]
    assert dropped.data["passage_id"] == "b" and "near-duplicate" in dropped.data["reason"]
    (rerank,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert [n.node.node_id for n in rerank[0].payload[EventPayload.NODES]] == ["a", "b", "c"]
    assert [d["id"] for d in rerank[1].payload[EventPayload.ADDITIONAL_KWARGS]["dropped"]] == ["b"]


def test_default_postprocessor_runs_the_default_post_retrieval_stages(instrumented):
    events, _ = instrumented
    out = ArbiterPostprocessor().postprocess_nodes(make_nodes(), query_str=QUESTION)
    assert [n.node.node_id for n in out][:2] == ["a", "b"]
    assert [e.stage for e in events.arbiter() if e.kind == "stage_timed"] == [s.name for s in default_post_stages()]


def test_postprocessing_without_a_query_says_how_to_pass_one():
    with pytest.raises(InvalidInputError, match="query_str="):
        ArbiterPostprocessor().postprocess_nodes(make_nodes())


async def test_works_inside_a_query_engine(encoder):
    engine = RetrieverQueryEngine.from_args(
        ListRetriever(make_nodes()),
        llm=MockLLM(),
        node_postprocessors=[ArbiterPostprocessor(pipeline=dedupe(encoder, drop=True))],
    )
    assert [n.node.node_id for n in engine.query(QUESTION).source_nodes] == ["a", "c"]
    response = await engine.aquery(QUESTION)
    assert [n.score for n in response.source_nodes] == [0.9, 0.0]


# -- LlamaIndexRetrieverStage -------------------------------------------------------------
def test_a_llama_index_retriever_feeds_a_pipeline_inside_its_span(encoder, instrumented):
    events, spans = instrumented
    pipeline = Pipeline([LlamaIndexRetrieverStage(ListRetriever(make_nodes())), Deduplicator(encoder)])
    nodes = ArbiterRetriever(pipeline=pipeline, k=2).retrieve(QUESTION)
    assert [(n.node.node_id, n.score) for n in nodes] == [("a", 0.9), ("b", 0.8)]
    retrieved = next(e for e in events.arbiter() if e.kind == "passages_retrieved")
    assert (retrieved.data["passage_ids"], retrieved.data["mode"]) == (["a", "b"], "llama_index")
    inner = next(s for s in spans.completed_spans if s.id_.startswith("ListRetriever.retrieve-"))
    assert inner.parent_id == retrieved.span_id


def test_the_stage_refuses_something_that_is_not_a_retriever():
    with pytest.raises(InvalidInputError, match="as_retriever"):
        LlamaIndexRetrieverStage(object())
