"""OpenTelemetry traces of a Pipeline, with OpenInference semantic conventions (Phoenix, Langfuse, any OTLP collector).

>>> from ragarbiter.adapters.otel import traced                      # doctest: +SKIP
>>> pipe = traced(default_pipeline(), tracer_provider)               # doctest: +SKIP
>>> pipe.run("who built the lighthouse?")                            # doctest: +SKIP

Two pieces (``pip install 'ragarbiter[otel]'``):

- `OpenInferenceSink`: an `EventSink` that turns each stage of a run into one span named
  ``ragarbiter.<stage>``. The span is made when the stage's `StageTimed` arrives, with
  ``start_time = end_time - seconds`` (``end_time`` is `StageTimed.time`), and it carries the
  stage's earlier events. Stage spans are children of the OpenTelemetry span that is current
  where the Pipeline emits, i.e. in the caller of ``run`` / ``arun``: a LangChain or LlamaIndex
  OpenInference span, a span of your own, or the CHAIN span below.
- `traced(pipeline, tracer_provider)` (a `TracedPipeline`) and ``with sink.trace(query):``: one
  ``ragarbiter.<pipeline name>`` span of kind CHAIN per request around the stage spans, with the
  query as ``input.value`` and the final passages as ``output.value``.

How events are grouped into requests. Events carry no request id. The Pipeline sends a stage's
events, then its `StageTimed`, from the thread or asyncio task that runs the request (``run``,
``arun``, ``batch``'s worker threads, ``abatch``'s tasks), so the sink buffers events in a
`contextvars.ContextVar` holding an immutable mapping per sink: a thread and an asyncio task each
see their own value, so concurrent requests on one shared sink never mix. A `StageTimed` turns
the buffer of its own thread or task into a span and empties it. A Pipeline used as a stage of
another makes a span of its own, beside (not around) the spans of its stages.

Span kinds (``openinference.span.kind``), per stage and per request:

- RETRIEVER: the stage emitted `PassagesRetrieved`; ``retrieval.documents.{i}.document.id/score``
  are the passages it retrieved, in order, and ``input.value`` is the query.
- RERANKER: the stage returned other passages, or the same in another order, than it was given
  (dropped or reordered them); ``reranker.input_documents.{i}.document.id/score`` and
  ``reranker.output_documents.{i}...`` are `StageTimed.passages_in` / ``passages_out``;
  ``reranker.query`` when the query is known (inside `traced` / `trace`, or from the stage's own
  `PassagesRetrieved`). ``reranker.top_k`` and ``reranker.model_name`` are not set: ragarbiter's
  stages keep passages by judgement, not by a top-k parameter, and the events name no model.
- CHAIN: the stage only built a soft prompt (`SoftPromptBuilt`): it prepares the generator's
  input, it does not check the context.
- GUARDRAIL: any other stage. It looked at the context and let it through unchanged, flagging
  passages (`PassageFlagged`, `ConflictDetected`) or finding nothing: an assessor's check on
  what the LLM will read, which is what OpenInference's guardrail kind describes. Its
  ``input.value`` / ``output.value`` are the passages in and out as JSON.

A stage's judgements: per document, ``document.metadata`` is a JSON string
``{"flags": [{"label", "score", "reason", "evidence"}], "conflict": "<reason>", "dropped":
"<reason>"}`` (keys only when present; a GUARDRAIL or CHAIN span has no document list in
OpenInference, so there the same keys are on each passage of ``output.value``). Each event
becomes a span event ``ragarbiter.<kind>`` (e.g.
``ragarbiter.passage_flagged``) whose attributes are the fields of `Event.to_dict()` (without
``event``, ``stage`` and ``time``; the time is the span event's timestamp). Names OpenInference
has none for are ``ragarbiter.*``: ``ragarbiter.stage``, ``ragarbiter.n_in``,
``ragarbiter.n_out``, ``ragarbiter.reordered``, ``ragarbiter.dropped``, ``ragarbiter.flagged``,
``ragarbiter.conflict``, ``ragarbiter.retrieval.mode``, ``ragarbiter.soft_prompt.shape`` and,
on the CHAIN span, ``ragarbiter.pipeline`` and ``ragarbiter.stages``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ragarbiter.errors import require

require("opentelemetry.trace", "otel", "The OpenTelemetry exporter (ragarbiter.adapters.otel)")
require("openinference.semconv.trace", "otel", "The OpenTelemetry exporter (ragarbiter.adapters.otel)")

from openinference.semconv.trace import (  # noqa: E402
    DocumentAttributes,
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    RerankerAttributes,
    SpanAttributes,
)
from opentelemetry import trace as otel_trace  # noqa: E402

from ragarbiter import __version__  # noqa: E402
from ragarbiter.events import (  # noqa: E402
    ConflictDetected,
    Event,
    EventSink,
    PassageDropped,
    PassageFlagged,
    PassagesRetrieved,
    SoftPromptBuilt,
    StageTimed,
)
from ragarbiter.stage import Pipeline, Stage  # noqa: E402
from ragarbiter.types import Context  # noqa: E402

__all__ = [
    "ATTR_CONFLICT",
    "ATTR_DROPPED",
    "ATTR_FLAGGED",
    "ATTR_N_IN",
    "ATTR_N_OUT",
    "ATTR_PIPELINE",
    "ATTR_REORDERED",
    "ATTR_RETRIEVAL_MODE",
    "ATTR_SOFT_PROMPT_SHAPE",
    "ATTR_STAGE",
    "ATTR_STAGES",
    "EVENT_PREFIX",
    "OpenInferenceSink",
    "TracedPipeline",
    "traced",
]

# Attribute names OpenInference has no convention for.
ATTR_STAGE = "ragarbiter.stage"
ATTR_N_IN = "ragarbiter.n_in"
ATTR_N_OUT = "ragarbiter.n_out"
ATTR_REORDERED = "ragarbiter.reordered"
ATTR_DROPPED = "ragarbiter.dropped"
ATTR_FLAGGED = "ragarbiter.flagged"
ATTR_CONFLICT = "ragarbiter.conflict"
ATTR_RETRIEVAL_MODE = "ragarbiter.retrieval.mode"
ATTR_SOFT_PROMPT_SHAPE = "ragarbiter.soft_prompt.shape"
ATTR_PIPELINE = "ragarbiter.pipeline"
ATTR_STAGES = "ragarbiter.stages"
EVENT_PREFIX = "ragarbiter."

_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
_JSON = OpenInferenceMimeTypeValues.JSON.value
_TEXT = OpenInferenceMimeTypeValues.TEXT.value
# Event fields that the span event already says (its name and timestamp) or the span does (stage).
_EVENT_SKIP = frozenset({"event", "stage", "time"})


@dataclass
class _Request:
    """What the CHAIN span of one request learns from its stages."""

    sink: int
    query: str | None
    stages: list[str] = field(default_factory=list)
    passages_out: tuple[str, ...] | None = None
    scores_out: tuple[float | None, ...] = ()
    dropped: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


# Events buffered since the last StageTimed, per sink (its key), in this thread or asyncio task.
# The mapping is never mutated, only replaced, so a task that inherited it shares nothing.
_PENDING: ContextVar[Mapping[int, tuple[Event, ...]]] = ContextVar(
    "ragarbiter_otel_pending", default=MappingProxyType({})
)
# The request opened by `OpenInferenceSink.trace` in this thread or task, if any.
_REQUEST: ContextVar[_Request | None] = ContextVar("ragarbiter_otel_request", default=None)
_KEYS = itertools.count(1)


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _legal(value: Any) -> Any:
    """`value` as an OpenTelemetry attribute value, or None to leave it out.

    Scalars stay; a list of one scalar type (None-free) becomes a tuple; anything else
    (nested lists, mixed or None-holding lists, dicts) becomes a JSON string.
    """
    if value is None:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        items = list(value)
        for kind in (str, bool, int, float):
            if all(type(v) is kind for v in items):
                if kind is float and not all(math.isfinite(v) for v in items):
                    break
                return tuple(items)
    return json.dumps(value, default=str)


def _event_attributes(event: Event) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, value in event.to_dict().items():
        if key in _EVENT_SKIP:
            continue
        legal = _legal(value)
        if legal is not None:
            attrs[key] = legal
    return attrs


def _documents(
    prefix: str, ids: Sequence[str], scores: Sequence[float | None], metadata: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """OpenInference's flattened document list: ``<prefix>.{i}.document.id/score/metadata``."""
    attrs: dict[str, Any] = {}
    for i, pid in enumerate(ids):
        base = f"{prefix}.{i}."
        attrs[base + DocumentAttributes.DOCUMENT_ID] = pid
        score = scores[i] if i < len(scores) else None
        if score is not None and math.isfinite(score):
            attrs[base + DocumentAttributes.DOCUMENT_SCORE] = float(score)
        if metadata.get(pid):
            attrs[base + DocumentAttributes.DOCUMENT_METADATA] = json.dumps(metadata[pid], default=str)
    return attrs


