"""LlamaIndex adapter: ragarbiter as a retriever, a node postprocessor, and a retriever Stage.

>>> from ragarbiter.adapters.llama_index import ArbiterPostprocessor           # doctest: +SKIP
>>> engine = index.as_query_engine(node_postprocessors=[ArbiterPostprocessor()])  # doctest: +SKIP

Every decision is sent to LlamaIndex instrumentation as a `BaseEvent` subclass
(`PassageFlaggedEvent`, `PassageDroppedEvent`, ...) with `dispatcher.event` inside the
adapter method's span, so handlers on the root dispatcher see each one as it is made.
Each run is also reported to the legacy `CallbackManager` as a `CBEventType.RERANKING`
event whose end payload holds the kept nodes (`EventPayload.NODES`) and the decisions
(`EventPayload.ADDITIONAL_KWARGS`). Scores stay in `NodeWithScore.score`; judgements go
to `node.metadata["ragarbiter"]` (hidden from the LLM and the embedder).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ragarbiter.errors import InvalidInputError, require

require("llama_index.core", "llamaindex", "The LlamaIndex adapter (ragarbiter.adapters.llama_index)")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.bridge.pydantic import Field, PrivateAttr  # noqa: E402
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.events import BaseEvent  # noqa: E402
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle  # noqa: E402

from ragarbiter.config import RetrieverConfig, check_k, check_mode  # noqa: E402
from ragarbiter.convert import node_to_passage, passage_to_node  # noqa: E402
from ragarbiter.events import Event  # noqa: E402
from ragarbiter.stage import Pipeline  # noqa: E402
from ragarbiter.types import JUDGEMENTS_KEY, Context, Passage  # noqa: E402

from ._common import ExternalRetrieverStage, LazyPipeline, call_options  # noqa: E402

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)

__all__ = [
    "ArbiterEvent",
    "CareLLM",
    "CarePostprocessor",
    "ArbiterPostprocessor",
    "ArbiterRetriever",
    "LlamaIndexEventSink",
    "LlamaIndexRetrieverStage",
    "context_to_nodes",
]


# -- instrumentation events --------------------------------------------------------------
class ArbiterEvent(BaseEvent):
    """One ragarbiter decision. `kind` and `stage` as in ragarbiter; `data` is `Event.to_dict()`."""

    kind: str
    stage: str
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def class_name(cls) -> str:
        return "ArbiterEvent"


class PassagesRetrievedEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "PassagesRetrievedEvent"


class PassageFlaggedEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "PassageFlaggedEvent"


class PassageDroppedEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "PassageDroppedEvent"


class ConflictDetectedEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "ConflictDetectedEvent"


class ContextReorderedEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "ContextReorderedEvent"


class SoftPromptBuiltEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "SoftPromptBuiltEvent"


class StageTimedEvent(ArbiterEvent):
    @classmethod
    def class_name(cls) -> str:
        return "StageTimedEvent"


EVENT_CLASSES: dict[str, type[ArbiterEvent]] = {
    "passages_retrieved": PassagesRetrievedEvent,
    "passage_flagged": PassageFlaggedEvent,
    "passage_dropped": PassageDroppedEvent,
    "conflict_detected": ConflictDetectedEvent,
    "context_reordered": ContextReorderedEvent,
    "soft_prompt_built": SoftPromptBuiltEvent,
    "stage_timed": StageTimedEvent,
}


def to_llama_event(event: Event) -> ArbiterEvent:
    """The instrumentation event for a ragarbiter event (unknown kinds use `ArbiterEvent`)."""
    cls = EVENT_CLASSES.get(event.kind, ArbiterEvent)
    return cls(kind=event.kind, stage=event.stage, data=event.to_dict())


class LlamaIndexEventSink:
    """Sends each ragarbiter event to LlamaIndex instrumentation, and keeps its dict."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def emit(self, event: Event) -> None:
        self.records.append(event.to_dict())
        dispatcher.event(to_llama_event(event))

    async def aemit(self, event: Event) -> None:
        self.records.append(event.to_dict())
        await dispatcher.aevent(to_llama_event(event))


# -- conversions -------------------------------------------------------------------------
def _judged_node(original: NodeWithScore, passage: Passage, context: Context) -> NodeWithScore:
    """A copy of the caller's node (type, relationships, templates kept) with the judgements."""
    node = original.node.model_copy()
    metadata = {k: v for k, v in original.node.metadata.items() if k != JUDGEMENTS_KEY}
    judgements = context.judgements_for(passage.id)
    if judgements:
        metadata[JUDGEMENTS_KEY] = [j.to_dict() for j in judgements]
    node.metadata = metadata
    for attr in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
        keys = list(getattr(node, attr, []))
        setattr(node, attr, keys if JUDGEMENTS_KEY in keys else [*keys, JUDGEMENTS_KEY])
    return NodeWithScore(node=node, score=passage.score)


