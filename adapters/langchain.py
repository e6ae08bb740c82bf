"""LangChain adapter: ragarbiter as a retriever, a document compressor, and a callback handler.

>>> from ragarbiter.adapters.langchain import ArbiterRetriever       # doctest: +SKIP
>>> docs = ArbiterRetriever(k=5).invoke("who built the lighthouse?")  # doctest: +SKIP

Every decision a stage makes is dispatched as a LangChain custom event named
``ragarbiter.<event>`` (e.g. ``ragarbiter.passage_flagged``) while the chain runs, so it
shows up in ``astream_events(version="v2")`` as ``on_custom_event`` and in any callback
handler's ``on_custom_event``. Scores go to ``metadata["relevance_score"]`` and a passage's
judgements to ``metadata["ragarbiter"]``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from ragarbiter.errors import InvalidInputError, require

require("langchain_core", "langchain", "The LangChain adapter (ragarbiter.adapters.langchain)")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    BaseCallbackHandler,
    CallbackManagerForRetrieverRun,
    Callbacks,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.documents import BaseDocumentCompressor, Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnableConfig, RunnableSerializable  # noqa: E402
from langchain_core.runnables.config import patch_config  # noqa: E402
from pydantic import ConfigDict, Field, PrivateAttr  # noqa: E402

from ragarbiter.config import RetrieverConfig, check_k, check_mode  # noqa: E402
from ragarbiter.convert import document_to_passage, passage_to_document  # noqa: E402
from ragarbiter.events import Event  # noqa: E402
from ragarbiter.types import Context, Passage  # noqa: E402

from ._common import ExternalRetrieverStage, LazyPipeline, call_options  # noqa: E402

logger = logging.getLogger(__name__)

EVENT_PREFIX = "ragarbiter."
# Context option through which the retriever's callbacks reach a wrapped LangChain retriever.
CALLBACKS_OPTION = "langchain_callbacks"

__all__ = [
    "EVENT_PREFIX",
    "CareChatModel",
    "care_messages",
    "ArbiterCallbackHandler",
    "ArbiterCompressor",
    "ArbiterRetriever",
    "LangChainEventSink",
    "LangChainRetrieverStage",
    "context_to_documents",
]


class LangChainEventSink:
    """Forwards ragarbiter events to LangChain callbacks as ``ragarbiter.<kind>`` custom events.

    `config` must carry the callbacks of a running LangChain run (e.g. a run manager's
    `get_child()`), which is what makes the events part of that run.
    """

    def __init__(self, config: RunnableConfig) -> None:
        self.config = config

    def emit(self, event: Event) -> None:
        dispatch_custom_event(EVENT_PREFIX + event.kind, event.to_dict(), config=self.config)

    async def aemit(self, event: Event) -> None:
        await adispatch_custom_event(EVENT_PREFIX + event.kind, event.to_dict(), config=self.config)


def context_to_documents(context: Context) -> list[Document]:
    """The Context's passages, in order, as Documents carrying scores and judgements."""
    return [passage_to_document(p, context.judgements_for(p.id)) for p in context.passages]


