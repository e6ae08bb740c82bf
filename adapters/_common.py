"""Framework-free pieces the LangChain and LlamaIndex adapters share.

- Which Pipeline an adapter runs (the default one unless given), built lazily and cached.
- Validation of per-call options (`k`, `mode`, `filter`).
- A base Stage for wrapping a framework retriever, so a user's own store feeds a Pipeline.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ragarbiter.config import StoreConfig, check_k, check_mode
from ragarbiter.errors import ConfigError
from ragarbiter.events import PassagesRetrieved
from ragarbiter.registry import default_pipeline
from ragarbiter.stage import Pipeline, Stage
from ragarbiter.types import Context, Passage

CALL_OPTIONS = ("k", "mode", "filter")

_DEFAULTS: dict[tuple[str, bool], Pipeline] = {}
_DEFAULTS_LOCK = threading.Lock()


def shared_default_pipeline(*, retrieve: bool) -> Pipeline:
    """The default pipeline, one per process (and per default store folder).

    The embedded store allows one client per folder, so every no-argument adapter in a
    process must share one store; the default stages load their models once.
    """
    location = StoreConfig().location if retrieve else ""
    key = (location, retrieve)
    with _DEFAULTS_LOCK:
        if key not in _DEFAULTS:
            _DEFAULTS[key] = default_pipeline(retrieve=retrieve)
        return _DEFAULTS[key]


@atexit.register
def _close_shared_stores() -> None:
    """Close the default stores' clients while the interpreter can still do it cleanly."""
    with _DEFAULTS_LOCK:
        pipelines = list(_DEFAULTS.values())
    for pipeline in pipelines:
        for stage in pipeline.stages:
            close = getattr(getattr(stage, "store", None), "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # best effort at exit  # noqa: BLE001
                    pass


def has_retrieval(pipeline: Pipeline) -> bool:
    return any(getattr(stage, "retrieves", False) for stage in pipeline.stages)


class LazyPipeline:
    """Resolves which Pipeline an adapter runs, on first use, once (thread-safe).

    `retrieve=True`: the given pipeline (which must retrieve) or the default one over
    `store`. `retrieve=False`: only the post-retrieval stages of the given pipeline, or
    the default post-retrieval stages.
    """

    def __init__(self, pipeline: Pipeline | None, store: Any, *, retrieve: bool, owner: str) -> None:
        if pipeline is not None and store is not None:
            msg = (
                f"{owner} got both pipeline= and store=. Pass one: a store to run the default "
                f"stages over it, or a full pipeline."
            )
            raise ConfigError(msg)
        if pipeline is not None and not isinstance(pipeline, Pipeline):
            msg = (
                f"{owner}: pipeline must be a ragarbiter Pipeline, got {type(pipeline).__name__}. "
                f"Build one with ragarbiter.Pipeline([...]) or ragarbiter.default_pipeline()."
            )
            raise ConfigError(msg)
        if retrieve and pipeline is not None and not has_retrieval(pipeline):
            msg = (
                f"{owner}: the pipeline {pipeline!r} has no retrieval stage, so it would return nothing. "
                f"Add one (e.g. LangChainRetrieverStage(your_retriever)), or use the compressor / "
                f"postprocessor adapter to judge documents you already have."
            )
            raise ConfigError(msg)
        self._given = pipeline
        self._store = store
        self._retrieve = retrieve
        self._built: Pipeline | None = None
        self._lock = threading.Lock()

    def get(self) -> Pipeline:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built

    def _build(self) -> Pipeline:
        if self._given is not None:
            return self._given if self._retrieve else self._given.without_retrieval()
        if self._store is not None:
            return default_pipeline(self._store, retrieve=self._retrieve)
        return shared_default_pipeline(retrieve=self._retrieve)


def call_options(defaults: Mapping[str, Any], overrides: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Merge constructor defaults with per-call options, validating both."""
    unknown = sorted(set(overrides) - set(CALL_OPTIONS))
    if unknown:
        msg = (
            f"{owner} got unknown option(s) {', '.join(map(repr, unknown))}. Per-call options are "
            f"{', '.join(CALL_OPTIONS)}; runner settings such as max_concurrency go in the config, "
            f"e.g. abatch(queries, config={{'max_concurrency': 8}})."
        )
        raise ConfigError(msg)
    merged = {key: value for key, value in {**defaults, **overrides}.items() if value is not None}
    if "k" in merged:
        check_k(merged["k"])
    if "mode" in merged:
        check_mode(merged["mode"])
    return merged


class ExternalRetrieverStage(Stage):
    """Base for Stages that fetch passages from another framework's retriever.

    Subclasses implement `_fetch` / `_afetch` (query, context) -> passages, best first.
    Passages already on the Context stay first; new ones follow without repeats, at most
    `k` of them (`Context.options["k"]`, else the constructor's `k`, else all).
    """

    name = "retrieve"
    retrieves = True
    framework = "external"

    def __init__(self, retriever: Any, *, k: int | None = None) -> None:
        if retriever is None:
            msg = f"{type(self).__name__} needs a retriever, got None."
            raise ConfigError(msg)
        self.retriever = retriever
        self.k = check_k(k) if k is not None else None

    def _fetch(self, context: Context) -> list[Passage]:
        raise NotImplementedError

    async def _afetch(self, context: Context) -> list[Passage]:
        raise NotImplementedError

    def _merge(self, context: Context, found: Sequence[Passage]) -> Context:
        k = context.options.get("k", self.k)
        seen = {p.id for p in context.passages}
        new: list[Passage] = []
        for passage in found:
            if passage.id not in seen:
                seen.add(passage.id)
                new.append(passage)
        new = new[:k] if k is not None else new
        event = PassagesRetrieved(
            stage=self.name,
            query=context.query,
            passage_ids=tuple(p.id for p in new),
            scores=tuple(p.score for p in new),
            mode=self.framework,
        )
        return context.evolve(passages=context.passages + tuple(new), events=[event])

    def _run(self, context: Context) -> Context:
        return self._merge(context, self._fetch(context))

    async def _arun(self, context: Context) -> Context:
        return self._merge(context, await self._afetch(context))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.retriever).__name__})"
