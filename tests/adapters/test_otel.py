"""The OpenTelemetry exporter: one span per stage, OpenInference attributes, one trace per request."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import sys
import threading

import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs the otel extra")
pytest.importorskip("openinference.semconv.trace", reason="needs the otel extra")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

from ragarbiter import (  # noqa: E402
    ConflictDetected,
    ContextReordered,
    Judgement,
    ListSink,
    Passage,
    PassageFlagged,
    PassagesRetrieved,
    Pipeline,
    SoftPromptBuilt,
    Stage,
    StageTimed,
)
from ragarbiter.adapters.otel import OpenInferenceSink, TracedPipeline, traced  # noqa: E402
from ragarbiter.errors import MissingExtraError  # noqa: E402
from ragarbiter.stage import drop, judge  # noqa: E402

KIND = "openinference.span.kind"
STAGES = ["retrieve", "dedupe", "poison", "conflict", "attention_sort"]
SCORES = [0.9, 0.8, 0.7, 0.6]


def tag(query: str) -> str:
    """The passage-id prefix of a query: its first word (so two requests' passages differ)."""
    return query.split()[0].rstrip(":?")


class FixedRetriever(Stage):
    """Retrieves four passages <tag>-1..4 with scores 0.9..0.6."""

    name = "retrieve"
    retrieves = True

    def _run(self, context):
        t = tag(context.query)
        found = tuple(Passage(f"{t} fact {i}", id=f"{t}-{i}", score=s) for i, s in enumerate(SCORES, start=1))
        event = PassagesRetrieved(
            stage=self.name,
            query=context.query,
            passage_ids=tuple(p.id for p in found),
            scores=tuple(p.score for p in found),
            mode="hybrid",
        )
        return context.evolve(passages=context.passages + found, events=[event])


class SleepyStage(Stage):
    """Yields to the event loop in async runs, so concurrent requests interleave stage by stage."""

    async def _arun(self, context):
        await asyncio.sleep(0.02)
        return self._run(context)


class DropThird(SleepyStage):
    name = "dedupe"

    def _run(self, context):
        t = tag(context.query)
        return drop(context, {f"{t}-3": f"near-duplicate of {t}-1"}, self.name)


class FlagSecond(SleepyStage):
    name = "poison"

    def _run(self, context):
        t = tag(context.query)
        pid, evidence = f"{t}-2", (f"{t}-4",)
        verdict = Judgement(self.name, pid, "poisoned", 0.93, "planted instruction", evidence)
        event = PassageFlagged(
            stage=self.name,
            passage_id=pid,
            label="poisoned",
            score=0.93,
            reason="planted instruction",
            evidence=evidence,
        )
        return judge(context, [verdict], [event])


class Conflicting(SleepyStage):
    name = "conflict"

    def _run(self, context):
        t = tag(context.query)
        event = ConflictDetected(
            stage=self.name,
            passage_ids=(f"{t}-1", f"{t}-4"),
            groups=((f"{t}-1",), (f"{t}-4",)),
            reason="the dates disagree",
        )
        return context.evolve(flags={"conflict": True}, events=[event])


class Reverse(SleepyStage):
    name = "attention_sort"

    def _run(self, context):
        after = tuple(reversed(context.passages))
        event = ContextReordered(
            stage=self.name,
            before=tuple(p.id for p in context.passages),
            after=tuple(p.id for p in after),
            reason="least relevant first",
        )
        return context.evolve(passages=after, events=[event])


class SoftPrompt(Stage):
    name = "care"

    def _run(self, context):
        event = SoftPromptBuilt(stage=self.name, shape=(1, 4, 8), passage_ids=tuple(p.id for p in context.passages))
        return context.evolve(events=[event])


class Boom(Stage):
    name = "boom"

    def _run(self, context):
        raise RuntimeError("stage failed")


def stages():
    return [FixedRetriever(), DropThird(), FlagSecond(), Conflicting(), Reverse()]


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    """A private provider (the global one is never set)."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


# -- helpers -------------------------------------------------------------------------------
def docs(span, prefix):
    """[(id, score or None, metadata dict or None)] of an OpenInference document list, in order."""
    out, i = [], 0
    attrs = span.attributes
    while f"{prefix}.{i}.document.id" in attrs:
        meta = attrs.get(f"{prefix}.{i}.document.metadata")
        out.append(
            (attrs[f"{prefix}.{i}.document.id"], attrs.get(f"{prefix}.{i}.document.score"), meta and json.loads(meta))
        )
        i += 1
    return out


def ids_scores(span, prefix):
    return [(pid, score) for pid, score, _ in docs(span, prefix)]


def by_name(spans):
    return {s.name: s for s in spans}


def parent_id(span):
    return span.parent.span_id if span.parent is not None else None


def check_request(spans, query, chain=None):
    """Every attribute of the five stage spans of one request (`spans` keyed by name)."""
    t = tag(query)
    p = [f"{t}-{i}" for i in range(1, 5)]
    retrieve, dedupe, poison, conflict, reorder = (spans[f"ragarbiter.{n}"] for n in STAGES)

    # kinds
    assert retrieve.attributes[KIND] == "RETRIEVER"
    assert dedupe.attributes[KIND] == "RERANKER"
    assert poison.attributes[KIND] == "GUARDRAIL"
    assert conflict.attributes[KIND] == "GUARDRAIL"
    assert reorder.attributes[KIND] == "RERANKER"

    # retrieval: the documents, in order, with their scores
    assert ids_scores(retrieve, "retrieval.documents") == list(zip(p, SCORES))
    assert retrieve.attributes["input.value"] == query
    assert retrieve.attributes["ragarbiter.retrieval.mode"] == "hybrid"
    assert retrieve.attributes["ragarbiter.n_in"] == 0
    assert retrieve.attributes["ragarbiter.n_out"] == 4
    assert [e.name for e in retrieve.events] == []

    # the drop: a reranker whose dropped input document says why
    assert ids_scores(dedupe, "reranker.input_documents") == list(zip(p, SCORES))
    assert ids_scores(dedupe, "reranker.output_documents") == [(p[0], 0.9), (p[1], 0.8), (p[3], 0.6)]
    dropped_meta = docs(dedupe, "reranker.input_documents")[2][2]
    assert dropped_meta == {"dropped": f"near-duplicate of {t}-1"}
    assert dedupe.attributes["ragarbiter.dropped"] == (p[2],)
    assert dedupe.attributes["ragarbiter.reordered"] is False
    assert dedupe.attributes["ragarbiter.n_in"] == 4
    assert dedupe.attributes["ragarbiter.n_out"] == 3
    assert [e.name for e in dedupe.events] == ["ragarbiter.passage_dropped"]
    assert dict(dedupe.events[0].attributes) == {"passage_id": p[2], "reason": f"near-duplicate of {t}-1"}
    if chain is not None:
        assert dedupe.attributes["reranker.query"] == query

    # the flag: a guardrail; the flagged passage's metadata in output.value, and a span event
    assert poison.attributes["ragarbiter.flagged"] == (p[1],)
    assert "ragarbiter.dropped" not in poison.attributes
    flag = {"label": "poisoned", "score": 0.93, "reason": "planted instruction", "evidence": [p[3]]}
    assert json.loads(poison.attributes["input.value"]) == [
        {"id": p[0], "score": 0.9},
        {"id": p[1], "score": 0.8},
        {"id": p[3], "score": 0.6},
    ]
    assert json.loads(poison.attributes["output.value"]) == [
        {"id": p[0], "score": 0.9},
        {"id": p[1], "score": 0.8, "flags": [flag]},
        {"id": p[3], "score": 0.6},
    ]
    assert poison.attributes["output.mime_type"] == "application/json"
    assert [e.name for e in poison.events] == ["ragarbiter.passage_flagged"]
    assert dict(poison.events[0].attributes) == {
        "passage_id": p[1],
        "label": "poisoned",
        "score": 0.93,
        "reason": "planted instruction",
        "evidence": (p[3],),
    }

    # the conflict
    assert conflict.attributes["ragarbiter.conflict"] is True
    assert conflict.attributes["ragarbiter.flagged"] == (p[0], p[3])
    assert json.loads(conflict.attributes["output.value"]) == [
        {"id": p[0], "score": 0.9, "conflict": "the dates disagree"},
        {"id": p[1], "score": 0.8},
        {"id": p[3], "score": 0.6, "conflict": "the dates disagree"},
    ]
    assert [e.name for e in conflict.events] == ["ragarbiter.conflict_detected"]
    assert dict(conflict.events[0].attributes) == {
        "passage_ids": (p[0], p[3]),
        "groups": json.dumps([[p[0]], [p[3]]]),
        "reason": "the dates disagree",
    }

    # the reorder: a reranker, same documents in reverse order
    assert ids_scores(reorder, "reranker.input_documents") == [(p[0], 0.9), (p[1], 0.8), (p[3], 0.6)]
    assert ids_scores(reorder, "reranker.output_documents") == [(p[3], 0.6), (p[1], 0.8), (p[0], 0.9)]
    assert reorder.attributes["ragarbiter.reordered"] is True
    assert [e.name for e in reorder.events] == ["ragarbiter.context_reordered"]
    assert dict(reorder.events[0].attributes) == {
        "before": (p[0], p[1], p[3]),
        "after": (p[3], p[1], p[0]),
        "reason": "least relevant first",
    }

    # one trace; stages in order, each span inside [start, end] with events inside it
    stage_spans = [retrieve, dedupe, poison, conflict, reorder]
    assert len({s.context.trace_id for s in stage_spans}) == 1
    for before, after in zip(stage_spans, stage_spans[1:]):
        assert before.end_time <= after.start_time
    for s in stage_spans:
        assert s.start_time <= s.end_time
        assert s.attributes["ragarbiter.stage"] == s.name.removeprefix("ragarbiter.")
        assert all(s.start_time <= e.timestamp <= s.end_time for e in s.events)
        assert all(v is not None for v in s.attributes.values())

    if chain is not None:
        assert chain.attributes[KIND] == "CHAIN"
        assert chain.attributes["input.value"] == query
        assert chain.attributes["ragarbiter.pipeline"] == "pipeline"
        assert chain.attributes["ragarbiter.stages"] == tuple(STAGES)
        assert json.loads(chain.attributes["output.value"]) == [
            {"id": p[3], "score": 0.6},
            {"id": p[1], "score": 0.8},
            {"id": p[0], "score": 0.9},
        ]
        assert chain.attributes["ragarbiter.n_out"] == 3
        assert chain.attributes["ragarbiter.dropped"] == (p[2],)
        assert chain.attributes["ragarbiter.flagged"] == (p[1], p[0], p[3])
        for s in stage_spans:
            assert parent_id(s) == chain.context.span_id
            assert s.context.trace_id == chain.context.trace_id
            assert chain.start_time <= s.start_time and s.end_time <= chain.end_time


# -- a traced pipeline, sync and async -------------------------------------------------------
@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_a_traced_run_is_one_chain_span_over_one_span_per_stage(provider, exporter, mode):
    pipe = traced(Pipeline(stages()), provider)
    timings = ListSink()
    caller = provider.get_tracer("test").start_as_current_span("caller")
    query = "alpha: who founded the observatory?"
    with caller as outer:
        if mode == "run":
            context = pipe.run(query, sinks=[timings])
        else:
            context = await pipe.arun(query, sinks=[timings])
    assert [p.id for p in context.passages] == ["alpha-4", "alpha-2", "alpha-1"]

    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names == [*(f"ragarbiter.{n}" for n in STAGES), "ragarbiter.pipeline", "caller"]
    named = by_name(spans)
    chain = named["ragarbiter.pipeline"]
    assert parent_id(chain) == outer.get_span_context().span_id  # under the caller's span
    check_request(named, query, chain)

    # each stage span ends at its StageTimed and lasts its seconds
    timed = {e.stage: e for e in timings.events if isinstance(e, StageTimed)}
    for name in STAGES:
        span = named[f"ragarbiter.{name}"]
        assert span.end_time == round(timed[name].time * 1e9)
        assert abs((span.end_time - span.start_time) - timed[name].seconds * 1e9) <= 1


async def test_two_concurrent_aruns_make_two_separate_traces(provider, exporter):
    pipe = traced(Pipeline(stages()), provider)
    queries = ["alpha: who founded it?", "beta: when did it open?"]
    await asyncio.gather(*(pipe.arun(q) for q in queries))

    spans = exporter.get_finished_spans()
    assert len(spans) == 2 * (len(STAGES) + 1)
    chains = [s for s in spans if s.name == "ragarbiter.pipeline"]
    assert sorted(c.attributes["input.value"] for c in chains) == sorted(queries)
    assert len({c.context.trace_id for c in chains}) == 2
    for chain in chains:
        assert chain.parent is None
        query = chain.attributes["input.value"]
        mine = [s for s in spans if s.context.trace_id == chain.context.trace_id and s is not chain]
        assert len(mine) == len(STAGES)
        check_request(by_name(mine), query, chain)
    # the requests really interleaved: a stage of one ended between two stages of the other
    a = [s for s in spans if s.context.trace_id == chains[0].context.trace_id and s is not chains[0]]
    b = [s for s in spans if s.context.trace_id == chains[1].context.trace_id and s is not chains[1]]
    assert max(s.end_time for s in a) > min(s.end_time for s in b)
    assert max(s.end_time for s in b) > min(s.end_time for s in a)


def test_batch_on_worker_threads_makes_one_trace_per_query(provider, exporter):
    pipe = traced(Pipeline(stages()), provider)
    queries = ["alpha: one?", "beta: two?", "gamma: three?"]
    results = pipe.batch(queries, max_concurrency=3)
    assert [[p.id for p in c.passages][0] for c in results] == ["alpha-4", "beta-4", "gamma-4"]
    spans = exporter.get_finished_spans()
    chains = {s.attributes["input.value"]: s for s in spans if s.name == "ragarbiter.pipeline"}
    assert sorted(chains) == sorted(queries)
    for query, chain in chains.items():
        mine = [s for s in spans if parent_id(s) == chain.context.span_id]
        check_request(by_name(mine), query, chain)


# -- the plain sink ----------------------------------------------------------------------------
def test_a_plain_sink_nests_stage_spans_under_the_callers_current_span(provider, exporter):
    sink = OpenInferenceSink(provider)
    pipe = Pipeline(stages(), sinks=[sink])
    query = "alpha: who founded the observatory?"
    with provider.get_tracer("test").start_as_current_span("langchain.retriever") as outer:
        pipe.run(query)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [*(f"ragarbiter.{n}" for n in STAGES), "langchain.retriever"]
    named = by_name(spans)
    check_request(named, query)
    for name in STAGES:
        assert parent_id(named[f"ragarbiter.{name}"]) == outer.get_span_context().span_id
    # outside `trace`, a later stage does not know the query
    assert "reranker.query" not in named["ragarbiter.dedupe"].attributes

    exporter.clear()
    pipe.run(query)  # no current span: each stage span is a root
    assert all(s.parent is None for s in exporter.get_finished_spans())


def test_sink_trace_opens_the_chain_span(provider, exporter):
    sink = OpenInferenceSink(provider, tracer_name="mine")
    pipe = Pipeline(stages())
    query = "alpha: who founded the observatory?"
    with sink.trace(query) as chain_span:
        pipe.run(query, sinks=[sink])
    assert chain_span.get_span_context().is_valid
    named = by_name(exporter.get_finished_spans())
    chain = named["ragarbiter.pipeline"]
    assert chain.instrumentation_scope.name == "mine"
    assert chain.attributes["input.value"] == query
    check_request({k: v for k, v in named.items() if k != "ragarbiter.pipeline"}, query, None)
    assert named["ragarbiter.dedupe"].attributes["reranker.query"] == query
    assert all(parent_id(named[f"ragarbiter.{n}"]) == chain.context.span_id for n in STAGES)


async def test_one_sink_keeps_interleaved_requests_apart_across_tasks(provider, exporter):
    """Events of two requests arrive interleaved on one sink: each span gets only its own."""
    sink = OpenInferenceSink(provider)
    first_flagged, second_done = asyncio.Event(), asyncio.Event()

    def flagged(pid):
        return PassageFlagged(stage="poison", passage_id=pid, label="poisoned", score=0.5, reason=pid)

    def timed(pid):
        return StageTimed(stage="poison", seconds=0.01, passages_in=(pid,), passages_out=(pid,))

    async def first():
        sink.emit(flagged("a-1"))
        first_flagged.set()
        await second_done.wait()
        sink.emit(timed("a-1"))

    async def second():
        await first_flagged.wait()
        sink.emit(flagged("b-1"))
        sink.emit(timed("b-1"))
        second_done.set()

    await asyncio.gather(first(), second())
    spans = exporter.get_finished_spans()
    assert [s.attributes["ragarbiter.flagged"] for s in spans] == [("b-1",), ("a-1",)]
    assert [[e.attributes["passage_id"] for e in s.events] for s in spans] == [["b-1"], ["a-1"]]


def test_one_sink_keeps_interleaved_requests_apart_across_threads(provider, exporter):
    sink = OpenInferenceSink(provider)
    first_flagged, second_done = threading.Event(), threading.Event()

    def first():
        sink.emit(PassageFlagged(stage="s", passage_id="a-1", label="x", score=0.5, reason="a"))
        first_flagged.set()
        assert second_done.wait(5)
        sink.emit(StageTimed(stage="s", seconds=0.01, passages_in=("a-1",), passages_out=("a-1",)))

    def second():
        assert first_flagged.wait(5)
        sink.emit(PassageFlagged(stage="s", passage_id="b-1", label="x", score=0.5, reason="b"))
        sink.emit(StageTimed(stage="s", seconds=0.01, passages_in=("b-1",), passages_out=("b-1",)))
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    spans = exporter.get_finished_spans()
    assert [s.attributes["ragarbiter.flagged"] for s in spans] == [("b-1",), ("a-1",)]


# -- kinds, errors, wrappers -------------------------------------------------------------------
def test_a_stage_that_only_builds_a_soft_prompt_is_a_chain(provider, exporter):
    traced(Pipeline([FixedRetriever(), SoftPrompt()]), provider).run("alpha: q?")
    care = by_name(exporter.get_finished_spans())["ragarbiter.care"]
    assert care.attributes[KIND] == "CHAIN"
    assert care.attributes["ragarbiter.soft_prompt.shape"] == (1, 4, 8)
    assert [e.name for e in care.events] == ["ragarbiter.soft_prompt_built"]
    assert care.events[0].attributes["shape"] == (1, 4, 8)


def test_a_failing_stage_marks_the_chain_span_and_keeps_the_earlier_stages(provider, exporter):
    pipe = traced(Pipeline([FixedRetriever(), DropThird(), Boom()]), provider)
    with pytest.raises(RuntimeError, match="stage failed"):
        pipe.run("alpha: q?")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["ragarbiter.retrieve", "ragarbiter.dedupe", "ragarbiter.pipeline"]
    chain = spans[-1]
    assert chain.status.status_code is StatusCode.ERROR
    assert "exception" in [e.name for e in chain.events]
    assert chain.attributes["ragarbiter.dropped"] == ("alpha-3",)
    assert chain.attributes["ragarbiter.stages"] == ("retrieve", "dedupe")


def test_the_traced_pipeline_keeps_its_sink_through_its_copies(provider, exporter):
    pipe = traced(Pipeline(stages(), name="rag"), provider)
    assert isinstance(pipe, TracedPipeline)
    assert pipe.sinks == [pipe.sink]
    post = pipe.without_retrieval().with_sinks(ListSink())
    assert isinstance(post, TracedPipeline) and post.sink is pipe.sink
    post.run("alpha: q?", passages=[Passage("x", id="alpha-1", score=0.5), Passage("y", id="alpha-3")])
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [*(f"ragarbiter.{n}" for n in STAGES[1:]), "ragarbiter.rag"]
    dedupe = spans[0]
    assert ids_scores(dedupe, "reranker.input_documents") == [("alpha-1", 0.5), ("alpha-3", None)]
    assert ids_scores(dedupe, "reranker.output_documents") == [("alpha-1", 0.5)]


def test_without_opentelemetry_the_import_names_the_otel_extra(monkeypatch):
    for name in [n for n in sys.modules if n.startswith(("opentelemetry", "openinference"))]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "ragarbiter.adapters.otel", raising=False)
    with pytest.raises(MissingExtraError) as info:
        importlib.import_module("ragarbiter.adapters.otel")
    assert "pip install 'ragarbiter[otel]'" in str(info.value)
    assert info.value.extra == "otel"


def test_the_trace_example_prints_one_query_with_its_retriever_reranker_and_guardrail_spans(capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "otel_trace.py"
    spec = importlib.util.spec_from_file_location("_example_otel_trace", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main("When was the Kestrel Bay lighthouse first lit?")
    out = capsys.readouterr().out
    heads = [line.split("  ")[:3] for line in out.splitlines() if not line.startswith(" ")]
    assert heads[:3] == [
        ["app.request", "kind=-", "parent=None"],
        ["ragarbiter.ragarbiter", "kind=CHAIN", "parent=app.request"],
        ["ragarbiter.retrieve", "kind=RETRIEVER", "parent=ragarbiter.ragarbiter"],
    ]
    kinds = {name: kind for name, kind, _ in heads}
    assert kinds["ragarbiter.poison"] == "kind=RERANKER"  # it drops the planted near-copies
    assert kinds["ragarbiter.conflict"] == kinds["ragarbiter.inappropriate"] == "kind=GUARDRAIL"
    assert "event ragarbiter.passage_dropped" in out and "reranker.output_documents.0.document.id" in out