class ArbiterRetriever(BaseRetriever):
    """A LangChain retriever that runs a ragarbiter Pipeline (retrieval, then judgement).

    With no arguments it runs the default pipeline over the default store, the same one
    `ragarbiter query` uses. `store=` runs the default stages over another `QdrantStore`;
    `pipeline=` runs any Pipeline that retrieves (e.g. one that starts with
    `LangChainRetrieverStage(your_retriever)`). `k`, `mode` and `filter` can also be
    given per call: ``retriever.invoke(query, k=3)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any = Field(default=None, exclude=True)
    """A ragarbiter Pipeline with a retrieval stage (default: the default pipeline)."""
    store: Any = Field(default=None, exclude=True)
    """A ragarbiter QdrantStore for the default pipeline (default: the per-user store)."""
    k: int = RetrieverConfig.k
    """How many passages to retrieve."""
    mode: str | None = None
    """Search mode for the Qdrant retriever: hybrid, dense or sparse (default: hybrid)."""
    filter: Any = None
    """Metadata filter, e.g. ``{"topic": "lighthouse"}``."""

    _lazy: LazyPipeline = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        # Checked here, not in a validator, so the error is ragarbiter's (pydantic would wrap it).
        if "k" in kwargs:
            check_k(kwargs["k"])
        if kwargs.get("mode") is not None:
            check_mode(kwargs["mode"])
        super().__init__(**kwargs)
        self._lazy = LazyPipeline(self.pipeline, self.store, retrieve=True, owner="ArbiterRetriever")

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        overrides.pop("verbose", None)  # LangChain passes it through invoke's kwargs
        defaults = {"k": self.k, "mode": self.mode, "filter": self.filter}
        return call_options(defaults, overrides, "ArbiterRetriever")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        child = run_manager.get_child()
        context = self._lazy.get().run(
            query, sinks=[LangChainEventSink({"callbacks": child})], **{CALLBACKS_OPTION: child}, **options
        )
        return context_to_documents(context)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        child = run_manager.get_child()
        context = await self._lazy.get().arun(
            query, sinks=[LangChainEventSink({"callbacks": child})], **{CALLBACKS_OPTION: child}, **options
        )
        return context_to_documents(context)


class ArbiterCompressor(BaseDocumentCompressor, RunnableSerializable[dict, list[Document]]):
    """Runs ragarbiter's assess and sort stages on documents from any LangChain retriever.

    Use it inside ``ContextualCompressionRetriever(base_compressor=ArbiterCompressor(),
    base_retriever=...)``, or compose it directly:
    ``{"documents": retriever, "query": RunnablePassthrough()} | ArbiterCompressor()``.
    With no arguments it runs the default post-retrieval stages; `pipeline=` runs the
    post-retrieval stages of another Pipeline (its retrieval stages are skipped).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any = Field(default=None, exclude=True)
    """A ragarbiter Pipeline whose post-retrieval stages to run (default: the default ones)."""

    _lazy: LazyPipeline = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lazy = LazyPipeline(self.pipeline, None, retrieve=False, owner="ArbiterCompressor")

    # -- BaseDocumentCompressor ---------------------------------------------------------
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return self.invoke({"documents": documents, "query": query}, config={"callbacks": callbacks})

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return await self.ainvoke({"documents": documents, "query": query}, config={"callbacks": callbacks})

    # -- Runnable: input {"documents": [...], "query": "..."} ----------------------------
    def invoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        return self._call_with_config(self._compress, input, config)

    async def ainvoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        return await self._acall_with_config(self._acompress, input, config)

    def _compress(self, input: dict, run_manager: Any, config: RunnableConfig) -> list[Document]:
        query, passages = _compressor_input(input)
        sink = LangChainEventSink(patch_config(config, callbacks=run_manager.get_child()))
        return context_to_documents(self._lazy.get().run(query, passages=passages, sinks=[sink]))

    async def _acompress(self, input: dict, run_manager: Any, config: RunnableConfig) -> list[Document]:
        query, passages = _compressor_input(input)
        sink = LangChainEventSink(patch_config(config, callbacks=run_manager.get_child()))
        return context_to_documents(await self._lazy.get().arun(query, passages=passages, sinks=[sink]))


def _compressor_input(value: Any) -> tuple[str, list[Passage]]:
    if not isinstance(value, Mapping) or "documents" not in value or "query" not in value:
        shown = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        msg = (
            f"ArbiterCompressor takes {{'documents': [...], 'query': '...'}}, got {shown}. Compose it as "
            f"{{'documents': retriever, 'query': RunnablePassthrough()}} | ArbiterCompressor()."
        )
        raise InvalidInputError(msg)
    return value["query"], [document_to_passage(d) for d in value["documents"]]


class LangChainRetrieverStage(ExternalRetrieverStage):
    """A ragarbiter Stage over any LangChain retriever, so an existing store feeds a Pipeline.

    >>> pipe = Pipeline([LangChainRetrieverStage(vectorstore.as_retriever()),
    ...                  *default_post_stages()])                         # doctest: +SKIP

    The wrapped retriever runs as a child of the calling LangChain run when there is one.
    At most `k` documents are kept (the per-call `k`, else the constructor's, else all).
    """

    framework = "langchain"

    def __init__(self, retriever: Any, *, k: int | None = None) -> None:
        if not hasattr(retriever, "invoke") or not hasattr(retriever, "ainvoke"):
            msg = (
                f"LangChainRetrieverStage needs a LangChain retriever (a Runnable from query to Documents), "
                f"got {type(retriever).__name__}. Pass e.g. vectorstore.as_retriever()."
            )
            raise InvalidInputError(msg)
        super().__init__(retriever, k=k)

    def _config(self, context: Context) -> RunnableConfig | None:
        callbacks = context.options.get(CALLBACKS_OPTION)
        return {"callbacks": callbacks} if callbacks is not None else None

    def _fetch(self, context: Context) -> list[Passage]:
        return [document_to_passage(d) for d in self.retriever.invoke(context.query, config=self._config(context))]

    async def _afetch(self, context: Context) -> list[Passage]:
        docs = await self.retriever.ainvoke(context.query, config=self._config(context))
        return [document_to_passage(d) for d in docs]


