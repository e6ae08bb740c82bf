import asyncio

import pytest

from ragarbiter import Context, ListSink, Passage, PassageFlagged, Pipeline, Stage, StageTimed
from ragarbiter.errors import ConfigError
from ragarbiter.stage import drop


class Append(Stage):
    """Adds one passage and one event; records what the sink had seen when it ran."""

    def __init__(self, text, sink=None):
        self.name, self.text, self.sink, self.seen = f"append-{text}", text, sink, None

    def _run(self, ctx):
        self.seen = len(self.sink.events) if self.sink else None
        p = Passage(self.text)
        ev = PassageFlagged(stage=self.name, passage_id=p.id, label="reliable", score=1.0, reason="test")
        return ctx.evolve(passages=ctx.passages + (p,), events=[ev])


class DropFirst(Stage):
    name = "drop-first"

    def _run(self, ctx):
        return drop(ctx, {ctx.passages[0].id: "first one is stale"}, self.name)


def test_run_applies_stages_in_order_without_mutating_input():
    pipe = Pipeline([Append("a"), Append("b")])
    ctx = Context.for_query("q")
    out = pipe(ctx)
    assert [p.text for p in out.passages] == ["a", "b"]
    assert ctx.passages == ()


def test_sinks_receive_each_stage_events_before_the_next_stage_runs():
    sink = ListSink()
    second = Append("b", sink)
    Pipeline([Append("a"), second], sinks=[sink]).run("q")
    # stage a's flag and its timing were delivered before stage b started
    assert second.seen == 2
    kinds = [(e.kind, e.stage) for e in sink.events]
    assert kinds == [
        ("passage_flagged", "append-a"),
        ("stage_timed", "append-a"),
        ("passage_flagged", "append-b"),
        ("stage_timed", "append-b"),
    ]


def test_dropped_passages_are_recorded_with_reason():
    out = Pipeline([Append("a"), Append("b"), DropFirst()]).run("q")
    assert [p.text for p in out.passages] == ["b"]
    assert [(d.passage.text, d.stage, d.reason) for d in out.dropped] == [("a", "drop-first", "first one is stale")]
    assert any(e.kind == "passage_dropped" and e.reason == "first one is stale" for e in out.trace)


def test_stage_timed_counts_passages_in_and_out():
    out = Pipeline([Append("a"), DropFirst()]).run("q")
    timed = [e for e in out.trace if isinstance(e, StageTimed)]
    assert [(t.stage, t.n_in, t.n_out) for t in timed] == [("append-a", 0, 1), ("drop-first", 1, 0)]
    assert all(t.seconds >= 0 for t in timed)


def test_a_failing_sink_does_not_break_the_request(caplog):
    class Broken:
        def emit(self, event):
            raise RuntimeError("sink down")

    out = Pipeline([Append("a")], sinks=[Broken()]).run("q")
    assert [p.text for p in out.passages] == ["a"]
    assert "sink" in caplog.text


async def test_arun_matches_run_and_uses_async_sinks():
    class AsyncSink:
        def __init__(self):
            self.events = []

        def emit(self, event):  # pragma: no cover - aemit is preferred
            raise AssertionError("aemit should be used in async runs")

        async def aemit(self, event):
            await asyncio.sleep(0)
            self.events.append(event.kind)

    sink = AsyncSink()
    out = await Pipeline([Append("a"), Append("b")], sinks=[sink]).arun("q")
    assert [p.text for p in out.passages] == ["a", "b"]
    assert sink.events.count("stage_timed") == 2


def test_batch_keeps_input_order():
    class Echo(Stage):
        name = "echo"

        def _run(self, ctx):
            return ctx.evolve(passages=(Passage(ctx.query.upper()),))

    out = Pipeline([Echo()]).batch(["a", "b", "c", "d"], max_concurrency=3)
    assert [c.passages[0].text for c in out] == ["A", "B", "C", "D"]
    with pytest.raises(ConfigError, match="max_concurrency"):
        Pipeline([Echo()]).batch(["a"], max_concurrency=0)


def test_nested_pipeline_forwards_inner_events_to_outer_sinks():
    sink = ListSink()
    Pipeline([Pipeline([Append("a")]), Append("b")], sinks=[sink]).run("q")
    assert [e.stage for e in sink.events if e.kind == "passage_flagged"] == ["append-a", "append-b"]


def test_non_stage_is_rejected_with_a_fix():
    with pytest.raises(ConfigError, match="Subclass ragarbiter.Stage"):
        Pipeline([lambda ctx: ctx])