def _passages_json(ids: Sequence[str], scores: Sequence[float | None], metadata: Mapping[str, dict]) -> str:
    rows = []
    for i, pid in enumerate(ids):
        row: dict[str, Any] = {"id": pid, "score": scores[i] if i < len(scores) else None}
        row.update(metadata.get(pid, {}))
        rows.append(row)
    return json.dumps(rows, default=str)


class OpenInferenceSink:
    """An `EventSink` that exports each stage of a run as an OpenTelemetry span (see the module doc).

    ``tracer_provider`` defaults to the global one (`opentelemetry.trace.get_tracer_provider()`).
    One sink may serve many concurrent requests, on threads or asyncio tasks.
    """

    def __init__(self, tracer_provider: Any = None, *, tracer_name: str = "ragarbiter") -> None:
        self.tracer = otel_trace.get_tracer(tracer_name, __version__, tracer_provider=tracer_provider)
        self._key = next(_KEYS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self._key})"

    # -- EventSink ------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        pending = _PENDING.get()
        if not isinstance(event, StageTimed):
            _PENDING.set(MappingProxyType({**pending, self._key: (*pending.get(self._key, ()), event)}))
            return
        events = pending.get(self._key, ())
        if events:
            _PENDING.set(MappingProxyType({k: v for k, v in pending.items() if k != self._key}))
        self._stage_span(event, events)

    # -- one request ----------------------------------------------------------------------
    @contextmanager
    def trace(
        self,
        query: str | None = None,
        *,
        name: str = "ragarbiter.pipeline",
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]:
        """Open a CHAIN span for one request and make it current; yields the span.

        Stage spans emitted inside the block (in this thread or task) are its children, and
        learn the query (``reranker.query``). On exit the span gets the last stage's passages as
        ``output.value`` (JSON ``[{"id", "score"}]``) and every dropped and flagged id.
        Exceptions are recorded on the span and re-raised.
        """
        request = _Request(sink=self._key, query=query)
        attrs: dict[str, Any] = {_KIND: OpenInferenceSpanKindValues.CHAIN.value}
        if query is not None:
            attrs[SpanAttributes.INPUT_VALUE] = query
            attrs[SpanAttributes.INPUT_MIME_TYPE] = _TEXT
        for key, value in (attributes or {}).items():
            legal = _legal(value)
            if legal is not None:
                attrs[key] = legal
        request_token = _REQUEST.set(request)
        pending = _PENDING.get()
        pending_token = _PENDING.set(MappingProxyType({k: v for k, v in pending.items() if k != self._key}))
        try:
            with self.tracer.start_as_current_span(name, attributes=attrs) as span:
                try:
                    yield span
                finally:
                    span.set_attributes(self._request_attributes(request))
        finally:
            _PENDING.reset(pending_token)
            _REQUEST.reset(request_token)

    @staticmethod
    def _request_attributes(request: _Request) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if request.stages:
            attrs[ATTR_STAGES] = tuple(request.stages)
        if request.passages_out is not None:
            attrs[SpanAttributes.OUTPUT_VALUE] = _passages_json(request.passages_out, request.scores_out, {})
            attrs[SpanAttributes.OUTPUT_MIME_TYPE] = _JSON
            attrs[ATTR_N_OUT] = len(request.passages_out)
        if request.dropped:
            attrs[ATTR_DROPPED] = tuple(_unique(request.dropped))
        if request.flagged:
            attrs[ATTR_FLAGGED] = tuple(_unique(request.flagged))
        return attrs

    # -- one stage ------------------------------------------------------------------------
    def _stage_span(self, timed: StageTimed, events: Sequence[Event]) -> None:
        request = _REQUEST.get()
        if request is not None and request.sink != self._key:
            request = None
        retrieved = [e for e in events if isinstance(e, PassagesRetrieved)]
        flags = [e for e in events if isinstance(e, PassageFlagged)]
        drops = [e for e in events if isinstance(e, PassageDropped)]
        conflicts = [e for e in events if isinstance(e, ConflictDetected)]
        soft = [e for e in events if isinstance(e, SoftPromptBuilt)]
        query = request.query if request is not None and request.query is not None else None
        if query is None and retrieved:
            query = retrieved[0].query

        metadata: dict[str, dict[str, Any]] = {}
        for flag in flags:
            entry = {"label": flag.label, "score": flag.score, "reason": flag.reason, "evidence": list(flag.evidence)}
            metadata.setdefault(flag.passage_id, {}).setdefault("flags", []).append(entry)
        for conflict in conflicts:
            for pid in conflict.passage_ids:
                metadata.setdefault(pid, {})["conflict"] = conflict.reason
        for dropped in drops:
            metadata.setdefault(dropped.passage_id, {})["dropped"] = dropped.reason
        flagged = _unique([f.passage_id for f in flags] + [pid for c in conflicts for pid in c.passage_ids])
        dropped_ids = _unique([d.passage_id for d in drops])
        changed = tuple(timed.passages_out) != tuple(timed.passages_in)
        kept, given = set(timed.passages_out), set(timed.passages_in)
        reordered = [p for p in timed.passages_in if p in kept] != [p for p in timed.passages_out if p in given]

        attrs: dict[str, Any] = {
            ATTR_STAGE: timed.stage,
            ATTR_N_IN: timed.n_in,
            ATTR_N_OUT: timed.n_out,
            ATTR_REORDERED: reordered,
        }
        if dropped_ids:
            attrs[ATTR_DROPPED] = tuple(dropped_ids)
        if flagged:
            attrs[ATTR_FLAGGED] = tuple(flagged)
        if conflicts:
            attrs[ATTR_CONFLICT] = True
        if soft:
            attrs[ATTR_SOFT_PROMPT_SHAPE] = tuple(int(n) for n in soft[-1].shape)

        if retrieved:
            attrs[_KIND] = OpenInferenceSpanKindValues.RETRIEVER.value
            attrs[SpanAttributes.INPUT_VALUE] = query or retrieved[0].query
            attrs[SpanAttributes.INPUT_MIME_TYPE] = _TEXT
            modes = _unique([e.mode for e in retrieved if e.mode])
            if modes:
                attrs[ATTR_RETRIEVAL_MODE] = modes[0] if len(modes) == 1 else ",".join(modes)
            ids = [pid for e in retrieved for pid in e.passage_ids]
            scores = [s for e in retrieved for s in (*e.scores, *[None] * (len(e.passage_ids) - len(e.scores)))]
            attrs.update(_documents(SpanAttributes.RETRIEVAL_DOCUMENTS, ids, scores, metadata))
        elif changed:
            attrs[_KIND] = OpenInferenceSpanKindValues.RERANKER.value
            if query is not None:
                attrs[RerankerAttributes.RERANKER_QUERY] = query
                attrs[SpanAttributes.INPUT_VALUE] = query
                attrs[SpanAttributes.INPUT_MIME_TYPE] = _TEXT
            attrs.update(
                _documents(RerankerAttributes.RERANKER_INPUT_DOCUMENTS, timed.passages_in, timed.scores_in, metadata)
            )
            attrs.update(
                _documents(RerankerAttributes.RERANKER_OUTPUT_DOCUMENTS, timed.passages_out, timed.scores_out, metadata)
            )
        else:
            only_builds = bool(soft) and not flags and not conflicts and not drops
            kind = OpenInferenceSpanKindValues.CHAIN if only_builds else OpenInferenceSpanKindValues.GUARDRAIL
            attrs[_KIND] = kind.value
            attrs[SpanAttributes.INPUT_VALUE] = _passages_json(timed.passages_in, timed.scores_in, {})
            attrs[SpanAttributes.INPUT_MIME_TYPE] = _JSON
            attrs[SpanAttributes.OUTPUT_VALUE] = _passages_json(timed.passages_out, timed.scores_out, metadata)
            attrs[SpanAttributes.OUTPUT_MIME_TYPE] = _JSON

        end = _ns(timed.time)
        start = end - max(0, _ns(timed.seconds))
        span = self.tracer.start_span(f"ragarbiter.{timed.stage}", start_time=start, attributes=attrs)
        try:
            for event in events:
                if isinstance(event, PassagesRetrieved):  # already the span's retrieval.documents
                    continue
                stamp = min(max(_ns(event.time), start), end)
                span.add_event(EVENT_PREFIX + event.kind, attributes=_event_attributes(event), timestamp=stamp)
        finally:
            span.end(end_time=end)

        if request is not None:
            request.stages.append(timed.stage)
            request.passages_out = tuple(timed.passages_out)
            request.scores_out = tuple(timed.scores_out)
            request.dropped.extend(dropped_ids)
            request.flagged.extend(flagged)