class ArbiterCallbackHandler(BaseCallbackHandler):
    """Records ragarbiter's custom events: an audit JSONL file, counts per label, stage timings.

    Pass it in the run config: ``chain.invoke(q, config={"callbacks": [handler]})``.
    """

    run_inline = True  # cheap and ordered: run in the calling thread / task

    def __init__(self, audit_path: str | Path | None = None) -> None:
        self.audit_path = Path(audit_path) if audit_path is not None else None
        if self.audit_path is not None:
            self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        self.label_counts: Counter[str] = Counter()
        self.dropped: list[dict[str, Any]] = []
        self.stage_seconds: dict[str, list[float]] = defaultdict(list)
        self.n_events = 0
        self._lock = threading.Lock()

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not name.startswith(EVENT_PREFIX) or not isinstance(data, Mapping):
            return
        kind = name[len(EVENT_PREFIX) :]
        with self._lock:
            self.n_events += 1
            if kind == "passage_flagged":
                self.label_counts[str(data.get("label"))] += 1
            elif kind == "passage_dropped":
                self.dropped.append(dict(data))
            elif kind == "stage_timed":
                self.stage_seconds[str(data.get("stage"))].append(float(data.get("seconds", 0.0)))
            if self.audit_path is not None:
                record = {"run_id": str(run_id), "name": name, **data}
                with self.audit_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, default=str) + "\n")

    def stage_timings(self) -> dict[str, dict[str, float]]:
        """Per stage: number of runs, total and mean seconds."""
        with self._lock:
            return {
                stage: {"runs": len(s), "total_s": sum(s), "mean_s": sum(s) / len(s)}
                for stage, s in self.stage_seconds.items()
                if s
            }

    def summary(self) -> dict[str, Any]:
        with self._lock:
            labels, dropped, n = dict(self.label_counts), len(self.dropped), self.n_events
        return {"events": n, "labels": labels, "dropped": dropped, "stages": self.stage_timings()}


# -- CARE as a chat model --------------------------------------------------------------------------------
from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402

DOCUMENTS_KWARG = "documents"


def _document_texts(documents) -> list[str]:
    return [d.page_content if isinstance(d, Document) else str(d) for d in documents]


def care_messages(inputs: Mapping[str, Any]) -> list[BaseMessage]:
    """``{"question": str, "documents": [Document | str]}`` -> the message `CareChatModel` reads."""
    if not isinstance(inputs, Mapping) or "question" not in inputs:
        shown = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
        raise InvalidInputError(f"care_messages takes {{'question': ..., 'documents': [...]}}, got {shown}.")
    texts = _document_texts(inputs.get("documents") or [])
    return [HumanMessage(content=str(inputs["question"]), additional_kwargs={DOCUMENTS_KWARG: texts})]


class CareChatModel(BaseChatModel):
    """CARE behind LangChain's chat-model interface.

    The last human message is the question, and its ``additional_kwargs["documents"]`` (or a
    ``documents=`` call option) are the retrieved passages. The assessor turns the passages into
    a soft prompt, and the base LM answers from it without ever reading their tokens:

        llm = CareChatModel.from_folders()   # the shipped assessor on the default generator
        chain = {"documents": retriever, "question": RunnablePassthrough()} | RunnableLambda(care_messages) | llm
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any = Field(exclude=True)
    """A `ragarbiter.assessors.care.CareGenerator`."""

    @classmethod
    def from_folders(cls, care_dir: str | None = None, base_model: str | None = None, **options: Any) -> CareChatModel:
        """`care_dir` from `ragarbiter train care` (default: the shipped one) on `base_model` (default: the
        one it was trained on)."""
        from ragarbiter.assessors.care import CareGenerator

        return cls(generator=CareGenerator.from_folders(care_dir, base_model, **options))

    @property
    def _llm_type(self) -> str:
        return "ragarbiter-care"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        from ragarbiter.assessors.care import CareAssessor

        human = [m for m in messages if isinstance(m, HumanMessage)]
        if not human:
            raise InvalidInputError("CareChatModel needs a human message holding the question.")
        question = str(human[-1].content)
        documents = kwargs.get(DOCUMENTS_KWARG, human[-1].additional_kwargs.get(DOCUMENTS_KWARG, []))
        passages = [Passage(text) for text in _document_texts(documents)]
        context = Context.for_query(question, passages)
        if passages:
            context = CareAssessor(generator=self.generator)(context)
            if run_manager is not None:  # the decision goes to this LLM run's handlers as a custom event
                from langchain_core.callbacks.manager import handle_event

                for event in context.trace:
                    handle_event(
                        run_manager.handlers,
                        "on_custom_event",
                        "ignore_custom_event",
                        EVENT_PREFIX + event.kind,
                        event.to_dict(),
                        run_id=run_manager.run_id,
                        tags=run_manager.tags,
                        metadata=run_manager.metadata,
                    )
        text = self.generator.answer(context)
        for token in stop or []:
            text = text.split(token)[0]
        shape = list(context.soft_prompt.shape) if context.soft_prompt is not None else None
        message = AIMessage(content=text, response_metadata={"soft_prompt_shape": shape, "passages": len(passages)})
        return ChatResult(generations=[ChatGeneration(message=message)])