def context_to_nodes(context: Context, originals: dict[str, NodeWithScore] | None = None) -> list[NodeWithScore]:
    """The Context's passages, in order, as nodes; a caller's own nodes are reused when given."""
    originals = originals or {}
    out = []
    for p in context.passages:
        if p.id in originals:
            out.append(_judged_node(originals[p.id], p, context))
        else:
            out.append(passage_to_node(p, context.judgements_for(p.id)))
    return out


@contextmanager
def _reranking_event(callback_manager: CallbackManager, query: str, nodes: Sequence[NodeWithScore]) -> Iterator[Any]:
    """The legacy callback event around one ragarbiter run; yields `finish(context, nodes, sink)`."""
    payload = {EventPayload.QUERY_STR: query, EventPayload.NODES: list(nodes)}
    with callback_manager.event(CBEventType.RERANKING, payload=payload) as event:

        def finish(context: Context, kept: list[NodeWithScore], sink: LlamaIndexEventSink) -> None:
            decisions = {"ragarbiter": sink.records, "dropped": [d.to_dict() for d in context.dropped]}
            event.on_end(payload={EventPayload.NODES: kept, EventPayload.ADDITIONAL_KWARGS: decisions})

        yield finish


def _query_of(query_bundle: QueryBundle | None, owner: str) -> str:
    if query_bundle is None or not query_bundle.query_str:
        msg = (
            f"{owner} needs the query to judge passages against. Pass "
            "query_str='...' or query_bundle=QueryBundle('...')."
        )
        raise InvalidInputError(msg)
    return query_bundle.query_str