class TracedPipeline(Pipeline):
    """A Pipeline whose every run (``run``, ``arun``, ``batch``, ``abatch``, use as a stage) is one
    CHAIN span ``ragarbiter.<name>`` with a span per stage under it (see `traced`)."""

    def __init__(
        self,
        stages: Sequence[Stage],
        sinks: Sequence[EventSink] = (),
        name: str = "pipeline",
        *,
        sink: OpenInferenceSink,
    ) -> None:
        sinks = list(sinks)
        if not any(s is sink for s in sinks):
            sinks.append(sink)
        super().__init__(stages, sinks, name)
        self.sink = sink

    def with_sinks(self, *sinks: EventSink) -> TracedPipeline:
        return TracedPipeline(self.stages, [*self.sinks, *sinks], self.name, sink=self.sink)

    def without_retrieval(self) -> TracedPipeline:
        kept = [s for s in self.stages if not getattr(s, "retrieves", False)]
        return TracedPipeline(kept, self.sinks, self.name, sink=self.sink)

    def _span(self, context: Context) -> Any:
        return self.sink.trace(context.query, name=f"ragarbiter.{self.name}", attributes={ATTR_PIPELINE: self.name})

    def _run_with(self, context: Context, extra_sinks: Sequence[EventSink]) -> Context:
        with self._span(context):
            return super()._run_with(context, [s for s in extra_sinks if s is not self.sink])

    async def _arun_with(self, context: Context, extra_sinks: Sequence[EventSink]) -> Context:
        with self._span(context):
            return await super()._arun_with(context, [s for s in extra_sinks if s is not self.sink])

    def __repr__(self) -> str:
        return f"traced({super().__repr__()})"


def traced(
    pipeline: Pipeline,
    tracer_provider: Any = None,
    *,
    tracer_name: str = "ragarbiter",
    sink: OpenInferenceSink | None = None,
) -> TracedPipeline:
    """`pipeline` with a CHAIN span per request around its stage spans.

    The CHAIN span is a child of the span current in the caller (so it nests under a LangChain or
    LlamaIndex OpenInference span); the stage spans are its children. ``batch`` runs queries on
    worker threads, which do not inherit the caller's OpenTelemetry context: there each request's
    CHAIN span is a root. Pass ``sink`` to share one `OpenInferenceSink` (its tracer) between
    pipelines; otherwise one is made from ``tracer_provider`` (default: the global provider).
    """
    if sink is None:
        sink = OpenInferenceSink(tracer_provider, tracer_name=tracer_name)
    return TracedPipeline(pipeline.stages, pipeline.sinks, pipeline.name, sink=sink)