# -- retriever ---------------------------------------------------------------------------
class ArbiterRetriever(BaseRetriever):
    """A LlamaIndex retriever that runs a ragarbiter Pipeline (retrieval, then judgement).

    With no arguments it runs the default pipeline over the default store, the same one
    `ragarbiter query` uses. `store=` runs the default stages over another `QdrantStore`;
    `pipeline=` runs any Pipeline that retrieves (e.g. one that starts with
    `LlamaIndexRetrieverStage(index.as_retriever())`).
    """

    def __init__(
        self,
        *,
        pipeline: Pipeline | None = None,
        store: Any = None,
        k: int = RetrieverConfig.k,
        mode: str | None = None,
        filter: Any = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        check_k(k)
        if mode is not None:
            check_mode(mode)
        self.k, self.mode, self.filter = k, mode, filter
        self._lazy = LazyPipeline(pipeline, store, retrieve=True, owner="ArbiterRetriever")

    def _options(self) -> dict[str, Any]:
        return call_options({"k": self.k, "mode": self.mode, "filter": self.filter}, {}, "ArbiterRetriever")

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query, sink = _query_of(query_bundle, "ArbiterRetriever"), LlamaIndexEventSink()
        with _reranking_event(self.callback_manager, query, []) as finish:
            context = self._lazy.get().run(query, sinks=[sink], **self._options())
            nodes = context_to_nodes(context)
            finish(context, nodes, sink)
        return nodes

    @dispatcher.span
    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query, sink = _query_of(query_bundle, "ArbiterRetriever"), LlamaIndexEventSink()
        with _reranking_event(self.callback_manager, query, []) as finish:
            context = await self._lazy.get().arun(query, sinks=[sink], **self._options())
            nodes = context_to_nodes(context)
            finish(context, nodes, sink)
        return nodes


# -- postprocessor -----------------------------------------------------------------------
class ArbiterPostprocessor(BaseNodePostprocessor):
    """Runs ragarbiter's assess and sort stages on nodes from any retriever or query engine.

    With no arguments it runs the default post-retrieval stages; `pipeline=` runs the
    post-retrieval stages of another Pipeline (its retrieval stages are skipped). The
    caller's node objects are kept (copied), with their scores and metadata.
    """

    pipeline: Any = Field(
        default=None, exclude=True, description="ragarbiter Pipeline whose post-retrieval stages to run."
    )

    _lazy: LazyPipeline = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lazy = LazyPipeline(self.pipeline, None, retrieve=False, owner="ArbiterPostprocessor")

    @classmethod
    def class_name(cls) -> str:
        return "ArbiterPostprocessor"

    def _prepare(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None):
        query = _query_of(query_bundle, "ArbiterPostprocessor")
        originals: dict[str, NodeWithScore] = {}
        passages = []
        for nws in nodes:
            passage = node_to_passage(nws)
            originals.setdefault(passage.id, nws)
            passages.append(passage)
        return query, passages, originals

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, passages, originals = self._prepare(nodes, query_bundle)
        sink = LlamaIndexEventSink()
        with _reranking_event(self.callback_manager, query, nodes) as finish:
            context = self._lazy.get().run(query, passages=passages, sinks=[sink])
            kept = context_to_nodes(context, originals)
            finish(context, kept, sink)
        return kept

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, passages, originals = self._prepare(nodes, query_bundle)
        sink = LlamaIndexEventSink()
        with _reranking_event(self.callback_manager, query, nodes) as finish:
            context = await self._lazy.get().arun(query, passages=passages, sinks=[sink])
            kept = context_to_nodes(context, originals)
            finish(context, kept, sink)
        return kept


# -- a Stage over any LlamaIndex retriever ------------------------------------------------
class LlamaIndexRetrieverStage(ExternalRetrieverStage):
    """A ragarbiter Stage over any LlamaIndex retriever, so an existing index feeds a Pipeline.

    >>> pipe = Pipeline([LlamaIndexRetrieverStage(index.as_retriever(similarity_top_k=8)),
    ...                  *default_post_stages()])                                # doctest: +SKIP

    At most `k` nodes are kept (the per-call `k`, else the constructor's, else all).
    """

    framework = "llama_index"

    def __init__(self, retriever: Any, *, k: int | None = None) -> None:
        if not hasattr(retriever, "retrieve") or not hasattr(retriever, "aretrieve"):
            msg = (
                f"LlamaIndexRetrieverStage needs a LlamaIndex retriever, got {type(retriever).__name__}. "
                f"Pass e.g. index.as_retriever()."
            )
            raise InvalidInputError(msg)
        super().__init__(retriever, k=k)

    def _fetch(self, context: Context) -> list[Passage]:
        return [node_to_passage(n) for n in self.retriever.retrieve(context.query)]

    async def _afetch(self, context: Context) -> list[Passage]:
        return [node_to_passage(n) for n in await self.retriever.aretrieve(context.query)]


# -- CARE: a postprocessor that builds the soft prompt, and the LLM that answers from it --------------
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata  # noqa: E402
from llama_index.core.llms.callbacks import llm_completion_callback  # noqa: E402
from llama_index.core.llms.custom import CustomLLM  # noqa: E402


class CarePostprocessor(BaseNodePostprocessor):
    """Encodes the retrieved nodes into CARE's soft prompt and hands it to the paired `CareLLM`.

    The nodes pass through unchanged (so citations and sources still work); the LLM ignores
    the raw context text in its prompt and answers from the soft prompt instead.
    """

    generator: Any = Field(exclude=True, description="a ragarbiter.assessors.care.CareGenerator")

    @classmethod
    def class_name(cls) -> str:
        return "CarePostprocessor"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query_of(query_bundle, "CarePostprocessor")
        texts = [n.node.get_content() for n in nodes if n.node.get_content().strip()]
        self.generator.remember(query, self.generator.soft_prompt(texts) if texts else None)
        return nodes


class CareLLM(CustomLLM):
    """CARE's base LM as a LlamaIndex LLM, paired with `CarePostprocessor`:

    generator = CareGenerator.from_folders()   # the shipped assessor on the default generator
    engine = index.as_query_engine(llm=CareLLM(generator=generator),
                                   node_postprocessors=[CarePostprocessor(generator=generator)])
    """

    generator: Any = Field(exclude=True, description="a ragarbiter.assessors.care.CareGenerator")

    @classmethod
    def class_name(cls) -> str:
        return "CareLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="ragarbiter-care", is_chat_model=False, num_output=self.generator.max_new_tokens)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        query, soft = self.generator.recall(prompt)
        if query is None:
            logger.warning("CareLLM: no soft prompt from CarePostprocessor matches this prompt; answering closed-book")
        text = self.generator.answer(query or prompt, soft)
        return CompletionResponse(text=text, additional_kwargs={"soft_prompt": soft is not None})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)  # now, not when the stream is read

        def one() -> CompletionResponseGen:
            yield CompletionResponse(
                text=response.text, delta=response.text, additional_kwargs=response.additional_kwargs
            )

        return one()
